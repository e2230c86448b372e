import VitalModel

/// Why bytes could not be decoded: which field, at which offset, what was wrong, and what to check.
///
/// Decoders never trap on input; every malformed byte string ends here.
public struct DecodeError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The characteristic or frame being decoded, e.g. `2A35`.
    public var frame: String
    /// The field being read, e.g. `diastolic` or `flags`.
    public var field: String
    /// Byte offset of the field in the input.
    public var offset: Int
    public var problem: String
    /// How to fix or what to check.
    public var hint: String

    public init(frame: String, field: String, offset: Int, problem: String, hint: String) {
        self.frame = frame
        self.field = field
        self.offset = offset
        self.problem = problem
        self.hint = hint
    }

    public var description: String { "\(frame): \(field) at byte \(offset): \(problem). \(hint)" }
}

/// Reads little-endian fields from a byte string with bounds checks that name the field.
struct ByteReader {
    let bytes: [UInt8]
    let frame: String
    private(set) var offset = 0

    init(_ bytes: [UInt8], frame: String) {
        self.bytes = bytes
        self.frame = frame
    }

    var remaining: Int { bytes.count - offset }

    mutating func take(_ count: Int, _ field: String, promisedBy: String) throws(DecodeError) -> ArraySlice<UInt8> {
        guard remaining >= count else {
            throw DecodeError(frame: frame, field: field, offset: offset,
                              problem: "needs \(count) byte\(count == 1 ? "" : "s") but the input ends after \(remaining) (input is \(bytes.count) bytes)",
                              hint: "\(promisedBy) promises this field; check the capture holds the whole notification and was not cut short")
        }
        defer { offset += count }
        return bytes[offset..<offset + count]
    }

    mutating func uint8(_ field: String, promisedBy: String) throws(DecodeError) -> UInt8 {
        try take(1, field, promisedBy: promisedBy).first!
    }

    mutating func uint16(_ field: String, promisedBy: String) throws(DecodeError) -> UInt16 {
        let slice = try take(2, field, promisedBy: promisedBy)
        return UInt16(slice[slice.startIndex]) | UInt16(slice[slice.startIndex + 1]) << 8
    }

    mutating func uint32(_ field: String, promisedBy: String) throws(DecodeError) -> UInt32 {
        let slice = try take(4, field, promisedBy: promisedBy)
        return slice.reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
    }

    /// Reads the flags byte that opens every Bluetooth SIG measurement. Bits outside `definedBits` are
    /// reserved and must be clear: set ones mean other data or shifted bytes, not a measurement to guess at.
    mutating func measurementFlags(_ measurement: String, smallest: String, definedBits: UInt8) throws(DecodeError) -> UInt8 {
        guard !bytes.isEmpty else {
            throw DecodeError(frame: frame, field: "flags", offset: 0, problem: "the input is empty",
                              hint: "a \(measurement) is at least \(smallest)")
        }
        let flags = try uint8("flags", promisedBy: "every measurement")
        guard flags & ~definedBits == 0 else {
            throw DecodeError(frame: frame, field: "flags", offset: 0,
                              problem: "reserved bits are set (\(Self.describe(flags)))",
                              hint: "this is not a \(measurement), or the bytes are shifted; check the capture starts at the flags byte")
        }
        return flags
    }

    /// `flags 0x1E`, the way errors name the flags that promised a field.
    static func describe(_ flags: UInt8) -> String { "flags 0x" + hexString([flags], separator: "") }

    /// Fails when bytes are left over: a layout that does not account for every byte is a misparse.
    func expectEnd(describedBy flagsText: String) throws(DecodeError) {
        guard remaining == 0 else {
            throw DecodeError(frame: frame, field: "end of input", offset: offset,
                              problem: "\(remaining) byte\(remaining == 1 ? "" : "s") left after the last field",
                              hint: "\(flagsText) describes \(offset) bytes but the input has \(bytes.count); check the flags byte and that two notifications were not joined")
        }
    }
}
