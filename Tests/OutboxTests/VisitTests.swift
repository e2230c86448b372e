import Foundation
import Testing
import VitalModel
@testable import Outbox

/// Visits and attributions in the Outbox (schema 2): one open visit at a time, the visit's health worker
/// travelling with the readings it attributed, the reason a reading is held, and the audit trail without identifiers.
@Suite("Outbox visits and attributions")
struct VisitTests {
    static let visited = PatientIdentifier(system: "http://fhir.hl7.org.vn/core/sid/cccd", value: "099185000009")
    static let worker = PerformerIdentifier(system: "urn:example:practitioner", value: "CHW-0042")

    @Test("a visit row missing what a visit needs is an error naming the visit, never a visit of nobody")
    func unreadableVisitRow() throws {
        let complete: [SQLiteDatabase.Value] = [.integer(3), .text(Self.visited.system), .text(Self.visited.value), .null, .null,
                                                .integer(1_795_000_000_000), .null, .text("root"), .null]
        let visit = try OutboxStore.decodeVisitRow(complete)
        #expect(visit.id == 3 && visit.patient == Self.visited && visit.performer == nil && visit.endedAt == nil)
        for index in [0, 1, 2, 5, 7] {
            var broken = complete
            broken[index] = .null
            let error = try #require(throws: OutboxError.self) { try OutboxStore.decodeVisitRow(broken) }
            #expect(error.description.contains("visit \(index == 0 ? "(no id)" : "3")"), "\(error)")
            #expect(!error.description.contains(Self.visited.value))
        }
        #expect(throws: OutboxError.self) { try OutboxStore.decodeVisitRow(Array(complete.prefix(5))) }
    }

    @Test("one open visit at a time; ending needs an open one; the audit names neither citizen nor health worker")
    func lifecycle() throws {
        let directory = TemporaryDirectory()
        let clock = TestClock()
        let outbox = try Outbox(path: directory.database, options: options(clock: clock))
        #expect(try outbox.openVisit() == nil)
        let visit = try outbox.startVisit(patient: Self.visited, performer: Self.worker, actor: "chw")
        #expect(visit.isOpen && visit.patient == Self.visited && visit.performer == Self.worker && visit.startedAt == clock.now)
        #expect(throws: OutboxError.visitAlreadyOpen(visit.id)) {
            try outbox.startVisit(patient: testPatient, performer: nil, actor: "chw")
        }
        #expect(try outbox.openVisit() == visit)
        clock.advance(seconds: 600)
        let ended = try outbox.endVisit(actor: "chw")
        #expect(ended.id == visit.id && ended.endedAt == clock.now && ended.endedBy == "chw")
        #expect(try outbox.openVisit() == nil)
        #expect(throws: OutboxError.noOpenVisit) { try outbox.endVisit(actor: "chw") }
        let next = try outbox.startVisit(patient: testPatient, performer: nil, actor: "chw")
        #expect(next.id > visit.id)
        #expect(try outbox.visits(limit: 10).map(\.id) == [next.id, visit.id])
        let audit = try outbox.auditTrail(limit: 10)
        #expect(audit.filter { $0.event.hasPrefix("visit-") }.map(\.event) == ["visit-started", "visit-ended", "visit-started"])
        for event in audit {
            let text = "\(event.detail ?? "") \(event.actor)"
            #expect(!text.contains(Self.visited.value) && !text.contains(Self.worker.value) && !text.contains(testPatient.value))
        }
    }

    @Test("a reading a visit attributed is uploaded with the visit's health worker; a held one keeps its reason")
    func attributionsTravel() throws {
        let directory = TemporaryDirectory()
        let outbox = try Outbox(path: directory.database, options: options())
        let visit = try outbox.startVisit(patient: Self.visited, performer: Self.worker, actor: "chw")
        let outcomes = try outbox.ingest([
            IncomingReading(reading: bloodPressure(systolic: 131, minute: 1), subject: Self.visited,
                            attribution: Attribution(rule: .visit, visitID: visit.id)),
            IncomingReading(reading: bloodPressure(systolic: 132, minute: 2), subject: nil,
                            attribution: .unassigned("measured before visit \(visit.id) started")),
            IncomingReading(reading: bloodPressure(systolic: 133, minute: 3), subject: testPatient,
                            attribution: Attribution(rule: .householdSlot)),
        ])
        #expect(outcomes.map(\.id.rawValue) == [1, 2, 3])
        let batch = try outbox.nextBatch(limit: 10, now: Date())
        #expect(batch.map(\.id.rawValue) == [1, 3])
        #expect(batch[0].performer == Self.worker && batch[0].attribution == Attribution(rule: .visit, visitID: visit.id))
        #expect(batch[1].performer == nil && batch[1].attribution?.rule == .householdSlot)
        let held = try #require(try outbox.readings(in: .unassigned, limit: 10).first)
        #expect(held.attribution?.reason == "measured before visit \(visit.id) started")

        // An operator assigns it: pending, attributed by the operator, and the audit keeps why it had been held.
        try outbox.assign(held.id, to: Self.visited, actor: "chw")
        let assigned = try #require(try outbox.reading(held.id))
        #expect(assigned.state == .pending && assigned.subject == Self.visited && assigned.attribution?.rule == .operator)
        #expect(assigned.performer == nil)
        let audit = try #require(try outbox.auditTrail(limit: 1).first)
        #expect(audit.event == "assigned" && audit.actor == "chw" && audit.detail?.contains("before visit") == true)
        // Only a held reading can be assigned: attributed ones are never moved.
        #expect(throws: OutboxError.self) { try outbox.assign(OutboxReadingID(3), to: Self.visited, actor: "chw") }
    }

    @Test("a version-1 file gains the visit tables; its readings keep their checksums and have no attribution")
    func migratesFromVersionOne() throws {
        let directory = TemporaryDirectory()
        do {
            let outbox = try Outbox(path: directory.database, options: options())
            _ = try outbox.ingest([incoming(bloodPressure())])
        }
        // What a VitalGate of schema 1 left: no visit tables.
        try tamper(directory.database, "DROP TABLE attributions; DROP TABLE visits; DROP TABLE pruned; PRAGMA user_version = 1")
        let outbox = try Outbox(path: directory.database, options: options())
        #expect(outbox.recovery.migratedFrom == 1)
        #expect(outbox.recovery.quarantinedRows.isEmpty)
        let reading = try #require(try outbox.reading(OutboxReadingID(1)))
        #expect(reading.subject == testPatient && reading.attribution == nil && reading.state == .pending)
        #expect(try outbox.openVisit() == nil)
        _ = try outbox.startVisit(patient: Self.visited, performer: nil, actor: "chw")
    }

    @Test("a visit row whose bytes rotted is quarantined at start, so no reading goes to a damaged visit")
    func damagedVisitQuarantined() throws {
        let directory = TemporaryDirectory()
        do {
            let outbox = try Outbox(path: directory.database, options: options())
            _ = try outbox.startVisit(patient: Self.visited, performer: nil, actor: "chw")
        }
        try tamper(directory.database, "UPDATE visits SET patient_value = '099185000008'")
        let outbox = try Outbox(path: directory.database, options: options())
        #expect(outbox.recovery.quarantinedRows["visits"] == 1)
        #expect(try outbox.openVisit() == nil)
    }
}

/// What pruning leaves: a device that re-sends months of memory after its readings were pruned must not bring them
/// back (to be attributed again, under today's household, and sent again).
@Suite("Outbox pruned readings")
struct PrunedReadingTests {
    @Test("a re-sent copy of a pruned reading is a duplicate; a different reading with its key is stored apart")
    func prunedCopiesStayOut() throws {
        let directory = TemporaryDirectory()
        let clock = TestClock()
        let outbox = try Outbox(path: directory.database, options: options(clock: clock))
        let original = bloodPressure(systolic: 131, minute: 5, slot: 1)
        let id = try outbox.ingest([incoming(original)])[0].id
        _ = try outbox.nextBatch(limit: 1, now: clock.now)
        try outbox.markDelivered([DeliveryRecord(id: id, status: 201, locations: ["Observation/1"])], at: clock.now)
        clock.advance(seconds: 31 * 86_400)
        #expect(try outbox.prune(deliveredBefore: clock.now.addingTimeInterval(-86_400)) == 1)
        #expect(try outbox.reading(id) == nil)

        // The cuff downloads its memory again, now to a household where slot 1 is someone else's.
        var copy = original
        copy.receivedAt = HubTimestamp(instant: clock.now, utcOffsetSeconds: 7 * 3600)
        #expect(try outbox.ingest([IncomingReading(reading: copy, subject: VisitTests.visited)]) == [.duplicate(id)])
        #expect(try outbox.summary().counts[.pending] == 0)

        // Another reading the same clock second gave: stored, and identified by its receipt like any collision.
        let other = bloodPressure(systolic: 150, minute: 5, slot: 1)
        let stored = try outbox.ingest([incoming(other)])[0]
        guard case .stored(let newID) = stored else { Issue.record("not stored: \(stored)"); return }
        #expect(try outbox.reading(newID)?.identifyByReceipt == true)
    }

    @Test("a record stored as 'no slot' before schema 2 matches its re-sent copy with the unknown user (255)")
    func unknownUserFromBefore() throws {
        let directory = TemporaryDirectory()
        let outbox = try Outbox(path: directory.database, options: options())
        let before = bloodPressure(systolic: 122, minute: 9, slot: nil)
        let id = try outbox.ingest([incoming(before)])[0].id
        let now = bloodPressure(systolic: 122, minute: 9, slot: Reading.unknownUserSlot)
        #expect(try outbox.ingest([incoming(now, assigned: false)]) == [.duplicate(id)])
    }
}
