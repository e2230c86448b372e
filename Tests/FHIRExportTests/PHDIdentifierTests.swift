import Testing
import VitalModel
import FHIRExport

/// Worked examples of the PHD IG 2.0 identifier, computed from the rule in the IG text
/// (StructureDefinition-PhdBaseObservation-notes.md, GeneratingtheTimeStampPartIdentifier.md) as
/// fhir-mapping.md §1.5 works them, not copied from the IG's example files (which still use the 1.1 form).
@Suite("PHD observation identifier")
struct PHDIdentifierTests {
    @Test("BLE cuff, CCCD patient, local time without offset (fhir-mapping.md §1.5 worked example)")
    func bleCuff() throws {
        // flags 0x06: time stamp and pulse; 128/82/97 mmHg at 2025-06-01 07:30:00, pulse 70.
        let reading = try bloodPressure("06800052006100E907060107" + "1E00" + "4600")
        let patient = SubjectReference.identifier(PatientIdentifier(system: "http://fhir.hl7.org.vn/core/sid/cccd", value: "001085012345"))
        let found = observations(try exporter.collectionBundle([reading], subject: patient))
        #expect(at(found["150020"], "identifier", 0, "value") == "C4F31253F2C9-001085012345-http://fhir.hl7.org.vn/core/sid/cccd-150020-802078200")
        #expect(at(found["149546"], "identifier", 0, "value") == "C4F31253F2C9-001085012345-http://fhir.hl7.org.vn/core/sid/cccd-149546-802078200")
    }

    @Test("timestamp part", arguments: [
        // A GHS device reporting UTC 00:30:00 with +7 h (fhir-mapping.md §1.5): offset in 15-minute units.
        ("2025-06-01T00:30:00", ClockResolution.second, Optional(28), "802053000+28"),
        // The IG's own millisecond example, with the 30 s erratum corrected, and its +1 h offset.
        ("2021-11-22T11:56:30.567", .millisecond, 4, "690897390.567+4"),
        ("2021-11-22T11:56:30.5", .millisecond, nil, "690897390.500"),
        ("2025-06-01T07:30:00", .second, -20, "802078200-20"),
        ("2025-06-01T07:30:00", .second, 0, "802078200+0"),
    ])
    func timestamp(_ time: String, _ resolution: ClockResolution, _ quarters: Int?, _ expected: String) throws {
        let local = try #require(LocalDateTime(iso8601: time))
        #expect(PHDObservationIdentifier.timestamp(local, resolution: resolution, utcOffsetQuarterHours: quarters) == expected)
    }

    @Test("duration and supplemental types follow the timestamp as the IG orders them")
    func fullForm() {
        let identifier = PHDObservationIdentifier(device: "0060190001A2B3C4", patient: "p-1", type: MDCCode(149530, "MDC_PULS_OXIM_PULS_RATE"),
                                                  timestamp: "690897390.567+4", duration: "1.000",
                                                  supplementalTypes: [MDCCode(150588, "MDC_MODALITY_SPOT")])
        #expect(identifier.description == "0060190001A2B3C4-p-1-149530-690897390.567+4..1.000-150588")
    }

    @Test("System ID wins over the Bluetooth address; a resolved Patient keeps its national identifier in the identifier")
    func deviceAndPatientParts() throws {
        var device = cuff
        device.systemID = EUI64("C4-F3-12-FF-FE-53-F2-C9")
        let reading = try bloodPressure("02800052006100E9070601071E00", device: device)
        let found = observations(try exporter.collectionBundle([reading], subject: .resolved(logicalID: "123", identifier: demoPatient)))
        #expect(at(found["150020"], "identifier", 0, "value")
                == "C4F312FFFE53F2C9-099199000001-http://fhir.hl7.org.vn/core/sid/cccd-150020-802078200")
        #expect(at(found["150020"], "subject", "reference") == "Patient/123")
    }

    @Test("without a device time, the hub's receive time (UTC, ms, hub offset) keeps retries idempotent")
    func receiveTime() throws {
        let reading = try heartRate("0048")
        let found = observations(try exporter.collectionBundle([reading], subject: demoSubject))
        // 2025-06-01T07:35:00.250+07:00 is 00:35:00.250 UTC: 802053300.250 s since 2000, +28 quarter hours.
        #expect(at(found["147842"], "identifier", 0, "value") == "C4F31253F2C9-099199000001-http://fhir.hl7.org.vn/core/sid/cccd-147842-802053300.250+28")
    }

    @Test("match URLs percent-encode '+' (HAPI reads it as a space) and the system URIs")
    func matchQuery() throws {
        #expect(percentEncodeQueryValue("a+b c/d:é") == "a%2Bb%20c%2Fd%3A%C3%A9")
        let reading = try heartRate("0048")
        let bundle = try exporter.transactionBundle([(reading, demoSubject)])
        guard case .array(let entries)? = bundle["entry"] else { Issue.record("no entries"); return }
        let queries = entries.compactMap { at($0, "request", "ifNoneExist") }
        #expect(queries.count == entries.count)
        #expect(queries.allSatisfy { !$0.serialized().contains("+") })
        #expect(queries.contains(.string("identifier=http%3A%2F%2Fhl7.org%2Ffhir%2Fuv%2Fphd%2FStructureDefinition%2FPhdBaseObservation|C4F31253F2C9-099199000001-http%3A%2F%2Ffhir.hl7.org.vn%2Fcore%2Fsid%2Fcccd-147842-802053300.250%2B28")))
    }
}
