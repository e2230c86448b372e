import Foundation

/// A wall-clock date and time as a device reports it, with no time zone.
public struct LocalDateTime: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let year: Int
    public let month: Int
    public let day: Int
    public let hour: Int
    public let minute: Int
    public let second: Int
    /// Milliseconds within the second, for clocks with millisecond resolution.
    public let millisecond: Int

    /// Nil when any field is out of range (month 13, 30 February, hour 24...).
    public init?(year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int, millisecond: Int = 0) {
        guard (1...9999).contains(year), (1...12).contains(month),
              (1...LocalDateTime.daysIn(month: month, year: year)).contains(day),
              (0...23).contains(hour), (0...59).contains(minute), (0...59).contains(second),
              (0...999).contains(millisecond) else { return nil }
        self.year = year
        self.month = month
        self.day = day
        self.hour = hour
        self.minute = minute
        self.second = second
        self.millisecond = millisecond
    }

    /// The wall-clock reading of `date` at `utcOffsetSeconds` east of UTC. Total: a `Date` beyond years
    /// 1-9999 gives a year outside that range rather than a trap; inputs are range-checked where they enter
    /// (``HubTimestamp/init(iso8601:)``, ``adding(milliseconds:)``).
    public init(_ date: Date, utcOffsetSeconds: Int) {
        let shifted = date.timeIntervalSince1970 + Double(utcOffsetSeconds)
        // Nearest, not floor: Date is a binary Double, and 0.001 s steps would otherwise collapse.
        let totalMilliseconds = Int64((shifted * 1000).rounded())
        let (days, dayMilliseconds) = totalMilliseconds.floorDivided(by: 86_400_000)
        let (y, m, d) = LocalDateTime.civil(fromDays: Int(days))
        let ms = Int(dayMilliseconds)
        (year, month, day) = (y, m, d)
        (hour, minute, second, millisecond) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000)
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days since 1970-01-01 in the proleptic Gregorian calendar (Howard Hinnant's days_from_civil).
    var daysSince1970: Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    static func civil(fromDays days: Int) -> (Int, Int, Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    /// Milliseconds between 1970-01-01T00:00:00 and this wall-clock time, both read on the same clock.
    public var millisecondsSince1970: Int64 {
        Int64(daysSince1970) * 86_400_000 + Int64(hour * 3_600_000 + minute * 60_000 + second * 1000 + millisecond)
    }

    /// Whole seconds from 2000-01-01T00:00:00 on the same clock: the PHD identifier's timestamp base.
    public var secondsSince2000: Int64 {
        (millisecondsSince1970 - 946_684_800_000).floorDivided(by: 1000).quotient
    }

    /// This wall-clock time moved by `milliseconds` (used to map a device clock onto the hub's); nil when the
    /// result leaves years 1-9999, which only an absurd clock reading can cause.
    public func adding(milliseconds: Int64) -> LocalDateTime? {
        let (sum, overflow) = millisecondsSince1970.addingReportingOverflow(milliseconds)
        guard !overflow else { return nil }
        let moved = LocalDateTime(Date(timeIntervalSince1970: Double(sum) / 1000), utcOffsetSeconds: 0)
        return (1...9999).contains(moved.year) ? moved : nil
    }

    /// `2025-06-01T07:30:00`, or with `.123` when a millisecond part is set.
    public var description: String { iso8601(includeMilliseconds: millisecond != 0) }

    public func iso8601(includeMilliseconds: Bool) -> String {
        var text = pad(year, 4) + "-" + pad(month, 2) + "-" + pad(day, 2) + "T"
            + pad(hour, 2) + ":" + pad(minute, 2) + ":" + pad(second, 2)
        if includeMilliseconds { text += "." + pad(millisecond, 3) }
        return text
    }

    public static func < (lhs: LocalDateTime, rhs: LocalDateTime) -> Bool {
        lhs.millisecondsSince1970 < rhs.millisecondsSince1970
    }
}

/// How finely a device clock counts.
public enum ClockResolution: String, Sendable, Hashable {
    case second
    case millisecond
}

/// What is known about the device clock that stamped a reading.
public enum DeviceClockState: String, Sendable, Hashable {
    /// Nothing is known (most Bluetooth SIG devices: a wall clock without zone or sync flag).
    case unknown
    /// The device says its clock was set or is synchronised.
    case set
    /// The device says its clock was never set (for example PLX "device clock not set"): its times are not
    /// on any real timeline.
    case notSet
}

/// A device's own timestamp for a reading.
public struct DeviceTimestamp: Sendable, Hashable {
    public var time: LocalDateTime
    public var resolution: ClockResolution
    /// The offset from UTC the device reported, in 15-minute units (IEEE 11073-10206 / GHS). Nil when the
    /// device sent local time without an offset, as Bluetooth SIG Date Time does.
    public var utcOffsetQuarterHours: Int?
    public var clock: DeviceClockState

    public init(time: LocalDateTime, resolution: ClockResolution = .second, utcOffsetQuarterHours: Int? = nil,
                clock: DeviceClockState = .unknown) {
        self.time = time
        self.resolution = resolution
        self.utcOffsetQuarterHours = utcOffsetQuarterHours
        self.clock = clock
    }
}

/// An instant on the hub's clock (NTP-synchronised) with the hub's offset from UTC at that instant.
public struct HubTimestamp: Sendable, Hashable {
    public var instant: Date
    public var utcOffsetSeconds: Int

    public init(instant: Date, utcOffsetSeconds: Int) {
        self.instant = instant
        self.utcOffsetSeconds = utcOffsetSeconds
    }

    /// Now, with the machine's current offset.
    public static func now() -> HubTimestamp {
        let date = Date()
        return HubTimestamp(instant: date, utcOffsetSeconds: TimeZone.current.secondsFromGMT(for: date))
    }

    public var localTime: LocalDateTime { LocalDateTime(instant, utcOffsetSeconds: utcOffsetSeconds) }
}

/// The device's clock read at a known hub instant: what the PHD IG's Coincident Timestamp records.
public struct DeviceClockCheck: Sendable, Hashable {
    /// When the hub read the device clock.
    public var hubTime: HubTimestamp
    /// What the device clock said then; nil when the device reported a clock fault.
    public var deviceTime: LocalDateTime?

    public init(hubTime: HubTimestamp, deviceTime: LocalDateTime?) {
        self.hubTime = hubTime
        self.deviceTime = deviceTime
    }

    /// How far the device's wall clock is behind the hub's local wall clock, in milliseconds
    /// (positive: the device is slow). Nil on a clock fault.
    public var deviceLagMilliseconds: Int64? {
        deviceTime.map { hubTime.localTime.millisecondsSince1970 - $0.millisecondsSince1970 }
    }

    /// `stamp` moved onto the hub's local wall clock by the measured lag, or nil on a clock fault or a time beyond
    /// the calendar. The lag was measured against the device's wall clock, so a stamp with a UTC offset (which is
    /// UTC, IEEE 11073-10206) is first turned into wall time. The result is at the hub's offset at the check.
    /// The one correction both the upload's effective time and the visit rules use.
    public func corrected(_ stamp: DeviceTimestamp) -> LocalDateTime? {
        guard let lag = deviceLagMilliseconds,
              let wall = stamp.time.adding(milliseconds: Int64(stamp.utcOffsetQuarterHours ?? 0) * 900_000) else { return nil }
        return wall.adding(milliseconds: lag)
    }
}

/// Formats a UTC offset as `+07:00`.
public func formatUTCOffset(seconds: Int) -> String {
    let sign = seconds < 0 ? "-" : "+"
    let minutes = abs(seconds) / 60
    return sign + pad(minutes / 60, 2) + ":" + pad(minutes % 60, 2)
}

/// Parses `+07:00`, `-0530`, `+7` or `Z` into seconds east of UTC; nil for anything else or beyond ±18 h.
public func parseUTCOffset(_ text: String) -> Int? {
    if text == "Z" { return 0 }
    guard let signCharacter = text.first, signCharacter == "+" || signCharacter == "-" else { return nil }
    let body = text.dropFirst()
    let parts = body.split(separator: ":", omittingEmptySubsequences: false)
    var hours: Int?
    var minutes = 0
    if parts.count == 2, parts[0].count == 2, parts[1].count == 2 {
        hours = Int(parts[0]); minutes = Int(parts[1]) ?? -1
    } else if parts.count == 1, body.count == 4 {
        hours = Int(body.prefix(2)); minutes = Int(body.suffix(2)) ?? -1
    } else if parts.count == 1, (1...2).contains(body.count) {
        hours = Int(body)
    }
    guard let h = hours, body.allSatisfy({ $0.isASCIIDigit || $0 == ":" }), (0...18).contains(h),
          (0...59).contains(minutes), h * 60 + minutes <= 18 * 60 else { return nil }
    return (signCharacter == "-" ? -1 : 1) * (h * 3600 + minutes * 60)
}

func pad(_ value: Int, _ width: Int) -> String {
    let digits = String(value)
    return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
}

extension Int64 {
    /// Division rounding toward negative infinity, with a non-negative remainder.
    func floorDivided(by divisor: Int64) -> (quotient: Int64, remainder: Int64) {
        var q = self / divisor
        var r = self % divisor
        if r < 0 { q -= 1; r += divisor }
        return (q, r)
    }
}

extension LocalDateTime {
    /// Parses `YYYY-MM-DDTHH:MM:SS[.fff]` (no zone); nil for anything else or an impossible date.
    public init?(iso8601 text: String) {
        let scalars = Array(text)
        guard scalars.count == 19 || (scalars.count > 20 && scalars.count <= 23 && scalars[19] == "."),
              scalars[4] == "-", scalars[7] == "-", scalars[10] == "T", scalars[13] == ":", scalars[16] == ":"
        else { return nil }
        func number(_ range: Range<Int>) -> Int? {
            let part = scalars[range]
            return part.allSatisfy(\.isASCIIDigit) ? Int(String(part)) : nil
        }
        var millisecond = 0
        if scalars.count > 20 {
            guard let fraction = number(20..<scalars.count) else { return nil }
            millisecond = fraction * [100, 10, 1][scalars.count - 21]
        }
        guard let y = number(0..<4), let mo = number(5..<7), let d = number(8..<10), let h = number(11..<13),
              let mi = number(14..<16), let s = number(17..<19) else { return nil }
        self.init(year: y, month: mo, day: d, hour: h, minute: mi, second: s, millisecond: millisecond)
    }
}

extension HubTimestamp {
    /// Parses an instant with its offset, `2025-06-01T07:35:00+07:00` or `...Z`; nil for anything else and
    /// for years outside 1970-9998, which no hub clock shows and which would leave FHIR's range in UTC.
    public init?(iso8601 text: String) {
        let zoneStart = text.lastIndex { $0 == "+" || $0 == "-" || $0 == "Z" }
        guard let zoneStart, zoneStart > text.index(text.startIndex, offsetBy: min(10, text.count)),
              let local = LocalDateTime(iso8601: String(text[..<zoneStart])), (1970...9998).contains(local.year),
              let offset = parseUTCOffset(String(text[zoneStart...])) else { return nil }
        let utcMilliseconds = local.millisecondsSince1970 - Int64(offset) * 1000
        self.init(instant: Date(timeIntervalSince1970: Double(utcMilliseconds) / 1000), utcOffsetSeconds: offset)
    }
}
