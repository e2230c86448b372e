import Foundation
import Testing
import VitalModel
@testable import Outbox

/// Damage from bit rot to a file that is no database, each with the rows expected to survive and proof
/// that the recovery path ran (in the style of OTel's TestPersistentQueue_CorruptedData).
@Suite("Outbox corruption recovery")
struct CorruptionTests {
    static let count = 30

    /// An outbox of `count` readings (each naming itself `marker-NNNN` in its payload), some delivered and
    /// one dead-lettered, closed and vacuumed so that every row's bytes are in exactly one page.
    static func populate(_ directory: TemporaryDirectory) throws -> [Int64: Reading] {
        var readings: [Int64: Reading] = [:]
        let outbox = try Outbox(path: directory.database, options: options(reserve: 0))
        for index in 1...count {
            var reading = bloodPressure(systolic: Int64(100 + index), minute: index % 60, sequence: index)
            reading.source.profileID = "marker-" + String(String(index + 10_000).dropFirst())
            reading.raw = Array(repeating: UInt8(index), count: 300)  // about a fifth of a page per row
            let outcome = try outbox.ingest([incoming(reading)])
            readings[outcome[0].id.rawValue] = reading
        }
        let batch = try outbox.nextBatch(limit: 5, now: Date())
        try outbox.markDelivered(batch.prefix(4).map { DeliveryRecord(id: $0.id, status: 201, locations: ["Observation/\($0.id.rawValue)"]) }, at: Date())
        try outbox.deadLetter(batch[4].id, httpStatus: 422, reason: "invalid", outcome: "{}", at: Date())
        try tamper(directory.database, "VACUUM")
        return readings
    }

    static func fileBytes(_ path: String) throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: path))) }

    static func write(_ bytes: [UInt8], to path: String) throws { try Data(bytes).write(to: URL(fileURLWithPath: path)) }

    /// Offsets of `marker-` in the file, with the reading index each names.
    static func markers(in bytes: [UInt8]) -> [(offset: Int, index: Int64)] {
        let needle = Array("marker-".utf8)
        var found: [(Int, Int64)] = []
        var offset = 0
        while offset + needle.count + 4 <= bytes.count {
            if bytes[offset] == needle[0], Array(bytes[offset..<offset + needle.count]) == needle,
               let index = Int64(String(decoding: bytes[offset + needle.count..<offset + needle.count + 4], as: UTF8.self)) {
                found.append((offset, index))
            }
            offset += 1
        }
        return found
    }

    static func pageSize(_ path: String) throws -> Int { Int(try scalar(path, "PRAGMA page_size") ?? "") ?? 4096 }

    /// Every reading the outbox holds, by id.
    static func survivors(_ outbox: Outbox) throws -> [Int64: Reading] {
        var result: [Int64: Reading] = [:]
        for state in ReadingState.allCases {
            for stored in try outbox.readings(in: state, limit: 1000) { result[stored.id.rawValue] = stored.reading }
        }
        return result
    }

    @Test("no damage: everything opens as it was")
    func none() throws {
        let directory = TemporaryDirectory()
        let readings = try Self.populate(directory)
        let outbox = try Outbox(path: directory.database, options: options())
        #expect(outbox.recovery.isClean && outbox.recovery.quickCheck == "ok")
        #expect(try Self.survivors(outbox) == readings)
        #expect(try outbox.summary().quarantined == 0)
    }

    @Test("one row changed behind the outbox's back is quarantined with its raw text; the rest works")
    func oneRow() throws {
        let directory = TemporaryDirectory()
        var readings = try Self.populate(directory)
        try tamper(directory.database, "UPDATE readings SET payload = replace(payload, '\"value\":117', '\"value\":171') WHERE id = 17")
        let outbox = try Outbox(path: directory.database, options: options())
        #expect(outbox.recovery.quarantinedRows == ["readings": 1])
        #expect(outbox.recovery.replacedFile == nil && !outbox.recovery.isClean)
        #expect(outbox.recovery.description.contains("1 from readings"))
        readings[17] = nil
        #expect(try Self.survivors(outbox) == readings)
        let summary = try outbox.summary()
        #expect(summary.quarantined == 1)
        let row = try #require(try outbox.quarantinedRows(limit: 10).first)
        #expect(row.table == "readings" && row.rowID == 17 && row.raw.contains("\\\"value\\\":171") && row.raw.contains("marker-0017"))
        let event = try #require(try outbox.auditTrail(limit: 1).first)
        #expect(event.event == "quarantined" && event.readingID == OutboxReadingID(17))
        #expect(!(event.detail ?? "").contains("171"))
        // The device may send the reading again: it is stored anew, not a duplicate of a quarantined row.
        #expect(try outbox.ingest([incoming(bloodPressure(systolic: 117, minute: 17, sequence: 17))]) == [.stored(OutboxReadingID(31))])
    }

    @Test("a damaged checksum column quarantines its row")
    func checksumColumn() throws {
        let directory = TemporaryDirectory()
        var readings = try Self.populate(directory)
        try tamper(directory.database, "UPDATE readings SET checksum = checksum + 1 WHERE id = 3; UPDATE audit SET checksum = -1 WHERE id = 1")
        let outbox = try Outbox(path: directory.database, options: options())
        #expect(outbox.recovery.quarantinedRows == ["readings": 1, "audit": 1])
        readings[3] = nil
        #expect(try Self.survivors(outbox) == readings)
        #expect(try outbox.summary().quarantined == 2)
    }

    @Test("all rows damaged: all quarantined, and the outbox still takes new readings")
    func allRows() throws {
        let directory = TemporaryDirectory()
        _ = try Self.populate(directory)
        try tamper(directory.database, "UPDATE readings SET attempts = attempts + 7")
        let outbox = try Outbox(path: directory.database, options: options())
        #expect(outbox.recovery.quarantinedRows == ["readings": Self.count])
        #expect(try Self.survivors(outbox).isEmpty)
        #expect(try outbox.summary().quarantined == Self.count)
        #expect(try outbox.ingest([incoming(bloodPressure(minute: 59))]) == [.stored(OutboxReadingID(Int64(Self.count + 1)))])
        #expect(try outbox.summary().deadLetters.isEmpty)  // its reading is quarantined, so it is not listed
    }

    @Test("bit rot inside one row's bytes passes quick_check and is caught by the checksum")
    func bitRot() throws {
        let directory = TemporaryDirectory()
        var readings = try Self.populate(directory)
        var bytes = try Self.fileBytes(directory.database)
        let marker = try #require(Self.markers(in: bytes).first { $0.index == 9 })
        bytes[marker.offset] ^= 0x20  // "marker" becomes "Marker"
        try Self.write(bytes, to: directory.database)
        let outbox = try Outbox(path: directory.database, options: options())
        #expect(outbox.recovery.quickCheck == "ok")
        #expect(outbox.recovery.quarantinedRows == ["readings": 1])
        readings[9] = nil
        #expect(try Self.survivors(outbox) == readings)
        #expect(try outbox.quarantinedRows(limit: 1).first?.raw.contains("Marker-0009") == true)
    }

    @Test("a damaged page: the file is moved aside, every other row salvaged, the page's rows counted lost")
    func page() throws {
        let directory = TemporaryDirectory()
        var readings = try Self.populate(directory)
        let original = try Self.fileBytes(directory.database)
        let pageSize = try Self.pageSize(directory.database)
        let markers = Self.markers(in: original)
        let page = try #require(markers.first { $0.index == 15 }).offset / pageSize
        let inPage = Set(markers.filter { $0.offset / pageSize == page }.map(\.index))
        #expect(inPage.count >= 2 && inPage.count < Self.count)
        var damaged = original
        for offset in page * pageSize..<page * pageSize + 8 { damaged[offset] = 0xFF }  // the b-tree page header
        try Self.write(damaged, to: directory.database)

        let outbox = try Outbox(path: directory.database, options: options())
        let recovery = outbox.recovery
        let replaced = try #require(recovery.replacedFile, "\(recovery)")
        #expect(replaced.reason.hasPrefix("quick_check "), "\(replaced.reason)")
        #expect(recovery.quickCheck != "ok" && recovery.quickCheck != nil)
        #expect(replaced.lostRows == inPage.count, "\(recovery)")
        #expect(replaced.salvagedRows["readings"] == Self.count - inPage.count)
        #expect(replaced.salvagedRows["dead_letters"] == 1)
        #expect(replaced.unreadableTables.isEmpty)
        #expect(replaced.movedTo.hasPrefix(directory.database + ".corrupt-") && replaced.movedTo.hasSuffix("Z"))
        #expect(try Self.fileBytes(replaced.movedTo) == damaged)
        #expect(recovery.description.contains("moved aside to \(replaced.movedTo)"))
        #expect(recovery.description.contains("\(inPage.count) rows could not be read and are lost"))
        for index in inPage { readings[index] = nil }
        #expect(try Self.survivors(outbox) == readings)
        // Delivered rows stay delivered with their locations; the dead letter is still listed.
        let delivered = try outbox.readings(in: .delivered, limit: 10).filter { !inPage.contains($0.id.rawValue) }
        #expect(delivered.allSatisfy { $0.locations == ["Observation/\($0.id.rawValue)"] })
        #expect(try outbox.summary().deadLetters.count == (inPage.contains(5) ? 0 : 1))
        #expect(try outbox.auditTrail(limit: 1).first?.event == "replaced-damaged-file")
        // Ids of lost readings are not reused.
        #expect(try outbox.ingest([incoming(bloodPressure(minute: 59, sequence: 999))]) == [.stored(OutboxReadingID(Int64(Self.count + 1)))])
        #expect(try scalar(directory.database, "PRAGMA quick_check") == "ok")
    }

    @Test("a truncated file: what lies in the kept pages is salvaged, nothing silently")
    func truncated() throws {
        let directory = TemporaryDirectory()
        let readings = try Self.populate(directory)
        let original = try Self.fileBytes(directory.database)
        let pageSize = try Self.pageSize(directory.database)
        let markers = Self.markers(in: original)
        let keptPages = try #require(markers.first { $0.index == 20 }).offset / pageSize
        let expected = Set(markers.filter { $0.offset / pageSize < keptPages }.map(\.index))
        try Self.write(Array(original.prefix(keptPages * pageSize)), to: directory.database)

        let outbox = try Outbox(path: directory.database, options: options())
        let replaced = try #require(outbox.recovery.replacedFile, "\(outbox.recovery)")
        let survivors = try Self.survivors(outbox)
        #expect(Set(survivors.keys) == expected, "\(outbox.recovery)")
        for (id, reading) in survivors { #expect(reading == readings[id]) }
        // The loss is counted, or the table is named as one whose loss could not be counted.
        #expect(replaced.lostRows == Self.count - expected.count || replaced.unreadableTables.contains("readings"), "\(outbox.recovery)")
        #expect(outbox.recovery.description.contains("moved aside"))
    }

    @Test("a file that is no database is moved aside and a new outbox starts")
    func notADatabase() throws {
        let directory = TemporaryDirectory()
        let text = Array(String(repeating: "these are not the pages you are looking for\n", count: 2000).utf8)
        try Self.write(text, to: directory.database)
        let outbox = try Outbox(path: directory.database, options: options())
        let replaced = try #require(outbox.recovery.replacedFile)
        #expect(replaced.reason.hasPrefix("not a SQLite database"))
        #expect(replaced.salvagedRows.isEmpty && replaced.lostRows == 0)
        #expect(replaced.unreadableTables == ["readings", "dead_letters", "audit", "quarantine"])
        #expect(try Self.fileBytes(replaced.movedTo) == text)
        #expect(outbox.recovery.description.contains("could not be read at all"))
        #expect(try outbox.ingest([incoming(bloodPressure())]) == [.stored(OutboxReadingID(1))])
    }

    @Test("damage found twice in one second gets two distinct names")
    func twoDamagedFiles() throws {
        let directory = TemporaryDirectory()
        let clock = TestClock()
        var moved: [String] = []
        for _ in 0..<2 {
            try Self.write(Array(repeating: 0x41, count: 8192), to: directory.database)
            moved.append(try #require(try Outbox(path: directory.database, options: options(clock: clock)).recovery.replacedFile?.movedTo))
        }
        #expect(moved[0] != moved[1] && moved[1] == moved[0] + "-2")
    }
}
