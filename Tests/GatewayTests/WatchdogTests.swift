import Testing
@testable import Gateway

/// Which watchdog systemd asked for: `WATCHDOG_USEC`, for this process only when `WATCHDOG_PID` says so.
@Suite("systemd watchdog request")
struct WatchdogTests {
    @Test("the interval comes from WATCHDOG_USEC", arguments: [
        (["WATCHDOG_USEC": "60000000"], Duration.seconds(60)),
        (["WATCHDOG_USEC": "400000", "WATCHDOG_PID": "4242"], Duration.milliseconds(400)),
    ])
    func requested(_ environment: [String: String], _ interval: Duration) {
        #expect(Watchdog.requested(environment, pid: 4242) == interval)
    }

    @Test("no watchdog: none asked, another process's, or a value that is no positive number", arguments: [
        [:], ["WATCHDOG_USEC": "60000000", "WATCHDOG_PID": "1"], ["WATCHDOG_USEC": "0"], ["WATCHDOG_USEC": "-5"],
        ["WATCHDOG_USEC": "sixty"], ["WATCHDOG_USEC": "99999999999999999999999"],
    ])
    func none(_ environment: [String: String]) {
        #expect(Watchdog.requested(environment, pid: 4242) == nil)
    }
}
