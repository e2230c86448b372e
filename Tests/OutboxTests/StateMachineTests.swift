import Foundation
import Testing
import VitalModel
@testable import Outbox

@Suite("Outbox delivery states")
struct StateMachineTests {
    let directory = TemporaryDirectory()
    let clock = TestClock()

    func open() throws -> Outbox { try Outbox(path: directory.database, options: options(clock: clock)) }

    @Test("pending → in-flight → delivered, with status, locations and an audit event")
    func delivered() throws {
        let outbox = try open()
        _ = try outbox.ingest((0..<3).map { incoming(bloodPressure(minute: $0)) })
        let batch = try outbox.nextBatch(limit: 2, now: clock.now)
        #expect(batch.map(\.id) == [OutboxReadingID(1), OutboxReadingID(2)])
        #expect(batch.allSatisfy { $0.state == .inFlight })
        #expect(try outbox.reading(OutboxReadingID(1))?.state == .inFlight)
        // In-flight rows are not handed out twice.
        #expect(try outbox.nextBatch(limit: 10, now: clock.now).map(\.id) == [OutboxReadingID(3)])
        let at = clock.now.addingTimeInterval(5)
        try outbox.markDelivered([DeliveryRecord(id: OutboxReadingID(1), status: 201, locations: ["Observation/a/_history/1", "Device/d"]),
                                  DeliveryRecord(id: OutboxReadingID(2), status: 200, locations: [])], at: at)
        let one = try #require(try outbox.reading(OutboxReadingID(1)))
        #expect(one.state == .delivered && one.serverStatus == 201 && one.deliveredAt == at)
        #expect(one.locations == ["Observation/a/_history/1", "Device/d"])
        #expect(try outbox.reading(OutboxReadingID(2))?.serverStatus == 200)
        let summary = try outbox.summary()
        #expect(summary.counts == [.unassigned: 0, .pending: 0, .inFlight: 1, .delivered: 2, .dead: 0, .discarded: 0])
        #expect(summary.lastDeliveryAt == at)
        #expect(summary.oldestPendingStoredAt == clock.now)
        let audit = try outbox.auditTrail(limit: 10)
        #expect(audit.map(\.event) == ["delivered", "delivered"])
        #expect(audit.first?.detail == "HTTP 200, 0 locations")
        // Delivered is final.
        #expect(throws: OutboxError.invalidTransition(OutboxReadingID(1), from: .delivered, to: .pending)) {
            try outbox.scheduleRetry([OutboxReadingID(1)], error: "x", notBefore: clock.now)
        }
    }

    @Test("a retry waits until its time and counts the attempt")
    func retry() throws {
        let outbox = try open()
        _ = try outbox.ingest([incoming(bloodPressure(minute: 0)), incoming(bloodPressure(minute: 1))])
        let batch = try outbox.nextBatch(limit: 10, now: clock.now)
        let later = clock.now.addingTimeInterval(30)
        try outbox.scheduleRetry(batch.map(\.id), error: "HTTP 503 from the server", notBefore: later)
        let stored = try #require(try outbox.reading(OutboxReadingID(1)))
        #expect(stored.state == .pending && stored.attempts == 1 && stored.lastError == "HTTP 503 from the server")
        #expect(stored.nextAttemptAt == later)
        #expect(try outbox.nextBatch(limit: 10, now: later.addingTimeInterval(-0.001)).isEmpty)
        #expect(try outbox.nextBatch(limit: 10, now: later).count == 2)
        try outbox.scheduleRetry([OutboxReadingID(1)], error: "timeout", notBefore: later)
        #expect(try outbox.reading(OutboxReadingID(1))?.attempts == 2)
        #expect(throws: OutboxError.unknownReading(OutboxReadingID(99))) {
            try outbox.scheduleRetry([OutboxReadingID(1), OutboxReadingID(99)], error: "x", notBefore: later)
        }
        // The failed call changed nothing, not even the valid id in it.
        #expect(try outbox.reading(OutboxReadingID(1))?.attempts == 2)
    }

    @Test("dead letters keep the server's answer; an operator retries or discards them")
    func deadLetters() throws {
        let outbox = try open()
        _ = try outbox.ingest((0..<3).map { incoming(bloodPressure(minute: $0)) })
        _ = try outbox.nextBatch(limit: 10, now: clock.now)
        let outcome = String(repeating: "é", count: 6000)  // 12 000 bytes: capped to 8 KiB
        try outbox.deadLetter(OutboxReadingID(1), httpStatus: 422, reason: "unprocessable", outcome: outcome, at: clock.now)
        try outbox.deadLetter(OutboxReadingID(2), httpStatus: nil, reason: "412 several matches", outcome: nil, at: clock.now)
        var summary = try outbox.summary()
        #expect(summary.counts[.dead] == 2)
        #expect(summary.deadLetters.map(\.readingID) == [OutboxReadingID(2), OutboxReadingID(1)])
        let letter = try #require(summary.deadLetters.last)
        #expect(letter.httpStatus == 422 && letter.reason == "unprocessable")
        #expect((letter.outcome?.utf8.count ?? 0) <= 8192 && letter.outcome?.hasPrefix("éé") == true && letter.outcome?.hasSuffix("…") == true)
        #expect(try outbox.reading(OutboxReadingID(1))?.attempts == 1)
        // Dead readings are never handed out.
        #expect(try outbox.nextBatch(limit: 10, now: clock.now.addingTimeInterval(3600)).isEmpty)
        try outbox.retryDeadLetter(OutboxReadingID(1), actor: "chw-an")
        try outbox.discardDeadLetter(OutboxReadingID(2), actor: "chw-an")
        #expect(throws: OutboxError.invalidTransition(OutboxReadingID(2), from: .discarded, to: .pending)) {
            try outbox.retryDeadLetter(OutboxReadingID(2), actor: "chw-an")
        }
        #expect(throws: OutboxError.invalidTransition(OutboxReadingID(3), from: .inFlight, to: .discarded)) {
            try outbox.discardDeadLetter(OutboxReadingID(3), actor: "chw-an")
        }
        summary = try outbox.summary()
        #expect(summary.counts[.pending] == 1 && summary.counts[.discarded] == 1 && summary.deadLetters.isEmpty)
        #expect(try outbox.nextBatch(limit: 10, now: clock.now).map(\.id) == [OutboxReadingID(1)])
        let audit = try outbox.auditTrail(limit: 10)
        #expect(audit.map(\.event) == ["discarded", "dead-letter-retry", "dead-letter", "dead-letter"])
        #expect(audit[0].actor == "chw-an" && audit[2].actor == "vitalgate")
        #expect(audit[3].detail == "HTTP 422")
    }

    @Test("unassigned readings are never handed out until assigned; the audit does not hold the identifier")
    func unassigned() throws {
        let outbox = try open()
        _ = try outbox.ingest([incoming(bloodPressure(minute: 0), assigned: false), incoming(bloodPressure(minute: 1))])
        #expect(try outbox.nextBatch(limit: 10, now: clock.now.addingTimeInterval(1e6)).map(\.id) == [OutboxReadingID(2)])
        #expect(try outbox.nextBatch(limit: 10, now: clock.now.addingTimeInterval(1e6)).isEmpty)
        #expect(try outbox.readings(in: .unassigned, limit: 10).map(\.id) == [OutboxReadingID(1)])
        let other = PatientIdentifier(system: "urn:test", value: "SECRET-77")
        try outbox.assign(OutboxReadingID(1), to: other, actor: "chw-an")
        #expect(try outbox.reading(OutboxReadingID(1))?.subject == other)
        #expect(throws: OutboxError.invalidTransition(OutboxReadingID(1), from: .pending, to: .pending)) {
            try outbox.assign(OutboxReadingID(1), to: other, actor: "chw-an")
        }
        #expect(try outbox.nextBatch(limit: 10, now: clock.now).map(\.id) == [OutboxReadingID(1)])
        let event = try #require(try outbox.auditTrail(limit: 1).first)
        #expect(event.event == "assigned" && event.readingID == OutboxReadingID(1))
        #expect(!(event.detail ?? "").contains("SECRET") && !(event.detail ?? "").contains("urn:test"))
    }

    @Test("a restart puts in-flight readings back to pending, audited")
    func restart() throws {
        var outbox: Outbox? = try open()
        _ = try outbox?.ingest((0..<4).map { incoming(bloodPressure(minute: $0)) })
        let batch = try #require(try outbox?.nextBatch(limit: 3, now: clock.now))
        try outbox?.markDelivered([DeliveryRecord(id: batch[0].id, status: 201, locations: [])], at: clock.now)
        outbox = nil
        let reopened = try open()
        #expect(reopened.recovery.requeuedInFlight == 2)
        #expect(reopened.recovery.isClean)
        #expect(reopened.recovery.description.contains("2 readings were in flight"))
        #expect(try reopened.summary().counts[.pending] == 3)
        #expect(try reopened.nextBatch(limit: 10, now: clock.now).map(\.id) == [2, 3, 4].map { OutboxReadingID($0) })
        #expect(try reopened.auditTrail(limit: 2).map(\.event) == ["requeued-after-restart", "requeued-after-restart"])
    }

    @Test("prune deletes only delivered and discarded readings older than the date")
    func prune() throws {
        let outbox = try open()
        _ = try outbox.ingest((0..<7).map { incoming(bloodPressure(minute: $0), assigned: $0 != 6) })
        let batch = try outbox.nextBatch(limit: 5, now: clock.now)  // 1...5 in flight, 6 pending, 7 unassigned
        let old = clock.now.addingTimeInterval(-86_400 * 30)
        try outbox.markDelivered([DeliveryRecord(id: batch[0].id, status: 201, locations: [])], at: old)
        try outbox.markDelivered([DeliveryRecord(id: batch[1].id, status: 201, locations: [])], at: clock.now.addingTimeInterval(20))
        try outbox.deadLetter(batch[2].id, httpStatus: 400, reason: "bad", outcome: nil, at: old)
        try outbox.deadLetter(batch[3].id, httpStatus: 400, reason: "bad", outcome: nil, at: old)
        try outbox.discardDeadLetter(batch[3].id, actor: "op")
        // Far in the future: everything not yet sent must still survive.
        clock.advance(seconds: 10)
        let pruned = try outbox.prune(deliveredBefore: clock.now.addingTimeInterval(-5))
        #expect(pruned == 2)  // the old delivery and the discarded one
        let remaining = try Set(ReadingState.allCases.flatMap { try outbox.readings(in: $0, limit: 100).map(\.id.rawValue) })
        #expect(remaining == [2, 3, 5, 6, 7])
        #expect(try outbox.prune(deliveredBefore: clock.now.addingTimeInterval(1e9)) == 1)  // the recent delivery
        let counts = try outbox.summary().counts
        #expect(counts[.inFlight] == 1 && counts[.pending] == 1 && counts[.unassigned] == 1 && counts[.dead] == 1)
        #expect(try outbox.auditTrail(limit: 1).first?.event == "pruned")
        // Ids are never reused after pruning the newest row.
        #expect(try outbox.ingest([incoming(bloodPressure(minute: 40))]) == [.stored(OutboxReadingID(8))])
        let rest = try outbox.nextBatch(limit: 10, now: clock.now)
        #expect(rest.map(\.id.rawValue) == [6, 8])
        try outbox.markDelivered(rest.map { DeliveryRecord(id: $0.id, status: 201, locations: []) }, at: old)
        #expect(try outbox.prune(deliveredBefore: clock.now) == 2)
        #expect(try outbox.ingest([incoming(bloodPressure(minute: 41))]) == [.stored(OutboxReadingID(9))])
    }

    /// Changes a stored payload behind the outbox's back and reseals its checksum, as a VitalGate version
    /// that writes a member this one does not know would leave it.
    func rewritePayload(_ id: Int64, _ sql: String) throws {
        let database = try SQLiteDatabase(path: directory.database)
        try RowChecksum.register(on: database)
        try database.execute("UPDATE readings SET payload = \(sql) WHERE id = \(id)")
        try database.execute("UPDATE readings SET checksum = \(Schema.readings.checksumExpression) WHERE id = \(id)")
    }

    @Test("a stored reading this version cannot read is dead-lettered, never moved out of reach; listings skip it")
    func unreadablePayload() throws {
        var outbox: Outbox? = try open()
        _ = try outbox?.ingest((0..<3).map { incoming(bloodPressure(minute: $0)) })
        outbox = nil
        try rewritePayload(2, "replace(payload, '\"raw\":', '\"addedLater\":1,\"raw\":')")
        let reopened = try open()
        #expect(reopened.recovery.isClean, "its checksum matches: \(reopened.recovery)")
        // Listing does not fail for one row; a single read names the problem and changes nothing.
        #expect(try reopened.readings(in: .pending, limit: 10).map(\.id) == [OutboxReadingID(1), OutboxReadingID(3)])
        let error = #expect(throws: OutboxError.self) { try reopened.reading(OutboxReadingID(2)) }
        guard case .unreadableRow(let id, let problem)? = error else { Issue.record("\(String(describing: error))"); return }
        #expect(id == OutboxReadingID(2) && problem.contains("addedLater"))
        #expect(error?.description.contains("The row is kept as it is") == true)
        #expect(try scalar(directory.database, "SELECT state FROM readings WHERE id = 2") == "pending")

        // Uploads go past it: it becomes a dead letter that says why, and stays in the readings table.
        #expect(try reopened.nextBatch(limit: 10, now: clock.now).map(\.id) == [OutboxReadingID(1), OutboxReadingID(3)])
        let summary = try reopened.summary()
        #expect(summary.counts[.dead] == 1 && summary.quarantined == 0)
        let letter = try #require(summary.deadLetters.first)
        #expect(letter.readingID == OutboxReadingID(2) && letter.httpStatus == nil)
        #expect(letter.reason.contains("cannot be read by this VitalGate version") && letter.reason.contains("after upgrading"))
        #expect(try scalar(directory.database, "SELECT count(*) FROM readings WHERE id = 2 AND state = 'dead'") == "1")
        #expect(try reopened.auditTrail(limit: 1).first?.event == "dead-letter")
        #expect(try reopened.readings(in: .dead, limit: 10).isEmpty)

        // After an "upgrade" (here: the member removed) an operator retries it and it uploads.
        try rewritePayload(2, "replace(payload, '\"addedLater\":1,', '')")
        #expect(try reopened.retryAllDeadLetters(actor: "chw-an") == 1)
        let batch = try reopened.nextBatch(limit: 10, now: clock.now)
        #expect(batch.map(\.id) == [OutboxReadingID(2)] && batch.first?.reading == bloodPressure(minute: 1))
    }

    @Test("retry all dead letters: every dead reading pending again, one audit event each, in one transaction")
    func retryAll() throws {
        let outbox = try open()
        _ = try outbox.ingest((0..<5).map { incoming(bloodPressure(minute: $0)) })
        let batch = try outbox.nextBatch(limit: 5, now: clock.now)
        for stored in batch.prefix(3) {
            try outbox.deadLetter(stored.id, httpStatus: 422, reason: "invalid", outcome: nil, at: clock.now)
        }
        try outbox.discardDeadLetter(batch[2].id, actor: "op")
        #expect(try outbox.retryAllDeadLetters(actor: "chw-an") == 2)
        let counts = try outbox.summary().counts
        #expect(counts[.dead] == 0 && counts[.pending] == 2 && counts[.discarded] == 1 && counts[.inFlight] == 2)
        let audit = try outbox.auditTrail(limit: 2)
        #expect(audit.map(\.event) == ["dead-letter-retry", "dead-letter-retry"])
        #expect(Set(audit.compactMap(\.readingID)) == [batch[0].id, batch[1].id] && audit.allSatisfy { $0.actor == "chw-an" })
        #expect(try outbox.nextBatch(limit: 10, now: clock.now).map(\.id) == [batch[0].id, batch[1].id])
        // Nothing dead: nothing done, nothing audited.
        #expect(try outbox.retryAllDeadLetters(actor: "chw-an") == 0)
        #expect(try outbox.auditTrail(limit: 1).first?.event == "dead-letter-retry")
        #expect(try outbox.auditTrail(limit: 100).count == 3 + 1 + 2)
    }

    @Test("a statement that fails after an UPDATE already ran rolls the whole transaction back")
    func rollback() throws {
        let outbox = try open()
        _ = try outbox.ingest((0..<2).map { incoming(bloodPressure(minute: $0)) })
        let batch = try outbox.nextBatch(limit: 2, now: clock.now)
        // Refuses the second reading's change only: the first one's UPDATE, reseal and audit run before it.
        try tamper(directory.database, """
            CREATE TRIGGER refuse_second BEFORE UPDATE OF state ON readings WHEN NEW.id = 2 AND NEW.state = 'delivered'
            BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;
            """)
        let records = batch.map { DeliveryRecord(id: $0.id, status: 201, locations: ["Observation/\($0.id.rawValue)"]) }
        let error = #expect(throws: OutboxError.self) { try outbox.markDelivered(records, at: clock.now) }
        guard case .storage(let operation, _, let cause)? = error else { Issue.record("\(String(describing: error))"); return }
        #expect(operation == "record deliveries" && cause.message.contains("refused by the test"))
        let first = try #require(try outbox.reading(OutboxReadingID(1)))
        #expect(first.state == .inFlight && first.deliveredAt == nil && first.locations == [])
        #expect(try outbox.auditTrail(limit: 10).isEmpty)
        #expect(try scalar(directory.database, "SELECT count(*) FROM readings WHERE state = 'delivered' OR delivered_at IS NOT NULL") == "0")
        // The connection is usable afterwards, and the same call succeeds once the cause is gone.
        try tamper(directory.database, "DROP TRIGGER refuse_second")
        try outbox.markDelivered(records, at: clock.now)
        #expect(try outbox.summary().counts[.delivered] == 2)
    }
}
