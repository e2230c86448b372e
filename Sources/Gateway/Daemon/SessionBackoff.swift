/// How long the daemon waits before it talks to a device again after a session that did not end well:
/// 1 s, then 2 s, 4 s… up to 1 min. A session that stored new readings shows the device was working, so
/// the next failure starts again from 1 s. Shared by the USB, Bluetooth LE and Bluetooth Classic device managers
/// (tests shorten the steps).
struct SessionBackoff: Sendable, Hashable {
    static let first = Duration.seconds(1)
    static let maximum = Duration.seconds(60)

    /// Failed sessions in a row.
    private(set) var failures = 0
    let first: Duration
    let maximum: Duration

    init(first: Duration = SessionBackoff.first, maximum: Duration = SessionBackoff.maximum) {
        self.first = first
        self.maximum = maximum
    }

    /// Counts one more failed session and returns the wait before the next. `progressed`: the failed
    /// session still stored new readings.
    mutating func delay(afterFailure progressed: Bool) -> Duration {
        failures = (progressed ? 0 : failures) + 1
        return min(maximum, first * (1 << min(failures - 1, 16)))
    }

    /// Forgets the failures (a session ended well, or the device was attached again).
    mutating func reset() { failures = 0 }
}
