import Testing
import VitalModel
import VitalGateTestKit
@testable import ProfileEngine

@Suite("Record Access Control Point 0x2A52")
struct RecordAccessControlPointTests {
    @Test("indications decode to what their sources state", arguments: GATTVectors.racp.responses)
    func response(_ vector: RACPResponseVector) throws {
        let response = try RACP.decodeResponse(bytes(vector.hex))
        let expected = vector.expected
        let comment = Comment(rawValue: "\(vector.name), source: \(vector.source.where)")
        if let count = expected.numberOfRecords {
            #expect(response == .numberOfRecords(count), comment)
        }
        if let code = expected.responseCode {
            guard case .responseCode(let request, let value) = response else {
                Issue.record("not a response code: \(response); \(comment)")
                return
            }
            #expect(Int(value.rawValue) == code, comment)
            if let opcode = expected.requestOpcode { #expect(Int(request) == opcode, comment) }
        }
    }

    @Test("response code names follow the GATT Specification Supplement §3.178.4 (1-10)")
    func codeNames() {
        let names: [RACP.ResponseCode] = [.success, .opcodeNotSupported, .invalidOperator, .operatorNotSupported,
                                          .invalidOperand, .noRecordsFound, .abortUnsuccessful, .procedureNotCompleted,
                                          .operandNotSupported, .serverBusy]
        #expect(names.map(\.rawValue) == Array(1...10))
        #expect(RACP.ResponseCode.allCases.count == 10)
    }

    @Test("a response to an op code VitalGate does not know keeps the op code; a known one names it")
    func requestOpcode() throws {
        #expect(try RACP.decodeResponse(bytes("06000C02")).request == nil)
        #expect(try RACP.decodeResponse(bytes("06000101")).request == .reportStoredRecords)
    }

    @Test("requests encode to the bytes their sources give", arguments: GATTVectors.racp.requests)
    func request(_ vector: RACPRequestVector) throws {
        let encoded: [UInt8]
        switch vector.request {
        case "reportAllRecords": encoded = RACP.reportAllRecords()
        case "reportNumberOfAllRecords": encoded = RACP.reportNumberOfAllRecords()
        case "reportRecordsFromSequenceNumber":
            encoded = RACP.reportRecords(fromSequenceNumber: try #require(vector.sequenceNumber))
        case "reportNumberOfRecordsFromSequenceNumber":
            encoded = RACP.reportNumberOfRecords(fromSequenceNumber: try #require(vector.sequenceNumber))
        case "deleteAllRecords": encoded = RACP.deleteAllRecords()
        case "abortOperation": encoded = RACP.abortOperation()
        default:
            Issue.record("unknown request \(vector.request)")
            return
        }
        #expect(encoded == bytes(vector.hex), "\(vector.name), source: \(vector.source.where)")
    }

    @Test("public malformed indications are errors naming the field and byte", arguments: GATTVectors.racp.malformed)
    func malformed(_ vector: MalformedGATTVector) {
        let error = decodeError { () throws(DecodeError) in _ = try RACP.decodeResponse(bytes(vector.hex)) }
        #expect(error?.field == vector.error.field, "\(vector.why): \(String(describing: error))")
        #expect(error?.offset == vector.error.offset, "\(vector.why): \(String(describing: error))")
        #expect(error?.frame == "2A52")
    }

    @Test("empty input, reserved codes and trailing bytes are errors", arguments: [
        ("", "op code", 0), ("06", "operator", 1), ("0600", "request op code", 2), ("060001", "response code value", 3),
        ("06000100", "response code value", 3), ("0600010B", "response code value", 3), ("06000101FF", "end of input", 4),
        ("0500", "number of records", 2), ("00", "op code", 0), ("FF000000", "op code", 0),
    ])
    func rejected(_ hex: String, _ field: String, _ offset: Int) {
        let error = decodeError { () throws(DecodeError) in _ = try RACP.decodeResponse(bytes(hex)) }
        #expect(error?.field == field, "\(String(describing: error))")
        #expect(error?.offset == offset, "\(String(describing: error))")
    }
}
