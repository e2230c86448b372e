import Foundation
import Testing
import VitalModel
import ProfileEngine
import FHIRExport
import VitalGateTestKit

@Suite("FHIR mapping")
struct ObservationMappingTests {
    @Test("blood pressure: compound numeric with MDC and LOINC side by side, pulse apart, status bits derived")
    func bloodPressureShape() throws {
        // derdilla sample (Tests/Fixtures/bluetooth-sig): 124/86/97, pulse 51, 2024-06-15 17:17:27, status 0x0027.
        let reading = try bloodPressure("167C0056006100E807060F11111B33002700")
        let bundle = try exporter.collectionBundle([reading], subject: demoSubject)
        let found = observations(bundle)
        let bp = try #require(found["150020"])
        #expect(at(bp, "meta", "profile") == [
            "http://hl7.org/fhir/uv/phd/StructureDefinition/PhdCompoundNumericObservation",
            "http://hl7.org/fhir/StructureDefinition/bp"])
        #expect(at(bp, "code", "coding", 1, "code") == "85354-9")
        #expect(at(bp, "component", 0, "code", "coding", 1, "code") == "8480-6")
        #expect(at(bp, "component", 0, "valueQuantity", "value") == .number("124"))
        #expect(at(bp, "component", 1, "valueQuantity", "code") == "mm[Hg]")
        #expect(at(bp, "component", 2, "code", "coding", 0, "code") == "150023")
        #expect(at(bp, "effectiveDateTime") == "2024-06-15T17:17:27+07:00")
        #expect(at(bp, "category", 1, "coding", 0, "code") == "phd")
        #expect(at(found["149546"], "valueQuantity", "value") == .number("51"))
        let status = try #require(found["8410608"])
        #expect(at(status, "derivedFrom", 0, "reference") == fullURL(of: "150020", in: bundle))
        let setBits: [JSONValue] = (0..<6).compactMap { index in
            at(status, "component", index, "valueCodeableConcept", "coding", 0, "code") == "Y" ? at(status, "component", index, "code", "coding", 0, "code") : nil
        }
        #expect(setBits == ["8410608.0", "8410608.1", "8410608.2", "8410608.5"])
    }

    @Test("precision survives: 18.9 kPa stays 18.9 kPa, and claims no R4 bp profile (it fixes mm[Hg])")
    func kilopascal() throws {
        // Nordic minimal kPa-style vector with flags forced to kPa: 18.9 / 11 / 15.9.
        let reading = try bloodPressure("01BDF00B009FF0")
        let bp = try #require(observations(try exporter.collectionBundle([reading], subject: demoSubject))["150020"])
        #expect(at(bp, "component", 0, "valueQuantity") == ["value": .number("18.9"), "unit": "kPa",
                                                            "system": "http://unitsofmeasure.org", "code": "kPa"])
        #expect(at(bp, "meta", "profile") == ["http://hl7.org/fhir/uv/phd/StructureDefinition/PhdCompoundNumericObservation"])
        #expect(at(bp, "category", 0, "coding", 0, "code") == "phd")
        try expectValid(bp, "kPa blood pressure")
    }

    @Test("special values become dataAbsentReason (a real cuff's all-NaN 'Err' reading)")
    func specialValues() throws {
        let reading = try bloodPressure("16FF07FF07FF07E80706170E230AFF070000")
        let found = observations(try exporter.collectionBundle([reading], subject: demoSubject))
        let bp = try #require(found["150020"])
        for index in 0..<3 {
            #expect(at(bp, "component", index, "valueQuantity") == nil)
            #expect(at(bp, "component", index, "dataAbsentReason", "coding", 0, "code") == "not-a-number")
        }
        #expect(at(found["149546"], "dataAbsentReason", "coding", 0, "code") == "not-a-number")
        for (code, resource) in found { try expectValid(resource, "NaN reading \(code)") }
    }

    @Test("measurement status: invalid, questionable, test data, ongoing")
    func status() throws {
        var reading = try heartRate("0048")
        reading.status = [.invalid]
        var hr = try #require(observations(try exporter.collectionBundle([reading], subject: demoSubject))["147842"])
        #expect(at(hr, "status") == "entered-in-error")
        #expect(at(hr, "dataAbsentReason", "coding", 0, "code") == "error")
        #expect(at(hr, "valueQuantity") == nil)
        try expectValid(hr, "invalid")

        reading.status = [.questionable, .testData]
        hr = try #require(observations(try exporter.collectionBundle([reading], subject: demoSubject))["147842"])
        #expect(at(hr, "interpretation", 0, "coding", 0) == ["system": "http://hl7.org/fhir/uv/pocd/CodeSystem/measurement-status", "code": "questionable"])
        #expect(at(hr, "meta", "security", 0, "code") == "HTEST")
        try expectValid(hr, "questionable test data")

        let cuffPressure = try BloodPressureMeasurementDecoder().decode(bytes("1E0400000000000000041114293B3C00012700"), frame: "2A36", context: context())
        let bp = try #require(observations(try exporter.collectionBundle([cuffPressure], subject: demoSubject))["150020"])
        #expect(at(bp, "status") == "preliminary")
        #expect(at(bp, "interpretation", 0, "coding", 0, "code") == "msmt-ongoing")
    }

    @Test("a strap that lost skin contact gives a questionable heart rate")
    func lostContact() throws {
        let hr = try #require(observations(try exporter.collectionBundle([try heartRate("044A")], subject: demoSubject))["147842"])
        #expect(at(hr, "interpretation", 0, "coding", 0, "code") == "questionable")
    }

    @Test("device clock checked: effective time moved by the measured lag, Coincident Timestamp referenced")
    func clockCorrection() throws {
        var reading = try bloodPressure("02800052006100E9070601071E00")  // device says 07:30:00
        // At 07:35:00.250 hub time the device clock read 07:34:40: it runs 20.25 s slow.
        reading.clockCheck = DeviceClockCheck(hubTime: received, deviceTime: LocalDateTime(iso8601: "2025-06-01T07:34:40"))
        let bundle = try exporter.collectionBundle([reading], subject: demoSubject)
        let found = observations(bundle)
        let bp = try #require(found["150020"])
        let coincident = try #require(found["67975"])
        #expect(at(bp, "effectiveDateTime") == "2025-06-01T07:30:20.250+07:00")
        // The identifier keeps the device's own time, not the corrected one.
        #expect(at(bp, "identifier", 0, "value")?.serialized().contains("-802078200\"") == true)
        #expect(at(bp, "extension", 1, "url") == "http://hl7.org/fhir/uv/phd/StructureDefinition/CoincidentTimeStampReference")
        #expect(at(coincident, "valueDateTime") == "2025-06-01T07:34:40+07:00")
        #expect(at(coincident, "effectiveDateTime") == "2025-06-01T07:35:00.250+07:00")
        try expectValid(bundle, "bundle with a coincident timestamp")

        reading.clockCheck = DeviceClockCheck(hubTime: received, deviceTime: nil)
        let faulted = observations(try exporter.collectionBundle([reading], subject: demoSubject))
        #expect(at(faulted["67975"], "dataAbsentReason", "coding", 0, "code") == "unknown")
        #expect(at(faulted["150020"], "effectiveDateTime") == "2025-06-01T07:35:00.250+07:00")
        #expect(at(faulted["150020"], "note", 0, "text") != nil)
    }

    @Test("an absurd clock check (device clock in year 9999) dates the reading by receive time, never traps")
    func absurdClockCheck() throws {
        var reading = try bloodPressure("02800052006100E9070601071E00")
        reading.clockCheck = DeviceClockCheck(hubTime: received, deviceTime: LocalDateTime(iso8601: "9999-12-31T00:00:00"))
        let bp = try #require(observations(try exporter.collectionBundle([reading], subject: demoSubject))["150020"])
        #expect(at(bp, "effectiveDateTime") == "2025-06-01T07:35:00.250+07:00")
        #expect(at(bp, "note", 0, "text") == "The device clock reading was too far off to correct by; the effective time is when the hub received the reading.")
    }

    @Test("a device clock that was never set does not date the reading")
    func clockNotSet() throws {
        var reading = try bloodPressure("02800052006100D0070101000000")  // 2000-01-01 00:00:00, a reset clock
        reading.deviceTime?.clock = .notSet
        let bp = try #require(observations(try exporter.collectionBundle([reading], subject: demoSubject))["150020"])
        #expect(at(bp, "effectiveDateTime") == "2025-06-01T07:35:00.250+07:00")
        #expect(at(bp, "note", 0, "text") != nil)
        try expectValid(bp, "clock not set")
    }

    @Test("output is a pure function of the reading: same reading, same bytes; other reading, other ids")
    func deterministic() throws {
        let first = try exporter.collectionBundle([try heartRate("164D1603")], subject: demoSubject)
        #expect(first == (try exporter.collectionBundle([try heartRate("164D1603")], subject: demoSubject)))
        var later = try heartRate("164D1603")
        later.receivedAt.instant = later.receivedAt.instant.addingTimeInterval(1)
        let second = try exporter.collectionBundle([later], subject: demoSubject)
        #expect(at(first, "entry", 2, "fullUrl") != at(second, "entry", 2, "fullUrl"))
        #expect(at(first, "entry", 1, "fullUrl") == at(second, "entry", 1, "fullUrl"))  // same device
    }

    @Test("a device without identity and a malformed Patient id are refused with a reason")
    func refused() throws {
        let anonymous = try bloodPressure("00BDF00B009FF0", device: DeviceIdentity())
        let error = try #require(throws: ExportError.self) { try exporter.collectionBundle([anonymous], subject: demoSubject) }
        #expect(error.description.contains("Bluetooth address"))
        #expect(throws: ExportError.self) {
            try exporter.collectionBundle([try bloodPressure("00BDF00B009FF0")], subject: .resolved(logicalID: "a/b", identifier: demoPatient))
        }
    }
}

@Suite("Bundles never drop a reading")
struct BundleConflictTests {
    @Test("the same stored record twice is sent once; two different readings under one identifier are refused")
    func conflicts() throws {
        let record = try bloodPressure("167C0056006100E807060F11111B33000000")
        let twice = try exporter.collectionBundle([record, record], subject: demoSubject)
        #expect(observations(twice).count == 3)  // pressure, pulse and status bits, once each
        // Same device time, other values: a cuff whose clock did not move. The server would keep one.
        let other = try bloodPressure("167D0056006100E807060F11111B33000000")
        let error = try #require(throws: ExportError.self) { try exporter.collectionBundle([record, other], subject: demoSubject) }
        #expect(error.description.contains("same observation identifier"))
    }
}

@Suite("FHIR mapping: performer and corrected device time")
struct PerformerAndTimeTests {
    @Test("a visit's health worker is each Observation's performer: a Practitioner by identifier, valid R4")
    func performer() throws {
        let reading = try bloodPressure("167C0056006100E807060F11111B33002700")
        let worker = PerformerIdentifier(system: "urn:example:chw", value: "CHW-42")
        let resources = try exporter.resources(for: reading, subject: demoSubject, performer: worker, forTransaction: false)
        #expect(!resources.observations.isEmpty)
        for entry in resources.observations {
            #expect(at(entry.resource, "performer") == [["type": "Practitioner",
                                                         "identifier": ["system": "urn:example:chw", "value": "CHW-42"]]])
            try expectValid(entry.resource, "Observation with a performer")
        }
        let without = try exporter.resources(for: reading, subject: demoSubject, forTransaction: false)
        #expect(without.observations.allSatisfy { at($0.resource, "performer") == nil })
    }

    @Test("a UTC stamp with an offset and a checked clock: the effective time is the device's wall time moved by the lag")
    func offsetStampCorrected() throws {
        // The stamp is 2025-06-01 00:30:00 UTC with offset +07:00 (28 quarter hours): wall time 07:30:00. At receipt
        // (07:35:00.250 +07:00) the device clock read 07:45:00.250: 10 minutes fast. Measured at 07:20:00 +07:00.
        var reading = try bloodPressure("167C0056006100E807060F11111B33002700")
        reading.deviceTime = DeviceTimestamp(time: LocalDateTime(year: 2025, month: 6, day: 1, hour: 0, minute: 30, second: 0)!,
                                             utcOffsetQuarterHours: 28, clock: .unknown)
        reading.clockCheck = DeviceClockCheck(hubTime: received,
                                              deviceTime: LocalDateTime(year: 2025, month: 6, day: 1, hour: 7, minute: 45, second: 0, millisecond: 250)!)
        let resources = try exporter.resources(for: reading, subject: demoSubject, forTransaction: false)
        let bp = try #require(resources.observations.first { at($0.resource, "code", "coding", 0, "code") == "150020" })
        #expect(at(bp.resource, "effectiveDateTime") == "2025-06-01T07:20:00+07:00")
    }
}
