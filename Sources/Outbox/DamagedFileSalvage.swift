import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Replacing a file that is not a database or whose pages are damaged: build a new file beside it with
/// every row that can still be read and whose checksum verifies, keep the damaged file under another name,
/// and put the new file in its place. The rest is counted.
///
/// The order makes a kill at any moment safe, and the next start either redoes or finishes the work:
/// 1. The new file is built completely at `<path>.salvage` while the damaged file stays at `<path>`. A kill
///    here leaves `<path>` as it was; the next start finds it damaged again and starts over (a stale
///    `.salvage` is always incomplete and is removed).
/// 2. The damaged file and its -wal/-journal get a second name, `<path>.corrupt-<UTC time>`, by hard link
///    (or a copy where links are not supported). A kill here only leaves an extra copy.
/// 3. `.salvage` is renamed to `<path>.salvaged`: the mark that the new file is complete and the damaged one
///    is kept. From here on the next start finishes instead of starting over (``finishInterruptedReplacement(path:)``).
/// 4. The damaged file's -wal, -journal and -shm are removed from `<path>` (their content is kept under the
///    aside name), so that no journal of the old file is ever applied to the new one, and `.salvaged` is
///    renamed over `<path>`.
extension OutboxStore {
    struct SalvageResult {
        var salvaged: [String: Int] = [:]
        var quarantined = 0
        var lost = 0
        var unreadableTables: [String] = []
    }

    static func salvagePath(_ path: String) -> String { path + ".salvage" }
    static func completedSalvagePath(_ path: String) -> String { path + ".salvaged" }

    static func replaceDamagedFile(path: String, options: OutboxOptions, reason: String, report: RecoveryReport)
        throws(OutboxError) -> (store: OutboxStore, report: RecoveryReport) {
        var report = report
        let building = salvagePath(path)
        try removeDatabaseFiles(building, of: path)
        let asidePath = asideName(path: path, at: options.clock())

        // 1. The whole new file, from the damaged one read in place.
        let store = try connect(path: building, options: options, creating: true)
        do throws(OutboxError) {
            report.createdNewFile = true
            report.migratedFrom = nil
            try store.prepareForUse(report: &report)
            let salvage = try store.salvage(from: path)
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
            // Out of WAL mode, so that the finished file is this one file and renaming it leaves no -wal behind.
            do { _ = try store.database.query("PRAGMA journal_mode=DELETE") } catch { throw store.error(error) }
        } catch {
            store.database.close()
            throw error
        }
        store.database.close()
        for suffix in ["-wal", "-journal"] where FileManager.default.fileExists(atPath: building + suffix) {
            throw OutboxError.recoveryFailed(path: path, problem: "the new file \(building) still has a \(suffix) file after closing")
        }
        unlink(building + "-shm")
        try fsyncFile(building, of: path)

        // 2. The damaged file keeps a name of its own before <path> stops naming it.
        try keep(path, as: asidePath)
        // 3. The new file is complete and the old one kept.
        try rename(building, to: completedSalvagePath(path), of: path)
        // 4. The new file takes <path>.
        _ = try finishInterruptedReplacement(path: path)

        let final = try connect(path: path, options: options, creating: false)
        do { try final.prepareForUse(report: &report) } catch {
            final.database.close()
            throw error
        }
        return (final, report)
    }

    /// Completes step 4 after a kill between steps 3 and 4 (see the type's comment); true when there was a
    /// completed replacement to put in place. Run at every start of the owner, before the file is opened.
    static func finishInterruptedReplacement(path: String) throws(OutboxError) -> Bool {
        let completed = completedSalvagePath(path)
        guard FileManager.default.fileExists(atPath: completed) else { return false }
        // Kept under the aside name since step 2; applied to the new file they would corrupt it.
        for suffix in ["-wal", "-journal", "-shm"] {
            try remove(path + suffix, of: path, what: "the damaged file's")
        }
        try rename(completed, to: path, of: path)
        return true
    }

    /// Removes a database file and its companions (a stale, incomplete `.salvage`).
    static func removeDatabaseFiles(_ file: String, of path: String) throws(OutboxError) {
        for suffix in ["", "-wal", "-journal", "-shm"] {
            try remove(file + suffix, of: path, what: "the stale")
        }
    }

    /// Unlinks `file`; a file that is not there is fine.
    private static func remove(_ file: String, of path: String, what: String) throws(OutboxError) {
        guard unlink(file) != 0, errno != ENOENT else { return }
        throw OutboxError.recoveryFailed(path: path, problem: "removing \(what) \(file) failed: " + String(cString: strerror(errno)))
    }

    /// `<path>.corrupt-<UTC time>[-n]`, a name no file has yet.
    static func asideName(path: String, at date: Date) -> String {
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
        return aside
    }

    /// Gives the damaged file and its -wal and -journal the aside name too (same suffixes, so the kept file
    /// still opens with its own WAL): a hard link, or a copy on file systems without links. The -shm is
    /// only an index of the WAL and is rebuilt.
    private static func keep(_ path: String, as aside: String) throws(OutboxError) {
        for suffix in ["", "-wal", "-journal"] where FileManager.default.fileExists(atPath: path + suffix) {
            if link(path + suffix, aside + suffix) == 0 { continue }
            let reason = String(cString: strerror(errno))
            do {
                try FileManager.default.copyItem(atPath: path + suffix, toPath: aside + suffix)
            } catch {
                throw OutboxError.recoveryFailed(path: path, problem: "keeping \(path + suffix) as \(aside + suffix) failed: "
                    + "link: \(reason); copy: \(error)")
            }
            try fsyncFile(aside + suffix, of: path)
        }
        fsyncDirectory(of: path)
    }

    private static func rename(_ from: String, to: String, of path: String) throws(OutboxError) {
        guard Glibc.rename(from, to) == 0 else {
            throw OutboxError.recoveryFailed(path: path, problem: "renaming \(from) to \(to) failed: " + String(cString: strerror(errno)))
        }
        fsyncDirectory(of: to)
    }

    private static func fsyncFile(_ file: String, of path: String) throws(OutboxError) {
        let descriptor = Glibc.open(file, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw OutboxError.recoveryFailed(path: path, problem: "opening \(file) to flush it failed: " + String(cString: strerror(errno)))
        }
        defer { Glibc.close(descriptor) }
        guard fsync(descriptor) == 0 else {
            throw OutboxError.recoveryFailed(path: path, problem: "flushing \(file) to disk failed: " + String(cString: strerror(errno)))
        }
    }

    /// Copies what can be read from the damaged file at `damagedPath` (opened read-only) into this new,
    /// empty outbox, one table per transaction, a row at a time.
    func salvage(from damagedPath: String) throws(OutboxError) -> SalvageResult {
        var result = SalvageResult()
        let source: SQLiteDatabase
        do {
            source = try SQLiteDatabase(path: damagedPath, readOnly: true)
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
        for table in Schema.allTables where present.contains(table.name) {
            try transaction("salvage \(table.name) from a damaged file", synchronous: "FULL") { () throws(OutboxError) in
                let read = try copyRows(of: table, from: source, into: &result)
                result.lost += read.unreadableIDs
                if read.uncounted { result.unreadableTables.append(table.name) }
                if table.name == Schema.readings.name, read.highestID > 0 {
                    // Ids of lost readings are never handed out again: the old audit trail names them. (sqlite_sequence
                    // has no unique name, so an insert would add a second row rather than be ignored.)
                    if try query("SELECT 1 FROM sqlite_sequence WHERE name = 'readings'").isEmpty {
                        try run("INSERT INTO sqlite_sequence(name, seq) VALUES ('readings', ?1)", [.integer(read.highestID)])
                    } else {
                        try run("UPDATE sqlite_sequence SET seq = max(seq, ?1) WHERE name = 'readings'", [.integer(read.highestID)])
                    }
                }
            }
        }
        return result
    }

    private struct ReadRows {
        /// Ids whose row could not be read.
        var unreadableIDs = 0
        /// True when the damage hid how many rows there were.
        var uncounted = false
        /// The highest id the table has handed out, as far as can be told.
        var highestID: Int64 = 0
    }

    /// The most ids looked up one by one after a broken scan; beyond it the loss is reported as uncounted.
    private static let maximumGap: Int64 = 1_000_000
    /// A damaged `sqlite_sequence` above this is not carried over: the new file would run out of ids.
    private static let maximumSequence: Int64 = 1 << 53

    /// Copies a table in id order; where the scan breaks, looks up the remaining ids one by one (a lookup by
    /// id walks only the pages on its own path, so rows beyond a damaged page still come back).
    private func copyRows(of table: Schema.Table, from source: SQLiteDatabase, into result: inout SalvageResult) throws(OutboxError) -> ReadRows {
        var read = ReadRows()
        let columns = table.columns + (table.hasChecksum ? ["checksum", table.checksumExpression] : [])
        let select = "SELECT \(columns.joined(separator: ", ")) FROM \(table.name)"
        // A table whose columns are not this version's cannot be copied; its loss cannot be counted either.
        guard (try? source.query(select + " LIMIT 0")) != nil else {
            read.uncounted = true
            return read
        }
        func take(_ row: [Value], result: inout SalvageResult) throws(OutboxError) {
            if try copy(row, of: table) {
                result.salvaged[table.name, default: 0] += 1
            } else {
                result.quarantined += 1
            }
        }
        var lastID: Int64 = 0
        var copyFailure: OutboxError?
        var scanBroke = false
        do {
            try source.forEachRow(select + " ORDER BY id") { row in
                do throws(OutboxError) {
                    try take(row, result: &result)
                } catch {
                    copyFailure = error
                    return false
                }
                lastID = row[0].integer ?? lastID
                return true
            }
        } catch {
            scanBroke = true
        }
        if let copyFailure { throw copyFailure }

        // What the damaged file says its highest id is, where that is possible at all (a damaged
        // sqlite_sequence may hold anything, Int64.min and Int64.max included).
        let sequence = (try? source.query("SELECT seq FROM sqlite_sequence WHERE name = ?1", [.text(table.name)]))?.first?.first?.integer
        read.highestID = lastID
        if let sequence, sequence > lastID, sequence <= Self.maximumSequence { read.highestID = sequence }
        guard scanBroke else { return read }

        let top = (try? source.query("SELECT max(id) FROM \(table.name)"))?.first?.first?.integer
        // Compared before subtracting: the gap of a corrupt bound may not fit 64 bits.
        guard let bound = [sequence, top].compactMap({ $0 }).filter({ $0 >= lastID }).max() else {
            read.uncounted = true
            return read
        }
        let (gap, overflow) = bound.subtractingReportingOverflow(lastID)
        guard !overflow, gap <= Self.maximumGap else {
            read.uncounted = true
            return read
        }
        read.highestID = max(read.highestID, bound)
        guard bound > lastID else { return read }
        for id in (lastID + 1)...bound {
            let rows: [[Value]]
            do { rows = try source.query(select + " WHERE id = ?1", [.integer(id)]) } catch {
                read.unreadableIDs += 1
                continue
            }
            for row in rows { try take(row, result: &result) }
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
