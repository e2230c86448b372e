/// A date with no time of day and no time zone, such as a date of birth or a card's issue date.
public struct CalendarDate: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let year: Int
    public let month: Int
    public let day: Int

    /// Nil unless the date exists in the Gregorian calendar between years 1 and 9999 (no 31 February).
    public init?(year: Int, month: Int, day: Int) {
        guard (1...9999).contains(year), (1...12).contains(month),
              (1...LocalDateTime.daysIn(month: month, year: year)).contains(day) else { return nil }
        self.year = year
        self.month = month
        self.day = day
    }

    /// The date on the hub's clock at its current UTC offset, but never before ``earliestToday``: a hub whose
    /// clock is not set yet (1970 on boards without a battery-backed clock, until NTP answers) must not refuse
    /// real birth dates as being in the future.
    public static var today: CalendarDate { today(at: .now()) }

    /// ``today`` as it is at `time`.
    static func today(at time: HubTimestamp) -> CalendarDate {
        let local = time.localTime
        return max(CalendarDate(checkedYear: local.year, month: local.month, day: local.day), earliestToday)
    }

    /// 1 January 2025, before this code was written: the floor of ``today``.
    public static let earliestToday = CalendarDate(checkedYear: 2025, month: 1, day: 1)

    /// `yyyy-MM-dd`, the ISO 8601 and FHIR `date` form.
    public var description: String {
        "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))"
    }

    public static func < (lhs: CalendarDate, rhs: CalendarDate) -> Bool {
        (lhs.year, lhs.month, lhs.day) < (rhs.year, rhs.month, rhs.day)
    }

    /// Reads `ddMMyyyy`, eight ASCII digits, as printed in the QR code of a citizen ID card.
    /// Nil for any other shape or for a date that does not exist.
    init?(ddMMyyyy text: Substring) {
        let bytes = Array(text.utf8)
        guard bytes.count == 8, bytes.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) else {
            return nil
        }
        let number = { (range: Range<Int>) in range.reduce(0) { $0 * 10 + Int(bytes[$1] - UInt8(ascii: "0")) } }
        self.init(year: number(4..<8), month: number(2..<4), day: number(0..<2))
    }

    /// For values already known to be a real date (a clock reading).
    private init(checkedYear year: Int, month: Int, day: Int) {
        self.year = year
        self.month = month
        self.day = day
    }
}
