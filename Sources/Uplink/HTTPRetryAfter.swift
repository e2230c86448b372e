import Foundation
import VitalModel

/// How long a `Retry-After` header (RFC 9110 §10.2.3) asks the client to wait, capped at `maximum`.
///
/// Accepts delta-seconds (`120`) and the three HTTP-date forms (IMF-fixdate
/// `Sun, 06 Nov 1994 08:49:37 GMT`, the obsolete RFC 850 and asctime forms). A date in the past means
/// "now" (`.zero`). The cap keeps a confused or hostile server from parking uploads for days.
///
/// - Returns: the wait, or nil when the value is neither form (the caller then uses its own backoff).
public func retryAfter(_ value: String, now: Date, maximum: Duration = .seconds(3600)) -> Duration? {
    let text = value.trimmingASCIIWhitespace()
    guard !text.isEmpty else { return nil }
    if text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) {
        // Very long digit strings overflow Int; they are past any cap anyway.
        guard let seconds = Int64(text) else { return maximum }
        return min(.seconds(seconds), maximum)
    }
    guard let date = httpDate(text) else { return nil }
    let wait = date.timeIntervalSince(now)
    guard wait > 0 else { return .zero }
    guard wait < Double(maximum.components.seconds) + 1 else { return maximum }
    return min(.milliseconds(Int64((wait * 1000).rounded(.up))), maximum)
}

/// Parses the three HTTP-date forms into a date (always GMT), or nil.
func httpDate(_ text: String) -> Date? {
    let fields = text.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
    let shortDays = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    let longDays = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
    var day: Int?, month: Int?, year: Int?, clock: String?
    switch fields.count {
    case 6 where fields[0].hasSuffix(",") && shortDays.contains(String(fields[0].dropLast())) && fields[5] == "GMT":
        // IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
        guard fields[1].count == 2, fields[3].count == 4 else { return nil }
        (day, month, year, clock) = (Int(fields[1]), monthNumber(fields[2]), Int(fields[3]), fields[4])
    case 4 where fields[0].hasSuffix(",") && longDays.contains(String(fields[0].dropLast())) && fields[3] == "GMT":
        // RFC 850: Sunday, 06-Nov-94 08:49:37 GMT
        let parts = fields[1].split(separator: "-").map(String.init)
        guard parts.count == 3, parts[0].count == 2, parts[2].count == 2, let shortYear = Int(parts[2]) else { return nil }
        (day, month, year, clock) = (Int(parts[0]), monthNumber(parts[1]), shortYear < 70 ? 2000 + shortYear : 1900 + shortYear, fields[2])
    case 5 where shortDays.contains(fields[0]):
        // asctime: Sun Nov  6 08:49:37 1994
        guard fields[4].count == 4 else { return nil }
        (day, month, year, clock) = (Int(fields[2]), monthNumber(fields[1]), Int(fields[4]), fields[3])
    default:
        return nil
    }
    guard let day, let month, let year, let clock else { return nil }
    let time = clock.split(separator: ":").map { $0.count == 2 ? Int($0) : nil }
    guard time.count == 3, let hour = time[0], let minute = time[1], let second = time[2], second <= 60 else { return nil }
    // HTTP-dates allow a leap second (:60), which LocalDateTime does not; it counts as one second past :59.
    // LocalDateTime rejects every impossible field, 31 Feb included.
    guard let wallClock = LocalDateTime(year: year, month: month, day: day, hour: hour, minute: minute,
                                        second: min(second, 59)) else { return nil }
    let milliseconds = wallClock.millisecondsSince1970 + (second == 60 ? 1000 : 0)
    return Date(timeIntervalSince1970: TimeInterval(milliseconds) / 1000)
}

private func monthNumber(_ name: String) -> Int? {
    let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    return months.firstIndex(of: name).map { $0 + 1 }
}
