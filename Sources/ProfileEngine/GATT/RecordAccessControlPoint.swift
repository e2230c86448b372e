import VitalModel

/// Record Access Control Point (0x2A52; oesmith/gatt-xml record_access_control_point.xml, GATT Specification
/// Supplement §3.178): the requests a collector writes to download stored records, and the indications the
/// device answers with.
///
/// Layout: op code u8 · operator u8 · operand. Requests filtered by sequence number use filter type 1
/// followed by the u16 sequence number (Glucose and Pulse Oximeter services).
public enum RACP {
    public static let uuid = "2A52"

    /// RACP op codes.
    public enum Opcode: UInt8, Sendable, Hashable, CaseIterable {
        case reportStoredRecords = 1
        case deleteStoredRecords = 2
        case abortOperation = 3
        case reportNumberOfStoredRecords = 4
        case numberOfStoredRecordsResponse = 5
        case responseCode = 6
    }

    /// Values of a Response Code indication (GATT Specification Supplement §3.178.4; gatt-xml stops at 9).
    public enum ResponseCode: UInt8, Sendable, Hashable, CaseIterable {
        case success = 1
        case opcodeNotSupported = 2
        case invalidOperator = 3
        case operatorNotSupported = 4
        case invalidOperand = 5
        case noRecordsFound = 6
        case abortUnsuccessful = 7
        case procedureNotCompleted = 8
        case operandNotSupported = 9
        case serverBusy = 10
    }

    /// What the device indicated on the control point.
    public enum Response: Sendable, Hashable {
        /// The answer to "report number of stored records".
        case numberOfRecords(Int)
        /// The outcome of a request. `requestOpcode` is the op code the device says it answers, kept as sent:
        /// a device may answer an op code VitalGate does not know with "op code not supported".
        case responseCode(requestOpcode: UInt8, ResponseCode)

        /// The request op code of a response code, when it is one RACP defines.
        public var request: Opcode? {
            guard case .responseCode(let opcode, _) = self else { return nil }
            return Opcode(rawValue: opcode)
        }
    }

    // Operators and the filter type used here.
    static let allRecords: UInt8 = 1
    static let greaterThanOrEqual: UInt8 = 3
    static let sequenceNumberFilter: UInt8 = 1

    /// "Report stored records: all records" (`01 01`).
    public static func reportAllRecords() -> [UInt8] { [Opcode.reportStoredRecords.rawValue, allRecords] }

    /// "Report stored records with sequence number ≥ `sequenceNumber`" (`01 03 01 lo hi`): an incremental
    /// download asks from the last sequence number it stored plus one.
    public static func reportRecords(fromSequenceNumber sequenceNumber: UInt16) -> [UInt8] {
        [Opcode.reportStoredRecords.rawValue, greaterThanOrEqual, sequenceNumberFilter] + littleEndian(sequenceNumber)
    }

    /// "Report number of stored records: all records" (`04 01`).
    public static func reportNumberOfAllRecords() -> [UInt8] { [Opcode.reportNumberOfStoredRecords.rawValue, allRecords] }

    /// "Report number of stored records with sequence number ≥ `sequenceNumber`" (`04 03 01 lo hi`).
    public static func reportNumberOfRecords(fromSequenceNumber sequenceNumber: UInt16) -> [UInt8] {
        [Opcode.reportNumberOfStoredRecords.rawValue, greaterThanOrEqual, sequenceNumberFilter] + littleEndian(sequenceNumber)
    }

    /// "Delete stored records: all records" (`02 01`).
    public static func deleteAllRecords() -> [UInt8] { [Opcode.deleteStoredRecords.rawValue, allRecords] }

    /// "Abort operation" with the null operator (`03 00`).
    public static func abortOperation() -> [UInt8] { [Opcode.abortOperation.rawValue, 0] }

    static func littleEndian(_ value: UInt16) -> [UInt8] { [UInt8(value & 0xFF), UInt8(value >> 8)] }

    /// Decodes an indication of the control point: a number of records (`05 00 lo hi`) or a response code
    /// (`06 00 <request op code> <code>`). The count is the 16-bit field the Glucose, Pulse Oximeter and
    /// Blood Pressure services define.
    public static func decodeResponse(_ bytes: [UInt8]) throws(DecodeError) -> Response {
        let frame = uuid
        var reader = ByteReader(bytes, frame: frame)
        guard !bytes.isEmpty else {
            throw DecodeError(frame: frame, field: "op code", offset: 0, problem: "the input is empty",
                              hint: "an RACP indication is 4 bytes: op code, operator, and a 2-byte operand")
        }
        let opcode = try reader.uint8("op code", promisedBy: "every RACP indication")
        guard opcode == Opcode.numberOfStoredRecordsResponse.rawValue || opcode == Opcode.responseCode.rawValue else {
            let name = Opcode(rawValue: opcode).map { " (\($0), a request)" } ?? ""
            throw DecodeError(frame: frame, field: "op code", offset: 0,
                              problem: "op code \(opcode)\(name) is not a response",
                              hint: "a device answers with op code 5 (number of stored records) or 6 (response code); check these are indicated bytes, not the request that was written")
        }
        let operatorOffset = reader.offset
        let op = try reader.uint8("operator", promisedBy: "op code \(opcode)")
        guard op == 0 else {
            throw DecodeError(frame: frame, field: "operator", offset: operatorOffset,
                              problem: "operator \(op) where a response has the null operator 0",
                              hint: "the bytes are shifted or not an RACP response")
        }
        let response: Response
        if opcode == Opcode.numberOfStoredRecordsResponse.rawValue {
            response = .numberOfRecords(Int(try reader.uint16("number of records", promisedBy: "op code 5")))
        } else {
            let request = try reader.uint8("request op code", promisedBy: "op code 6")
            let codeOffset = reader.offset
            let value = try reader.uint8("response code value", promisedBy: "op code 6")
            guard let code = ResponseCode(rawValue: value) else {
                throw DecodeError(frame: frame, field: "response code value", offset: codeOffset,
                                  problem: "response code \(value) is reserved",
                                  hint: "defined codes are 1 (success) to 10 (server busy); check the device's specification")
            }
            response = .responseCode(requestOpcode: request, code)
        }
        try reader.expectEnd(describedBy: "op code \(opcode)")
        return response
    }
}
