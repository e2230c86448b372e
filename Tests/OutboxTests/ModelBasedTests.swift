import Foundation
import Testing
import VitalGateTestKit
import VitalModel
@testable import Outbox

/// Seeded random action sequences (ingest, re-send, take a batch, deliver, retry, dead-letter, operator
/// actions, prune, reopen) run against the Outbox and an in-memory model of it; after each action the
/// answers agree, and after each reopen every row's state does. A failing seed reproduces; add it to
/// `seeds` to keep it as a regression case.
@Suite("Outbox against a model")
struct ModelBasedTests {
    struct ModelRow: Equatable {
        var state: ReadingState
        var attempts = 0
        var due: Int64?
        var deliveredAt: Int64?
        var changedAt: Int64
        var sequence: Int
        var systolic: Int64
        var assigned: Bool
    }

    struct Model {
        var rows: [Int64: ModelRow] = [:]
        var nextID: Int64 = 1

        func ids(_ state: ReadingState) -> [Int64] { rows.filter { $0.value.state == state }.map(\.key).sorted() }
    }

    static let seeds: [UInt64] = [1, 2, 3, 4, 5, 6]

    @Test("random action sequences agree with the model", arguments: seeds)
    func sequence(seed: UInt64) throws {
        var random = RandomReadings(seed: seed)
        let directory = TemporaryDirectory()
        let clock = TestClock()
        let settings = options(clock: clock)
        var current: Outbox? = try Outbox(path: directory.database, options: settings)
        var model = Model()
        var sequences = 0
        var reopens = 0

        func compareAll(_ step: Int) throws {
            for state in ReadingState.allCases {
                let stored = try current!.readings(in: state, limit: 10_000)
                #expect(stored.map(\.id.rawValue) == model.ids(state), "seed \(seed) step \(step): \(state)")
                for row in stored {
                    let expected = model.rows[row.id.rawValue]
                    #expect(row.attempts == expected?.attempts, "seed \(seed) step \(step): attempts of \(row.id)")
                    #expect(row.nextAttemptAt?.outboxMilliseconds == expected?.due, "seed \(seed) step \(step): due of \(row.id)")
                    #expect((row.subject != nil) == expected?.assigned, "seed \(seed) step \(step): subject of \(row.id)")
                }
            }
        }

        for step in 0..<250 {
            let action = random.int(0...99)
            let now = clock.now.outboxMilliseconds
            switch action {
            case 0..<25:  // ingest new readings, some unassigned
                let count = random.int(1...4)
                var batch: [IncomingReading] = []
                var expected: [IngestOutcome] = []
                for _ in 0..<count {
                    sequences += 1
                    let systolic = Int64(random.int(90...180))
                    let assigned = random.chance(80)
                    batch.append(incoming(bloodPressure(systolic: systolic, minute: 0, receivedMillisecond: now, sequence: sequences), assigned: assigned))
                    model.rows[model.nextID] = ModelRow(state: assigned ? .pending : .unassigned, changedAt: now, sequence: sequences,
                                                        systolic: systolic, assigned: assigned)
                    expected.append(.stored(OutboxReadingID(model.nextID)))
                    model.nextID += 1
                }
                #expect(try current!.ingest(batch) == expected, "seed \(seed) step \(step)")
            case 25..<33:  // the device re-sends a stored record, or its clock stuck (same key, other values)
                guard let (id, row) = model.rows.randomElement(using: &random.generator) else { continue }
                if random.chance(70) {
                    let outcome = try current!.ingest([incoming(bloodPressure(systolic: row.systolic, minute: 0, receivedMillisecond: now + 1,
                                                                            sequence: row.sequence))])
                    #expect(outcome == [.duplicate(OutboxReadingID(id))], "seed \(seed) step \(step)")
                } else {
                    let systolic = row.systolic + 1000 + Int64(model.nextID)  // values no row has
                    let outcome = try current!.ingest([incoming(bloodPressure(systolic: systolic, minute: 0, receivedMillisecond: now + 2,
                                                                            sequence: row.sequence))])
                    #expect(outcome == [.stored(OutboxReadingID(model.nextID))], "seed \(seed) step \(step)")
                    model.rows[model.nextID] = ModelRow(state: .pending, changedAt: now, sequence: row.sequence, systolic: systolic, assigned: true)
                    model.nextID += 1
                }
            case 33..<50:  // take a batch
                let limit = random.int(1...6)
                let due = model.ids(.pending).filter { (model.rows[$0]?.due ?? .min) <= now }.prefix(limit)
                let batch = try current!.nextBatch(limit: limit, now: clock.now)
                #expect(batch.map(\.id.rawValue) == Array(due), "seed \(seed) step \(step)")
                for id in due { model.rows[id]?.state = .inFlight; model.rows[id]?.changedAt = now }
            case 50..<62:  // deliver some in-flight rows
                let chosen = model.ids(.inFlight).filter { _ in random.chance(60) }
                try current!.markDelivered(chosen.map { DeliveryRecord(id: OutboxReadingID($0), status: random.chance(80) ? 201 : 200, locations: []) },
                                         at: clock.now)
                for id in chosen { model.rows[id]?.state = .delivered; model.rows[id]?.deliveredAt = now; model.rows[id]?.due = nil }
            case 62..<72:  // retry some in-flight rows later
                let chosen = model.ids(.inFlight).filter { _ in random.chance(60) }
                let wait = Int64(random.int(0...120))
                try current!.scheduleRetry(chosen.map { OutboxReadingID($0) }, error: "HTTP 503", notBefore: clock.now.addingTimeInterval(Double(wait)))
                for id in chosen {
                    model.rows[id]?.state = .pending
                    model.rows[id]?.attempts += 1
                    model.rows[id]?.due = now + wait * 1000
                }
            case 72..<77:  // a permanent refusal
                guard let id = model.ids(.inFlight).randomElement(using: &random.generator) else { continue }
                try current!.deadLetter(OutboxReadingID(id), httpStatus: 422, reason: "invalid", outcome: nil, at: clock.now)
                model.rows[id]?.state = .dead
                model.rows[id]?.attempts += 1
                model.rows[id]?.due = nil
            case 77..<81:  // an operator retries or discards a dead letter
                guard let id = model.ids(.dead).randomElement(using: &random.generator) else { continue }
                if random.chance(50) {
                    try current!.retryDeadLetter(OutboxReadingID(id), actor: "op")
                    model.rows[id]?.state = .pending
                } else {
                    try current!.discardDeadLetter(OutboxReadingID(id), actor: "op")
                    model.rows[id]?.state = .discarded
                }
                model.rows[id]?.changedAt = now
                model.rows[id]?.due = nil
            case 81..<85:  // an operator assigns a held reading
                guard let id = model.ids(.unassigned).randomElement(using: &random.generator) else { continue }
                try current!.assign(OutboxReadingID(id), to: testPatient, actor: "op")
                model.rows[id]?.state = .pending
                model.rows[id]?.assigned = true
                model.rows[id]?.changedAt = now
            case 85..<89:  // prune
                let cutoff = now - Int64(random.int(0...300)) * 1000
                let expected = model.rows.filter {
                    ($0.value.state == .delivered && ($0.value.deliveredAt ?? .max) < cutoff)
                        || ($0.value.state == .discarded && $0.value.changedAt < cutoff)
                }.map(\.key)
                #expect(try current!.prune(deliveredBefore: Date(outboxMilliseconds: cutoff)) == expected.count, "seed \(seed) step \(step)")
                for id in expected { model.rows[id] = nil }
            case 89..<94:  // a stop and a start: in-flight rows are pending again
                let inFlight = model.ids(.inFlight)
                current = nil  // closes the file first, as a stop does
                current = try Outbox(path: directory.database, options: settings)
                reopens += 1
                #expect(current!.recovery.requeuedInFlight == inFlight.count, "seed \(seed) step \(step)")
                #expect(current!.recovery.isClean)
                for id in inFlight { model.rows[id]?.state = .pending; model.rows[id]?.changedAt = now }
                try compareAll(step)
            default:  // time passes
                clock.advance(seconds: Int64(random.int(1...90)))
            }
        }
        try compareAll(250)
        let summary = try current!.summary()
        for state in ReadingState.allCases { #expect(summary.counts[state] == model.ids(state).count, "seed \(seed): \(state)") }
        #expect(reopens > 0, "seed \(seed) never reopened")
    }
}
