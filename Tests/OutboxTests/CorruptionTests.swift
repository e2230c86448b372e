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
        #expect(replaced.unreadableTables == ["readings", "dead_letters", "audit", "quarantine", "visits", "attributions", "pruned"])
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

    /// The file with the page holding reading 15 damaged, and the reading indexes in that page.
    static func damagePage(_ directory: TemporaryDirectory) throws -> Set<Int64> {
        let original = try fileBytes(directory.database)
        let pageSize = try pageSize(directory.database)
        let markers = markers(in: original)
        let page = try #require(markers.first { $0.index == 15 }).offset / pageSize
        var damaged = original
        for offset in page * pageSize..<page * pageSize + 8 { damaged[offset] = 0xFF }
        try write(damaged, to: directory.database)
        return Set(markers.filter { $0.offset / pageSize == page }.map(\.index))
    }

    @Test("a damaged sqlite_sequence beside a damaged page does not trap the salvage", arguments: [Int64.min, -1, Int64.max])
    func damagedSequence(seq: Int64) throws {
        let directory = TemporaryDirectory()
        var readings = try Self.populate(directory)
        try tamper(directory.database, "UPDATE sqlite_sequence SET seq = \(seq) WHERE name = 'readings'")
        let inPage = try Self.damagePage(directory)
        let outbox = try Outbox(path: directory.database, options: options())
        let replaced = try #require(outbox.recovery.replacedFile, "\(outbox.recovery)")
        for index in inPage { readings[index] = nil }
        let survivors = try Self.survivors(outbox)
        // Every row outside the damaged page comes back, or the table is named as one whose loss is not counted.
        #expect(survivors == readings || replaced.unreadableTables.contains("readings"), "\(outbox.recovery)")
        #expect(survivors.allSatisfy { readings[$0.key] == $0.value })
        #expect(replaced.lostRows == inPage.count || replaced.unreadableTables.contains("readings"), "\(outbox.recovery)")
        // The new file hands out ids above every salvaged one, and still has ids to hand out.
        let next = try outbox.ingest([incoming(bloodPressure(minute: 59, sequence: 999))])
        #expect(next.first.map { $0.id.rawValue > (survivors.keys.max() ?? 0) } == true)
        #expect(try scalar(directory.database, "SELECT count(*) FROM sqlite_sequence WHERE name = 'readings'") == "1")
    }

    /// The files beside the outbox whose names start with its file name.
    static func siblings(_ directory: TemporaryDirectory) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasPrefix("outbox.db") }.sorted()
    }

    @Test("a replacement leaves only the new file and the kept damaged one, and a stale half-built one is removed")
    func staleSalvage() throws {
        let directory = TemporaryDirectory()
        let readings = try Self.populate(directory)
        let inPage = try Self.damagePage(directory)
        // What a kill while the new file was being built leaves: an incomplete .salvage.
        try Self.write(Array(repeating: 0x42, count: 5000), to: directory.database + ".salvage")
        try Self.write(Array(repeating: 0x43, count: 100), to: directory.database + ".salvage-wal")
        let outbox = try Outbox(path: directory.database, options: options())
        let replaced = try #require(outbox.recovery.replacedFile)
        #expect(replaced.salvagedRows["readings"] == Self.count - inPage.count)
        #expect(try Self.survivors(outbox) == readings.filter { !inPage.contains($0.key) })
        let aside = URL(fileURLWithPath: replaced.movedTo).lastPathComponent
        let names = try Self.siblings(directory)
        #expect(!names.contains { $0.contains(".salvage") }, "\(names)")
        #expect(names.contains(aside) && names.contains("outbox.db") && names.contains("outbox.db.lock"), "\(names)")
    }

    @Test("a kill after the new file was complete: the next start puts it in place and drops the damaged file's WAL")
    func interruptedReplacement() throws {
        let directory = TemporaryDirectory()
        let readings = try Self.populate(directory)
        let inPage = try Self.damagePage(directory)
        var movedTo = ""
        do {
            let outbox = try Outbox(path: directory.database, options: options())
            movedTo = try #require(outbox.recovery.replacedFile?.movedTo)
        }
        // Back to the moment between steps 3 and 4: the complete new file under .salvaged, and the damaged
        // file with a WAL of its own still at the outbox's path.
        #expect(rename(directory.database, directory.database + ".salvaged") == 0)
        let damaged = try Self.fileBytes(movedTo)
        try Self.write(damaged, to: directory.database)
        // A valid WAL, of another database: applied to the new file it would overwrite its pages.
        let foreign = try SQLiteDatabase(path: directory.path + "/foreign.db")
        _ = try foreign.query("PRAGMA journal_mode=WAL")
        try foreign.execute("PRAGMA wal_autocheckpoint=0; CREATE TABLE t(x); INSERT INTO t VALUES (zeroblob(20000));")
        try Self.write(try Self.fileBytes(directory.path + "/foreign.db-wal"), to: directory.database + "-wal")
        foreign.close()
        try Self.write(Array(repeating: 0x45, count: 100), to: directory.database + "-shm")

        let outbox = try Outbox(path: directory.database, options: options())
        let recovery = outbox.recovery
        #expect(recovery.replacedFile == nil && !recovery.isClean && recovery.quickCheck == "ok", "\(recovery)")
        let finished = try #require(recovery.finishedInterruptedReplacement)
        #expect(finished.contains("moved aside to \(movedTo)"), "\(finished)")
        #expect(recovery.description.contains("this start put the new file in place"))
        #expect(try Self.survivors(outbox) == readings.filter { !inPage.contains($0.key) })
        #expect(!FileManager.default.fileExists(atPath: directory.database + ".salvaged"))
        #expect(try outbox.ingest([incoming(bloodPressure(minute: 59, sequence: 999))]) == [.stored(OutboxReadingID(Int64(Self.count + 1)))])
        #expect(try scalar(directory.database, "PRAGMA quick_check") == "ok")
    }
}
