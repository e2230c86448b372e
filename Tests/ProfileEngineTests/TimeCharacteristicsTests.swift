import Testing
import VitalModel
import VitalGateTestKit
@testable import ProfileEngine

@Suite("Current Time 0x2A2B, Date Time 0x2A08 and Local Time Information 0x2A0F")
struct TimeCharacteristicsTests {
    @Test("Current Time vectors decode to what their sources state", arguments: GATTVectors.time.currentTime)
    func currentTime(_ vector: TimeVector) throws {
        let time = try CurrentTime(decoding: bytes(vector.hex))
        let expected = vector.expected
        let comment = Comment(rawValue: "\(vector.name), source: \(vector.source.where)")
        #expect(time.time?.description == expected.time, comment)
        if let day = expected.dayOfWeek { #expect(time.dayOfWeek?.rawValue == UInt8(day), comment) }
        if let fractions = expected.fractions256 { #expect(Int(time.fractions256) == fractions, comment) }
        if let reason = expected.adjustReason { #expect(Int(time.adjustReason.rawValue) == reason, comment) }
    }

    @Test("encoding the source's Current Time gives its bytes back, with the day of week computed",
          arguments: GATTVectors.time.currentTime)
    func encodeCurrentTime(_ vector: TimeVector) throws {
        let expected = vector.expected
        let text = try #require(expected.time)
        // fractions256 1 is 1/256 s: 4 ms is the first millisecond that falls in it.
        let whole = try #require(LocalDateTime(iso8601: text))
        let time = try #require(LocalDateTime(year: whole.year, month: whole.month, day: whole.day, hour: whole.hour,
                                              minute: whole.minute, second: whole.second,
                                              millisecond: ((expected.fractions256 ?? 0) * 1000 + 255) / 256))
        let reason = CurrentTime.AdjustReason(rawValue: UInt8(expected.adjustReason ?? 0))
        #expect(CurrentTime.encode(time, adjustReason: reason) == bytes(vector.hex), "\(vector.name)")
    }

    @Test("the day of week is computed from the date", arguments: GATTVectors.time.daysOfWeek)
    func dayOfWeek(_ vector: DayOfWeekVector) throws {
        let date = try #require(LocalDateTime(iso8601: vector.date))
        #expect(DayOfWeek(of: date).rawValue == vector.dayOfWeek, "source: \(vector.source.where)")
    }

    @Test("day of week before 1970 and at the limits of the Date Time range", arguments: [
        // 1969-12-31 was a Wednesday, 2000-01-01 a Saturday, 1970-01-01 a Thursday.
        ("1969-12-31T23:59:59", DayOfWeek.wednesday), ("2000-01-01T00:00:00", .saturday), ("1970-01-01T00:00:00", .thursday),
    ])
    func dayOfWeekEdges(_ text: String, _ day: DayOfWeek) throws {
        #expect(DayOfWeek(of: try #require(LocalDateTime(iso8601: text))) == day)
    }

    @Test("fractions256 come from the milliseconds: 997 ms is 255/256 s")
    func fractions() throws {
        let time = try #require(LocalDateTime(year: 2024, month: 5, day: 17, hour: 16, minute: 11, second: 26, millisecond: 997))
        let encoded = try #require(CurrentTime.encode(time))
        #expect(encoded[8] == 255)
        #expect(encoded[9] == CurrentTime.AdjustReason.manualTimeUpdate.rawValue)
        #expect(encoded[7] == DayOfWeek.friday.rawValue)
    }

    @Test("years the Date Time field cannot carry are not encoded")
    func unencodable() throws {
        let early = try #require(LocalDateTime(year: 1500, month: 1, day: 1, hour: 0, minute: 0, second: 0))
        #expect(CurrentTime.encode(early) == nil)
        #expect(DateTimeCharacteristic.encode(early) == nil)
    }

    @Test("Current Time: date unknown, reserved values and wrong lengths", arguments: [
        ("00000000121A2000FF00", nil as String?, nil as String?),
        ("E10701040B262D080102", "day of week", "7"),
        ("E10701040B262D030110", "adjust reason", "9"),
        ("E10701040B262D0301", "adjust reason", "9"),
        ("E10701040B262D03010200", "end of input", "10"),
        ("E1070D040B262D030102", "time stamp", "0"),
        ("", "time stamp year", "0"),
    ])
    func currentTimeEdges(_ hex: String, _ field: String?, _ offset: String?) throws {
        guard let field, let offset = offset.flatMap(Int.init) else {
            let time = try CurrentTime(decoding: bytes(hex))
            #expect(time.time == nil)
            #expect(time.dayOfWeek == nil)
            #expect(time.fractions256 == 255)
            return
        }
        let error = decodeError { () throws(DecodeError) in _ = try CurrentTime(decoding: bytes(hex)) }
        #expect(error?.field == field, "\(String(describing: error))")
        #expect(error?.offset == offset, "\(String(describing: error))")
        #expect(error?.frame == "2A2B")
    }

    @Test("Date Time vectors decode to what their sources state", arguments: GATTVectors.time.dateTime)
    func dateTime(_ vector: TimeVector) throws {
        let time = try DateTimeCharacteristic.decode(bytes(vector.hex))
        #expect(time?.description == vector.expected.time, "\(vector.name), source: \(vector.source.where)")
        if let time {
            #expect(DateTimeCharacteristic.encode(time) == bytes(vector.hex), "encoding gives the source's bytes")
        }
    }

    @Test("malformed Date Time values are errors naming the field", arguments: GATTVectors.time.dateTimeMalformed)
    func dateTimeMalformed(_ vector: MalformedGATTVector) {
        let error = decodeError { () throws(DecodeError) in _ = try DateTimeCharacteristic.decode(bytes(vector.hex)) }
        #expect(error?.field == vector.error.field, "\(vector.why): \(String(describing: error))")
        #expect(error?.offset == vector.error.offset)
    }

    @Test("time zone bytes decode to what the source states", arguments: GATTVectors.time.timeZone)
    func timeZone(_ vector: ByteFieldVector) throws {
        let quarters = try LocalTimeInformation.timeZone(vector.byte)
        #expect(quarters.map { $0 * 15 } == vector.expectedMinutes, "\(vector.name), source: \(vector.source.where)")
    }

    @Test("reserved time zone bytes are errors", arguments: GATTVectors.time.timeZoneMalformed)
    func timeZoneMalformed(_ vector: MalformedByteFieldVector) {
        let error = decodeError { () throws(DecodeError) in _ = try LocalTimeInformation.timeZone(vector.byte) }
        #expect(error?.field == vector.error.field, "\(vector.why)")
    }

    @Test("DST offset bytes decode to what the source states", arguments: GATTVectors.time.dstOffset)
    func dstOffset(_ vector: ByteFieldVector) throws {
        let quarters = try LocalTimeInformation.dstOffset(vector.byte)
        #expect(quarters.map { $0 * 15 } == vector.expectedMinutes, "\(vector.name), source: \(vector.source.where)")
    }

    @Test("reserved DST offset bytes are errors", arguments: GATTVectors.time.dstOffsetMalformed)
    func dstOffsetMalformed(_ vector: MalformedByteFieldVector) {
        let error = decodeError { () throws(DecodeError) in _ = try LocalTimeInformation.dstOffset(vector.byte) }
        #expect(error?.field == vector.error.field, "\(vector.why)")
    }

    @Test("Local Time Information combines both fields; errors name the byte", arguments: [
        ("1C00", 28 as Int?, 0 as Int?, nil as String?, 0), // UTC+7 (Vietnam), standard time
        ("F804", -8, 4, nil, 0),                            // UTC-2 with one hour of daylight saving
        ("80FF", nil, nil, nil, 0),                         // both unknown
        ("1C03", nil, nil, "DST offset", 1),
        ("C800", nil, nil, "time zone", 0),                 // -56 × 15 min: beyond UTC-12
        ("1C", nil, nil, "DST offset", 1),
        ("1C0000", nil, nil, "end of input", 2),
    ])
    func localTimeInformation(_ hex: String, _ zone: Int?, _ dst: Int?, _ field: String?, _ offset: Int) throws {
        if let field {
            let error = decodeError { () throws(DecodeError) in _ = try LocalTimeInformation(decoding: bytes(hex)) }
            #expect(error?.field == field, "\(String(describing: error))")
            #expect(error?.offset == offset, "\(String(describing: error))")
            return
        }
        let info = try LocalTimeInformation(decoding: bytes(hex))
        #expect(info.timeZoneQuarterHours == zone)
        #expect(info.dstOffsetQuarterHours == dst)
        #expect(info.utcOffsetQuarterHours == zone.flatMap { z in dst.map { z + $0 } })
    }
}
