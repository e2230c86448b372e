import Foundation
import Synchronization
import Testing
import VitalModel
@testable import Outbox

@Suite("Outbox ingest")
struct IngestTests {
    @Test("a new outbox stores readings and gives them back with their subject")
    func store() throws {
        let directory = TemporaryDirectory()
        let clock = TestClock()
        let outbox = try Outbox(path: directory.database, options: options(clock: clock))
        #expect(outbox.recovery.createdNewFile)
        #expect(outbox.recovery.isClean)
        let outcomes = try outbox.ingest([incoming(bloodPressure(minute: 0)), incoming(bloodPressure(minute: 1), assigned: false)])
        #expect(outcomes == [.stored(OutboxReadingID(1)), .stored(OutboxReadingID(2))])
        let first = try #require(try outbox.reading(OutboxReadingID(1)))
        #expect(first.reading == bloodPressure(minute: 0))
        #expect(first.subject == testPatient)
        #expect(first.state == .pending)
        #expect(first.storedAt == clock.now)
        #expect(first.attempts == 0 && first.nextAttemptAt == nil && first.deliveredAt == nil && first.locations == [])
        #expect(try outbox.reading(OutboxReadingID(2))?.state == .unassigned)
        #expect(try outbox.reading(OutboxReadingID(2))?.subject == nil)
        #expect(try outbox.reading(OutboxReadingID(3)) == nil)
        #expect(try outbox.ingest([]) == [])
        // The file is for the service user only: it holds patient identifiers.
        let mode = try FileManager.default.attributesOfItem(atPath: directory.database)[.posixPermissions] as? Int
        #expect(mode == 0o600)
    }

    @Test("a device that re-sends its stored records makes no second row")
    func duplicates() throws {
        let directory = TemporaryDirectory()
        let outbox = try Outbox(path: directory.database, options: options())
        let first = try outbox.ingest([incoming(bloodPressure(minute: 0, sequence: 7)), incoming(bloodPressure(minute: 1, sequence: 8))])
        // The same records a day later: another receive time, another session, even another subject.
        let again = try outbox.ingest([incoming(bloodPressure(minute: 1, receivedMillisecond: 86_400_000, sequence: 8)),
                                       incoming(bloodPressure(minute: 0, receivedMillisecond: 86_400_000, sequence: 7), assigned: false)])
        #expect(again == [.duplicate(first[1].id), .duplicate(first[0].id)])
        // Duplicates inside one batch are found too.
        let batch = try outbox.ingest([incoming(bloodPressure(minute: 5)), incoming(bloodPressure(minute: 5, receivedMillisecond: 9))])
        #expect(batch == [.stored(OutboxReadingID(3)), .duplicate(OutboxReadingID(3))])
        #expect(try outbox.summary().counts[.pending] == 3)
        #expect(try outbox.auditTrail(limit: 10).isEmpty)
    }

    @Test("what makes a reading's key: device, kind, time; other slots and sequence numbers at that key are collisions")
    func distinctKeys() throws {
        let directory = TemporaryDirectory()
        let outbox = try Outbox(path: directory.database, options: options())
        let base = bloodPressure(minute: 0, sequence: 1)
        var otherKind = base
        otherKind.kind = .heartRate
        let distinct = [base, bloodPressure(minute: 0, address: "C4:F3:12:53:F2:CA", sequence: 1), bloodPressure(minute: 1, sequence: 1), otherKind,
                        // No device time: the receive instant keys it, so each delivery is its own reading.
                        bloodPressure(minute: nil, receivedMillisecond: 1), bloodPressure(minute: nil, receivedMillisecond: 2)]
        // The FHIR identifier has no user slot or sequence number: these would share the first one's.
        let colliding = [bloodPressure(minute: 0, slot: 2, sequence: 1), bloodPressure(minute: 0, slot: nil, sequence: 1),
                         bloodPressure(minute: 0, sequence: 2), bloodPressure(minute: 0)]
        let outcomes = try outbox.ingest((distinct + colliding).map { incoming($0) })
        #expect(outcomes == (1...10).map { .stored(OutboxReadingID(Int64($0))) })
        let receipt = try (1...10).map { try #require(try outbox.reading(OutboxReadingID(Int64($0)))).identifyByReceipt }
        #expect(receipt == Array(repeating: false, count: 6) + Array(repeating: true, count: 4))
        #expect(try outbox.ingest([incoming(bloodPressure(minute: nil, receivedMillisecond: 2))]) == [.duplicate(OutboxReadingID(6))])
        // Each colliding reading re-sent is found under its own collision key.
        let resent = try outbox.ingest(colliding.reversed().map { reading in
            var later = reading
            later.receivedAt.instant += 3600
            return incoming(later)
        })
        #expect(resent == (7...10).reversed().map { .duplicate(OutboxReadingID(Int64($0))) })
        #expect(try outbox.auditTrail(limit: 10).map(\.event) == Array(repeating: "clock-collision", count: 4))
    }

    @Test("a stuck clock with another sequence number: stored, and uploaded under its receive time")
    func stuckClockOtherSequence() throws {
        let directory = TemporaryDirectory()
        let outbox = try Outbox(path: directory.database, options: options())
        // Same device, kind, device time, slot and values; only the device's record number differs.
        let first = try outbox.ingest([incoming(bloodPressure(minute: 0, sequence: 41))])
        let second = try outbox.ingest([incoming(bloodPressure(minute: 0, receivedMillisecond: 60_000, sequence: 42))])
        #expect(first == [.stored(OutboxReadingID(1))] && second == [.stored(OutboxReadingID(2))])
        #expect(try outbox.reading(OutboxReadingID(1))?.identifyByReceipt == false)
        let stored = try #require(try outbox.reading(OutboxReadingID(2)))
        #expect(stored.identifyByReceipt && stored.reading.sequenceNumber == 42)
        let event = try #require(try outbox.auditTrail(limit: 1).first)
        #expect(event.event == "clock-collision" && event.readingID == OutboxReadingID(2))
        #expect(event.detail?.contains("same device, kind and device time as reading 1") == true, "\(event.detail ?? "")")
        #expect(event.detail?.contains("user slot or sequence number") == true)
        #expect(DedupeKey.isCollision(try #require(try scalar(directory.database, "SELECT dedupe_key FROM readings WHERE id = 2"))))
        #expect(!DedupeKey.isCollision(try #require(try scalar(directory.database, "SELECT dedupe_key FROM readings WHERE id = 1"))))
    }

    @Test("a stuck clock with another user slot and the same values: stored, uploaded under its receive time")
    func stuckClockOtherSlot() throws {
        let directory = TemporaryDirectory()
        let outbox = try Outbox(path: directory.database, options: options())
        let outcomes = try outbox.ingest([incoming(bloodPressure(minute: 0, slot: 1, sequence: 7)),
                                          incoming(bloodPressure(minute: 0, receivedMillisecond: 5, slot: 2, sequence: 7))])
        #expect(outcomes == [.stored(OutboxReadingID(1)), .stored(OutboxReadingID(2))])
        #expect(try outbox.reading(OutboxReadingID(1))?.identifyByReceipt == false)
        #expect(try outbox.reading(OutboxReadingID(2))?.identifyByReceipt == true)
        #expect(try outbox.reading(OutboxReadingID(2))?.reading.userSlot == 2)
    }

    @Test("same device, kind, time, values, slot and sequence number is a duplicate, whenever it comes")
    func sameEverything() throws {
        let directory = TemporaryDirectory()
        let outbox = try Outbox(path: directory.database, options: options())
        let first = try outbox.ingest([incoming(bloodPressure(minute: 0, slot: 3, sequence: 9))])
        let again = try outbox.ingest([incoming(bloodPressure(minute: 0, receivedMillisecond: 86_400_000, slot: 3, sequence: 9))])
        #expect(first == [.stored(OutboxReadingID(1))] && again == [.duplicate(OutboxReadingID(1))])
        #expect(try outbox.reading(OutboxReadingID(1))?.identifyByReceipt == false)
        #expect(try outbox.auditTrail(limit: 10).isEmpty)
    }

    @Test("a device clock that did not advance: same key, other values is another reading, audited without values")
    func clockCollision() throws {
        let directory = TemporaryDirectory()
        let outbox = try Outbox(path: directory.database, options: options())
        let first = try outbox.ingest([incoming(bloodPressure(systolic: 120, minute: 0))])
        let second = try outbox.ingest([incoming(bloodPressure(systolic: 131, minute: 0, receivedMillisecond: 60_000))])
        let third = try outbox.ingest([incoming(bloodPressure(systolic: 142, minute: 0, receivedMillisecond: 120_000))])
        #expect(first == [.stored(OutboxReadingID(1))])
        #expect(second == [.stored(OutboxReadingID(2))])
        #expect(third == [.stored(OutboxReadingID(3))])
        // Re-sending all three later changes nothing: each is found under its own key.
        let resent = try outbox.ingest([131, 142, 120].map { incoming(bloodPressure(systolic: $0, minute: 0, receivedMillisecond: 999_000)) })
        #expect(resent == [.duplicate(OutboxReadingID(2)), .duplicate(OutboxReadingID(3)), .duplicate(OutboxReadingID(1))])
        let audit = try outbox.auditTrail(limit: 10)
        #expect(audit.map(\.event) == ["clock-collision", "clock-collision"])
        #expect(audit.map(\.readingID) == [OutboxReadingID(3), OutboxReadingID(2)])
        for event in audit {
            let detail = event.detail ?? ""
            #expect(!detail.contains("131") && !detail.contains("142") && !detail.contains("120"), "\(detail)")
            #expect(!detail.contains(testPatient.value))
        }
        let keys = try SQLiteDatabase(path: directory.database).query("SELECT dedupe_key FROM readings ORDER BY id").compactMap { $0[0].text }
        #expect(keys[1] == keys[0] + "#rx:\(bloodPressure(minute: 0, receivedMillisecond: 60_000).receivedAt.instant.outboxMilliseconds)")
    }

    @Test("threads share one outbox: every reading stored once, every batch disjoint")
    func concurrent() throws {
        let directory = TemporaryDirectory()
        let outbox = try Outbox(path: directory.database, options: options())
        let taken = Mutex<[OutboxReadingID]>([])
        let failures = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 8) { worker in
            do {
                for round in 0..<10 {
                    _ = try outbox.ingest([incoming(bloodPressure(minute: round, slot: worker, sequence: 1)),
                                           incoming(bloodPressure(minute: round, slot: worker, sequence: 2))])
                    let batch = try outbox.nextBatch(limit: 3, now: Date())
                    taken.withLock { $0 += batch.map(\.id) }
                }
            } catch {
                failures.withLock { $0.append("\(error)") }
            }
        }
        #expect(failures.withLock { $0 } == [])
        let ids = taken.withLock { $0 }
        #expect(Set(ids).count == ids.count, "a reading was handed out twice")
        let counts = try outbox.summary().counts
        #expect(counts[.pending]! + counts[.inFlight]! == 160 && counts[.inFlight] == ids.count)
    }

    @Test("ingest refuses below the free-space reserve, writes nothing, and works again once space returns")
    func reserve() throws {
        let directory = TemporaryDirectory()
        let space = FakeFreeSpace()
        let outbox = try Outbox(path: directory.database, options: options(freeSpace: space, reserve: 1 << 20))
        #expect(try outbox.ingest([incoming(bloodPressure(minute: 0))]).count == 1)
        space.set((1 << 20) - 1)
        let error = #expect(throws: OutboxError.self) { try outbox.ingest([incoming(bloodPressure(minute: 1))]) }
        guard case .diskFull(let path, let free, let reserved, let cause)? = error else {
            Issue.record("expected diskFull, got \(String(describing: error))")
            return
        }
        #expect(path == directory.database && free == (1 << 20) - 1 && reserved == 1 << 20 && cause == nil)
        #expect(error?.description.contains("1024.0 KiB free") == true, "\(String(describing: error))")
        #expect(error?.description.contains("Fix: ") == true)
        #expect(try outbox.summary().counts[.pending] == 1)
        // State updates and pruning still commit below the reserve.
        let batch = try outbox.nextBatch(limit: 10, now: Date())
        try outbox.markDelivered(batch.map { DeliveryRecord(id: $0.id, status: 201, locations: ["Observation/1"]) }, at: Date())
        #expect(try outbox.prune(deliveredBefore: Date().addingTimeInterval(60)) == 1)
        space.set(1 << 20)
        #expect(try outbox.ingest([incoming(bloodPressure(minute: 1))]) == [.stored(OutboxReadingID(2))])
        // An unknown free space (statvfs failed) does not block ingest.
        space.set(nil)
        #expect(try outbox.ingest([incoming(bloodPressure(minute: 2))]).count == 1)
    }
}
