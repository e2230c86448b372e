import VitalModel

/// A day of the week as Bluetooth time characteristics carry it (1 = Monday … 7 = Sunday; 0 = unknown).
public enum DayOfWeek: UInt8, Sendable, Hashable, CaseIterable {
    case monday = 1, tuesday, wednesday, thursday, friday, saturday, sunday

    /// The day `date` falls on (proleptic Gregorian calendar).
    public init(of date: LocalDateTime) {
        // 1970-01-01 was a Thursday (4); floor division keeps dates before 1970 right.
        let days = date.millisecondsSince1970 >= 0
            ? date.millisecondsSince1970 / 86_400_000
            : (date.millisecondsSince1970 - 86_399_999) / 86_400_000
        let index = ((days + 3) % 7 + 7) % 7  // 0 = Monday
        self = DayOfWeek(rawValue: UInt8(index) + 1) ?? .monday
    }
}

/// Current Time (0x2A2B; Bluetooth Current Time Service; oesmith/gatt-xml current_time.xml): Exact Time 256
/// (Date Time · day of week u8 · fractions256 u8) · adjust reason u8. Exactly 10 bytes.
public struct CurrentTime: Sendable, Hashable {
    public static let uuid = "2A2B"

    /// Why the device's clock last changed (adjust reason bits 0-3; bits 4-7 are reserved).
    public struct AdjustReason: OptionSet, Sendable, Hashable {
        public let rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }

        public static let manualTimeUpdate = AdjustReason(rawValue: 1 << 0)
        public static let externalReferenceTimeUpdate = AdjustReason(rawValue: 1 << 1)
        public static let changeOfTimeZone = AdjustReason(rawValue: 1 << 2)
        public static let changeOfDST = AdjustReason(rawValue: 1 << 3)
    }

    /// The device's wall-clock time; nil when it said the date is not known (year, month or day 0).
    public var time: LocalDateTime?
    /// Nil when the device sent 0 ("unknown").
    public var dayOfWeek: DayOfWeek?
    /// 1/256 s steps within the second.
    public var fractions256: UInt8
    public var adjustReason: AdjustReason

    public init(time: LocalDateTime?, dayOfWeek: DayOfWeek?, fractions256: UInt8, adjustReason: AdjustReason) {
        self.time = time
        self.dayOfWeek = dayOfWeek
        self.fractions256 = fractions256
        self.adjustReason = adjustReason
    }

    /// Decodes a read or notification of Current Time. Reserved day-of-week values and adjust-reason bits
    /// are errors: in this fixed 10-byte value they mean the bytes are not a Current Time.
    public init(decoding bytes: [UInt8]) throws(DecodeError) {
        var reader = ByteReader(bytes, frame: Self.uuid)
        let layout = "Current Time (10 bytes: Date Time, day of week, fractions256, adjust reason)"
        let date = try SIGDateTime.read(&reader, promisedBy: layout)
        let dayOffset = reader.offset
        let day = try reader.uint8("day of week", promisedBy: layout)
        guard day <= 7 else {
            throw DecodeError(frame: Self.uuid, field: "day of week", offset: dayOffset,
                              problem: "\(day) is reserved (1 = Monday … 7 = Sunday, 0 = unknown)",
                              hint: "the bytes are not a Current Time value or are shifted")
        }
        let fractions = try reader.uint8("fractions256", promisedBy: layout)
        let reasonOffset = reader.offset
        let reason = try reader.uint8("adjust reason", promisedBy: layout)
        guard reason & 0xF0 == 0 else {
            throw DecodeError(frame: Self.uuid, field: "adjust reason", offset: reasonOffset,
                              problem: "reserved bits are set (0x" + hexString([reason], separator: "") + ")",
                              hint: "only bits 0-3 are defined; the bytes are not a Current Time value or are shifted")
        }
        try reader.expectEnd(describedBy: "Current Time")
        if case .known(let known) = date { time = known } else { time = nil }
        dayOfWeek = DayOfWeek(rawValue: day)
        fractions256 = fractions
        adjustReason = AdjustReason(rawValue: reason)
    }

    /// The value to write to set a device clock to `time` (a hub's local wall-clock time): the day of week is
    /// computed from the date and the fractions from the milliseconds. Nil for a year outside 1582-9999, which
    /// the Date Time field cannot carry.
    public static func encode(_ time: LocalDateTime, adjustReason: AdjustReason = .manualTimeUpdate) -> [UInt8]? {
        guard let date = DateTimeCharacteristic.encode(time) else { return nil }
        let fractions = UInt8(time.millisecond * 256 / 1000)
        return date + [DayOfWeek(of: time).rawValue, fractions, adjustReason.rawValue]
    }
}

/// Date Time (0x2A08): year u16 · month · day · hours · minutes · seconds, local time without a zone. A&D
/// cuffs and scales take a write of it to set their clock.
public enum DateTimeCharacteristic {
    public static let uuid = "2A08"

    /// The 7 bytes for `time`; nil for a year outside 1582-9999, which the field cannot carry.
    public static func encode(_ time: LocalDateTime) -> [UInt8]? {
        guard (1582...9999).contains(time.year) else { return nil }
        return [UInt8(time.year & 0xFF), UInt8(time.year >> 8), UInt8(time.month), UInt8(time.day),
                UInt8(time.hour), UInt8(time.minute), UInt8(time.second)]
    }

    /// Decodes a read of Date Time: nil when the device said the date is not known (a zero year, month or day).
    public static func decode(_ bytes: [UInt8]) throws(DecodeError) -> LocalDateTime? {
        var reader = ByteReader(bytes, frame: uuid)
        let value = try SIGDateTime.read(&reader, promisedBy: "Date Time (7 bytes)")
        try reader.expectEnd(describedBy: "Date Time")
        if case .known(let time) = value { return time }
        return nil
    }
}

/// Local Time Information (0x2A0F): time zone s8 in 15-minute steps (-48…+56, -128 unknown) · DST offset u8
/// (0 standard time, 2 +0.5 h, 4 +1 h, 8 +2 h, 255 unknown).
public struct LocalTimeInformation: Sendable, Hashable {
    public static let uuid = "2A0F"

    /// Offset of standard time from UTC in 15-minute units; nil when unknown.
    public var timeZoneQuarterHours: Int?
    /// Daylight-saving offset in 15-minute units (0, 2, 4 or 8); nil when unknown.
    public var dstOffsetQuarterHours: Int?

    public init(timeZoneQuarterHours: Int?, dstOffsetQuarterHours: Int?) {
        self.timeZoneQuarterHours = timeZoneQuarterHours
        self.dstOffsetQuarterHours = dstOffsetQuarterHours
    }

    /// Decodes a read of Local Time Information (exactly 2 bytes).
    public init(decoding bytes: [UInt8]) throws(DecodeError) {
        var reader = ByteReader(bytes, frame: Self.uuid)
        let layout = "Local Time Information (2 bytes: time zone, DST offset)"
        let zone = try reader.uint8("time zone", promisedBy: layout)
        let dst = try reader.uint8("DST offset", promisedBy: layout)
        try reader.expectEnd(describedBy: "Local Time Information")
        timeZoneQuarterHours = try Self.timeZone(zone, offset: 0)
        dstOffsetQuarterHours = try Self.dstOffset(dst, offset: 1)
    }

    /// The time-zone byte (Time Zone 0x2A0E layout) in 15-minute units; nil for -128 (unknown).
    public static func timeZone(_ byte: UInt8, offset: Int = 0) throws(DecodeError) -> Int? {
        let value = Int(Int8(bitPattern: byte))
        if value == -128 { return nil }
        guard (-48...56).contains(value) else {
            throw DecodeError(frame: uuid, field: "time zone", offset: offset,
                              problem: "\(value) × 15 min is outside UTC-12:00…UTC+14:00",
                              hint: "the value is reserved; check the byte is a signed count of 15-minute steps")
        }
        return value
    }

    /// The DST-offset byte (DST Offset 0x2A0D layout) in 15-minute units; nil for 255 (unknown).
    public static func dstOffset(_ byte: UInt8, offset: Int = 0) throws(DecodeError) -> Int? {
        switch byte {
        case 0, 2, 4, 8: return Int(byte)
        case 255: return nil
        default:
            throw DecodeError(frame: uuid, field: "DST offset", offset: offset,
                              problem: "\(byte) is reserved (0 standard, 2 half an hour, 4 one hour, 8 two hours, 255 unknown)",
                              hint: "check the byte order of the characteristic (time zone first)")
        }
    }

    /// The device's offset from UTC including daylight saving, in 15-minute units; nil when either part is unknown.
    public var utcOffsetQuarterHours: Int? {
        guard let zone = timeZoneQuarterHours, let dst = dstOffsetQuarterHours else { return nil }
        return zone + dst
    }
}
