import Foundation
import VitalModel

/// State changes of the delivery cycle and of operators.
extension OutboxStore {
    static let unsent: Set<ReadingState> = [.inFlight, .pending]

    func nextBatch(limit: Int, now: Date) throws(OutboxError) -> [StoredReading] {
        guard limit > 0 else { return [] }
        // Losing this commit to a power cut only leaves the rows pending: NORMAL is enough.
        return try transaction("take a batch to upload", synchronous: "NORMAL") { () throws(OutboxError) in
            let rows = try query("""
                SELECT \(Self.readingColumns) FROM readings
                WHERE state = 'pending' AND (next_attempt_at IS NULL OR next_attempt_at <= ?1) ORDER BY id LIMIT ?2
                """, [.integer(now.outboxMilliseconds), .integer(Int64(limit))])
            let changedAt = nowMilliseconds
            var batch: [StoredReading] = []
            for row in rows {
                guard let id = row[0].integer else { continue }
                var stored: StoredReading
                do throws(OutboxError) {
                    stored = try Self.decodeReadingRow(row)
                } catch {
                    // One row that cannot be read back must not stop every upload behind it. It stays in the
                    // readings table (dead, not quarantined), so an operator can retry it after an upgrade.
                    let problem = if case .unreadableRow(_, let problem) = error { problem } else { "\(error)" }
                    try markDead(OutboxReadingID(id), httpStatus: nil,
                                 reason: "the stored reading cannot be read by this VitalGate version (\(problem)); "
                                     + "retry it after upgrading VitalGate", outcome: nil, at: Date(outboxMilliseconds: changedAt))
                    continue
                }
                try run("UPDATE readings SET state = 'in-flight', changed_at = ?2 WHERE id = ?1", [.integer(id), .integer(changedAt)])
                try reseal(Schema.readings, id: id)
                stored.state = .inFlight
                batch.append(stored)
            }
            try attachAttributions(&batch)
            return batch
        }
    }

    func markDelivered(_ records: [DeliveryRecord], at: Date) throws(OutboxError) {
        guard !records.isEmpty else { return }
        try transaction("record deliveries", synchronous: "FULL") { () throws(OutboxError) in
            for record in records { try require(record.id, in: Self.unsent, toBecome: .delivered) }
            for record in records {
                let locations = JSONValue.array(record.locations.map(JSONValue.string)).serialized()
                try run("""
                    UPDATE readings SET state = 'delivered', delivered_at = ?2, server_status = ?3, locations = ?4,
                        next_attempt_at = NULL, last_error = NULL, changed_at = ?5 WHERE id = ?1
                    """, [.integer(record.id.rawValue), .date(at), .integer(Int64(record.status)), .text(locations),
                          .integer(nowMilliseconds)])
                try reseal(Schema.readings, id: record.id.rawValue)
                try audit("delivered", reading: record.id.rawValue,
                          detail: "HTTP \(record.status), \(record.locations.count) location\(record.locations.count == 1 ? "" : "s")")
            }
        }
    }

    func scheduleRetry(_ ids: [OutboxReadingID], error: String, notBefore: Date) throws(OutboxError) {
        guard !ids.isEmpty else { return }
        let due = notBefore.outboxMilliseconds
        try transaction("schedule a retry", synchronous: "NORMAL") { () throws(OutboxError) in
            for id in ids { try require(id, in: Self.unsent, toBecome: .pending) }
            for id in Set(ids) {
                try run("""
                    UPDATE readings SET state = 'pending', attempts = attempts + 1, last_error = ?2, next_attempt_at = ?3,
                        changed_at = ?4 WHERE id = ?1
                    """, [.integer(id.rawValue), .text(Self.capped(error, bytes: 1024)), .integer(due), .integer(nowMilliseconds)])
                try reseal(Schema.readings, id: id.rawValue)
            }
        }
    }

    func deadLetter(_ id: OutboxReadingID, httpStatus: Int?, reason: String, outcome: String?, at: Date) throws(OutboxError) {
        try transaction("dead-letter a reading", synchronous: "FULL") { () throws(OutboxError) in
            try require(id, in: Self.unsent, toBecome: .dead)
            try markDead(id, httpStatus: httpStatus, reason: reason, outcome: outcome, at: at)
        }
    }

    /// Makes a reading dead with its dead letter and audit event, inside the caller's transaction.
    private func markDead(_ id: OutboxReadingID, httpStatus: Int?, reason: String, outcome: String?, at: Date) throws(OutboxError) {
        try run("""
            UPDATE readings SET state = 'dead', attempts = attempts + 1, last_error = ?2, next_attempt_at = NULL,
                changed_at = ?3 WHERE id = ?1
            """, [.integer(id.rawValue), .text(Self.capped(reason, bytes: 1024)), .integer(nowMilliseconds)])
        try reseal(Schema.readings, id: id.rawValue)
        try run("INSERT INTO dead_letters(reading_id, http_status, reason, outcome, at, checksum) VALUES (?1, ?2, ?3, ?4, ?5, 0)",
                [.integer(id.rawValue), httpStatus.map { .integer(Int64($0)) } ?? .null, .text(Self.capped(reason, bytes: 1024)),
                 outcome.map { .text(Self.capped($0, bytes: 8192)) } ?? .null, .date(at)])
        try reseal(Schema.deadLetters, id: database.lastInsertedRowID)
        try audit("dead-letter", reading: id.rawValue, detail: httpStatus.map { "HTTP \($0)" } ?? "no HTTP status")
    }

    func retryDeadLetter(_ id: OutboxReadingID, actor: String) throws(OutboxError) {
        try transaction("retry a dead letter", synchronous: "FULL") { () throws(OutboxError) in
            try require(id, in: [.dead], toBecome: .pending)
            try setState(id, .pending)
            try audit("dead-letter-retry", reading: id.rawValue, actor: actor, detail: "dead to pending")
        }
    }

    func retryAllDeadLetters(actor: String) throws(OutboxError) -> Int {
        try transaction("retry every dead letter", synchronous: "FULL") { () throws(OutboxError) in
            // By id alone: a dead row this version cannot decode is retried too.
            let ids = try query("SELECT id FROM readings WHERE state = 'dead' ORDER BY id").compactMap { $0[0].integer }
            for id in ids {
                try setState(OutboxReadingID(id), .pending)
                try audit("dead-letter-retry", reading: id, actor: actor, detail: "dead to pending (all dead letters retried)")
            }
            return ids.count
        }
    }

    func discardDeadLetter(_ id: OutboxReadingID, actor: String) throws(OutboxError) {
        try transaction("discard a dead letter", synchronous: "FULL") { () throws(OutboxError) in
            try require(id, in: [.dead], toBecome: .discarded)
            try setState(id, .discarded)
            try audit("discarded", reading: id.rawValue, actor: actor, detail: "dead to discarded; it will never be uploaded")
        }
    }

    func assign(_ id: OutboxReadingID, to subject: PatientIdentifier, actor: String) throws(OutboxError) {
        try transaction("assign a reading", synchronous: "FULL") { () throws(OutboxError) in
            try require(id, in: [.unassigned], toBecome: .pending)
            try run("UPDATE readings SET subject_system = ?2, subject_value = ?3 WHERE id = ?1",
                    [.integer(id.rawValue), .text(subject.system), .text(subject.value)])
            let held = try query("SELECT reason FROM attributions WHERE id = ?1", [.integer(id.rawValue)]).first?.first?.text
            try setState(id, .pending)
            try recordAttribution(Attribution(rule: .operator), reading: id.rawValue)
            // The identifier itself stays out of the audit detail; the reason it was held never holds one.
            try audit("assigned", reading: id.rawValue, actor: actor,
                      detail: "unassigned to pending; subject set" + (held.map { " (it was held: \($0))" } ?? ""))
        }
    }

    func prune(before date: Date) throws(OutboxError) -> Int {
        let cutoff = date.outboxMilliseconds
        return try transaction("prune delivered readings", synchronous: "NORMAL") { () throws(OutboxError) in
            let condition = """
                (state = 'delivered' AND delivered_at < ?1) OR (state = 'discarded' AND changed_at < ?1)
                """
            try run("DELETE FROM dead_letters WHERE reading_id IN (SELECT id FROM readings WHERE \(condition))", [.integer(cutoff)])
            try run("DELETE FROM attributions WHERE id IN (SELECT id FROM readings WHERE \(condition))", [.integer(cutoff)])
            for row in try query("SELECT id, dedupe_key, payload FROM readings WHERE \(condition)", [.integer(cutoff)]) {
                guard let id = row[0].integer, let key = row[1].text else { continue }
                let essence = (row[2].text.flatMap { try? JSONValue.parse($0) }).map(DedupeKey.essence(of:)) ?? .object([])
                try run("INSERT OR REPLACE INTO pruned(id, dedupe_key, essence, checksum) VALUES (?1, ?2, ?3, 0)",
                        [.integer(id), .text(key), .text(essence.serialized())])
                try reseal(Schema.pruned, id: id)
            }
            let deleted = try run("DELETE FROM readings WHERE \(condition)", [.integer(cutoff)])
            if deleted > 0 {
                try audit("pruned", reading: nil, detail: "\(deleted) delivered or discarded readings deleted")
            }
            return deleted
        }
    }

    private func setState(_ id: OutboxReadingID, _ state: ReadingState) throws(OutboxError) {
        try run("UPDATE readings SET state = ?2, next_attempt_at = NULL, changed_at = ?3 WHERE id = ?1",
                [.integer(id.rawValue), .text(state.rawValue), .integer(nowMilliseconds)])
        try reseal(Schema.readings, id: id.rawValue)
    }

    /// `text` cut to at most `bytes` UTF-8 bytes at a character boundary.
    static func capped(_ text: String, bytes: Int) -> String {
        guard text.utf8.count > bytes else { return text }
        var result = ""
        var used = 0
        for character in text {
            let size = character.utf8.count
            guard used + size <= bytes - 3 else { break }
            result.append(character)
            used += size
        }
        return result + "…"
    }
}
