import Foundation
import Outbox
import Synchronization
import Uplink
import VitalModel

/// The uplink loop on its own thread: takes due readings from the Outbox, delivers them, and records each
/// outcome there. While the server is away it waits with capped, jittered backoff, and never gives up; a
/// reading that fails on its own waits by its own attempts and does not slow the others.
final class UplinkWorker: Sendable {
    let outbox: Outbox
    let deliverer: Deliverer
    let backoff: Backoff
    let keepDelivered: Duration
    let log: DaemonLog
    /// The metrics file's counts of uploaded and dead-lettered readings.
    let counters: ReadingCounters

    private let running = Mutex(true)
    /// Signalled by `wake()` and `stop()`; extra signals only cost an early look at the Outbox.
    private let signal = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)

    init(outbox: Outbox, deliverer: Deliverer, backoff: Backoff, keepDelivered: Duration, log: DaemonLog,
         counters: ReadingCounters = .daemon) {
        self.outbox = outbox
        self.deliverer = deliverer
        self.backoff = backoff
        self.keepDelivered = keepDelivered
        self.log = log
        self.counters = counters
    }

    func start() {
        let thread = Thread { [self] in
            run()
            finished.signal()
        }
        thread.name = "vitalgate-uplink"
        thread.start()
    }

    /// New readings are waiting: look now rather than at the next timer.
    func wake() { signal.signal() }

    /// Stops after the current exchange (an abandoned request is re-sent on the next start: at-least-once).
    func stop(waitingUpTo limit: Duration) {
        running.withLock { $0 = false }
        signal.signal()
        _ = finished.wait(timeout: .now() + limit.dispatchInterval)
    }

    private var isRunning: Bool { running.withLock { $0 } }

    /// Sleeps up to `duration`; returns early on stop, and on `wake()` when `wakeable` (a backoff is not cut
    /// short by new readings).
    private func pause(_ duration: Duration, wakeable: Bool) {
        let deadline = DispatchTime.now() + duration.dispatchInterval
        while isRunning {
            if signal.wait(timeout: deadline) == .timedOut || wakeable { return }
        }
    }

    private func run() {
        var generator = SystemRandomNumberGenerator()
        var failures = 0
        var lastPrune = Date.distantPast
        var backlog: [OutboxWrite] = []
        while isRunning {
            let now = Date()
            guard flush(&backlog, at: now) else {
                pause(.seconds(1), wakeable: false)
                continue
            }
            if now.timeIntervalSince(lastPrune) > 3600 {
                lastPrune = now
                prune(now)
            }
            let batch: [StoredReading]
            do {
                batch = try outbox.nextBatch(limit: deliverer.configuration.batchSize * 4, now: now)
            } catch {
                log.error("uplink: cannot read the Outbox: \(error)")
                pause(.seconds(5), wakeable: false)
                continue
            }
            guard !batch.isEmpty else {
                // Readings scheduled for a retry are picked up by the timer; new ones wake the loop.
                pause(.seconds(failures > 0 ? 5 : 30), wakeable: true)
                continue
            }
            var items: [DeliveryItem] = []
            for stored in batch {
                guard let subject = stored.subject else {
                    // nextBatch returns pending readings only, and those have a citizen; never drop one silently.
                    backlog.append(.dead(stored.id, status: nil, reason: "pending without a citizen; assign it, then retry", outcome: nil))
                    log.error("uplink: r\(stored.id.rawValue) is pending without a citizen; moved to the dead letters")
                    continue
                }
                items.append(DeliveryItem(id: stored.id.rawValue, reading: stored.reading, subject: subject,
                                          identifyByReceipt: stored.identifyByReceipt, performer: stored.performer))
            }
            let report = deliverer.deliver(items)
            let attempts = Dictionary(uniqueKeysWithValues: batch.map { ($0.id, $0.attempts) })
            let sent = Date()
            var serverDelay: Duration?
            if report.serverUnavailable {
                failures += 1
                serverDelay = backoff.delay(afterFailures: failures, retryAfter: report.retryAfter, using: &generator)
            } else {
                failures = 0
            }
            let writes = OutboxWrite.plan(report) { id, outcome in
                var delay = serverDelay
                if delay == nil, case .retry(_, _, let after) = outcome {
                    delay = backoff.delay(afterFailures: (attempts[id] ?? 0) + 1, retryAfter: after, using: &generator)
                }
                return sent.addingTimeInterval(Double((delay ?? .zero).wholeMilliseconds) / 1000)
            }
            describe(report, serverDelay: serverDelay)
            backlog += writes
            _ = flush(&backlog, at: sent)
            if let serverDelay { pause(serverDelay, wakeable: false) }
        }
    }

    /// Writes `backlog` in order; returns false, keeping the rest, at the first write that fails (a full disk
    /// can refuse it, and a reading left in flight would not be sent again before the next start).
    private func flush(_ backlog: inout [OutboxWrite], at now: Date) -> Bool {
        while let write = backlog.first {
            do {
                try write.apply(to: outbox, at: now)
                counters.recorded(write)
            } catch {
                log.error("uplink: cannot record an upload outcome, will try again: \(error)")
                return false
            }
            backlog.removeFirst()
        }
        return true
    }

    /// One journal line per kind of outcome, with local ids and causes only: server replies can quote the
    /// patient's identifier, and the journal must not.
    private func describe(_ report: DeliveryReport, serverDelay: Duration?) {
        var delivered = 0, created = 0, retried = 0
        var causes: Set<String> = []
        for (id, outcome) in report.outcomes.sorted(by: { $0.key < $1.key }) {
            switch outcome {
            case .delivered(let status, _):
                delivered += 1
                if status == 201 { created += 1 }
            case .retry(_, let cause, _):
                retried += 1
                causes.insert(cause.rawValue)
            case .rejected(let status, _, _):
                log.warning("uplink: r\(id) refused by the server" + (status.map { " (HTTP \($0))" } ?? "")
                    + "; moved to the dead letters (`vitalgate queue` shows why)")
            }
        }
        if delivered > 0 {
            log.info("uplink: delivered \(delivered) reading(s) in \(report.requests) request(s); "
                + "\(created) created, \(delivered - created) already on the server")
        }
        if retried > 0 {
            let when = serverDelay.map { "retrying in \($0.wholeMilliseconds) ms" } ?? "each retried after its own backoff"
            log.warning("uplink: \(retried) reading(s) not delivered (\(causes.sorted().joined(separator: ", "))); \(when)")
        }
    }

    private func prune(_ now: Date) {
        do {
            let removed = try outbox.prune(deliveredBefore: now.addingTimeInterval(-Double(keepDelivered.wholeMilliseconds) / 1000))
            if removed > 0 { log.info("outbox: pruned \(removed) delivered reading(s) past retention") }
        } catch {
            log.warning("outbox: pruning failed: \(error)")
        }
    }
}
