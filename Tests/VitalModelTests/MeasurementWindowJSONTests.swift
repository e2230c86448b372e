import Foundation
import Testing
@testable import VitalModel

/// A reading that summarises a window of samples comes back from the Outbox's JSON exactly, and a broken
/// window member is refused with its path.
@Suite("Windowed readings in JSON")
struct MeasurementWindowJSONTests {
    static func hub(_ text: String) -> HubTimestamp { HubTimestamp(iso8601: text)! }
    static func rate(_ text: String) -> MeasuredValue { MeasuredValue(.heartRate, .number(DecimalValue(text)!), .perMinute) }

    static let windowed = Reading(
        kind: .heartRate,
        values: [rate("77.5"), MeasuredValue(.rrInterval, .number(DecimalValue("0.7714843750")!), .second),
                 MeasuredValue(.energyExpended, .number(DecimalValue(mantissa: 12, exponent: 2)), .kilojoule)],
        receivedAt: hub("2025-06-01T07:36:00.000+07:00"),
        device: DeviceIdentity(bluetoothAddress: EUI48("00:00:5E:00:53:01")),
        source: ReadingSource(profileID: "bluetooth-sig/heart-rate", frame: "2A37"), raw: [],
        window: MeasurementWindow(start: hub("2025-06-01T07:35:00.000+07:00"), end: hub("2025-06-01T07:36:00.000+07:00"),
                                  sampleCount: 58, excludedSampleCount: 2, minimum: rate("77"),
                                  maximum: MeasuredValue(.heartRate, .number(DecimalValue(mantissa: 8, exponent: 1)), .perMinute)))

    @Test("a windowed reading comes back exactly, positive exponents and all")
    func roundTrip() throws {
        let text = Self.windowed.json.serialized()
        let decoded = try Reading(jsonText: text)
        #expect(decoded == Self.windowed)
        #expect(decoded.json.serialized() == text)
        #expect(Self.windowed.json["window"]?["samples"] == .number("58"))
        #expect(Self.windowed.json["window"]?["maximum"]?["exponent"] == .number("1"))
    }

    @Test("a zero-length window (a sensor that sent one sample and disconnected) and other offsets round-trip")
    func edges() throws {
        var reading = Self.windowed
        reading.window?.start = Self.hub("2025-06-01T07:35:59.999-05:30")
        reading.window?.end = Self.hub("2025-06-01T07:35:59.999-05:30")
        reading.window?.excludedSampleCount = 0
        #expect(try Reading(jsonText: reading.json.serialized()) == reading)
    }

    @Test("readings without a window write no window member, so their JSON is unchanged")
    func absent() {
        var plain = Self.windowed
        plain.window = nil
        #expect(plain.json["window"] == nil)
    }

    struct BadWindow: Sendable, CustomStringConvertible {
        var name: String
        var key: String
        var value: JSONValue?
        var path: String
        var phrase: String
        var description: String { name }
    }

    static let badWindows: [BadWindow] = [
        BadWindow(name: "end before start", key: "end", value: "2025-06-01T07:34:59.999+07:00", path: "window.end", phrase: "before window.start"),
        BadWindow(name: "end without milliseconds", key: "end", value: "2025-06-01T07:36:00+07:00", path: "window.end", phrase: "SS.fff"),
        BadWindow(name: "start missing", key: "start", value: nil, path: "window.start", phrase: "missing"),
        BadWindow(name: "no samples", key: "samples", value: 0, path: "window.samples", phrase: "1 or more"),
        BadWindow(name: "negative excluded count", key: "excluded", value: -1, path: "window.excluded", phrase: "negative"),
        BadWindow(name: "sample count with a fraction", key: "samples", value: .number("2.5"), path: "window.samples", phrase: "whole number"),
        BadWindow(name: "maximum of another unit", key: "maximum", value: ["type": "heart-rate", "value": 80, "unit": "%"],
                  path: "window.maximum", phrase: "type and unit"),
        BadWindow(name: "minimum of an unknown type", key: "minimum", value: ["type": "mood", "value": 80, "unit": "/min"],
                  path: "window.minimum.type", phrase: "not a measurement type"),
        BadWindow(name: "unknown member", key: "median", value: 77, path: "window.median", phrase: "not a member"),
    ]

    @Test("a broken window names its member, never the values", arguments: badWindows)
    func errors(_ bad: BadWindow) throws {
        guard case .object(var members) = Self.windowed.json,
              let index = members.firstIndex(where: { $0.0 == "window" }), case .object(var window) = members[index].1 else {
            Issue.record("no window member")
            return
        }
        window.removeAll { $0.0 == bad.key }
        if let value = bad.value { window.append((bad.key, value)) }
        members[index].1 = .object(window)
        let error = try #require(throws: ReadingJSONError.self) { try Reading(json: .object(members)) }
        #expect(error.path == bad.path, "\(error)")
        #expect(error.problem.contains(bad.phrase), "\(error)")
        #expect(!error.description.contains("77") && !error.description.contains("80"), "a value leaked into the message: \(error)")
    }

    @Test("hub times in milliseconds: exact for stored times, saturating for instants no clock shows")
    func milliseconds() {
        let stamp = Self.hub("2025-06-01T07:35:00.250+07:00")
        #expect(stamp.unixMilliseconds == 1_748_738_100_250)  // 2025-06-01T00:35:00.250Z, by date arithmetic
        #expect(HubTimestamp(unixMilliseconds: stamp.unixMilliseconds, utcOffsetSeconds: 25_200) == stamp)
        #expect(HubTimestamp(instant: Date(timeIntervalSince1970: 1e300), utcOffsetSeconds: 0).unixMilliseconds == .max)
        #expect(HubTimestamp(instant: Date(timeIntervalSince1970: -1e300), utcOffsetSeconds: 0).unixMilliseconds == .min)
        #expect(Self.windowed.window?.durationMilliseconds == 60_000)
    }
}
