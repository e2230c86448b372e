import Foundation
import VitalModel

/// Visits and attributions in the store.
extension OutboxStore {
    static let visitColumns = Schema.visits.columnList

    func openVisit() throws(OutboxError) -> Visit? {
        try query("SELECT \(Self.visitColumns) FROM visits WHERE ended_at IS NULL ORDER BY id DESC LIMIT 1").first.map { row throws(OutboxError) in try Self.decodeVisitRow(row) }
    }

    func visits(limit: Int) throws(OutboxError) -> [Visit] {
        try query("SELECT \(Self.visitColumns) FROM visits ORDER BY id DESC LIMIT ?1", [.integer(Int64(max(0, limit)))])
            .map { row throws(OutboxError) in try Self.decodeVisitRow(row) }
    }

    func startVisit(patient: PatientIdentifier, performer: PerformerIdentifier?, actor: String) throws(OutboxError) -> Visit {
        try transaction("start a visit", synchronous: "FULL") { () throws(OutboxError) in
            if let open = try openVisit() { throw OutboxError.visitAlreadyOpen(open.id) }
            let now = nowMilliseconds
            try run("""
                INSERT INTO visits(patient_system, patient_value, performer_system, performer_value, started_at, started_by, checksum)
                VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0)
                """, [.text(patient.system), .text(patient.value), performer.map { .text($0.system) } ?? .null,
                      performer.map { .text($0.value) } ?? .null, .integer(now), .text(actor)])
            let id = database.lastInsertedRowID
            try reseal(Schema.visits, id: id)
            // Neither the citizen nor the health worker goes into the audit detail.
            try audit("visit-started", reading: nil, actor: actor, detail: "visit \(id) started")
            return Visit(id: id, patient: patient, performer: performer, startedAt: Date(outboxMilliseconds: now),
                         endedAt: nil, startedBy: actor, endedBy: nil)
        }
    }

    func endVisit(actor: String) throws(OutboxError) -> Visit {
        try transaction("end the visit", synchronous: "FULL") { () throws(OutboxError) in
            guard let open = try openVisit() else { throw OutboxError.noOpenVisit }
            let now = nowMilliseconds
            try run("UPDATE visits SET ended_at = ?2, ended_by = ?3 WHERE id = ?1", [.integer(open.id), .integer(now), .text(actor)])
            try reseal(Schema.visits, id: open.id)
            let taken = try query("SELECT count(*) FROM attributions WHERE visit_id = ?1", [.integer(open.id)]).first?.first?.integer ?? 0
            try audit("visit-ended", reading: nil, actor: actor, detail: "visit \(open.id) ended; \(taken) reading(s) attributed by it")
            var ended = open
            ended.endedAt = Date(outboxMilliseconds: now)
            ended.endedBy = actor
            return ended
        }
    }

    static func decodeVisitRow(_ row: [Value]) throws(OutboxError) -> Visit {
        guard row.count >= 9, let id = row[0].integer, let system = row[1].text, let value = row[2].text,
              let started = row[5].integer, let startedBy = row[7].text else {
            throw OutboxError.unreadableVisit(row.first?.integer, problem: "its id, citizen, start time or operator is missing")
        }
        return Visit(id: id, patient: PatientIdentifier(system: system, value: value), performer: performer(row[3], row[4]),
                     startedAt: Date(outboxMilliseconds: started), endedAt: row[6].integer.map(Date.init(outboxMilliseconds:)),
                     startedBy: startedBy, endedBy: row[8].text)
    }

    /// A visit's health worker from its two columns, or nil.
    static func performer(_ system: Value, _ value: Value) -> PerformerIdentifier? {
        guard let system = system.text, let value = value.text else { return nil }
        return PerformerIdentifier(system: system, value: value)
    }

    /// Fills in each reading's attribution and, for readings a visit attributed, the visit's health worker.
    func attachAttributions(_ readings: inout [StoredReading]) throws(OutboxError) {
        guard !readings.isEmpty else { return }
        let ids = readings.map { String($0.id.rawValue) }.joined(separator: ",")
        var found: [Int64: (Attribution?, PerformerIdentifier?)] = [:]
        for row in try query("""
            SELECT a.id, a.rule, a.reason, a.visit_id, v.performer_system, v.performer_value
            FROM attributions a LEFT JOIN visits v ON v.id = a.visit_id WHERE a.id IN (\(ids))
            """) {
            guard let id = row[0].integer else { continue }
            // A rule another version wrote is not shown, but the visit's health worker is still sent with the reading.
            let attribution = row[1].text.flatMap(Attribution.Rule.init(rawValue:))
                .map { Attribution(rule: $0, reason: row[2].text, visitID: row[3].integer) }
            found[id] = (attribution, Self.performer(row[4], row[5]))
        }
        for index in readings.indices {
            guard let (attribution, performer) = found[readings[index].id.rawValue] else { continue }
            readings[index].attribution = attribution
            readings[index].performer = performer
        }
    }
}

extension Outbox {
    /// The open visit, if any.
    public func openVisit() throws(OutboxError) -> Visit? {
        try locked { store throws(OutboxError) in try store.openVisit() }
    }

    /// The latest visits, newest first.
    public func visits(limit: Int) throws(OutboxError) -> [Visit] {
        try locked { store throws(OutboxError) in try store.visits(limit: limit) }
    }

    /// Opens a visit for `patient`; ``OutboxError/visitAlreadyOpen(_:)`` while another is open. Audited without
    /// identifiers.
    public func startVisit(patient: PatientIdentifier, performer: PerformerIdentifier?, actor: String) throws(OutboxError) -> Visit {
        try locked { store throws(OutboxError) in try store.startVisit(patient: patient, performer: performer, actor: actor) }
    }

    /// Ends the open visit; ``OutboxError/noOpenVisit`` when there is none.
    public func endVisit(actor: String) throws(OutboxError) -> Visit {
        try locked { store throws(OutboxError) in try store.endVisit(actor: actor) }
    }
}
