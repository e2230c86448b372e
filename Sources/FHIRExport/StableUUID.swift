import VitalModel

/// A name-based UUID (RFC 9562 version 8) so that the same reading always gets the same `urn:uuid:` in a
/// Bundle: output is reproducible and diffable. Two 64-bit FNV-1a hashes fill the 128 bits; this is an
/// identity within one Bundle, not a security token.
struct StableUUID: CustomStringConvertible {
    let bytes: [UInt8]

    init(name: String) {
        let data = Array(("vitalgate:" + name).utf8)
        var high: UInt64 = 0xCBF2_9CE4_8422_2325
        var low: UInt64 = 0x8422_2325_CBF2_9CE4
        for byte in data {
            high = (high ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
            low = (low ^ UInt64(byte ^ 0x5A)) &* 0x0000_0100_0000_01B3
        }
        var result = (0..<8).map { UInt8(truncatingIfNeeded: high >> (56 - 8 * $0)) }
            + (0..<8).map { UInt8(truncatingIfNeeded: low >> (56 - 8 * $0)) }
        result[6] = result[6] & 0x0F | 0x80  // version 8
        result[8] = result[8] & 0x3F | 0x80  // RFC 9562 variant
        bytes = result
    }

    var description: String {
        let hex = hexString(bytes, separator: "").lowercased()
        let parts = [0..<8, 8..<12, 12..<16, 16..<20, 20..<32].map { range in
            String(hex[hex.index(hex.startIndex, offsetBy: range.lowerBound)..<hex.index(hex.startIndex, offsetBy: range.upperBound)])
        }
        return parts.joined(separator: "-")
    }

    var urn: String { "urn:uuid:" + description }
}
