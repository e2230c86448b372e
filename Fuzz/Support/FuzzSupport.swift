import Foundation
import ProfileEngine
import VitalModel

// Shared by every fuzz target (compiled by scripts/fuzz into the module FuzzSupport). The checks here hold
// for any decoder; a target adds what holds for its own format.

/// Stops the fuzzer when an invariant does not hold. libFuzzer treats the trap as a crash and saves the input.
public func require(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String,
                    file: StaticString = #fileID, line: UInt = #line) {
    if !condition() { fatalError("fuzz invariant violated: \(message())", file: file, line: line) }
}

/// The fuzzer's input as a byte array.
public func fuzzInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> [UInt8] {
    size > 0 ? Array(UnsafeBufferPointer(start: data, count: size)) : []
}

/// The context every target decodes with: fixed, so a crash reproduces byte for byte.
/// The address is a documentation address (RFC 7042), the time an arbitrary instant at UTC+7.
public let fuzzContext = DecodeContext(
    device: DeviceIdentity(bluetoothAddress: EUI48(bytes: [0x00, 0x00, 0x5E, 0x00, 0x53, 0x01])),
    receivedAt: HubTimestamp(instant: Date(timeIntervalSince1970: 1_718_000_000), utcOffsetSeconds: 7 * 3600),
    profileID: "fuzz")

/// IEEE 11073-20601 special values, from the table in shared/reference/device-protocols.md §3.1
/// (HL7/phd FLOATS.md): checked on the raw bits, before sign extension.
public let sfloatSpecials: [UInt16: SpecialValue] = [
    0x07FF: .notANumber, 0x0800: .notAtThisResolution, 0x07FE: .positiveInfinity,
    0x0802: .negativeInfinity, 0x0801: .reserved,
]
public let floatSpecials: [UInt32: SpecialValue] = [
    0x007F_FFFF: .notANumber, 0x0080_0000: .notAtThisResolution, 0x007F_FFFE: .positiveInfinity,
    0x0080_0002: .negativeInfinity, 0x0080_0001: .reserved,
]

/// Checks that `value` is what the SFLOAT `raw` encodes by encoding it back (an inverse written here, not the
/// decoder run twice): 4-bit two's-complement exponent, 12-bit two's-complement mantissa.
public func requireSFLOAT(_ value: NumericValue, encodes raw: UInt16, _ field: String) {
    switch value {
    case .special(let special):
        require(sfloatSpecials[raw] == special, "\(field): SFLOAT 0x\(hex16(raw)) decoded as special \(special)")
    case .number(let number):
        require(sfloatSpecials[raw] == nil, "\(field): SFLOAT special 0x\(hex16(raw)) decoded as the number \(number)")
        require((-2048...2047).contains(number.mantissa) && (-8...7).contains(number.exponent),
                "\(field): \(number.mantissa)e\(number.exponent) does not fit an SFLOAT")
        let bits = UInt16(truncatingIfNeeded: number.exponent) << 12 | UInt16(truncatingIfNeeded: number.mantissa) & 0x0FFF
        require(bits == raw, "\(field): SFLOAT 0x\(hex16(raw)) decoded as \(number.mantissa)e\(number.exponent), which encodes 0x\(hex16(bits))")
        requireDecimalText(number, field)
    }
}

/// Like ``requireSFLOAT(_:encodes:_:)`` for the 32-bit FLOAT: 8-bit exponent, 24-bit mantissa.
public func requireFLOAT(_ value: NumericValue, encodes raw: UInt32, _ field: String) {
    switch value {
    case .special(let special):
        require(floatSpecials[raw] == special, "\(field): FLOAT 0x\(String(raw, radix: 16)) decoded as special \(special)")
    case .number(let number):
        require(floatSpecials[raw] == nil, "\(field): FLOAT special 0x\(String(raw, radix: 16)) decoded as the number \(number)")
        require((-8_388_608...8_388_607).contains(number.mantissa) && (-128...127).contains(number.exponent),
                "\(field): \(number.mantissa)e\(number.exponent) does not fit a FLOAT")
        let bits = UInt32(truncatingIfNeeded: number.exponent) << 24 | UInt32(truncatingIfNeeded: number.mantissa) & 0x00FF_FFFF
        require(bits == raw, "\(field): FLOAT 0x\(String(raw, radix: 16)) decoded as \(number.mantissa)e\(number.exponent)")
        requireDecimalText(number, field)
    }
}

/// The text a decimal is written as (JSON, FHIR) must be a plain decimal with exactly `-exponent` fraction
/// digits, and read back to the same number.
public func requireDecimalText(_ number: DecimalValue, _ field: String) {
    let text = number.description
    var digits = Substring(text)
    if digits.first == "-" { digits = digits.dropFirst() }
    let parts = digits.split(separator: ".", omittingEmptySubsequences: false)
    let whole = parts.first ?? ""
    let isDigits: (Substring) -> Bool = { !$0.isEmpty && $0.utf8.allSatisfy { (0x30...0x39).contains($0) } }
    require(parts.count <= 2 && isDigits(whole) && (whole == "0" || whole.first != "0"),
            "\(field): \(number.mantissa)e\(number.exponent) is written as '\(text)', not a plain decimal")
    require(text.hasPrefix("-") == (number.mantissa < 0),
            "\(field): \(number.mantissa)e\(number.exponent) is written as '\(text)', with the wrong sign")
    let fraction = parts.count == 2 ? parts[1] : ""
    require(fraction.count == max(0, -number.exponent) && (parts.count == 1 || isDigits(fraction)),
            "\(field): \(number.mantissa)e\(number.exponent) is written as '\(text)', losing or inventing precision")
    // Read back where the value fits Int64 (FLOAT exponents reach ±127).
    if let parsed = DecimalValue(text) {
        if number.exponent <= 0 {
            require(parsed == number, "\(field): '\(text)' reads back as \(parsed.mantissa)e\(parsed.exponent)")
        } else {
            let scaled = scaledMantissa(number)
            require(scaled == nil || parsed == DecimalValue(mantissa: scaled ?? 0, exponent: 0),
                    "\(field): '\(text)' reads back as \(parsed.mantissa)e\(parsed.exponent)")
        }
    }
}

/// mantissa × 10^exponent as an integer when exponent ≥ 0 and it fits Int64.
func scaledMantissa(_ number: DecimalValue) -> Int64? {
    var value = number.mantissa
    for _ in 0..<max(0, number.exponent) {
        let (product, overflow) = value.multipliedReportingOverflow(by: 10)
        if overflow { return nil }
        value = product
    }
    return value
}

/// True when `number` equals numerator / denominator exactly (denominator > 0).
public func decimal(_ number: DecimalValue, equals numerator: Int64, over denominator: Int64) -> Bool {
    // number = m / 10^k for k = -exponent ≥ 0, so compare m × denominator with numerator × 10^k.
    guard number.exponent <= 0, number.exponent >= -18 else { return false }
    var scale: Int64 = 1
    for _ in 0 ..< -number.exponent { scale *= 10 }
    let (left, leftOverflow) = number.mantissa.multipliedReportingOverflow(by: denominator)
    let (right, rightOverflow) = numerator.multipliedReportingOverflow(by: scale)
    return !leftOverflow && !rightOverflow && left == right
}

/// What holds for every reading a decoder returns for `input` under ``fuzzContext``, whatever the format.
public func requireReading(_ reading: Reading, decodedFrom input: [UInt8], kind: MeasurementKind, frame: String) {
    require(reading.raw == input, "the reading's raw bytes \(hexString(reading.raw, separator: "")) are not the input")
    require(reading.kind == kind, "kind \(reading.kind) instead of \(kind)")
    require(reading.source.frame == frame && reading.source.profileID == fuzzContext.profileID,
            "source \(reading.source) does not name frame \(frame) and profile \(fuzzContext.profileID)")
    require(reading.receivedAt == fuzzContext.receivedAt && reading.device == fuzzContext.device,
            "the decoder changed the receive time or device identity it was given")
    requireReadingShape(reading)
}

/// What holds for every reading from anywhere (decoders, engine sessions): values in their type's units,
/// numbers written as exact decimals, and JSON that parses and carries the raw bytes. A reading may have
/// no values (a glucose record without a concentration); targets that know better check the list.
public func requireReadingShape(_ reading: Reading) {
    for value in reading.values {
        require(value.type.units.contains(value.unit),
                "\(value.type.key) in \(value.unit.ucum), which is not one of its units \(value.type.units.map(\.ucum))")
        if case .number(let number) = value.value { requireDecimalText(number, value.type.key) }
    }
    if let slot = reading.userSlot { require(slot >= 0, "user slot \(slot)") }
    for field in reading.statusBits {
        require(Set(field.bits.map(\.bit)).count == field.bits.count, "status field \(field.type) repeats a bit")
    }
    let text = reading.json.serialized()
    let object = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any]
    require(object != nil, "the reading's JSON does not parse: \(text)")
    require(object?["raw"] as? String == hexString(reading.raw, separator: ""), "the reading's JSON raw is not its bytes: \(text)")
}

/// What holds for every decode error: it names the frame, a field, an offset inside the input, the problem
/// and a hint (the house rule that errors say what, where and how to fix).
public func requireDecodeError(_ error: DecodeError, frame: String, input: [UInt8]) {
    require(error.frame == frame, "error names frame \(error.frame), not \(frame): \(error)")
    require((0...input.count).contains(error.offset), "error offset \(error.offset) outside the \(input.count)-byte input: \(error)")
    requireDecodeErrorShape(error)
}

/// What holds for a decode error from anywhere: it names a frame and a field and says what is wrong and what to do.
public func requireDecodeErrorShape(_ error: DecodeError) {
    require(!error.frame.isEmpty && !error.field.isEmpty && !error.problem.isEmpty && !error.hint.isEmpty,
            "error without frame, field, problem or hint: \(error)")
    require(error.offset >= 0, "negative error offset: \(error)")
}

/// Little-endian u16 at `offset`, or nil past the end (targets compute expectations from the bytes themselves).
public func le16(_ bytes: [UInt8], _ offset: Int) -> UInt16? {
    guard offset >= 0, offset + 1 < bytes.count else { return nil }
    return UInt16(bytes[offset]) | UInt16(bytes[offset + 1]) << 8
}

func hex16(_ value: UInt16) -> String { hexString([UInt8(value >> 8), UInt8(value & 0xFF)], separator: "") }
