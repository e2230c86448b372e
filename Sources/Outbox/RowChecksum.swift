internal import CSQLite

/// CRC-32C (Castagnoli) over a row's columns, as the SQL function `vitalgate_checksum(...)`.
///
/// Every stored row carries the checksum of all its other columns, written in the same transaction as any
/// change, so bytes that rot on an SD card are found at start and quarantined instead of uploaded.
/// Each argument is encoded with its type and length first, so `('ab', 'c')` and `('a', 'bc')` differ and
/// NULL differs from an empty text.
enum RowChecksum {
    static let functionName = "vitalgate_checksum"

    /// Castagnoli polynomial, reflected.
    private static let table: [UInt32] = (0..<256).map { index in
        var crc = UInt32(index)
        for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
        return crc
    }

    struct Accumulator {
        private var crc: UInt32 = 0xFFFF_FFFF

        mutating func add(_ bytes: UnsafeRawBufferPointer) {
            for byte in bytes { crc = RowChecksum.table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        }

        mutating func add(_ byte: UInt8) { withUnsafeBytes(of: byte) { add($0) } }
        mutating func add(_ value: UInt64) { withUnsafeBytes(of: value.bigEndian) { add($0) } }

        var value: UInt32 { crc ^ 0xFFFF_FFFF }
    }

    /// The CRC-32C of `bytes` (for the known-answer test).
    static func crc32c(_ bytes: [UInt8]) -> UInt32 {
        var accumulator = Accumulator()
        bytes.withUnsafeBytes { accumulator.add($0) }
        return accumulator.value
    }

    /// Registers `vitalgate_checksum` on a connection; every connection that writes or verifies rows needs it.
    static func register(on database: SQLiteDatabase) throws(SQLiteDatabase.Failure) {
        try database.registerFunction(functionName) { context, count, arguments in
            var accumulator = Accumulator()
            for index in 0..<Int(count) {
                let value = arguments?[index]
                let type = sqlite3_value_type(value)
                accumulator.add(UInt8(truncatingIfNeeded: type))
                switch type {
                case SQLITE_INTEGER:
                    accumulator.add(UInt64(bitPattern: sqlite3_value_int64(value)))
                case SQLITE_FLOAT:
                    accumulator.add(sqlite3_value_double(value).bitPattern)
                case SQLITE_TEXT, SQLITE_BLOB:
                    // Text is hashed as its UTF-8 bytes; bytes are read after the pointer so the length is right.
                    let pointer: UnsafeRawPointer? = type == SQLITE_TEXT
                        ? UnsafeRawPointer(sqlite3_value_text(value)) : sqlite3_value_blob(value)
                    let length = Int(sqlite3_value_bytes(value))
                    accumulator.add(UInt64(length))
                    if let pointer, length > 0 { accumulator.add(UnsafeRawBufferPointer(start: pointer, count: length)) }
                default:
                    break
                }
            }
            sqlite3_result_int64(context, Int64(accumulator.value))
        }
    }
}
