import Foundation
import Outbox

/// systemd's watchdog (`WatchdogSec=` in the unit): pings `WATCHDOG=1` at half the interval systemd asked for,
/// from a thread of its own, and only while the Outbox answers a query. A daemon whose database is wedged (a
/// lock never released, a disk that stopped answering) stops pinging, and systemd restarts it; the Outbox's
/// recovery then runs as after any unclean stop.
final class Watchdog: Sendable {
    let interval: Duration
    private let outbox: Outbox
    private let log: DaemonLog
    private let stopped = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)

    /// The watchdog systemd asked for through `WATCHDOG_USEC` (and `WATCHDOG_PID`, when it names this process); nil
    /// when there is none.
    static func requested(_ environment: [String: String] = ProcessInfo.processInfo.environment,
                          pid: Int32 = getpid()) -> Duration? {
        guard let text = environment["WATCHDOG_USEC"], let microseconds = Int64(text), microseconds > 0 else { return nil }
        if let owner = environment["WATCHDOG_PID"], Int32(owner) != pid { return nil }
        return .microseconds(microseconds)
    }

    init(interval: Duration, outbox: Outbox, log: DaemonLog) {
        self.interval = interval
        self.outbox = outbox
        self.log = log
    }

    func start() {
        let thread = Thread { [self] in run() }
        thread.name = "vitalgate-watchdog"
        thread.start()
    }

    /// Stops pinging; returns once the last ping is sent (or after 2 s if the Outbox hangs), so nothing follows
    /// the `STOPPING=1` sent after it.
    func stop() {
        stopped.signal()
        _ = finished.wait(timeout: .now() + .seconds(2))
    }

    private func run() {
        defer { finished.signal() }
        let period = max(interval / 2, .milliseconds(10))
        var failing = false
        repeat {
            do {
                _ = try outbox.summary()
                Daemon.notifySystemd("WATCHDOG=1")
                if failing { log.info("watchdog: the Outbox answers again") }
                failing = false
            } catch {
                if !failing { log.error("watchdog: the Outbox does not answer (\(error)); systemd's watchdog is not pinged") }
                failing = true
            }
        } while stopped.wait(timeout: .now() + .milliseconds(Int(period.milliseconds(roundingUp: true)))) == .timedOut
    }
}
