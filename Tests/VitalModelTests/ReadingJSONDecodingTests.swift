import Foundation
import Testing
@testable import VitalModel

/// `Reading(json:)` is the exact inverse of `Reading.json`: the Outbox stores readings as that JSON.
@Suite("Reading JSON decoding")
struct ReadingJSONDecodingTests {
    static func hub(_ text: String) -> HubTimestamp { HubTimestamp(iso8601: text)! }
    static func local(_ text: String) -> LocalDateTime { LocalDateTime(iso8601: text)! }

    /// Hand-made readings that together set every member, and the edge of each.
    static let readings: [(String, Reading)] = [
        ("blood pressure with every optional member", Reading(
            kind: .bloodPressure,
            values: [MeasuredValue(.systolic, .number(DecimalValue("120.5")!), .millimetreOfMercury),
                     MeasuredValue(.diastolic, .number(DecimalValue("-79.50")!), .kilopascal),
                     MeasuredValue(.meanArterialPressure, .special(.notAtThisResolution), .millimetreOfMercury),
                     MeasuredValue(.pulseRate, .number(DecimalValue(mantissa: 7, exponent: 1)), .perMinute)],
            deviceTime: DeviceTimestamp(time: local("2025-06-01T07:30:00.250"), resolution: .millisecond,
                                        utcOffsetQuarterHours: -22, clock: .set),
            receivedAt: hub("2025-06-01T07:35:00.001+07:00"),
            device: DeviceIdentity(systemID: EUI64("00-1B-2C-FF-FE-3D-4E-5F"), bluetoothAddress: EUI48("C4:F3:12:53:F2:C9"),
                                   usb: USBIdentity(vendorID: 0x0C45, productID: 0x7406, serial: "A:B:C"),
                                   manufacturer: "Ünïcode \"quoted\"\n", model: "M", serialNumber: "S-1",
                                   firmwareRevision: "1.0", hardwareRevision: "rev B", softwareRevision: "2.3.4"),
            userSlot: 0, status: [.questionable, .fromStorage, .validated],
            statusBits: [StatusBitField(type: StatusBitField.bloodPressureMeasurementStatus,
                                        bits: [StatusBit(bit: 0, name: "body-movement", isSet: true),
                                               StatusBit(bit: 1, name: "cuff-too-loose", isSet: false),
                                               StatusBit(bit: 3, name: "pulse-range", isSet: nil)]),
                         StatusBitField(type: StatusBitField.glucoseMeterDeviceStatus, bits: [], isVerified: false)],
            sensorContact: .notDetected,
            clockCheck: DeviceClockCheck(hubTime: hub("2025-06-01T07:35:00.000-03:30"), deviceTime: local("2025-06-01T04:04:59.999")),
            source: ReadingSource(profileID: "vendor/model", frame: "2A35"), raw: [0x00, 0xFF, 0x1E, 0xA0],
            bodySite: BodySite(code: MDCCode(7_000, "MDC_SITE"), name: "upper-arm"), sequenceNumber: 65_535)),
        ("bare reading: nothing optional", Reading(
            kind: .glucose, values: [], receivedAt: hub("1970-01-01T00:00:00.000Z"), device: DeviceIdentity(),
            source: ReadingSource(profileID: "", frame: ""), raw: [])),
        ("specials, clock fault, USB without serial, site without code", Reading(
            kind: .pulseOximetry,
            values: SpecialValue.allCases.map { MeasuredValue(.oxygenSaturation, .special($0), .percent) },
            deviceTime: DeviceTimestamp(time: local("2019-02-27T11:05:30"), resolution: .second, utcOffsetQuarterHours: 56, clock: .notSet),
            receivedAt: hub("2099-12-31T23:59:59.999+14:00"),
            device: DeviceIdentity(usb: USBIdentity(vendorID: 0xFFFF, productID: 0, serial: nil)),
            userSlot: 254, sensorContact: .notSupported, clockCheck: DeviceClockCheck(hubTime: hub("2025-01-01T00:00:00.000+00:00"), deviceTime: nil),
            source: ReadingSource(profileID: "p", frame: "f"), raw: [1], bodySite: BodySite(code: nil, name: "finger"), sequenceNumber: 0)),
        ("exact decimals: zeros, precision, extremes", Reading(
            kind: .bodyWeight,
            values: [MeasuredValue(.bodyWeight, .number(DecimalValue(mantissa: 0, exponent: 3)), .kilogram),
                     MeasuredValue(.bodyWeight, .number(DecimalValue(mantissa: 0, exponent: -2)), .gram),
                     MeasuredValue(.bodyWeight, .number(DecimalValue(mantissa: -12, exponent: 127)), .pound),
                     MeasuredValue(.bodyWeight, .number(DecimalValue(mantissa: 5, exponent: -128)), .kilogram),
                     MeasuredValue(.bodyWeight, .number(DecimalValue(mantissa: .min, exponent: 0)), .kilogram),
                     MeasuredValue(.bodyWeight, .number(DecimalValue(mantissa: .max, exponent: -3)), .kilogram),
                     MeasuredValue(.bodyHeight, .number(DecimalValue(mantissa: 1, exponent: 0)), .inch)],
            receivedAt: hub("2024-02-29T12:00:00.500-00:30"), device: DeviceIdentity(usb: USBIdentity(vendorID: 1, productID: 2, serial: "")),
            source: ReadingSource(profileID: "x", frame: "y"), raw: Array(0...255))),
    ]

    @Test("every member comes back exactly", arguments: readings.map(\.0))
    func roundTrip(name: String) throws {
        let reading = try #require(Self.readings.first { $0.0 == name }?.1)
        let json = reading.json
        #expect(try Reading(json: json) == reading)
        // Through text as the Outbox stores it, and writing again gives the same text.
        let text = json.serialized()
        let decoded = try Reading(jsonText: text)
        #expect(decoded == reading)
        #expect(decoded.json.serialized() == text)
    }

    @Test("revisions and positive exponents are written only when present, so other JSON is unchanged")
    func additions() throws {
        let plain = Self.readings[1].1
        #expect(plain.json["device"] == .object([]))
        let full = Self.readings[0].1
        #expect(full.json["device"]?["hardware"] == "rev B")
        #expect(full.json["device"]?["software"] == "2.3.4")
        let values = try #require(full.json["values"])
        guard case .array(let items) = values else { Issue.record("values is not an array"); return }
        #expect(items[0]["exponent"] == nil)
        #expect(items[3]["value"] == .number("70"))
        #expect(items[3]["exponent"] == .number("1"))
    }

    struct BadCase: Sendable, CustomStringConvertible {
        var name: String
        var edit: @Sendable (inout [(String, JSONValue)]) -> Void
        var path: String
        var phrase: String
        var description: String { name }
    }

    static func replace(_ key: String, _ value: JSONValue) -> @Sendable (inout [(String, JSONValue)]) -> Void {
        { members in
            if let index = members.firstIndex(where: { $0.0 == key }) { members[index].1 = value } else { members.append((key, value)) }
        }
    }

    static let badCases: [BadCase] = [
        BadCase(name: "missing kind", edit: { $0.removeAll { $0.0 == "kind" } }, path: "kind", phrase: "missing"),
        BadCase(name: "unknown kind", edit: replace("kind", "pressure"), path: "kind", phrase: "not a measurement kind"),
        BadCase(name: "unknown member", edit: replace("colour", "red"), path: "colour", phrase: "not a member"),
        BadCase(name: "value as string", edit: replace("values", [["type": "systolic", "value": "120", "unit": "mm[Hg]"]]),
                path: "values[0].value", phrase: "expected a number or null"),
        BadCase(name: "value in exponent notation", edit: replace("values", [["type": "systolic", "value": .number("1.2e2"), "unit": "mm[Hg]"]]),
                path: "values[0].value", phrase: "plain decimal"),
        BadCase(name: "exponent that does not fit the text", edit: replace("values", [["type": "systolic", "value": .number("125"), "unit": "mm[Hg]", "exponent": 1]]),
                path: "values[0].value", phrase: "as many zeros"),
        BadCase(name: "unknown unit", edit: replace("values", [["type": "systolic", "value": 1, "unit": "furlong"]]),
                path: "values[0].unit", phrase: "not a unit"),
        BadCase(name: "unknown type", edit: replace("values", [["type": "mood", "value": 1, "unit": "%"]]),
                path: "values[0].type", phrase: "not a measurement type"),
        BadCase(name: "unknown special", edit: replace("values", [["type": "systolic", "value": .null, "special": "Inf", "unit": "mm[Hg]"]]),
                path: "values[0].special", phrase: "is not one of"),
        BadCase(name: "receivedAt without offset", edit: replace("receivedAt", "2025-06-01T07:35:00.000"), path: "receivedAt", phrase: "expected"),
        BadCase(name: "receivedAt 30 February", edit: replace("receivedAt", "2025-02-30T07:35:00.000+07:00"), path: "receivedAt", phrase: "expected"),
        BadCase(name: "receivedAt before 1970", edit: replace("receivedAt", "1969-12-31T23:59:59.999+00:00"), path: "receivedAt", phrase: "1970 to 9998"),
        BadCase(name: "receivedAt in the year 9999", edit: replace("receivedAt", "9999-01-01T00:00:00.000+00:00"), path: "receivedAt", phrase: "1970 to 9998"),
        BadCase(name: "receivedAt offset beyond 18 hours", edit: replace("receivedAt", "2025-06-01T07:35:00.000+18:01"), path: "receivedAt",
                phrase: "within ±18:00"),
        BadCase(name: "receivedAt offset minutes out of range", edit: replace("receivedAt", "2025-06-01T07:35:00.000+07:60"), path: "receivedAt",
                phrase: "expected"),
        BadCase(name: "receivedAt without milliseconds", edit: replace("receivedAt", "2025-06-01T07:35:00+07:00"), path: "receivedAt", phrase: "SS.fff"),
        BadCase(name: "receivedAt in Z form, which the writer never makes", edit: replace("receivedAt", "2025-06-01T07:35:00.000Z"),
                path: "receivedAt", phrase: "±HH:MM"),
        BadCase(name: "clock check hub time offset beyond 18 hours",
                edit: replace("clockCheck", ["hubTime": "2025-06-01T07:35:00.000-19:00", "deviceTime": .null]),
                path: "clockCheck.hubTime", phrase: "within ±18:00"),
        BadCase(name: "clock check hub time before 1970",
                edit: replace("clockCheck", ["hubTime": "1969-12-31T19:00:00.000-05:00", "deviceTime": .null]),
                path: "clockCheck.hubTime", phrase: "1970 to 9998"),
        BadCase(name: "exponent above 127", edit: replace("values", [["type": "systolic", "value": .number("1" + String(repeating: "0", count: 128)),
                                                                     "unit": "mm[Hg]", "exponent": 128]]),
                path: "values[0].exponent", phrase: "at most 127"),
        BadCase(name: "exponent far beyond any integer type", edit: replace("values", [["type": "systolic", "value": 1, "unit": "mm[Hg]",
                                                                                      "exponent": .number("99999999999999999999")]]),
                path: "values[0].exponent", phrase: "whole number"),
        BadCase(name: "more than 128 fraction digits", edit: replace("values", [["type": "systolic", "value": .number("0." + String(repeating: "0", count: 128) + "1"),
                                                                               "unit": "mm[Hg]"]]),
                path: "values[0].value", phrase: "more than 128 fraction digits"),
        BadCase(name: "digit with a combining mark", edit: replace("values", [["type": "systolic", "value": .number("1\u{301}"), "unit": "mm[Hg]"]]),
                path: "values[0].value", phrase: "plain decimal"),
        BadCase(name: "device time with two fraction digits", edit: replace("deviceTime", ["time": "2025-06-01T07:30:00.25", "clock": "set"]),
                path: "deviceTime.time", phrase: "expected"),
        BadCase(name: "offset not in quarter hours", edit: replace("deviceTime", ["time": "2025-06-01T07:30:00", "clock": "set", "utcOffset": "+07:10"]),
                path: "deviceTime.utcOffset", phrase: "quarter hours"),
        BadCase(name: "unknown status name", edit: replace("status", ["hungry"]), path: "status[0]", phrase: "not a measurement-status name"),
        BadCase(name: "user slot with fraction", edit: replace("userSlot", .number("1.5")), path: "userSlot", phrase: "whole number"),
        BadCase(name: "odd hex", edit: replace("raw", "ABC"), path: "raw", phrase: "hex digits in pairs"),
        BadCase(name: "bad USB", edit: replace("device", ["usb": "0C45-7406"]), path: "device.usb", phrase: "VVVV:PPPP"),
        BadCase(name: "bad system ID", edit: replace("device", ["systemID": "00-11"]), path: "device.systemID", phrase: "8 hex bytes"),
        BadCase(name: "body site code without referenceID", edit: replace("bodySite", ["name": "arm", "code": 5]),
                path: "bodySite.referenceID", phrase: "missing"),
        BadCase(name: "status bit set as string", edit: replace("statusBits", [["type": 1, "name": "X", "bits": [["bit": 0, "name": "b", "set": "yes"]]]]),
                path: "statusBits[0].bits[0].set", phrase: "true, false or null"),
        BadCase(name: "clock check time impossible", edit: replace("clockCheck", ["hubTime": "2025-06-01T07:35:00.000+07:00", "deviceTime": "2025-13-01T00:00:00"]),
                path: "clockCheck.deviceTime", phrase: "possible date"),
    ]

    @Test("mistakes name the member and the problem, never the value", arguments: badCases)
    func errors(_ bad: BadCase) throws {
        guard case .object(var members) = Self.readings[0].1.json else { Issue.record("not an object"); return }
        bad.edit(&members)
        let error = try #require(throws: ReadingJSONError.self) { try Reading(json: .object(members)) }
        #expect(error.path == bad.path, "\(error)")
        #expect(error.problem.contains(bad.phrase), "\(error)")
        #expect(!error.description.contains("120"), "a value leaked into the message: \(error)")
    }

    @Test("text that is not JSON, or not an object, is refused with its position")
    func notJSON() {
        #expect(throws: ReadingJSONError(path: "", problem: "expected an object, found an array")) { try Reading(jsonText: "[]") }
        let error = #expect(throws: ReadingJSONError.self) { try Reading(jsonText: "{\"kind\": ") }
        #expect(error?.problem.hasPrefix("not valid JSON at 1:") == true, "\(String(describing: error))")
    }

    @Test("decimal text parses back to the same mantissa and exponent", arguments: [
        ("0", nil, DecimalValue(mantissa: 0, exponent: 0)), ("0", 4, DecimalValue(mantissa: 0, exponent: 4)),
        ("-1200", 2, DecimalValue(mantissa: -12, exponent: 2)), ("0.050", nil, DecimalValue(mantissa: 50, exponent: -3)),
        ("-9223372036854775808", nil, DecimalValue(mantissa: .min, exponent: 0)),
        ("-92233720368547758080", 1, DecimalValue(mantissa: .min, exponent: 1)),
        ("-922337203685477.5808", nil, DecimalValue(mantissa: .min, exponent: -4)),
        ("9223372036854775807", nil, DecimalValue(mantissa: .max, exponent: 0)),
        ("0." + String(repeating: "0", count: 127) + "5", nil, DecimalValue(mantissa: 5, exponent: -128)),
    ] as [(String, Int?, DecimalValue)])
    func decimals(_ item: (String, Int?, DecimalValue)) {
        #expect(DecimalValue(item.0, positiveExponent: item.1) == item.2)
        // What the writer makes of it parses back to it.
        #expect(DecimalValue(item.2.description, positiveExponent: item.2.exponent > 0 ? item.2.exponent : nil) == item.2)
    }

    @Test("decimal text that is not what the writer makes", arguments: [
        ("9223372036854775808", nil), ("-9223372036854775809", nil), ("99999999999999999999", nil), ("1.", nil), (".5", nil),
        ("-", nil), ("", nil), ("12", 2), ("1.5", 1), ("+1", nil), (" 1", nil), ("1e2", nil), ("1\u{301}", nil), ("١", nil),
        ("1", 0), ("10", -1),
    ] as [(String, Int?)])
    func badDecimals(text: String, exponent: Int?) {
        #expect(DecimalValue(text, positiveExponent: exponent) == nil)
    }
}
