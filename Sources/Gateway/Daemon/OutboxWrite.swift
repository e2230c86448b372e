import Foundation
import Outbox
import Uplink

/// What a delivery report means for the Outbox, as writes in order. The daemon, the delivery tests and the
/// benchmarks all record outcomes through this, so that they record them the same way.
public enum OutboxWrite: Sendable {
    case delivered([DeliveryRecord], created: Int)
    case retry([OutboxReadingID], error: String, notBefore: Date)
    case dead(OutboxReadingID, status: Int?, reason: String, outcome: String?)

    /// The writes for `report`; `retryAt` says when a reading that must be retried may go again.
    public static func plan(_ report: DeliveryReport,
                            retryAt: (OutboxReadingID, DeliveryOutcome) -> Date) -> [OutboxWrite] {
        var writes: [OutboxWrite] = []
        var delivered: [DeliveryRecord] = []
        var created = 0
        // Grouped by reason and time, so each reading keeps its own last error in one write per group.
        var retries: [String: [Date: [OutboxReadingID]]] = [:]
        for (rawID, outcome) in report.outcomes.sorted(by: { $0.key < $1.key }) {
            let id = OutboxReadingID(rawValue: rawID)
            switch outcome {
            case .delivered(let status, let locations):
                delivered.append(DeliveryRecord(id: id, status: status, locations: locations))
                if status == 201 { created += 1 }
            case .retry(let reason, _, _):
                retries[reason, default: [:]][retryAt(id, outcome), default: []].append(id)
            case .rejected(let status, let reason, let body):
                writes.append(.dead(id, status: status, reason: reason, outcome: body))
            }
        }
        if !delivered.isEmpty { writes.insert(.delivered(delivered, created: created), at: 0) }
        for (reason, byTime) in retries.sorted(by: { $0.key < $1.key }) {
            for (notBefore, ids) in byTime.sorted(by: { $0.key < $1.key }) {
                writes.append(.retry(ids, error: reason, notBefore: notBefore))
            }
        }
        return writes
    }

    /// Performs the write.
    public func apply(to outbox: Outbox, at now: Date) throws(OutboxError) {
        switch self {
        case .delivered(let records, _): try outbox.markDelivered(records, at: now)
        case .retry(let ids, let error, let notBefore): try outbox.scheduleRetry(ids, error: error, notBefore: notBefore)
        case .dead(let id, let status, let reason, let outcome):
            try outbox.deadLetter(id, httpStatus: status, reason: reason, outcome: outcome, at: now)
        }
    }
}
