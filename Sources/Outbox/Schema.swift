/// The Outbox's tables and their versioned migrations (`PRAGMA user_version`).
///
/// Migrations only ever move forward; a file with a version above ``currentVersion`` came from a newer
/// VitalGate and is refused untouched. Instants are stored as milliseconds since 1970 (UTC).
enum Schema {
    static let currentVersion = 2

    /// A table and the columns its checksum covers (every column but `checksum`, in this order).
    struct Table: Sendable {
        let name: String
        let columns: [String]
        let hasChecksum: Bool

        var columnList: String { columns.joined(separator: ", ") }
        /// `vitalgate_checksum(id, ...)`: the value the `checksum` column must hold.
        var checksumExpression: String { "\(RowChecksum.functionName)(\(columnList))" }
    }

    static let readings = Table(name: "readings", columns: [
        "id", "dedupe_key", "state", "subject_system", "subject_value", "payload", "stored_at", "attempts",
        "next_attempt_at", "last_error", "delivered_at", "server_status", "locations", "changed_at",
    ], hasChecksum: true)
    static let deadLetters = Table(name: "dead_letters", columns: ["id", "reading_id", "http_status", "reason", "outcome", "at"],
                                   hasChecksum: true)
    static let audit = Table(name: "audit", columns: ["id", "event", "reading_id", "actor", "detail", "at"], hasChecksum: true)
    /// Holds damaged rows as text; it has no checksum of its own (it is the place for rows that failed theirs).
    static let quarantine = Table(name: "quarantine", columns: ["id", "source_table", "row_id", "raw", "reason", "at"],
                                  hasChecksum: false)

    /// Visits of a community health worker: whose readings the kit's devices take while one is open.
    static let visits = Table(name: "visits", columns: [
        "id", "patient_system", "patient_value", "performer_system", "performer_value", "started_at", "ended_at",
        "started_by", "ended_by",
    ], hasChecksum: true)
    /// How each reading was attributed (its `id` is the reading's): the rule, why it is held, the visit.
    static let attributions = Table(name: "attributions", columns: ["id", "rule", "reason", "visit_id"], hasChecksum: true)

    /// What is left of a pruned reading: enough to know a device's re-sent copy of it (its key and the members
    /// ``DedupeKey/isSameReading(stored:as:)`` compares), so the copy is not stored, attributed and sent again.
    static let pruned = Table(name: "pruned", columns: ["id", "dedupe_key", "essence"], hasChecksum: true)

    static let checksummedTables = [readings, deadLetters, audit, visits, attributions, pruned]
    static let allTables = [readings, deadLetters, audit, quarantine, visits, attributions, pruned]

    /// `migrations[n]` takes a file from version n to n + 1.
    static let migrations: [String] = [
        // 0 → 1: the first schema.
        """
        CREATE TABLE readings(
            id INTEGER PRIMARY KEY AUTOINCREMENT,   -- AUTOINCREMENT: ids named in the audit are never reused
            dedupe_key TEXT NOT NULL UNIQUE,
            state TEXT NOT NULL,
            subject_system TEXT,
            subject_value TEXT,
            payload TEXT NOT NULL,                  -- the reading's JSON (Reading.json)
            stored_at INTEGER NOT NULL,
            attempts INTEGER NOT NULL,
            next_attempt_at INTEGER,
            last_error TEXT,
            delivered_at INTEGER,
            server_status INTEGER,
            locations TEXT,                         -- JSON array of strings
            changed_at INTEGER NOT NULL,            -- when the state last changed (prunes discarded rows)
            checksum INTEGER NOT NULL
        );
        CREATE INDEX readings_by_state ON readings(state, id);
        CREATE TABLE dead_letters(
            id INTEGER PRIMARY KEY,
            reading_id INTEGER NOT NULL,
            http_status INTEGER,
            reason TEXT NOT NULL,
            outcome TEXT,
            at INTEGER NOT NULL,
            checksum INTEGER NOT NULL
        );
        CREATE INDEX dead_letters_by_reading ON dead_letters(reading_id);
        CREATE TABLE audit(
            id INTEGER PRIMARY KEY,
            event TEXT NOT NULL,
            reading_id INTEGER,
            actor TEXT NOT NULL,
            detail TEXT,
            at INTEGER NOT NULL,
            checksum INTEGER NOT NULL
        );
        CREATE TABLE quarantine(
            id INTEGER PRIMARY KEY,
            source_table TEXT NOT NULL,
            row_id INTEGER,
            raw TEXT NOT NULL,
            reason TEXT NOT NULL,
            at INTEGER NOT NULL
        );
        """,
        // 1 → 2: households and visits (issue #7). Readings stored before have no attribution row: their
        // subject column alone says whose they are.
        """
        CREATE TABLE visits(
            id INTEGER PRIMARY KEY AUTOINCREMENT,   -- never reused: attributions name visits by id
            patient_system TEXT NOT NULL,
            patient_value TEXT NOT NULL,
            performer_system TEXT,
            performer_value TEXT,
            started_at INTEGER NOT NULL,
            ended_at INTEGER,
            started_by TEXT NOT NULL,
            ended_by TEXT,
            checksum INTEGER NOT NULL
        );
        -- At most one open visit: a second start fails inside the database, not only in Swift.
        CREATE UNIQUE INDEX visits_one_open ON visits((ended_at IS NULL)) WHERE ended_at IS NULL;
        CREATE TABLE attributions(
            id INTEGER PRIMARY KEY,                 -- the reading's id
            rule TEXT NOT NULL,
            reason TEXT,
            visit_id INTEGER,
            checksum INTEGER NOT NULL
        );
        -- Pruned readings' keys: a monitor re-sending months of memory must not bring them back under whoever
        -- the household says its slot is today.
        CREATE TABLE pruned(
            id INTEGER PRIMARY KEY,                 -- the pruned reading's id
            dedupe_key TEXT NOT NULL,
            essence TEXT NOT NULL,                  -- JSON: values, userSlot, sequenceNumber, window
            checksum INTEGER NOT NULL
        );
        CREATE INDEX pruned_by_key ON pruned(dedupe_key);
        """,
    ]
}
