import Foundation
import VitalModel

/// Reads that change nothing.
extension OutboxStore {
    func readings(in state: ReadingState, limit: Int) throws(OutboxError) -> [StoredReading] {
        guard limit > 0 else { return [] }
        return try storedReadings("SELECT \(Self.readingColumns) FROM readings WHERE state = ?1 ORDER BY id LIMIT ?2",
                                  [.text(state.rawValue), .integer(Int64(limit))])
    }

    func recentReadings(limit: Int) throws(OutboxError) -> [StoredReading] {
        try storedReadings("SELECT \(Self.readingColumns) FROM readings ORDER BY id DESC LIMIT ?1", [.integer(Int64(max(0, limit)))])
    }

    func latestBySubject() throws(OutboxError) -> [StoredReading] {
        try storedReadings("""
            SELECT \(Self.readingColumns) FROM readings WHERE id IN (
                SELECT max(id) FROM readings WHERE subject_value IS NOT NULL
                GROUP BY subject_system, subject_value, json_extract(payload, '$.kind'))
            ORDER BY id
            """)
    }

    /// The readings a query selects, with their attributions. One row this version cannot read must not hide every
    /// other: it is left out here, still counted by summary(), and reading(_:) names its problem.
    private func storedReadings(_ sql: String, _ values: [Value] = []) throws(OutboxError) -> [StoredReading] {
        var result = try query(sql, values).compactMap { try? Self.decodeReadingRow($0) }
        try attachAttributions(&result)
        return result
    }

    func summary() throws(OutboxError) -> QueueSummary {
        var counts = Dictionary(uniqueKeysWithValues: ReadingState.allCases.map { ($0, 0) })
        for row in try query("SELECT state, count(*) FROM readings GROUP BY state") {
            if let text = row[0].text, let state = ReadingState(rawValue: text), let count = row[1].integer {
                counts[state] = Int(count)
            }
        }
        let oldest = try query("SELECT min(stored_at) FROM readings WHERE state IN ('pending', 'in-flight')").first?.first?.integer
        let lastDelivery = try query("SELECT max(delivered_at) FROM readings WHERE state = 'delivered'").first?.first?.integer
        let quarantined = try query("SELECT count(*) FROM quarantine").first?.first?.integer ?? 0
        let letters = try query("""
            SELECT d.reading_id, d.http_status, d.reason, d.outcome, d.at FROM dead_letters d JOIN readings r ON r.id = d.reading_id
            WHERE r.state = 'dead' AND d.id = (SELECT max(id) FROM dead_letters WHERE reading_id = d.reading_id)
            ORDER BY d.id DESC LIMIT ?1
            """, [.integer(Int64(max(0, options.deadLettersInSummary)))])
        return QueueSummary(
            counts: counts, oldestPendingStoredAt: oldest.map(Date.init(outboxMilliseconds:)),
            lastDeliveryAt: lastDelivery.map(Date.init(outboxMilliseconds:)), quarantined: Int(quarantined),
            deadLetters: letters.map { row in
                DeadLetter(readingID: OutboxReadingID(row[0].integer ?? -1), httpStatus: row[1].integer.map { Int($0) },
                           reason: row[2].text ?? "", outcome: row[3].text, at: Date(outboxMilliseconds: row[4].integer ?? 0))
            })
    }

    func auditTrail(limit: Int) throws(OutboxError) -> [AuditEvent] {
        try query("SELECT id, event, reading_id, actor, detail, at FROM audit ORDER BY id DESC LIMIT ?1", [.integer(Int64(max(0, limit)))])
            .map { row in
                AuditEvent(id: row[0].integer ?? -1, event: row[1].text ?? "", readingID: row[2].integer.map(OutboxReadingID.init(rawValue:)),
                           actor: row[3].text ?? "", detail: row[4].text, at: Date(outboxMilliseconds: row[5].integer ?? 0))
            }
    }

    func quarantinedRows(limit: Int) throws(OutboxError) -> [QuarantinedRow] {
        try query("SELECT id, source_table, row_id, raw, reason, at FROM quarantine ORDER BY id DESC LIMIT ?1",
                  [.integer(Int64(max(0, limit)))])
            .map { row in
                QuarantinedRow(id: row[0].integer ?? -1, table: row[1].text ?? "", rowID: row[2].integer, raw: row[3].text ?? "",
                               reason: row[4].text ?? "", at: Date(outboxMilliseconds: row[5].integer ?? 0))
            }
    }
}

extension Outbox {
    /// The newest readings in any state, newest first (rows this version cannot read are left out).
    public func recentReadings(limit: Int) throws(OutboxError) -> [StoredReading] {
        try locked { store throws(OutboxError) in try store.recentReadings(limit: limit) }
    }

    /// Each citizen's newest reading of each kind (blood pressure, SpO2, …): what `vitalgate status` shows per member.
    public func latestBySubject() throws(OutboxError) -> [StoredReading] {
        try locked { store throws(OutboxError) in try store.latestBySubject() }
    }
}
