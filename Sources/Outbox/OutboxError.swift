import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Why an Outbox operation failed: what went wrong, where, how to fix it, and SQLite's code and message.
/// Descriptions name readings by local id only, so they can be logged.
public enum OutboxError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The database file could not be opened or created.
    case cannotOpen(path: String, cause: SQLiteDatabase.Failure)
    /// The file was written by a newer VitalGate (a higher schema version); it was left untouched.
    case newerSchema(path: String, found: Int, supported: Int)
    /// The file is a SQLite database but not a VitalGate outbox; it was left untouched.
    case foreignDatabase(path: String, tables: [String])
    /// The disk is full, or free space is below the reserve kept for state updates; nothing was written.
    case diskFull(path: String, freeBytes: UInt64?, reservedBytes: UInt64, cause: SQLiteDatabase.Failure?)
    /// Any other SQLite failure; the transaction was rolled back.
    case storage(operation: String, path: String, cause: SQLiteDatabase.Failure)
    /// A damaged file could not be moved aside and replaced.
    case recoveryFailed(path: String, problem: String)
    case unknownReading(OutboxReadingID)
    /// The reading is not in a state the operation applies to.
    case invalidTransition(OutboxReadingID, from: ReadingState, to: ReadingState)
    /// A stored row's payload or state could not be read back by this version (its checksum matched: a bug
    /// or another VitalGate version wrote it). The row is not changed by the failed read.
    case unreadableRow(OutboxReadingID, problem: String)
    /// Another process (a second daemon) holds the outbox's lock.
    case inUse(path: String)
    /// The lock file `<path>.lock` could not be opened or locked for another reason than another holder
    /// (`operation` is `open` or `lock`; `errno` is the system's error number).
    case cannotLock(path: String, operation: String, errno: Int32)
    /// An operator command found no outbox, or one the daemon has not yet brought to this version.
    case notReady(path: String, problem: String)
    /// A visit is already open; end it before starting another.
    case visitAlreadyOpen(Int64)
    /// There is no open visit to end.
    case noOpenVisit
    /// A stored visit's row lacks a column this version needs (its checksum matched: another version wrote it).
    case unreadableVisit(Int64?, problem: String)

    public var description: String {
        switch self {
        case .cannotOpen(let path, let cause):
            return "Cannot open the outbox database \(path): \(cause). Fix: check that the directory exists, "
                + "is writable by the service user and is not on a read-only file system."
        case .newerSchema(let path, let found, let supported):
            return "The outbox database \(path) has schema version \(found), newer than the \(supported) this "
                + "VitalGate understands; it was not modified. Fix: run the newer VitalGate that wrote it, or "
                + "move the file aside to start an empty outbox (its unsent readings stay in it)."
        case .foreignDatabase(let path, let tables):
            return "\(path) is a SQLite database but not a VitalGate outbox (it has tables "
                + "\(tables.joined(separator: ", ")) and no schema version); it was not modified. "
                + "Fix: point the outbox at another path."
        case .diskFull(let path, let free, let reserved, let cause):
            let freeText = free.map { formatBytes($0) + " free" } ?? "free space unknown"
            var what = "Ingest refused: the file system of \(path) has \(freeText), below the \(formatBytes(reserved)) "
                + "reserved so that deliveries and pruning can still be recorded"
            if let cause {
                what = "The disk holding \(path) is full (\(freeText)); the transaction was rolled back and nothing was "
                    + "written (\(cause))"
            }
            return what + ". Fix: free space on that file system (or prune delivered readings); ingest works "
                + "again as soon as there is room. Devices are not acknowledged meanwhile, so they keep their readings."
        case .storage(let operation, let path, let cause):
            return "The outbox database \(path) failed to \(operation): \(cause); the transaction was rolled "
                + "back. Fix: check the storage medium and the system log for I/O errors; restart VitalGate to "
                + "run the integrity check."
        case .recoveryFailed(let path, let problem):
            return "The outbox database \(path) is damaged and could not be replaced: \(problem). Fix: make its "
                + "directory writable, or move the file aside by hand and start again."
        case .unknownReading(let id):
            return "There is no \(id) in the outbox. Fix: list readings with `vitalgate queue` and use an id shown there."
        case .invalidTransition(let id, let from, let to):
            return "\(id) is \(from.rawValue) and cannot become \(to.rawValue). Fix: check its state first; "
                + "only the transitions in the Outbox's state diagram are allowed."
        case .inUse(let path):
            return "The outbox database \(path) is in use by another VitalGate daemon (its lock file \(path).lock is held). "
                + "Fix: stop the other vitalgated (systemctl stop vitalgated), or give this one another stateDirectory."
        case .cannotLock(let path, let operation, let code):
            return "Cannot \(operation) the outbox's lock file \(path).lock: errno \(code) (\(String(cString: strerror(code)))). "
                + "Fix: check that the state directory exists, its owner and permissions (the service user must be "
                + "able to create and write files in it), that \(path).lock is a regular file, and that the file "
                + "system is not read-only."
        case .notReady(let path, let problem):
            return "The outbox database \(path) \(problem). Fix: start vitalgated once so that it creates or upgrades it."
        case .visitAlreadyOpen(let id):
            return "Visit \(id) is still open. Fix: end it with `vitalgate visit end`, then start the next one."
        case .noOpenVisit:
            return "No visit is open. Fix: start one with `vitalgate visit start --patient …` or `--qr …`."
        case .unreadableVisit(let id, let problem):
            return "visit \(id.map(String.init) ?? "(no id)") is stored but this VitalGate version cannot read it back: \(problem); "
                + "while it is open, readings are stored unassigned rather than given to anyone. Fix: end the visit with the "
                + "VitalGate version that wrote it"
        case .unreadableRow(let id, let problem):
            return "\(id) is stored but this VitalGate version cannot read it back: \(problem). The row is kept as "
                + "it is (uploads move it to the dead letters rather than send it). Fix: if another VitalGate version "
                + "wrote it, upgrade and retry it with `vitalgate dead-letters retry`; otherwise report this as a VitalGate bug."
        }
    }
}
