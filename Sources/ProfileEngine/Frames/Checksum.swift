/// Checksums byte protocols use. CRC parameters follow the CRC RevEng catalogue names (width 16).
public enum ChecksumAlgorithm: String, Sendable, Hashable, CaseIterable {
    /// Sum of the bytes, modulo 256.
    case sum8
    /// Two's complement of the sum, so that the sum of the bytes and the checksum is 0 modulo 256.
    case sum8Complement = "sum8-complement"
    /// XOR of the bytes.
    case xor8
    /// CRC-8/MAXIM (Dallas 1-Wire): poly 0x31, init 0, reflected.
    case crc8MAXIM = "crc8-maxim"
    /// CRC-16/IBM-3740 (also called CCITT-FALSE): poly 0x1021, init 0xFFFF, no reflection.
    case crc16IBM3740 = "crc16-ibm-3740"
    /// CRC-16/XMODEM: poly 0x1021, init 0, no reflection.
    case crc16XMODEM = "crc16-xmodem"
    /// CRC-16/KERMIT: poly 0x1021, init 0, reflected.
    case crc16KERMIT = "crc16-kermit"
    /// CRC-16/MODBUS: poly 0x8005, init 0xFFFF, reflected.
    case crc16MODBUS = "crc16-modbus"
    /// CRC-16/ARC: poly 0x8005, init 0, reflected.
    case crc16ARC = "crc16-arc"

    /// Bytes the checksum occupies in a frame.
    public var width: Int {
        switch self {
        case .sum8, .sum8Complement, .xor8, .crc8MAXIM: 1
        default: 2
        }
    }

    public func compute<C: Collection>(_ bytes: C) -> UInt16 where C.Element == UInt8 {
        switch self {
        case .sum8: UInt16(bytes.reduce(UInt8(0), &+))
        case .sum8Complement: UInt16(0 &- bytes.reduce(UInt8(0), &+))
        case .xor8: UInt16(bytes.reduce(UInt8(0), ^))
        case .crc8MAXIM: UInt16(Self.crc8(bytes, reversedPoly: 0x8C))
        case .crc16IBM3740: Self.crc(bytes, poly: 0x1021, initial: 0xFFFF, reflected: false)
        case .crc16XMODEM: Self.crc(bytes, poly: 0x1021, initial: 0, reflected: false)
        case .crc16KERMIT: Self.crc(bytes, poly: 0x1021, initial: 0, reflected: true)
        case .crc16MODBUS: Self.crc(bytes, poly: 0x8005, initial: 0xFFFF, reflected: true)
        case .crc16ARC: Self.crc(bytes, poly: 0x8005, initial: 0, reflected: true)
        }
    }

    static func crc8<C: Collection>(_ bytes: C, reversedPoly: UInt8) -> UInt8 where C.Element == UInt8 {
        var crc: UInt8 = 0
        for byte in bytes {
            crc ^= byte
            for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ reversedPoly : crc >> 1 }
        }
        return crc
    }

    /// Bit-at-a-time CRC: frames are a few dozen bytes, so a table would buy nothing measurable.
    static func crc<C: Collection>(_ bytes: C, poly: UInt16, initial: UInt16, reflected: Bool) -> UInt16 where C.Element == UInt8 {
        var crc = initial
        if reflected {
            let reversedPoly = poly.bitReversed
            for byte in bytes {
                crc ^= UInt16(byte)
                for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ reversedPoly : crc >> 1 }
            }
        } else {
            for byte in bytes {
                crc ^= UInt16(byte) << 8
                for _ in 0..<8 { crc = crc & 0x8000 != 0 ? (crc << 1) ^ poly : crc << 1 }
            }
        }
        return crc
    }
}

extension UInt16 {
    var bitReversed: UInt16 {
        var value = self, result: UInt16 = 0
        for _ in 0..<16 {
            result = result << 1 | value & 1
            value >>= 1
        }
        return result
    }
}
