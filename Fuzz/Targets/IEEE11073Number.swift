// IEEE 11073 SFLOAT and FLOAT: every 2-byte and every 4-byte little-endian window of the input is decoded
// and checked by encoding the result back (FuzzSupport.requireSFLOAT/requireFLOAT), by the exact decimal
// text it is written as, and by ordering, which must agree with the numbers' real values.
//
// fuzz-seed: *
// fuzz-options: -max_len=32

import FuzzSupport
import ProfileEngine
import VitalModel

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = fuzzInput(data, size)
    var numbers: [DecimalValue] = []
    for offset in bytes.indices {
        if let raw = le16(bytes, offset) {
            let value = IEEE11073Number.sfloat(raw)
            requireSFLOAT(value, encodes: raw, "SFLOAT at byte \(offset)")
            if case .number(let number) = value { numbers.append(number) }
        }
        if offset + 3 < bytes.count {
            let raw = UInt32(le16(bytes, offset) ?? 0) | UInt32(le16(bytes, offset + 2) ?? 0) << 16
            let value = IEEE11073Number.float(raw)
            requireFLOAT(value, encodes: raw, "FLOAT at byte \(offset)")
            if case .number(let number) = value {
                require(!number.doubleValue.isNaN, "FLOAT 0x\(String(raw, radix: 16)) has a NaN approximation")
                numbers.append(number)
            }
        }
    }
    // Ordering must match the sign where the sign is certain (zero mantissas compare equal to each other).
    for (left, right) in zip(numbers, numbers.dropFirst()) {
        if left.mantissa < 0 && right.mantissa > 0 { require(left < right && !(right < left), "\(left) is not below \(right)") }
        if left.mantissa == 0 && right.mantissa == 0 { require(!(left < right) && !(right < left), "\(left) and \(right) differ") }
    }
    return 0
}
