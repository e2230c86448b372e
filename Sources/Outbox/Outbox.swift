import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import VitalModel

/// The durable store between devices and the server: every reading is committed here before its device is
/// acknowledged, and leaves only after the server accepted it or an operator discarded it.
///
/// One SQLite connection in WAL mode, serialized by a lock; every method blocks until its transaction is
/// done, so call it from a dedicated thread or serial queue, never from Swift's shared concurrency pool.
/// Opening runs the integrity check, migrations and recovery; ``recovery`` says what they found.
public final class Outbox: Sendable {
    public let path: String
    /// What the start-up integrity check found and did.
    public let recovery: RecoveryReport
    private let store: Mutex<OutboxStore>
    /// The owner's lock on `<path>.lock`, held for the Outbox's life (-1 for an operator).
    private let lockDescriptor: Int32

    /// Opens the outbox at `path` (creating it and its schema when absent), checks it and recovers it.
    ///
    /// A file from a newer VitalGate, or another application's database, is refused and left untouched. A
    /// file that is not a database or fails `quick_check` is replaced by a new file holding every row that
    /// can be read and verified, and kept beside it under another name (see ``RecoveryReport``); a kill in
    /// the middle of that is redone or finished at the next start. The directory must exist; a lock file
    /// that cannot be opened or locked is ``OutboxError/cannotLock(path:operation:errno:)``, one held by
    /// another daemon ``OutboxError/inUse(path:)``.
    public init(path: String, options: OutboxOptions = .init()) throws(OutboxError) {
        var descriptor: Int32 = -1
        if options.role == .owner {
            // flock, not SQLite's locking: it is released by the kernel when a killed daemon's process ends.
            descriptor = Glibc.open(path + ".lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
            guard descriptor >= 0 else { throw OutboxError.cannotLock(path: path, operation: "open", errno: errno) }
            // A process forked by anyone in this process keeps a copy of the lock's descriptor until it execs, so a
            // lock released a moment ago can still look held: only a lock that stays held for a second is another daemon's.
            var attempts = 0
            while flock(descriptor, LOCK_EX | LOCK_NB) != 0, errno == EWOULDBLOCK, attempts < 20 {
                attempts += 1
                usleep(50_000)
            }
            if flock(descriptor, LOCK_EX | LOCK_NB) != 0 {
                let code = errno
                Glibc.close(descriptor)
                // Only "held by someone else" means another daemon; any other failure must not be read as that.
                throw code == EWOULDBLOCK ? OutboxError.inUse(path: path) : OutboxError.cannotLock(path: path, operation: "lock", errno: code)
            }
        }
        let opened: (store: OutboxStore, report: RecoveryReport)
        do { opened = try OutboxStore.open(path: path, options: options) } catch {
            if descriptor >= 0 { Glibc.close(descriptor) }
            throw error
        }
        let (store, report) = opened
        lockDescriptor = descriptor
        self.path = path
        self.recovery = report
        self.store = Mutex(store)
    }

    deinit {
        store.withLock { $0.database.close() }
        if lockDescriptor >= 0 { Glibc.close(lockDescriptor) }
    }

    func locked<T: Sendable>(_ body: (OutboxStore) throws(OutboxError) -> T) throws(OutboxError) -> T {
        try store.withLock { (store: inout OutboxStore) throws(OutboxError) -> T in try body(store) }
    }

    /// Stores `readings` in one transaction committed with `synchronous=FULL`: when this returns the
    /// readings survive power loss, and only then may their devices be acknowledged.
    ///
    /// A reading the outbox already holds (same device, kind, user slot, device time or receive time, and
    /// sequence number, with the same values) is a `.duplicate` and writes nothing. Another reading with the
    /// same device, kind and time (a device clock that did not advance) is stored and marked
    /// ``StoredReading/identifyByReceipt``, so that its upload does not reuse the first one's identifier. Refuses with
    /// ``OutboxError/diskFull(path:freeBytes:reservedBytes:cause:)`` when free space is below
    /// ``OutboxOptions/reservedFreeBytes`` or the disk fills; then nothing of the batch is stored.
    public func ingest(_ readings: [IncomingReading]) throws(OutboxError) -> [IngestOutcome] {
        try locked { store throws(OutboxError) in try store.ingest(readings) }
    }

    /// Up to `limit` pending readings that are due (`nextAttemptAt` is nil or not after `now`), oldest
    /// first, marked in flight. Unassigned readings are never returned. A row whose stored reading this
    /// version cannot read back is moved to the dead letters instead (kept, and retryable after an upgrade),
    /// so it does not hold up the rows behind it.
    public func nextBatch(limit: Int, now: Date) throws(OutboxError) -> [StoredReading] {
        try locked { store throws(OutboxError) in try store.nextBatch(limit: limit, now: now) }
    }

    /// Records the server's acceptance (201 or 200) of in-flight or pending readings; committed with
    /// `synchronous=FULL` and audited.
    public func markDelivered(_ records: [DeliveryRecord], at: Date) throws(OutboxError) {
        try locked { store throws(OutboxError) in try store.markDelivered(records, at: at) }
    }

    /// Puts in-flight readings back to pending after a retryable failure, not to be sent before `notBefore`;
    /// counts the attempt. `error` is kept as the last error: it must not hold patient data.
    public func scheduleRetry(_ ids: [OutboxReadingID], error: String, notBefore: Date) throws(OutboxError) {
        try locked { store throws(OutboxError) in try store.scheduleRetry(ids, error: error, notBefore: notBefore) }
    }

    /// Moves a reading the server refused for good to the dead letters, with the status and the
    /// OperationOutcome text (capped at 8 KiB); audited.
    public func deadLetter(_ id: OutboxReadingID, httpStatus: Int?, reason: String, outcome: String?, at: Date) throws(OutboxError) {
        try locked { store throws(OutboxError) in
            try store.deadLetter(id, httpStatus: httpStatus, reason: reason, outcome: outcome, at: at)
        }
    }

    /// An operator sends a dead reading again (dead → pending); audited.
    public func retryDeadLetter(_ id: OutboxReadingID, actor: String) throws(OutboxError) {
        try locked { store throws(OutboxError) in try store.retryDeadLetter(id, actor: actor) }
    }

    /// An operator sends every dead reading again (dead → pending) in one transaction committed with
    /// `synchronous=FULL`, with one audit event per reading; returns how many. Dead readings whose stored
    /// form this version cannot read are included (after an upgrade they may upload).
    public func retryAllDeadLetters(actor: String) throws(OutboxError) -> Int {
        try locked { store throws(OutboxError) in try store.retryAllDeadLetters(actor: actor) }
    }

    /// An operator gives up on a dead reading (dead → discarded): it is never uploaded; audited.
    public func discardDeadLetter(_ id: OutboxReadingID, actor: String) throws(OutboxError) {
        try locked { store throws(OutboxError) in try store.discardDeadLetter(id, actor: actor) }
    }

    /// An operator attributes an unassigned reading to a person (unassigned → pending); audited without the
    /// identifier.
    public func assign(_ id: OutboxReadingID, to subject: PatientIdentifier, actor: String) throws(OutboxError) {
        try locked { store throws(OutboxError) in try store.assign(id, to: subject, actor: actor) }
    }

    /// The reading with this id, or nil when there is none (never stored, pruned or quarantined);
    /// ``OutboxError/unreadableRow(_:problem:)`` when its row cannot be read back by this version.
    public func reading(_ id: OutboxReadingID) throws(OutboxError) -> StoredReading? {
        try locked { store throws(OutboxError) in try store.storedReading(id) }
    }

    /// Up to `limit` readings in `state`, oldest first. Rows this version cannot read back are left out
    /// (``summary()`` still counts them, and ``reading(_:)`` names their problem).
    public func readings(in state: ReadingState, limit: Int) throws(OutboxError) -> [StoredReading] {
        try locked { store throws(OutboxError) in try store.readings(in: state, limit: limit) }
    }

    /// Counts by state, the oldest unsent reading, the last delivery, quarantined rows and dead letters.
    public func summary() throws(OutboxError) -> QueueSummary {
        try locked { store throws(OutboxError) in try store.summary() }
    }

    /// Up to `limit` audit events, newest first.
    public func auditTrail(limit: Int) throws(OutboxError) -> [AuditEvent] {
        try locked { store throws(OutboxError) in try store.auditTrail(limit: limit) }
    }

    /// Up to `limit` quarantined rows, newest first (their raw text holds patient data: show, never log).
    public func quarantinedRows(limit: Int) throws(OutboxError) -> [QuarantinedRow] {
        try locked { store throws(OutboxError) in try store.quarantinedRows(limit: limit) }
    }

    /// Deletes delivered readings delivered before `deliveredBefore`, and discarded ones discarded before
    /// it, with their dead letters; never a pending, unassigned, in-flight or dead reading. The audit trail
    /// is kept. Returns how many readings were deleted.
    public func prune(deliveredBefore: Date) throws(OutboxError) -> Int {
        try locked { store throws(OutboxError) in try store.prune(before: deliveredBefore) }
    }
}
