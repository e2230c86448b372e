internal import CSQLite

/// A SQLite database connection: the storage under the Outbox (issue #4 builds the schema on it).
///
/// Calls block; the Outbox runs them on its own thread, never on Swift's shared concurrency pool.
public final class SQLiteDatabase {
    /// A SQLite failure with the statement or path it concerned and SQLite's own message.
    public struct Failure: Error, CustomStringConvertible {
        public let operation: String
        public let code: Int32
        public let message: String
        public var description: String { "\(operation) failed (SQLite \(code)): \(message)" }
    }

    private var handle: OpaquePointer?

    /// The linked SQLite library version, e.g. `3.40.1`.
    public static var libraryVersion: String { String(cString: sqlite3_libversion()) }

    /// Opens (creating if needed) the database at `path`; `:memory:` for a private in-memory database.
    public init(path: String) throws(Failure) {
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX
        let code = sqlite3_open_v2(path, &handle, flags, nil)
        guard code == SQLITE_OK else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close(handle)
            throw Failure(operation: "open \(path)", code: code, message: message)
        }
    }

    deinit { sqlite3_close(handle) }

    /// Runs one or more statements that return no rows.
    public func execute(_ sql: String) throws(Failure) {
        var error: UnsafeMutablePointer<CChar>?
        let code = sqlite3_exec(handle, sql, nil, nil, &error)
        guard code == SQLITE_OK else {
            let message = error.map { String(cString: $0) } ?? String(cString: sqlite3_errmsg(handle))
            sqlite3_free(error)
            throw Failure(operation: "execute", code: code, message: message)
        }
    }

    /// The first column of the first row of `sql` as text, or nil when there is no row or it is NULL.
    public func scalarText(_ sql: String) throws(Failure) -> String? {
        var statement: OpaquePointer?
        let prepared = sqlite3_prepare_v2(handle, sql, -1, &statement, nil)
        guard prepared == SQLITE_OK else {
            throw Failure(operation: "prepare", code: prepared, message: String(cString: sqlite3_errmsg(handle)))
        }
        defer { sqlite3_finalize(statement) }
        switch sqlite3_step(statement) {
        case SQLITE_ROW: return sqlite3_column_text(statement, 0).map { String(cString: $0) }
        case SQLITE_DONE: return nil
        case let code: throw Failure(operation: "step", code: code, message: String(cString: sqlite3_errmsg(handle)))
        }
    }
}
