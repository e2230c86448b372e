import Foundation
import VitalModel

/// A reading's local row id in the Outbox: how logs, the audit trail and operators name a reading (never by
/// patient or value). Ids are never reused, even after pruning.
public struct OutboxReadingID: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible {
    public var rawValue: Int64

    public init(rawValue: Int64) { self.rawValue = rawValue }
    public init(_ rawValue: Int64) { self.rawValue = rawValue }

    public var description: String { "reading \(rawValue)" }
    public static func < (lhs: OutboxReadingID, rhs: OutboxReadingID) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// A reading as a session hands it to the Outbox, with the person it was attributed to and how.
public struct IncomingReading: Sendable {
    public var reading: Reading
    /// Nil: unassigned. The reading is held and never uploaded until an operator assigns it.
    public var subject: PatientIdentifier?
    /// The rule that chose `subject` (or why there is none); stored beside the reading.
    public var attribution: Attribution

    /// A reading whose citizen was given with it (or none, when nobody said whose it is).
    public init(reading: Reading, subject: PatientIdentifier?) {
        self.init(reading: reading, subject: subject,
                  attribution: subject == nil ? .unassigned("nobody was named for it") : Attribution(rule: .given))
    }

    /// A reading with the outcome of the assignment rules. An attribution other than `.unassigned` needs a subject.
    public init(reading: Reading, subject: PatientIdentifier?, attribution: Attribution) {
        self.reading = reading
        self.subject = subject
        self.attribution = subject == nil && attribution.rule != .unassigned
            ? .unassigned("the \(attribution.rule.rawValue) rule gave no citizen") : attribution
    }
}

/// A community health worker's visit: while it is open, readings from the kit's devices taken during it go to
/// its citizen, with the health worker as performer.
public struct Visit: Sendable, Hashable {
    /// The Outbox's id for the visit; ids are never reused.
    public var id: Int64
    /// The visited citizen. Never log it.
    public var patient: PatientIdentifier
    /// The health worker, sent as `Observation.performer`; nil when none was configured.
    public var performer: PerformerIdentifier?
    public var startedAt: Date
    /// Nil while the visit is open.
    public var endedAt: Date?
    /// Who started it and who ended it (login names), as the audit trail has them.
    public var startedBy: String
    public var endedBy: String?

    public var isOpen: Bool { endedAt == nil }
}

/// What ingest did with one reading.
public enum IngestOutcome: Sendable, Hashable {
    /// Stored as a new row.
    case stored(OutboxReadingID)
    /// The device sent a reading the Outbox already holds (same device, kind, user slot, time and sequence
    /// number, same values); nothing was written.
    case duplicate(OutboxReadingID)

    public var id: OutboxReadingID {
        switch self {
        case .stored(let id), .duplicate(let id): id
        }
    }
}

/// Where a reading is in its life.
///
/// ```
/// unassigned ──assign──► pending ──nextBatch──► in-flight ──markDelivered──► delivered
///                          ▲  ▲                   │  │
///                          │  └───scheduleRetry───┘  └──deadLetter──► dead ──discard──► discarded
///                          └──────────────retryDeadLetter─────────────┘
/// ```
/// In-flight rows found at start go back to pending (an upload was cut off; conditional create makes the
/// re-send harmless).
public enum ReadingState: String, Sendable, CaseIterable {
    case unassigned
    case pending
    case inFlight = "in-flight"
    case delivered
    case dead
    case discarded
}

/// A reading with its delivery state, as the Outbox holds it.
public struct StoredReading: Sendable, Hashable {
    public var id: OutboxReadingID
    public var reading: Reading
    public var subject: PatientIdentifier?
    public var state: ReadingState
    /// Upload attempts that failed (retried or dead-lettered).
    public var attempts: Int
    /// The last failure as the uplink described it (never patient data).
    public var lastError: String?
    /// Not uploaded before this instant (after a retryable failure); nil when due at once.
    public var nextAttemptAt: Date?
    public var storedAt: Date
    public var deliveredAt: Date?
    /// The HTTP status the server answered the entry with (201 created, 200 already there).
    public var serverStatus: Int?
    /// The server's `Location`s for the resources the reading became.
    public var locations: [String]
    /// The device gave another, different reading the same time stamp (a clock that did not advance): the
    /// upload identifies this one by the hub's receive time so that the server keeps both.
    public var identifyByReceipt: Bool = false
    /// How the reading was attributed; nil for readings stored before VitalGate kept attributions.
    public var attribution: Attribution? = nil
    /// The health worker of the visit that attributed it: the Observation's performer.
    public var performer: PerformerIdentifier? = nil
}

/// The server's acceptance of one reading.
public struct DeliveryRecord: Sendable {
    public var id: OutboxReadingID
    /// 201 or 200.
    public var status: Int
    public var locations: [String]

    public init(id: OutboxReadingID, status: Int, locations: [String]) {
        self.id = id
        self.status = status
        self.locations = locations
    }
}

/// A reading the server refused for good, with what it said.
public struct DeadLetter: Sendable, Hashable {
    public var readingID: OutboxReadingID
    public var httpStatus: Int?
    public var reason: String
    /// The OperationOutcome text, capped at 8 KiB. May hold what the server echoed: show it to operators,
    /// do not log it.
    public var outcome: String?
    public var at: Date
}

/// Counts for `vitalgate queue` (later `status`) and the metrics file.
public struct QueueSummary: Sendable {
    /// Every state, zero included.
    public var counts: [ReadingState: Int]
    /// When the oldest reading not yet sent (pending or in flight) was stored.
    public var oldestPendingStoredAt: Date?
    public var lastDeliveryAt: Date?
    /// Rows held in the quarantine table (damaged rows, kept as raw text).
    public var quarantined: Int
    /// Dead letters of readings that are still dead, newest first, at most `OutboxOptions.deadLettersInSummary`.
    public var deadLetters: [DeadLetter]
}

/// One entry of the audit trail. Details name readings by id and never hold patient identifiers or values.
public struct AuditEvent: Sendable, Hashable {
    public var id: Int64
    /// Such as `assigned`, `delivered`, `dead-letter`, `clock-collision`, `quarantined`, `requeued-after-restart`.
    public var event: String
    public var readingID: OutboxReadingID?
    /// Who did it: an operator's name, or `vitalgate` for the daemon itself.
    public var actor: String
    public var detail: String?
    public var at: Date
}

/// A row that failed its checksum and was moved out of its table.
public struct QuarantinedRow: Sendable, Hashable {
    public var id: Int64
    public var table: String
    public var rowID: Int64?
    /// The row's columns as JSON text, as they were read. Holds patient data: show, never log.
    public var raw: String
    public var reason: String
    public var at: Date
}

/// Where the Outbox learns how much free space its directory has.
public typealias FreeSpaceProvider = @Sendable (_ directory: String) -> UInt64?

/// Who opens the Outbox.
public enum OutboxRole: Sendable, Hashable {
    /// The daemon: runs the start-up checks and recovery, and holds a lock so that no second daemon can.
    case owner
    /// An operator command beside the running daemon (`vitalgate queue`, `dead-letters`): no recovery, no
    /// lock, because moving the daemon's in-flight readings back to pending under it would be wrong.
    case `operator`
}

/// How the Outbox behaves; the defaults suit the daemon.
public struct OutboxOptions: Sendable {
    /// The daemon by default; commands beside it open as ``OutboxRole/operator``.
    public var role: OutboxRole = .owner
    /// Ingest refuses while the database's file system has less free space than this, so that state
    /// updates and pruning can still commit when the disk fills. 8 MiB by default.
    public var reservedFreeBytes: UInt64
    /// How long a statement waits for a lock held by another connection.
    public var busyTimeout: Duration
    /// Free space of a directory; statvfs by default. Tests replace it.
    public var freeSpace: FreeSpaceProvider
    /// The clock for stored-at, audit and quarantine times.
    public var clock: @Sendable () -> Date
    /// How many dead letters ``Outbox/summary()`` lists.
    public var deadLettersInSummary: Int

    public init(reservedFreeBytes: UInt64 = 8 << 20, busyTimeout: Duration = .seconds(5),
                freeSpace: @escaping FreeSpaceProvider = FileSystemSpace.available,
                clock: @escaping @Sendable () -> Date = Date.init, deadLettersInSummary: Int = 50) {
        self.reservedFreeBytes = reservedFreeBytes
        self.busyTimeout = busyTimeout
        self.freeSpace = freeSpace
        self.clock = clock
        self.deadLettersInSummary = deadLettersInSummary
    }
}
