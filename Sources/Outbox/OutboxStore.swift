import Foundation
import VitalModel

/// The Outbox's connection and the operations on it. Not thread-safe: ``Outbox`` owns one behind a lock.
final class OutboxStore {
    typealias Value = SQLiteDatabase.Value

    let database: SQLiteDatabase
    let path: String
    let options: OutboxOptions
    /// What the current transaction does, for error messages ("ingest readings").
    private var operation = "read the outbox"

    init(database: SQLiteDatabase, path: String, options: OutboxOptions) {
        self.database = database
        self.path = path
        self.options = options
    }

    var directory: String { URL(fileURLWithPath: path).deletingLastPathComponent().path }
    var nowMilliseconds: Int64 { options.clock().outboxMilliseconds }

    // MARK: Errors and transactions

    func error(_ failure: SQLiteDatabase.Failure) -> OutboxError {
        if failure.isDiskFull {
            return .diskFull(path: path, freeBytes: options.freeSpace(directory), reservedBytes: options.reservedFreeBytes,
                             cause: failure)
        }
        return .storage(operation: operation, path: path, cause: failure)
    }

    /// Runs `body` in one `BEGIN IMMEDIATE` transaction committed with `synchronous` (FULL: the commit is
    /// on disk when this returns). Any error rolls everything back, so nothing is half-written.
    func transaction<T>(_ operation: String, synchronous: String, _ body: () throws(OutboxError) -> T) throws(OutboxError) -> T {
        self.operation = operation
        defer { self.operation = "read the outbox" }
        do {
            try database.setSynchronous(synchronous)
            try database.execute("BEGIN IMMEDIATE")
        } catch {
            throw self.error(error)
        }
        do throws(OutboxError) {
            let result = try body()
            do { try database.execute("COMMIT") } catch { throw self.error(error) }
            return result
        } catch {
            // A failed COMMIT (disk full) can leave the transaction open; a failed statement always does.
            if database.isInTransaction { try? database.execute("ROLLBACK") }
            throw error
        }
    }

    func query(_ sql: String, _ arguments: [Value] = []) throws(OutboxError) -> [[Value]] {
        do { return try database.query(sql, arguments) } catch { throw self.error(error) }
    }

    @discardableResult
    func run(_ sql: String, _ arguments: [Value] = []) throws(OutboxError) -> Int {
        do { return try database.run(sql, arguments) } catch { throw self.error(error) }
    }

    /// Recomputes a row's checksum after a change, in the same transaction.
    func reseal(_ table: Schema.Table, id: Int64) throws(OutboxError) {
        try run("UPDATE \(table.name) SET checksum = \(table.checksumExpression) WHERE id = ?1", [.integer(id)])
    }

    /// Appends an audit event. `detail` must not hold patient identifiers or measured values.
    func audit(_ event: String, reading: Int64?, actor: String = "vitalgate", detail: String?) throws(OutboxError) {
        try run("INSERT INTO audit(event, reading_id, actor, detail, at, checksum) VALUES (?1, ?2, ?3, ?4, ?5, 0)",
                [.text(event), reading.map(Value.integer) ?? .null, .text(actor), detail.map(Value.text) ?? .null,
                 .integer(nowMilliseconds)])
        try reseal(Schema.audit, id: database.lastInsertedRowID)
    }

    // MARK: Rows

    static let readingColumns = Schema.readings.columnList

    /// The state of a reading, or `unknownReading`.
    func state(of id: OutboxReadingID) throws(OutboxError) -> ReadingState {
        guard let row = try query("SELECT state FROM readings WHERE id = ?1", [.integer(id.rawValue)]).first else {
            throw OutboxError.unknownReading(id)
        }
        guard let text = row[0].text, let state = ReadingState(rawValue: text) else {
            throw OutboxError.unreadableRow(id, problem: "its state is not one of \(ReadingState.allCases.map(\.rawValue))")
        }
        return state
    }

    /// Checks that `id` is in one of `allowed` before it becomes `target`.
    @discardableResult
    func require(_ id: OutboxReadingID, in allowed: Set<ReadingState>, toBecome target: ReadingState) throws(OutboxError) -> ReadingState {
        let current = try state(of: id)
        guard allowed.contains(current) else { throw OutboxError.invalidTransition(id, from: current, to: target) }
        return current
    }

    func storedReading(_ id: OutboxReadingID) throws(OutboxError) -> StoredReading? {
        guard let row = try query("SELECT \(Self.readingColumns) FROM readings WHERE id = ?1", [.integer(id.rawValue)]).first else {
            return nil
        }
        var found = [try Self.decodeReadingRow(row)]
        try attachAttributions(&found)
        return found[0]
    }

    /// A `readings` row (columns in ``Schema/readings`` order) as a ``StoredReading``.
    static func decodeReadingRow(_ row: [Value]) throws(OutboxError) -> StoredReading {
        let id = OutboxReadingID(row[0].integer ?? -1)
        func fail(_ problem: String) -> OutboxError { .unreadableRow(id, problem: problem) }
        guard let stateText = row[2].text, let state = ReadingState(rawValue: stateText) else {
            throw fail("its state is not a known state")
        }
        guard let payload = row[5].text else { throw fail("it has no payload") }
        let reading: Reading
        do { reading = try Reading(jsonText: payload) } catch { throw fail("its payload does not decode (\(error))") }
        var subject: PatientIdentifier?
        switch (row[3].text, row[4].text) {
        case let (system?, value?): subject = PatientIdentifier(system: system, value: value)
        case (nil, nil): subject = nil
        default: throw fail("it has half a subject")
        }
        guard let storedAt = row[6].integer, let attempts = row[7].integer else { throw fail("stored_at or attempts is not a number") }
        var locations: [String] = []
        if let text = row[12].text {
            guard case .array(let items)? = try? JSONValue.parse(text) else { throw fail("its locations are not a JSON array") }
            for item in items {
                guard case .string(let location) = item else { throw fail("its locations are not all strings") }
                locations.append(location)
            }
        }
        return StoredReading(id: id, reading: reading, subject: subject, state: state, attempts: Int(attempts),
                             lastError: row[9].text, nextAttemptAt: row[8].integer.map(Date.init(outboxMilliseconds:)),
                             storedAt: Date(outboxMilliseconds: storedAt),
                             deliveredAt: row[10].integer.map(Date.init(outboxMilliseconds:)),
                             serverStatus: row[11].integer.map { Int($0) }, locations: locations,
                             identifyByReceipt: row[1].text.map(DedupeKey.isCollision) ?? false)
    }

    /// Moves a row to the quarantine table with its columns as JSON text, and audits it.
    func quarantine(_ table: Schema.Table, id: Int64, reason: String) throws(OutboxError) {
        let columns = table.columns + (table.hasChecksum ? ["checksum"] : [])
        guard let row = try query("SELECT \(columns.joined(separator: ", ")) FROM \(table.name) WHERE id = ?1", [.integer(id)]).first
        else { return }
        try run("INSERT INTO quarantine(source_table, row_id, raw, reason, at) VALUES (?1, ?2, ?3, ?4, ?5)",
                [.text(table.name), .integer(id), .text(Self.rawText(columns: columns, row: row)), .text(reason),
                 .integer(nowMilliseconds)])
        try run("DELETE FROM \(table.name) WHERE id = ?1", [.integer(id)])
        try audit("quarantined", reading: table.name == Schema.readings.name ? id : nil,
                  detail: "\(table.name) row \(id) moved to the quarantine table: \(reason)")
    }

    /// A row as a JSON object of its columns, so a damaged row keeps everything that could be read.
    static func rawText(columns: [String], row: [Value]) -> String {
        JSONValue.object(zip(columns, row).map { column, value in
            let json: JSONValue = switch value {
            case .null: .null
            case .integer(let number): .int(number)
            case .real(let number): .string(String(number))
            case .text(let text): .string(text)
            case .blob(let bytes): .string("x'" + hexString(bytes, separator: "") + "'")
            }
            return (column, json)
        }).serialized()
    }
}

extension SQLiteDatabase.Value {
    static func date(_ date: Date?) -> Self { date.map { .integer($0.outboxMilliseconds) } ?? .null }
}
