import Foundation
import Outbox
import Synchronization
import Uplink
import VitalModel

/// The uplink loop on its own thread: takes due readings from the Outbox, delivers them, and records each
/// outcome there. While the server is away it waits with capped, jittered backoff, and never gives up.
final class UplinkWorker: Sendable {
    let outbox: Outbox
    let deliverer: Deliverer
    let backoff: Backoff
    let keepDelivered: Duration
    let log: DaemonLog

    private struct State {
        var running = true
        var wakeRequested = false
    }
    private let state = Mutex(State())
    private let condition = NSCondition()
    private let finished = DispatchSemaphore(value: 0)

    init(outbox: Outbox, deliverer: Deliverer, backoff: Backoff, keepDelivered: Duration, log: DaemonLog) {
        self.outbox = outbox
        self.deliverer = deliverer
        self.backoff = backoff
        self.keepDelivered = keepDelivered
        self.log = log
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
    func wake() {
        condition.lock()
        state.withLock { $0.wakeRequested = true }
        condition.signal()
        condition.unlock()
    }

    /// Stops after the current exchange (an abandoned request is re-sent on the next start: at-least-once).
    func stop(waitingUpTo limit: Duration) {
        condition.lock()
        state.withLock { $0.running = false }
        condition.signal()
        condition.unlock()
        _ = finished.wait(timeout: .now() + .milliseconds(Int(limit.wholeMilliseconds)))
    }

    private var isRunning: Bool { state.withLock { $0.running } }

    /// Sleeps up to `duration`; returns early on stop, and on `wake()` when `wakeable`.
    private func pause(_ duration: Duration, wakeable: Bool) {
        let deadline = Date().addingTimeInterval(Double(duration.wholeMilliseconds) / 1000)
        condition.lock()
        defer { condition.unlock() }
        while true {
            let (running, woken) = state.withLock { state in
                defer { if wakeable { state.wakeRequested = false } }
                return (state.running, state.wakeRequested)
            }
            if !running || (wakeable && woken) { return }
            if !condition.wait(until: deadline) { return }
        }
    }

    /// An outcome the Outbox must record. Kept until it is written: a full disk can refuse the write, and a
    /// reading left "in flight" would not be sent again before the next start.
    enum Recording {
        case delivered([DeliveryRecord], created: Int, requests: Int)
        case retry([OutboxReadingID], error: String, notBefore: Date)
        case dead(OutboxReadingID, status: Int?, reason: String, outcome: String?)
    }

    /// Writes `backlog` in order; returns false, keeping the rest, at the first write that fails.
    private func flush(_ backlog: inout [Recording], at now: Date) -> Bool {
        while let recording = backlog.first {
            do {
                switch recording {
                case .delivered(let records, let created, let requests):
                    try outbox.markDelivered(records, at: now)
                    log.info("uplink: delivered \(records.count) reading(s) in \(requests) request(s); "
                        + "\(created) created, \(records.count - created) already on the server")
                case .retry(let ids, let error, let notBefore):
                    try outbox.scheduleRetry(ids, error: error, notBefore: notBefore)
                case .dead(let id, let status, let reason, let outcome):
                    try outbox.deadLetter(id, httpStatus: status, reason: reason, outcome: outcome, at: now)
                    log.warning("uplink: r\(id.rawValue) refused by the server" + (status.map { " (HTTP \($0))" } ?? "")
                        + "; moved to the dead letters (`vitalgate queue` shows why)")
                }
                backlog.removeFirst()
            } catch {
                log.error("uplink: cannot record an upload outcome, will try again: \(error)")
                return false
            }
        }
        return true
    }

    private func run() {
        var generator = SystemRandomNumberGenerator()
        var failures = 0
        var lastPrune = Date.distantPast
        var backlog: [Recording] = []
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
            let items = batch.compactMap { stored -> DeliveryItem? in
                guard let subject = stored.subject else { return nil }
                return DeliveryItem(id: stored.id.rawValue, reading: stored.reading, subject: subject,
                                    identifyByReceipt: stored.identifyByReceipt)
            }
            let report = deliverer.deliver(items)
            let (recordings, retryAfter) = plan(report, at: Date(), failures: failures + 1, generator: &generator)
            backlog += recordings
            _ = flush(&backlog, at: Date())
            if let retryAfter {
                failures += 1
                pause(retryAfter, wakeable: false)
            } else {
                failures = 0
            }
        }
    }

    /// Turns a delivery report into Outbox writes; also returns how long to wait when something must be retried.
    private func plan(_ report: DeliveryReport, at now: Date, failures: Int,
                      generator: inout SystemRandomNumberGenerator) -> ([Recording], Duration?) {
        var recordings: [Recording] = []
        var delivered: [DeliveryRecord] = []
        var retries: [(OutboxReadingID, String)] = []
        var serverRetryAfter: Duration?
        var created = 0
        for (id, outcome) in report.outcomes.sorted(by: { $0.key < $1.key }) {
            let readingID = OutboxReadingID(rawValue: id)
            switch outcome {
            case .delivered(let status, let locations):
                delivered.append(DeliveryRecord(id: readingID, status: status, locations: locations))
                if status == 201 { created += 1 }
            case .retry(let reason, let after):
                retries.append((readingID, reason))
                if let after { serverRetryAfter = max(serverRetryAfter ?? .zero, after) }
            case .rejected(let status, let reason, let outcome):
                recordings.append(.dead(readingID, status: status, reason: reason, outcome: outcome))
            }
        }
        if !delivered.isEmpty { recordings.insert(.delivered(delivered, created: created, requests: report.requests), at: 0) }
        guard !retries.isEmpty else { return (recordings, nil) }
        let delay = backoff.delay(afterFailures: failures, retryAfter: serverRetryAfter, using: &generator)
        let notBefore = now.addingTimeInterval(Double(delay.wholeMilliseconds) / 1000)
        // Grouped by reason so the Outbox keeps each reading's own last error.
        for (reason, group) in Dictionary(grouping: retries, by: \.1) {
            recordings.append(.retry(group.map(\.0), error: reason, notBefore: notBefore))
        }
        log.warning("uplink: \(retries.count) reading(s) not delivered (\(Self.category(retries[0].1))); "
            + "retrying in \(delay.wholeMilliseconds) ms")
        return (recordings, delay)
    }

    /// What kind of failure a retry reason describes, without the reason's text: server replies can quote
    /// the patient's identifier, and the journal must not.
    static func category(_ reason: String) -> String {
        if reason.hasPrefix("HTTP "), let code = Int(reason.dropFirst(5).prefix(3)) { return "HTTP \(code)" }
        if reason.hasPrefix("cannot get an access token") { return "no access token" }
        if reason.hasPrefix("not attempted") { return "not attempted" }
        if reason.hasPrefix("entry answered") { return "an entry failed" }
        return "network"
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
