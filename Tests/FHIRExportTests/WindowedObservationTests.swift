import Foundation
import Testing
import VitalModel
import ProfileEngine
import FHIRExport
import VitalGateTestKit

/// A heart-rate strap's window becomes one Observation: mean, minimum and maximum over `effectivePeriod`,
/// identified by the window's start and duration.
@Suite("FHIR of heart-rate windows")
struct WindowedObservationTests {
    static let strap = DeviceIdentity(bluetoothAddress: EUI48("00:00:5E:00:53:01"), manufacturer: "Polar", model: "H7")
    /// 2025-06-01T07:35:00+07:00.
    static let base: Int64 = 1_748_738_100_000

    static func time(_ second: Double) -> HubTimestamp {
        HubTimestamp(unixMilliseconds: base + Int64((second * 1000).rounded()), utcOffsetSeconds: 7 * 3600)
    }

    /// Real strap notifications (Polar H7 77 and 78 bpm, Wahoo without contact: the shipped heart-rate capture)
    /// at 1 Hz from `from` to `to` seconds after 07:35:00, summarised in 60 s windows; the stream ends at `to`.
    static func windows(from: Int, to: Int, frames: [String] = ["164D1603", "164E1B031203", "044A"]) throws -> [Reading] {
        var windows = try HeartRateWindows(windowSeconds: 60)
        var emitted: [Reading] = []
        for second in from..<to {
            let context = DecodeContext(device: strap, receivedAt: time(Double(second)), profileID: "bluetooth-sig/heart-rate")
            emitted += windows.add(try HeartRateMeasurementDecoder().decode(bytes(frames[(second - from) % frames.count]), context: context))
        }
        return emitted + windows.flush(at: time(Double(to)))
    }

    static func observation(_ reading: Reading, subject: SubjectReference = demoSubject) throws -> (JSONValue, FHIREntry) {
        let resources = try exporter.resources(for: reading, subject: subject)
        try #require(resources.observations.count == 1)
        return (resources.observations[0].resource, resources.observations[0])
    }

    @Test("one Observation per window: mean as the value, minimum and maximum as a range, the window as the period")
    func shape() throws {
        let readings = try Self.windows(from: 0, to: 60)
        try #require(readings.count == 1)
        let (observation, _) = try Self.observation(readings[0])
        #expect(at(observation, "meta", "profile") == [
            "http://hl7.org/fhir/uv/phd/StructureDefinition/PhdNumericObservation",
            "http://hl7.org/fhir/StructureDefinition/heartrate"])
        #expect(at(observation, "code", "coding", 0, "code") == "147842")
        #expect(at(observation, "code", "coding", 1, "code") == "8867-4")
        #expect(at(observation, "effectivePeriod") == ["start": "2025-06-01T07:35:00+07:00", "end": "2025-06-01T07:36:00+07:00"])
        #expect(at(observation, "effectiveDateTime") == nil)
        // Twenty 77s and twenty 78s with contact; the Wahoo samples without contact are left out.
        #expect(at(observation, "valueQuantity") == ["value": .number("77.5"), "unit": "beats/minute",
                                                     "system": "http://unitsofmeasure.org", "code": "/min"])
        // Minimum, maximum and count as R4 $stats gives them: components coded by statistic.
        let statistics = "http://terminology.hl7.org/CodeSystem/observation-statistics"
        #expect(at(observation, "component", 0, "code", "coding", 0) == ["system": .string(statistics), "code": "minimum", "display": "Minimum"])
        #expect(at(observation, "component", 0, "valueQuantity") == ["value": .number("77"), "unit": "beats/minute",
                                                                     "system": "http://unitsofmeasure.org", "code": "/min"])
        #expect(at(observation, "component", 1, "code", "coding", 0, "code") == "maximum")
        #expect(at(observation, "component", 1, "valueQuantity", "value") == .number("78"))
        #expect(at(observation, "component", 2, "code", "coding", 0, "code") == "count")
        #expect(at(observation, "component", 2, "valueInteger") == .number("40"))
        #expect(at(observation, "component", 3) == nil)
        #expect(at(observation, "status") == "final")
        #expect(at(observation, "interpretation") == nil)
    }

    @Test("the identifier is the IG recipe with the window's start and its duration")
    func identifier() throws {
        let reading = try #require(try Self.windows(from: 0, to: 60).first)
        let (observation, entry) = try Self.observation(reading)
        // 2025-06-01T00:35:00Z is 802,053,300 s after 2000-01-01 (the fhir-mapping.md §1.5 example, 07:30:00, is
        // 802,078,200; 6 h 55 min earlier); milliseconds as hub times have them; UTC+7 is +28 quarter hours; 60 s.
        let patient = demoPatient.value + "-" + demoPatient.system
        #expect(at(observation, "identifier", 0, "value") == .string("00005E005301-\(patient)-147842-802053300.000+28..60.000"))
        #expect(entry.ifNoneExist?.contains("802053300.000%2B28..60.000") == true)
    }

    @Test("identifiers are stable for a window and differ between windows")
    func stability() throws {
        let readings = try Self.windows(from: 0, to: 180)
        try #require(readings.count == 3)
        let identifiers = try readings.map { try Self.observation($0).1.ifNoneExist }
        #expect(Set(identifiers).count == 3)
        // Stored and read back, exported again, or cut the same way by a restart: the same identifier.
        let stored = try Reading(jsonText: readings[1].json.serialized())
        #expect(try Self.observation(stored).1 == (try Self.observation(readings[1]).1))
        #expect(try Self.windows(from: 60, to: 180)[0] == readings[1])
        #expect(try Self.observation(try Self.windows(from: 0, to: 120)[1]).1.ifNoneExist == identifiers[1])
        // A window cut short by a disconnect is another period, so another identifier.
        let cut = try #require(try Self.windows(from: 60, to: 90).first)
        #expect(try Self.observation(cut).1.ifNoneExist != identifiers[1])
        #expect(try Self.observation(cut).0["effectivePeriod"]?["end"] == "2025-06-01T07:36:30+07:00")
        // A window whose bounds collided in the Outbox is identified from its end instead.
        let byReceipt = try exporter.resources(for: readings[1], subject: demoSubject, identifyByReceipt: true)
        #expect(byReceipt.observations[0].ifNoneExist != identifiers[1])
    }

    @Test("a window starting at a sample shows its milliseconds")
    func millisecondsInPeriod() throws {
        var windows = try HeartRateWindows(windowSeconds: 60)
        let context = DecodeContext(device: Self.strap, receivedAt: Self.time(12.345), profileID: "bluetooth-sig/heart-rate")
        _ = windows.add(try HeartRateMeasurementDecoder().decode(bytes("164D1603"), context: context))
        let reading = try #require(windows.flush(at: Self.time(20)).first)
        let (observation, _) = try Self.observation(reading)
        #expect(at(observation, "effectivePeriod", "start") == "2025-06-01T07:35:12.345+07:00")
        #expect(at(observation, "identifier", 0, "value")?.serialized().hasSuffix("-147842-802053312.345+28..7.655\"") == true)
        try expectValid(observation, "window starting at a sample")
    }

    @Test("windows validate against R4 and the vital-signs profiles, alone and in collection and transaction Bundles")
    func validation() throws {
        let readings = try Self.windows(from: -30, to: 180)
        try #require(readings.count == 4)
        for reading in readings {
            let (observation, _) = try Self.observation(reading)
            try expectValid(observation, "window Observation")
            let resolved = try Self.observation(reading, subject: .resolved(logicalID: "p1", identifier: demoPatient)).0
            try expectValid(resolved, "window Observation with a resolved Patient")
        }
        try expectValid(try exporter.collectionBundle(readings, subject: demoSubject), "collection of windows")
        let transaction = try exporter.transactionBundle(readings.map { ($0, demoSubject) })
        try expectValid(transaction, "transaction of windows")
        guard case .array(let entries)? = transaction["entry"] else { Issue.record("no entries"); return }
        #expect(entries.count == 2 + readings.count)  // the hub, the strap, one Observation per window
    }

    /// The validator must be able to say no to broken copies of a window's Observation.
    @Test("the validator catches broken windows", arguments: [
        ("period end before start", ["effectivePeriod", "end"] as [any Sendable], JSONValue.string("2025-06-01T07:34:00+07:00") as JSONValue?),
        ("minimum as a string", ["component", 0, "valueQuantity", "value"], .string("77")),
        ("component without code", ["component", 0, "code"], nil),
        ("minimum in a unit vital signs do not allow", ["component", 0, "valueQuantity", "code"], .string("beats/min")),
        ("a statistic repeating the Observation's code (obs-7)", ["component", 1, "code"],
         ["coding": [["system": "urn:iso:std:iso:11073:10101", "code": "147842", "display": "MDC_ECG_HEART_RATE"]]] as JSONValue),
        ("count with a fraction", ["component", 2, "valueInteger"], .number("40.5")),
    ])
    func catchesMistakes(_ what: String, _ path: [any Sendable], _ replacement: JSONValue?) throws {
        let reading = try #require(try Self.windows(from: 0, to: 60).first)
        let good = try Self.observation(reading, subject: .resolved(logicalID: "p1", identifier: demoPatient)).0
        try expectValid(good, "unbroken control")
        let broken = editing(good, path.map { $0 as Any }, replacement)
        #expect(broken != good, "the edit must change the resource")
        #expect(!(try FHIRValidator.shared().validate(broken.serialized())).valid, "\(what) was accepted")
    }
}
