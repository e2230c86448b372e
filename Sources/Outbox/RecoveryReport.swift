/// What the Outbox found and did when it opened its file. Nothing is recovered silently: every row moved,
/// salvaged or lost is counted here, audited, and said in ``description``.
public struct RecoveryReport: Sendable, Hashable, CustomStringConvertible {
    /// The database file's path.
    public var path: String
    /// True when there was no usable file and an empty outbox was created (first start, or a damaged file
    /// was replaced).
    public var createdNewFile: Bool
    /// The schema version found before migrating (0: empty file); nil when no migration ran.
    public var migratedFrom: Int?
    public var schemaVersion: Int
    /// `PRAGMA quick_check`'s result on the file as found: `ok`, or its first findings; nil when the file
    /// could not be checked (not a database) or was new.
    public var quickCheck: String?
    /// Rows whose checksum did not verify, moved to the quarantine table at this start, by table.
    public var quarantinedRows: [String: Int]
    /// In-flight readings put back to pending (an upload was cut off by a stop or a crash).
    public var requeuedInFlight: Int
    /// Set when the file was damaged beyond row level and replaced.
    public var replacedFile: ReplacedFile?
    /// Set when a stop interrupted the replacement of a damaged file after its new file was complete, and
    /// this start put the new file in place: what that replacement recorded in the audit trail (where the
    /// damaged file was kept, what was salvaged and lost).
    public var finishedInterruptedReplacement: String?

    /// A damaged database file that was moved aside, and what could be taken from it.
    public struct ReplacedFile: Sendable, Hashable {
        /// Why it was replaced: not a database, or the quick_check findings.
        public var reason: String
        /// Where the damaged file is kept (its -wal and -journal, if any, beside it with the same suffixes).
        public var movedTo: String
        /// Rows copied into the new file with verified checksums, by table.
        public var salvagedRows: [String: Int]
        /// Rows that could be read but failed their checksum: in the new file's quarantine table.
        public var quarantinedRows: Int
        /// Rows that could not be read (an upper bound: ids in a damaged range are all counted).
        public var lostRows: Int
        /// Tables that could not be read at all, so their losses could not be counted.
        public var unreadableTables: [String]
    }

    public var totalQuarantined: Int { quarantinedRows.values.reduce(0, +) + (replacedFile?.quarantinedRows ?? 0) }
    public var lostRows: Int { replacedFile?.lostRows ?? 0 }

    /// True when the file opened as it was left, with nothing to repair (in-flight readings may have been requeued).
    public var isClean: Bool {
        replacedFile == nil && finishedInterruptedReplacement == nil && quarantinedRows.isEmpty && (quickCheck == nil || quickCheck == "ok")
    }

    public var description: String {
        var sentences: [String] = []
        if let replaced = replacedFile {
            let salvaged = replaced.salvagedRows.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }
            var text = "The outbox database \(path) was damaged (\(replaced.reason)); it was moved aside to "
                + "\(replaced.movedTo) and a new outbox was created. Salvaged rows with verified checksums: "
                + (salvaged.isEmpty ? "none" : salvaged.joined(separator: ", ")) + "."
            if replaced.quarantinedRows > 0 {
                text += " \(replaced.quarantinedRows) readable rows failed their checksum and are kept in the quarantine table."
            }
            if replaced.lostRows > 0 {
                text += " \(replaced.lostRows) rows could not be read and are lost."
            } else if replaced.unreadableTables.isEmpty {
                text += " No row was found unreadable."
            }
            if !replaced.unreadableTables.isEmpty {
                text += " These tables could not be read at all, so their losses are not counted: "
                    + replaced.unreadableTables.joined(separator: ", ") + "."
            }
            text += " Fix: keep the moved-aside file for inspection and check the storage medium (cards that lie "
                + "about fsync corrupt databases)."
            sentences.append(text)
        } else if createdNewFile {
            sentences.append("Created a new outbox database at \(path) (schema version \(schemaVersion)).")
        } else {
            var text = "Opened the outbox database \(path)"
            if let migratedFrom { text += ", migrated from schema version \(migratedFrom) to \(schemaVersion)" }
            sentences.append(text + "; quick_check \(quickCheck ?? "not run").")
        }
        if let finished = finishedInterruptedReplacement {
            sentences.append("A stop interrupted the replacement of the damaged outbox database \(path) after its new file "
                + "was complete; this start put the new file in place (\(finished)). Fix: keep the moved-aside file for "
                + "inspection and check the storage medium.")
        }
        if !quarantinedRows.isEmpty {
            let parts = quarantinedRows.sorted { $0.key < $1.key }.map { "\($0.value) from \($0.key)" }
            sentences.append("Rows whose checksum did not verify were moved to the quarantine table: "
                + parts.joined(separator: ", ") + "; the rest of the outbox works as before.")
        }
        if requeuedInFlight > 0 {
            sentences.append("\(requeuedInFlight) readings were in flight when VitalGate stopped and are pending again.")
        }
        return sentences.joined(separator: " ")
    }
}
