import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
import VitalModel
@testable import Outbox

@Suite("Outbox schema versions")
struct MigrationTests {
    @Test("an empty file is a new outbox")
    func emptyFile() throws {
        let directory = TemporaryDirectory()
        #expect(FileManager.default.createFile(atPath: directory.database, contents: Data()))
        let outbox = try Outbox(path: directory.database, options: options())
        #expect(outbox.recovery.createdNewFile && outbox.recovery.migratedFrom == nil)
        #expect(try outbox.ingest([incoming(bloodPressure())]).count == 1)
        #expect(try scalar(directory.database, "PRAGMA user_version") == "\(Schema.currentVersion)")
        #expect(try scalar(directory.database, "PRAGMA journal_mode") == "wal")
    }

    @Test("a version-0 database without tables is migrated to the current schema")
    func versionZero() throws {
        let directory = TemporaryDirectory()
        try tamper(directory.database, "CREATE TABLE scratch(x); DROP TABLE scratch;")
        #expect(try scalar(directory.database, "PRAGMA user_version") == "0")
        let outbox = try Outbox(path: directory.database, options: options())
        #expect(!outbox.recovery.createdNewFile)
        #expect(outbox.recovery.migratedFrom == 0)
        #expect(outbox.recovery.description.contains("migrated from schema version 0 to \(Schema.currentVersion)"))
        #expect(try outbox.ingest([incoming(bloodPressure())]) == [.stored(OutboxReadingID(1))])
        let tables = try SQLiteDatabase(path: directory.database).query("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        #expect(tables.compactMap { $0[0].text } == ["attributions", "audit", "dead_letters", "pruned", "quarantine", "readings", "sqlite_sequence", "visits"])
    }

    @Test("a file from a newer VitalGate is refused and left byte for byte as it was")
    func newer() throws {
        let directory = TemporaryDirectory()
        do {
            let outbox = try Outbox(path: directory.database, options: options())
            _ = try outbox.ingest([incoming(bloodPressure())])
        }
        try tamper(directory.database, "PRAGMA user_version = \(Schema.currentVersion + 1)")
        let before = try Data(contentsOf: URL(fileURLWithPath: directory.database))
        let error = #expect(throws: OutboxError.self) { try Outbox(path: directory.database, options: options()) }
        #expect(error == .newerSchema(path: directory.database, found: Schema.currentVersion + 1, supported: Schema.currentVersion))
        #expect(error?.description.contains("was not modified. Fix: ") == true)
        #expect(try Data(contentsOf: URL(fileURLWithPath: directory.database)) == before)
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        #expect(names.allSatisfy { !$0.contains("corrupt") }, "\(names)")
    }

    @Test("another application's database is refused untouched")
    func foreign() throws {
        let directory = TemporaryDirectory()
        try tamper(directory.database, "CREATE TABLE notes(text); INSERT INTO notes VALUES ('keep me');")
        let before = try Data(contentsOf: URL(fileURLWithPath: directory.database))
        #expect(throws: OutboxError.foreignDatabase(path: directory.database, tables: ["notes"])) {
            try Outbox(path: directory.database, options: options())
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: directory.database)) == before)
    }

    @Test("a missing directory is a clear lock error naming the errno and the fix")
    func missingDirectory() {
        let error = #expect(throws: OutboxError.self) { try Outbox(path: "/nonexistent-vitalgate/outbox.db", options: options()) }
        #expect(error == .cannotLock(path: "/nonexistent-vitalgate/outbox.db", operation: "open", errno: ENOENT))
        #expect(error?.description.contains("errno \(ENOENT)") == true, "\(String(describing: error))")
        #expect(error?.description.contains("Fix: check that the state directory exists, its owner") == true)
    }

    @Test("a lock file that cannot be opened is not mistaken for another daemon")
    func unopenableLock() throws {
        let directory = TemporaryDirectory()
        try FileManager.default.createDirectory(atPath: directory.database + ".lock", withIntermediateDirectories: false)
        let error = #expect(throws: OutboxError.self) { try Outbox(path: directory.database, options: options()) }
        #expect(error == .cannotLock(path: directory.database, operation: "open", errno: EISDIR), "\(String(describing: error))")
        #expect(!FileManager.default.fileExists(atPath: directory.database), "nothing is opened without the lock")
    }

    @Test("a second owner of the same outbox is refused as in use; an operator is not")
    func inUse() throws {
        let directory = TemporaryDirectory()
        let first = try Outbox(path: directory.database, options: options())
        defer { withExtendedLifetime(first) {} }
        #expect(throws: OutboxError.inUse(path: directory.database)) { try Outbox(path: directory.database, options: options()) }
        var operatorOptions = options()
        operatorOptions.role = .operator
        #expect(try Outbox(path: directory.database, options: operatorOptions).summary().counts[.pending] == 0)
    }

    @Test("a file SQLite cannot open is a clear open error with SQLite's code")
    func cannotOpen() throws {
        let directory = TemporaryDirectory()
        try FileManager.default.createDirectory(atPath: directory.database, withIntermediateDirectories: false)
        let error = #expect(throws: OutboxError.self) { try Outbox(path: directory.database, options: options()) }
        guard case .cannotOpen(let path, let cause)? = error else { Issue.record("\(String(describing: error))"); return }
        #expect(path == directory.database && cause.code == 14)
        #expect(error?.description.contains("Fix: check that the directory exists") == true)
    }

    @Test("CRC-32C known answer")
    func crc() {
        #expect(RowChecksum.crc32c(Array("123456789".utf8)) == 0xE306_9283)
        #expect(RowChecksum.crc32c([]) == 0)
    }
}
