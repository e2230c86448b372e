internal import CSQLite
import Foundation

/// A SQLite database connection: the storage under the Outbox.
///
/// Calls block; the Outbox serializes them behind its lock and runs them on the caller's thread, which
/// is never one of Swift's shared concurrency pool threads. Not thread-safe by itself.
public final class SQLiteDatabase {
    /// A SQLite failure with the statement or path it concerned and SQLite's own code and message.
    public struct Failure: Error, Sendable, Hashable, CustomStringConvertible {
        public let operation: String
        /// The primary result code, such as 13 (`SQLITE_FULL`).
        public let code: Int32
        public let message: String
        /// The extended result code, such as 778 (`SQLITE_IOERR_WRITE`).
        public let extendedCode: Int32
        /// The operating system's errno behind an I/O error (28 is ENOSPC), or 0.
        public let systemErrno: Int32

        public init(operation: String, code: Int32, message: String, extendedCode: Int32? = nil, systemErrno: Int32 = 0) {
            self.operation = operation
            self.code = code
            self.message = message
            self.extendedCode = extendedCode ?? code
            self.systemErrno = systemErrno
        }

        public var description: String {
            var text = "\(operation) failed (SQLite \(code)"
            if extendedCode != code { text += "/\(extendedCode)" }
            text += " \(String(cString: sqlite3_errstr(code)))"
            if systemErrno != 0 { text += ", errno \(systemErrno) \(String(cString: strerror(systemErrno)))" }
            return text + "): " + message
        }

        /// SQLITE_FULL, or an I/O error whose cause is ENOSPC/EDQUOT: the disk (or quota) is full.
        var isDiskFull: Bool {
            code == SQLITE_FULL || (code == SQLITE_IOERR && (systemErrno == ENOSPC || systemErrno == EDQUOT))
        }

        var isNotADatabase: Bool { code == SQLITE_NOTADB }

        /// The file is not a database or its pages are damaged.
        var isCorruption: Bool { code == SQLITE_CORRUPT || code == SQLITE_NOTADB }
    }

    /// A value bound to or read from a statement.
    enum Value: Sendable, Hashable {
        case null
        case integer(Int64)
        case real(Double)
        case text(String)
        case blob([UInt8])

        var integer: Int64? { if case .integer(let value) = self { value } else { nil } }
        var text: String? { if case .text(let value) = self { value } else { nil } }
    }

    private var handle: OpaquePointer?
    /// Prepared statements by SQL text, reused: the Outbox runs the same few statements all day.
    private var statements: [String: OpaquePointer] = [:]
    private var currentSynchronous: String?
    let path: String

    /// The linked SQLite library version, e.g. `3.40.1`.
    public static var libraryVersion: String { String(cString: sqlite3_libversion()) }

    /// Opens (creating if needed) the database at `path`; `:memory:` for a private in-memory database.
    public convenience init(path: String) throws(Failure) {
        try self.init(path: path, readOnly: false)
    }

    init(path: String, readOnly: Bool) throws(Failure) {
        self.path = path
        let flags = (readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) | SQLITE_OPEN_FULLMUTEX
        let code = sqlite3_open_v2(path, &handle, flags, nil)
        guard code == SQLITE_OK else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            let errno = handle.map { sqlite3_system_errno($0) } ?? 0
            sqlite3_close(handle)
            handle = nil
            throw Failure(operation: "open \(path)", code: code, message: message, systemErrno: errno)
        }
        sqlite3_extended_result_codes(handle, 1)
    }

    deinit { close() }

    /// Finalizes every statement and closes the connection; later calls fail with SQLITE_MISUSE.
    func close() {
        for statement in statements.values { sqlite3_finalize(statement) }
        statements = [:]
        if let handle { sqlite3_close_v2(handle) }
        handle = nil
    }

    func failure(_ operation: String, code: Int32) -> Failure {
        guard let handle else { return Failure(operation: operation, code: SQLITE_MISUSE, message: "the database is closed") }
        let extended = sqlite3_extended_errcode(handle)
        return Failure(operation: operation, code: extended & 0xFF, message: String(cString: sqlite3_errmsg(handle)),
                       extendedCode: extended, systemErrno: sqlite3_system_errno(handle))
    }

    /// Runs one or more statements that return no rows.
    public func execute(_ sql: String) throws(Failure) {
        var error: UnsafeMutablePointer<CChar>?
        let code = sqlite3_exec(handle, sql, nil, nil, &error)
        guard code == SQLITE_OK else {
            var failure = self.failure("execute", code: code)
            if let error, failure.message.isEmpty {
                failure = Failure(operation: "execute", code: code, message: String(cString: error))
            }
            sqlite3_free(error)
            throw failure
        }
    }

    /// The first column of the first row of `sql` as text, or nil when there is no row or it is NULL.
    public func scalarText(_ sql: String) throws(Failure) -> String? {
        switch try query(sql).first?.first {
        case .text(let text): text
        case .integer(let value): String(value)
        case .real(let value): String(value)
        case .blob(let bytes): String(decoding: bytes, as: UTF8.self)
        case .null, nil: nil
        }
    }

    /// Runs `sql` with `arguments` bound to `?1...` and returns every row.
    func query(_ sql: String, _ arguments: [Value] = []) throws(Failure) -> [[Value]] {
        var rows: [[Value]] = []
        try forEachRow(sql, arguments) { row in
            rows.append(row)
            return true
        }
        return rows
    }

    /// Runs `sql` and hands each row to `body` as it is stepped, so a scan that fails half-way keeps the
    /// rows it read (the salvage of a damaged file depends on that). `body` returns false to stop early.
    func forEachRow(_ sql: String, _ arguments: [Value] = [], _ body: ([Value]) -> Bool) throws(Failure) {
        let statement = try prepare(sql)
        defer {
            sqlite3_reset(statement)
            sqlite3_clear_bindings(statement)
        }
        try bind(arguments, to: statement, sql: sql)
        while true {
            let code = sqlite3_step(statement)
            switch code {
            case SQLITE_ROW:
                guard body((0..<sqlite3_column_count(statement)).map { column(statement, $0) }) else { return }
            case SQLITE_DONE:
                return
            default:
                throw failure(Self.describe(sql), code: code)
            }
        }
    }

    /// Runs a statement that returns no rows; the number of rows it changed.
    @discardableResult
    func run(_ sql: String, _ arguments: [Value] = []) throws(Failure) -> Int {
        _ = try query(sql, arguments)
        return Int(sqlite3_changes(handle))
    }

    var lastInsertedRowID: Int64 { sqlite3_last_insert_rowid(handle) }
    var isInTransaction: Bool { handle != nil && sqlite3_get_autocommit(handle) == 0 }

    /// Sets `PRAGMA synchronous` when it differs from the last value set (it applies at commit).
    func setSynchronous(_ mode: String) throws(Failure) {
        guard mode != currentSynchronous else { return }
        try execute("PRAGMA synchronous=\(mode)")
        currentSynchronous = mode
    }

    func setBusyTimeout(milliseconds: Int32) {
        sqlite3_busy_timeout(handle, milliseconds)
    }

    /// Registers a deterministic SQL function of any number of arguments, implemented in C convention.
    func registerFunction(_ name: String, _ function: @convention(c) (OpaquePointer?, Int32, UnsafeMutablePointer<OpaquePointer?>?) -> Void)
        throws(Failure) {
        let code = sqlite3_create_function_v2(handle, name, -1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, nil, function, nil, nil, nil)
        guard code == SQLITE_OK else { throw failure("register SQL function \(name)", code: code) }
    }

    private func prepare(_ sql: String) throws(Failure) -> OpaquePointer {
        if let cached = statements[sql] { return cached }
        var statement: OpaquePointer?
        let code = sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil)
        guard code == SQLITE_OK, let statement else { throw failure("prepare " + Self.describe(sql), code: code) }
        statements[sql] = statement
        return statement
    }

    private func bind(_ arguments: [Value], to statement: OpaquePointer, sql: String) throws(Failure) {
        for (offset, argument) in arguments.enumerated() {
            let index = Int32(offset + 1)
            let code: Int32 = switch argument {
            case .null: sqlite3_bind_null(statement, index)
            case .integer(let value): sqlite3_bind_int64(statement, index, value)
            case .real(let value): sqlite3_bind_double(statement, index, value)
            case .text(let value): sqlite3_bind_text(statement, index, value, -1, vg_sqlite_transient())
            case .blob(let bytes): bytes.withUnsafeBytes {
                sqlite3_bind_blob64(statement, index, $0.baseAddress, sqlite3_uint64($0.count), vg_sqlite_transient())
            }
            }
            guard code == SQLITE_OK else { throw failure("bind argument \(index) of " + Self.describe(sql), code: code) }
        }
    }

    private func column(_ statement: OpaquePointer, _ index: Int32) -> Value {
        switch sqlite3_column_type(statement, index) {
        case SQLITE_INTEGER: return .integer(sqlite3_column_int64(statement, index))
        case SQLITE_FLOAT: return .real(sqlite3_column_double(statement, index))
        case SQLITE_TEXT:
            guard let text = sqlite3_column_text(statement, index) else { return .null }
            let count = Int(sqlite3_column_bytes(statement, index))
            // Decoded with repair: a damaged row's text must still reach the quarantine table.
            return .text(String(decoding: UnsafeBufferPointer(start: text, count: count), as: UTF8.self))
        case SQLITE_BLOB:
            let count = Int(sqlite3_column_bytes(statement, index))
            guard count > 0, let bytes = sqlite3_column_blob(statement, index) else { return .blob([]) }
            return .blob(Array(UnsafeRawBufferPointer(start: bytes, count: count)))
        default: return .null
        }
    }

    /// The statement's first words, so that errors say which statement without quoting arguments.
    static func describe(_ sql: String) -> String {
        let words = sql.split(whereSeparator: \.isWhitespace).prefix(4).joined(separator: " ")
        return "`\(words)…`"
    }
}
