import Foundation
import Testing
import VitalModel

@Suite("decimal values keep the device's precision")
struct DecimalValueTests {
    @Test("text form", arguments: [
        (Int64(20), -1, "2.0"), (2, 0, "2"), (200, -2, "2.00"), (2, 1, "20"), (-1234, -2, "-12.34"),
        (5, -3, "0.005"), (0, -1, "0.0"), (0, 2, "0"), (-5, -1, "-0.5"), (Int64.min, 0, "-9223372036854775808"),
    ])
    func text(_ mantissa: Int64, _ exponent: Int, _ expected: String) {
        #expect(DecimalValue(mantissa: mantissa, exponent: exponent).description == expected)
    }

    @Test("parsing keeps trailing zeros and refuses what is not plain decimal", arguments: [
        ("79.50", DecimalValue(mantissa: 7950, exponent: -2)), ("-3", DecimalValue(mantissa: -3, exponent: 0)),
    ])
    func parse(_ text: String, _ expected: DecimalValue) {
        #expect(DecimalValue(text) == expected)
        #expect(DecimalValue(text)?.description == text)
    }

    @Test("rejected", arguments: ["", "-", "1.", ".5", "1e3", "1.2.3", "12a", "99999999999999999999"])
    func rejected(_ text: String) { #expect(DecimalValue(text) == nil) }
}

@Suite("addresses")
struct AddressTests {
    @Test("EUI-48 forms") func eui48() {
        let address = EUI48("c4:f3:12:53:f2:c9")
        #expect(address?.description == "C4-F3-12-53-F2-C9")
        #expect(address?.compactHex == "C4F31253F2C9")
        #expect(EUI48("C4F31253F2C9") == address)
        // Fullwidth digits count as hex digits for Character.isHexDigit; they must be refused, not trap.
        for bad in ["C4:F3:12:53:F2", "C4F3-1253-F2C9", "G4:F3:12:53:F2:C9", "", "C4:F3:12:53:F2:C9:00",
                    "\u{FF11}\u{FF11}:22:33:44:55:66", "\u{FF21}\u{FF21}22334455\u{FF16}\u{FF16}"] {
            #expect(EUI48(bad) == nil, "\(bad)")
        }
        #expect(EUI64("\u{FF10}\u{FF10}-1B-2C-FF-FE-3D-4E-5F") == nil)
    }

    @Test("EUI-64 derived from a MAC inserts FF-FE") func derived() {
        #expect(EUI64(derivedFrom: EUI48("DC:A6:32:01:02:03")!).description == "DC-A6-32-FF-FE-01-02-03")
    }
}

@Suite("time")
struct TimeTests {
    // Worked examples computed from the PHD IG 2.0 rule (seconds since 2000-01-01 on the same clock).
    // GeneratingtheTimeStampPartIdentifier.md prints 690897360 for 2021-11-22 11:56:30: that example is
    // 30 s off (fhir-mapping.md §1.5); the rule gives 690897390.
    @Test("seconds since 2000", arguments: [
        ("2000-01-01T00:00:00", Int64(0)), ("2021-11-22T11:56:30", 690_897_390), ("2025-06-01T07:30:00", 802_078_200),
        ("2025-06-01T00:30:00", 802_053_000), ("1999-12-31T23:59:59", -1), ("2024-02-29T12:00:00", 762_523_200),
    ])
    func secondsSince2000(_ text: String, _ expected: Int64) throws {
        #expect(try #require(LocalDateTime(iso8601: text)).secondsSince2000 == expected)
    }

    @Test("impossible dates are refused", arguments: [
        "2025-02-29T00:00:00", "2025-13-01T00:00:00", "2025-06-31T00:00:00", "2025-06-01T24:00:00", "2025-6-1T00:00:00",
        "2025-06-01 07:30:00",
    ])
    func impossible(_ text: String) { #expect(LocalDateTime(iso8601: text) == nil) }

    @Test("hub timestamps with offsets") func hub() throws {
        let stamp = try #require(HubTimestamp(iso8601: "2025-06-01T07:35:00.250+07:00"))
        #expect(stamp.utcOffsetSeconds == 25_200)
        #expect(stamp.instant.timeIntervalSince1970 == 1_748_738_100.25)
        #expect(stamp.localTime.iso8601(includeMilliseconds: true) == "2025-06-01T07:35:00.250")
        #expect(HubTimestamp(iso8601: "2025-06-01T00:35:00Z")?.instant == Date(timeIntervalSince1970: 1_748_738_100))
        #expect(HubTimestamp(iso8601: "2025-06-01T07:35:00") == nil)
        #expect(HubTimestamp(iso8601: "2025-06-01T07:35:00+25:00") == nil)
    }

    @Test("UTC offsets: parsed forms and the one printed form", arguments: [
        ("+07:00", 25_200, "+07:00"), ("-05:30", -19_800, "-05:30"), ("+0700", 25_200, "+07:00"), ("+7", 25_200, "+07:00"),
        ("Z", 0, "+00:00"),
    ])
    func offsets(_ text: String, _ seconds: Int, _ printed: String) {
        #expect(parseUTCOffset(text) == seconds)
        #expect(formatUTCOffset(seconds: seconds) == printed)
    }

    @Test("offsets that are not offsets", arguments: ["+", "07:00", "+19:00", "+07:60", "+7:00", "+07:0a", "UTC"])
    func badOffsets(_ text: String) { #expect(parseUTCOffset(text) == nil) }

    @Test("hub times outside 1970-9998 are refused, so UTC conversion cannot leave years 1-9999", arguments: [
        "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00", "1969-12-31T23:59:59Z",
    ])
    func hubRange(_ text: String) { #expect(HubTimestamp(iso8601: text) == nil) }

    @Test("moving a time out of years 1-9999 gives nil, not a trap") func addingRange() throws {
        let time = try #require(LocalDateTime(iso8601: "1582-10-15T00:00:00"))
        #expect(time.adding(milliseconds: -2_000 * 365 * 86_400_000) == nil)
        #expect(time.adding(milliseconds: Int64.max) == nil)
        #expect(time.adding(milliseconds: 86_400_000)?.description == "1582-10-16T00:00:00")
        // Any Date converts without trapping, even far outside the calendar range FHIR can carry.
        #expect(LocalDateTime(Date(timeIntervalSince1970: -1e12), utcOffsetSeconds: 0).year < 1)
    }

    @Test("a clock check measures how far the device lags the hub") func lag() throws {
        let hub = try #require(HubTimestamp(iso8601: "2025-06-01T07:35:02+07:00"))
        let check = DeviceClockCheck(hubTime: hub, deviceTime: LocalDateTime(iso8601: "2025-06-01T07:34:41"))
        #expect(check.deviceLagMilliseconds == 21_000)
        #expect(DeviceClockCheck(hubTime: hub, deviceTime: nil).deviceLagMilliseconds == nil)
    }
}

@Suite("patient identifiers")
struct PatientIdentifierTests {
    let systems = IdentifierSystems.vietnam

    @Test("known systems by prefix or SYSTEM|VALUE") func accepted() throws {
        #expect(try systems.parse("cccd:099199000001") == PatientIdentifier(system: systems.citizenID, value: "099199000001"))
        #expect(try systems.parse("bhxh:0123456789").system == systems.socialInsurance)
        #expect(try systems.parse("urn:oid:2.999|abc-1").value == "abc-1")
    }

    @Test("typos are refused with a message that does not repeat the number", arguments: [
        "cccd:09919900001", "cccd:0991990000012", "cccd:09919900000O", "bhxh:012345678", "099199000001", "|x", "a|",
        "a|b|c",
    ])
    func refused(_ text: String) throws {
        let problem = try #require(throws: IdentifierSystems.Problem.self) { try systems.parse(text) }
        let digits = text.filter(\.isNumber)
        #expect(digits.count < 6 || !problem.description.contains(digits), "\(problem)")
    }
}

@Suite("JSON output")
struct JSONValueTests {
    @Test("keeps key order and exact numbers, escapes strings") func serialize() {
        let value: JSONValue = ["b": .number("2.0"), "a": ["x\"y\n", .null, true], "c": .string("\u{01}é")]
        #expect(value.serialized() == #"{"b":2.0,"a":["x\"y\n",null,true],"c":"\u0001é"}"#)
        let pretty = value.prettyPrinted()
        #expect(pretty.hasPrefix("{\n  \"b\": 2.0,\n  \"a\": [\n    \"x"))
        // What Foundation reads back is the same document.
        let parsed = try? JSONSerialization.jsonObject(with: Data(pretty.utf8)) as? [String: Any]
        #expect(parsed?["c"] as? String == "\u{01}é")
    }
}

@Suite("durations in milliseconds")
struct DurationMillisecondsTests {
    @Test("rounding down or up, and saturating instead of overflowing")
    func milliseconds() {
        #expect(Duration.milliseconds(1500).wholeMilliseconds == 1500)
        #expect(Duration.microseconds(1500).wholeMilliseconds == 1)
        #expect(Duration.microseconds(1500).milliseconds(roundingUp: true) == 2)
        #expect(Duration.milliseconds(2).milliseconds(roundingUp: true) == 2)
        #expect(Duration.seconds(-3).wholeMilliseconds == -3000)
        #expect(Duration.seconds(Int64.max).wholeMilliseconds == Int64.max)
        #expect(Duration.seconds(Int64.min).wholeMilliseconds == Int64.min)
    }
}

@Suite("hex bytes")
struct HexBytesTests {
    @Test("pairs of ASCII digits; separators only between bytes, and only when allowed")
    func parsing() {
        #expect(hexBytes("1E7800") == [0x1E, 0x78, 0x00])
        #expect(hexBytes("") == [])
        #expect(hexBytes("1E 78") == nil)
        #expect(hexBytes("1E 78:00-ff", separators: true) == [0x1E, 0x78, 0x00, 0xFF])
        #expect(hexBytes("1 E78", separators: true) == nil)
        #expect(hexBytes("1E7", separators: true) == nil)
        #expect(hexBytes("\u{FF11}E") == nil)
    }
}
