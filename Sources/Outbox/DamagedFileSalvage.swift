import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Replacing a file that is not a database or whose pages are damaged: move it aside, start a new file,
/// and copy over every row that can still be read and whose checksum verifies. The rest is counted.
extension OutboxStore {
    struct SalvageResult {
        var salvaged: [String: Int] = [:]
        var quarantined = 0
        var lost = 0
        var unreadableTables: [String] = []
    }

    static func replaceDamagedFile(path: String, options: OutboxOptions, reason: String, report: RecoveryReport)
        throws(OutboxError) -> (store: OutboxStore, report: RecoveryReport) {
        var report = report
        let asidePath = try moveAside(path: path, at: options.clock())
        let store = try connect(path: path, options: options, creating: true)
        report.createdNewFile = true
        report.migratedFrom = nil
        try store.prepareForUse(report: &report)
        let salvage = try store.salvage(from: asidePath)
        report.replacedFile = RecoveryReport.ReplacedFile(
            reason: reason, movedTo: asidePath, salvagedRows: salvage.salvaged, quarantinedRows: salvage.quarantined,
            lostRows: salvage.lost, unreadableTables: salvage.unreadableTables)
        try store.transaction("record the replacement of a damaged file", synchronous: "FULL") { () throws(OutboxError) in
            let counts = salvage.salvaged.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
            try store.audit("replaced-damaged-file", reading: nil, detail: "moved aside to \(asidePath); salvaged "
                + (counts.isEmpty ? "nothing" : counts) + "; quarantined \(salvage.quarantined); lost \(salvage.lost)"
                + (salvage.unreadableTables.isEmpty ? "" : "; unreadable: " + salvage.unreadableTables.joined(separator: ", ")))
        }
        // Salvaged in-flight rows were cut off like any other.
        try store.requeueInFlight(report: &report)
        return (store, report)
    }

    /// Renames the file and its -wal, -shm and -journal to `<path>.corrupt-<UTC time>[-n]<suffix>`, so the
    /// moved file still opens with its own WAL.
    static func moveAside(path: String, at date: Date) throws(OutboxError) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(secondsFromGMT: 0)
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        let stamp = path + ".corrupt-" + formatter.string(from: date)
        var aside = stamp
        var counter = 2
        while FileManager.default.fileExists(atPath: aside) {
            aside = stamp + "-\(counter)"
            counter += 1
        }
        for suffix in ["", "-wal", "-shm", "-journal"] where FileManager.default.fileExists(atPath: path + suffix) {
            guard rename(path + suffix, aside + suffix) == 0 else {
                let reason = String(cString: strerror(errno))
                throw OutboxError.recoveryFailed(path: path, problem: "renaming \(path + suffix) to \(aside + suffix) failed: \(reason)")
            }
        }
        fsyncDirectory(of: path)
        return aside
    }

    /// Copies what can be read from the damaged file at `asidePath` into this (new, empty) outbox.
    func salvage(from asidePath: String) throws(OutboxError) -> SalvageResult {
        var result = SalvageResult()
        let source: SQLiteDatabase
        do {
            source = try SQLiteDatabase(path: asidePath, readOnly: true)
            try RowChecksum.register(on: source)
            // Lets SQLite read a file shorter than its header says (a truncated copy) up to where it ends.
            try source.execute("PRAGMA writable_schema = ON")
        } catch {
            result.unreadableTables = Schema.allTables.map(\.name)
            return result
        }
        defer { source.close() }
        let present: Set<String>
        do {
            present = Set(try source.query("SELECT name FROM sqlite_master WHERE type = 'table'").compactMap { $0[0].text })
        } catch {
            result.unreadableTables = Schema.allTables.map(\.name)
            return result
        }
        var readingsMaxID: Int64 = 0
        for table in Schema.allTables where present.contains(table.name) {
            let read = readRows(of: table, from: source)
            result.lost += read.unreadableIDs
            if read.uncounted { result.unreadableTables.append(table.name) }
            if table.name == Schema.readings.name { readingsMaxID = read.maxID }
            try transaction("salvage \(table.name) from a damaged file", synchronous: "FULL") { () throws(OutboxError) in
                for row in read.rows {
                    if try copy(row, of: table) {
                        result.salvaged[table.name, default: 0] += 1
                    } else {
                        result.quarantined += 1
                    }
                }
            }
        }
        if readingsMaxID > 0 {
            // Ids of lost readings are never handed out again: the old audit trail names them.
            try transaction("salvage readings from a damaged file", synchronous: "FULL") { () throws(OutboxError) in
                try run("INSERT OR IGNORE INTO sqlite_sequence(name, seq) VALUES ('readings', 0)")
                try run("UPDATE sqlite_sequence SET seq = max(seq, ?1) WHERE name = 'readings'", [.integer(readingsMaxID)])
            }
        }
        return result
    }

    private struct ReadRows {
        var rows: [[Value]] = []
        /// Ids whose row could not be read.
        var unreadableIDs = 0
        /// True when the damage hid how many rows there were.
        var uncounted = false
        var maxID: Int64 = 0
    }

    /// Reads a table in id order; where the scan breaks, reads the remaining ids one by one (a lookup by id
    /// walks only the pages on its own path, so rows beyond a damaged page still come back).
    private func readRows(of table: Schema.Table, from source: SQLiteDatabase) -> ReadRows {
        var read = ReadRows()
        let columns = table.columns + (table.hasChecksum ? ["checksum", table.checksumExpression] : [])
        let select = "SELECT \(columns.joined(separator: ", ")) FROM \(table.name)"
        var lastID: Int64 = 0
        // A table whose columns are not this version's cannot be copied; its loss cannot be counted either.
        guard (try? source.query(select + " LIMIT 0")) != nil else {
            read.uncounted = true
            return read
        }
        do {
            try source.forEachRow(select + " ORDER BY id") { row in
                read.rows.append(row)
                lastID = row[0].integer ?? lastID
            }
            read.maxID = lastID
            return read
        } catch {}
        var maxID = try? source.query("SELECT seq FROM sqlite_sequence WHERE name = ?1", [.text(table.name)]).first?.first?.integer
        if maxID == nil { maxID = try? source.query("SELECT max(id) FROM \(table.name)").first?.first?.integer }
        guard let maxID, maxID - lastID <= 1_000_000 else {
            read.uncounted = true
            read.maxID = lastID
            return read
        }
        read.maxID = max(maxID, lastID)
        guard maxID > lastID else { return read }
        for id in (lastID + 1)...maxID {
            do {
                read.rows += try source.query(select + " WHERE id = ?1", [.integer(id)])
            } catch {
                read.unreadableIDs += 1
            }
        }
        return read
    }

    /// Inserts a salvaged row with its id and checksum when the checksum verifies; otherwise (or when it
    /// conflicts with a row already copied) puts it in the quarantine table. True when it was copied.
    private func copy(_ row: [Value], of table: Schema.Table) throws(OutboxError) -> Bool {
        let count = table.columns.count
        guard table.hasChecksum else {
            // A quarantined row of the damaged file stays quarantined, under a new id.
            try run("INSERT INTO quarantine(source_table, row_id, raw, reason, at) VALUES (?1, ?2, ?3, ?4, ?5)",
                    Array(row[1..<count]))
            return true
        }
        let columns = table.columns + ["checksum"]
        if let stored = row[count].integer, stored == row[count + 1].integer {
            let placeholders = (1...columns.count).map { "?\($0)" }.joined(separator: ", ")
            let inserted = try run("INSERT OR IGNORE INTO \(table.name)(\(columns.joined(separator: ", "))) VALUES (\(placeholders))",
                                   Array(row[0...count]))
            if inserted == 1 { return true }
        }
        try run("INSERT INTO quarantine(source_table, row_id, raw, reason, at) VALUES (?1, ?2, ?3, ?4, ?5)",
                [.text(table.name), row[0], .text(Self.rawText(columns: columns, row: Array(row[0...count]))),
                 .text("salvaged from a damaged file, but its checksum does not verify or it conflicts with another row"),
                 .integer(nowMilliseconds)])
        return false
    }
}
