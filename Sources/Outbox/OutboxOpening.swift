import Foundation
import VitalModel
#if canImport(Glibc)
import Glibc
#endif

/// Opening the file: version check, integrity check, migration, checksum verification, requeue.
extension OutboxStore {
    /// Why a file had to be replaced, found while opening it.
    private struct Damage {
        let reason: String
        let quickCheck: String?
    }

    /// Opens (or creates) the outbox at `path` and brings it to a working state, reporting what it did.
    static func open(path: String, options: OutboxOptions) throws(OutboxError) -> (store: OutboxStore, report: RecoveryReport) {
        if options.role == .operator { return try openForOperator(path: path, options: options) }
        // A replacement of a damaged file that a kill interrupted: finished if its new file was complete, else
        // its incomplete new file goes and the damaged file (still at `path`) is checked and replaced again.
        let finishedReplacement = try finishInterruptedReplacement(path: path)
        try removeDatabaseFiles(salvagePath(path), of: path)
        let existing = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue
        var report = RecoveryReport(path: path, createdNewFile: (existing ?? 0) == 0, migratedFrom: nil,
                                    schemaVersion: Schema.currentVersion, quickCheck: nil, quarantinedRows: [:],
                                    requeuedInFlight: 0, replacedFile: nil)
        let store = try connect(path: path, options: options, creating: existing == nil)
        let damage: Damage?
        do {
            damage = try store.checkHeaderAndIntegrity(report: &report)
        } catch {
            store.database.close()
            throw error
        }
        if let damage {
            store.database.close()
            report.quickCheck = damage.quickCheck
            return try replaceDamagedFile(path: path, options: options, reason: damage.reason, report: report)
        }
        try store.prepareForUse(report: &report)
        if finishedReplacement {
            let detail = try store.query("SELECT detail FROM audit WHERE event = 'replaced-damaged-file' ORDER BY id DESC LIMIT 1")
            report.finishedInterruptedReplacement = detail.first?.first?.text ?? "its audit event is missing"
        }
        return (store, report)
    }

    /// Opens an existing outbox as it is, for commands run beside the daemon: nothing is checked, repaired
    /// or requeued here, because the daemon owns that.
    private static func openForOperator(path: String, options: OutboxOptions) throws(OutboxError) -> (store: OutboxStore, report: RecoveryReport) {
        guard FileManager.default.fileExists(atPath: path) else { throw OutboxError.notReady(path: path, problem: "does not exist") }
        let store = try connect(path: path, options: options, creating: false)
        let version: Int
        do { version = Int(try store.database.query("PRAGMA user_version").first?.first?.integer ?? 0) } catch {
            store.database.close()
            throw OutboxError.cannotOpen(path: path, cause: error)
        }
        guard version == Schema.currentVersion else {
            store.database.close()
            throw OutboxError.notReady(path: path, problem: "has schema version \(version), not the \(Schema.currentVersion) of this VitalGate")
        }
        do { try store.database.setSynchronous("FULL") } catch { throw OutboxError.cannotOpen(path: path, cause: error) }
        return (store, RecoveryReport(path: path, createdNewFile: false, migratedFrom: nil, schemaVersion: version, quickCheck: nil,
                                      quarantinedRows: [:], requeuedInFlight: 0, replacedFile: nil))
    }

    /// Opens a connection with the pragmas and the checksum function every Outbox connection needs; no read yet.
    static func connect(path: String, options: OutboxOptions, creating: Bool) throws(OutboxError) -> OutboxStore {
        let database: SQLiteDatabase
        do { database = try SQLiteDatabase(path: path, readOnly: false) } catch { throw OutboxError.cannotOpen(path: path, cause: error) }
        // Patient identifiers live in this file: readable by the service user only (-wal/-shm inherit it).
        if creating { chmod(path, 0o600) }
        database.setBusyTimeout(milliseconds: Int32(clamping: options.busyTimeout.wholeMilliseconds))
        do { try RowChecksum.register(on: database) } catch { throw OutboxError.cannotOpen(path: path, cause: error) }
        return OutboxStore(database: database, path: path, options: options)
    }

    /// Reads the schema version (which finds a file that is no database), refuses newer or foreign files
    /// untouched, and runs `quick_check` on an existing outbox. Returns the damage of a file to replace.
    private func checkHeaderAndIntegrity(report: inout RecoveryReport) throws(OutboxError) -> Damage? {
        let version: Int
        do {
            version = Int(try database.query("PRAGMA user_version").first?.first?.integer ?? 0)
        } catch {
            guard error.isCorruption else { throw OutboxError.cannotOpen(path: path, cause: error) }
            return Damage(reason: (error.isNotADatabase ? "not a SQLite database: " : "it cannot be opened (truncated, or its first page is damaged): ") + "\(error)",
                          quickCheck: nil)
        }
        if version > Schema.currentVersion {
            throw OutboxError.newerSchema(path: path, found: version, supported: Schema.currentVersion)
        }
        if version == 0 {
            let tables: [String]
            do {
                tables = try database.query("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").compactMap { $0[0].text }
            } catch {
                guard error.isCorruption else { throw OutboxError.cannotOpen(path: path, cause: error) }
                return Damage(reason: "its schema cannot be read: \(error)", quickCheck: nil)
            }
            guard tables.isEmpty else { throw OutboxError.foreignDatabase(path: path, tables: tables) }
            return nil
        }
        let findings: [String]
        do {
            findings = try database.query("PRAGMA quick_check(10)").compactMap { $0[0].text }
        } catch {
            guard error.isCorruption else { throw OutboxError.cannotOpen(path: path, cause: error) }
            return Damage(reason: "quick_check could not read it: \(error)", quickCheck: "\(error)")
        }
        report.quickCheck = findings.joined(separator: "; ")
        guard findings == ["ok"] else {
            return Damage(reason: "quick_check found: " + findings.prefix(3).joined(separator: "; "), quickCheck: report.quickCheck)
        }
        return nil
    }

    /// WAL mode, migrations, checksum verification and requeue of in-flight rows.
    func prepareForUse(report: inout RecoveryReport) throws(OutboxError) {
        do {
            _ = try database.query("PRAGMA journal_mode=WAL")
            // Keeps a WAL that once grew large from holding its space after checkpoints.
            _ = try database.query("PRAGMA journal_size_limit=\(4 << 20)")
            try database.setSynchronous("FULL")
        } catch {
            throw self.error(error)
        }
        try migrate(report: &report)
        try verifyChecksums(report: &report)
        try requeueInFlight(report: &report)
    }

    private func migrate(report: inout RecoveryReport) throws(OutboxError) {
        let version = Int(try query("PRAGMA user_version").first?.first?.integer ?? 0)
        guard version < Schema.currentVersion else { return }
        try transaction("migrate the schema", synchronous: "FULL") { () throws(OutboxError) in
            for step in version..<Schema.currentVersion {
                do throws(SQLiteDatabase.Failure) { try database.execute(Schema.migrations[step]) } catch { throw self.error(error) }
            }
            try run("PRAGMA user_version = \(Schema.currentVersion)")
            // From 0 is creation: the audit starts empty, so a salvage can keep the damaged file's event ids.
            if version > 0 { try audit("schema-migrated", reading: nil, detail: "schema version \(version) to \(Schema.currentVersion)") }
        }
        if !report.createdNewFile { report.migratedFrom = version }
        fsyncDirectory(of: path)
    }

    /// Moves every row whose checksum does not match its columns to the quarantine table; the rest of
    /// the outbox carries on.
    private func verifyChecksums(report: inout RecoveryReport) throws(OutboxError) {
        var mismatches: [(Schema.Table, Int64)] = []
        for table in Schema.checksummedTables {
            let rows = try query("SELECT id FROM \(table.name) WHERE checksum IS NOT \(table.checksumExpression) ORDER BY id")
            mismatches += rows.compactMap { $0[0].integer }.map { (table, $0) }
        }
        guard !mismatches.isEmpty else { return }
        try transaction("quarantine rows that failed their checksum", synchronous: "FULL") { () throws(OutboxError) in
            for (table, id) in mismatches {
                try quarantine(table, id: id, reason: "its checksum does not match its columns (found at start)")
                report.quarantinedRows[table.name, default: 0] += 1
            }
        }
    }

    /// Uploads cut off by a stop or crash go back to pending: at-least-once, and the server's conditional
    /// create makes the re-send harmless.
    func requeueInFlight(report: inout RecoveryReport) throws(OutboxError) {
        let ids = try query("SELECT id FROM readings WHERE state = 'in-flight' ORDER BY id").compactMap { $0[0].integer }
        guard !ids.isEmpty else { return }
        try transaction("requeue in-flight readings", synchronous: "FULL") { () throws(OutboxError) in
            for id in ids {
                try run("UPDATE readings SET state = 'pending', changed_at = ?2 WHERE id = ?1", [.integer(id), .integer(nowMilliseconds)])
                try reseal(Schema.readings, id: id)
                try audit("requeued-after-restart", reading: id, detail: "was in flight when VitalGate stopped; pending again")
            }
        }
        report.requeuedInFlight = ids.count
    }
}

/// Makes a created or renamed file's directory entry durable.
func fsyncDirectory(of path: String) {
    let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
    let descriptor = Glibc.open(directory, O_RDONLY | O_DIRECTORY)
    guard descriptor >= 0 else { return }
    fsync(descriptor)
    Glibc.close(descriptor)
}
