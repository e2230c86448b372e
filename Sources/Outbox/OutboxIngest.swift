import Foundation
import VitalModel

extension OutboxStore {
    func ingest(_ incoming: [IncomingReading]) throws(OutboxError) -> [IngestOutcome] {
        guard !incoming.isEmpty else { return [] }
        // Keep room for deliveries and pruning: a disk filled by readings must still record uploads.
        if let free = options.freeSpace(directory), free < options.reservedFreeBytes {
            throw OutboxError.diskFull(path: path, freeBytes: free, reservedBytes: options.reservedFreeBytes, cause: nil)
        }
        return try transaction("ingest readings", synchronous: "FULL") { () throws(OutboxError) in
            var outcomes: [IngestOutcome] = []
            outcomes.reserveCapacity(incoming.count)
            for item in incoming { outcomes.append(try ingestOne(item)) }
            return outcomes
        }
    }

    private func ingestOne(_ item: IncomingReading) throws(OutboxError) -> IngestOutcome {
        let json = item.reading.json
        let base = DedupeKey.base(for: item.reading)
        // The base key and every collision key made from it ('#' sorts just before '$').
        let rows = try query("""
            SELECT id, dedupe_key, payload FROM readings
            WHERE dedupe_key = ?1 OR (dedupe_key >= ?2 AND dedupe_key < ?3) ORDER BY id
            """, [.text(base), .text(base + "#"), .text(base + "$")])
        // Pruned readings keep their key and essence: a copy of one is as much a duplicate as a copy of a row.
        let pruned = try query("""
            SELECT id, dedupe_key, essence FROM pruned
            WHERE dedupe_key = ?1 OR (dedupe_key >= ?2 AND dedupe_key < ?3) ORDER BY id
            """, [.text(base), .text(base + "#"), .text(base + "$")])
        let candidates = rows + pruned
        for candidate in candidates {
            // Same key, values, user slot and sequence number: the device re-sent a record the outbox holds.
            if let payload = candidate[2].text, let stored = try? JSONValue.parse(payload),
               DedupeKey.isSameReading(stored: stored, as: json), let id = candidate[0].integer {
                return .duplicate(OutboxReadingID(id))
            }
        }
        var key = base
        if !candidates.isEmpty {
            // Same device, kind and time, another reading: the device clock did not advance between two
            // measurements (or two users' readings share a time). One FHIR identifier cannot hold both.
            let taken = Set(candidates.compactMap { $0[1].text })
            key = DedupeKey.collision(base: base, reading: item.reading)
            let stem = key
            var counter = 2
            while taken.contains(key) {
                key = stem + "#\(counter)"
                counter += 1
            }
        }
        let now = nowMilliseconds
        try run("""
            INSERT INTO readings(dedupe_key, state, subject_system, subject_value, payload, stored_at, attempts, changed_at, checksum)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?6, 0)
            """, [.text(key), .text((item.subject == nil ? ReadingState.unassigned : .pending).rawValue),
                  item.subject.map { .text($0.system) } ?? .null, item.subject.map { .text($0.value) } ?? .null,
                  .text(json.serialized()), .integer(now)])
        let id = database.lastInsertedRowID
        try reseal(Schema.readings, id: id)
        try recordAttribution(item.attribution, reading: id)
        if let first = candidates.first?[0].integer {
            try audit("clock-collision", reading: id, detail: "same device, kind and \(item.reading.deviceTime == nil ? "receive" : "device") "
                + "time as reading \(first) but other values, user slot or sequence number: the device clock did not "
                + "advance; stored and identified by its receive time")
        }
        return .stored(OutboxReadingID(id))
    }

    /// Writes (or replaces) how a reading was attributed.
    func recordAttribution(_ attribution: Attribution, reading id: Int64) throws(OutboxError) {
        try run("INSERT OR REPLACE INTO attributions(id, rule, reason, visit_id, checksum) VALUES (?1, ?2, ?3, ?4, 0)",
                [.integer(id), .text(attribution.rule.rawValue), attribution.reason.map(Value.text) ?? .null,
                 attribution.visitID.map(Value.integer) ?? .null])
        try reseal(Schema.attributions, id: id)
    }
}
