import Foundation
import ProfileEngine
import VitalModel

/// A connection's ``HeartRateWindows`` on the session's monotonic clock: the window's end as a deadline to wait
/// for, so a strap that falls silent still has its window stored when the minute is over.
struct HeartRateWindowing {
    private var windows: HeartRateWindows
    private let now: @Sendable () -> HubTimestamp

    /// `seconds` comes from the configuration, which checked its range.
    init(seconds: Int, now: @escaping @Sendable () -> HubTimestamp) {
        windows = HeartRateWindows(clampingWindowSeconds: seconds)
        self.now = now
    }

    mutating func add(_ reading: Reading) -> [Reading] { windows.add(reading) }

    /// When the open window ends, as an instant to wait until.
    var nextDeadline: ContinuousClock.Instant? {
        guard let end = windows.nextDeadline else { return nil }
        let left = end.unixMilliseconds - now().unixMilliseconds
        return .now + .milliseconds(max(0, left))
    }

    /// Windows whose end has passed.
    mutating func closeDue() -> [Reading] { windows.closeEnded(at: now()) }

    /// The open window, cut at the end of the connection.
    mutating func flush() -> [Reading] { windows.flush(at: now()) }
}
