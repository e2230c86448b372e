import Testing
import VitalModel
import VitalGateTestKit
@testable import ProfileEngine

/// Checksum algorithms of the `frames` engine against values stated by independent sources.
///
/// Expected values are the sources' statements, never what `ChecksumAlgorithm` prints:
/// - CRC check values (the CRC of the ASCII bytes "123456789") are the `check=` values of the CRC RevEng
///   catalogue by Greg Cook: https://reveng.sourceforge.io/crc-catalogue/16.htm (CRC-16/IBM-3740,
///   CRC-16/XMODEM, CRC-16/KERMIT, CRC-16/MODBUS, CRC-16/ARC) and
///   https://reveng.sourceforge.io/crc-catalogue/1-15.htm (CRC-8/MAXIM-DOW, alias CRC-8/MAXIM).
/// - The additive and XOR checks have no catalogue; their values for "123456789" are worked by hand in
///   the comments (0x31 + … + 0x39 = 477 = 0x1DD).
@Suite("Frames checksums")
struct ChecksumTests {
    static let check = Array("123456789".utf8)

    struct CheckValue: Sendable, CustomTestStringConvertible {
        var algorithm: ChecksumAlgorithm
        var value: UInt16
        var source: String
        var testDescription: String { "\(algorithm.rawValue) = 0x\(String(value, radix: 16, uppercase: true))" }
    }

    static let checkValues: [CheckValue] = [
        // RevEng catalogue, https://reveng.sourceforge.io/crc-catalogue/16.htm
        CheckValue(algorithm: .crc16IBM3740, value: 0x29B1, source: "RevEng CRC-16/IBM-3740 check=0x29b1"),
        CheckValue(algorithm: .crc16XMODEM, value: 0x31C3, source: "RevEng CRC-16/XMODEM check=0x31c3"),
        CheckValue(algorithm: .crc16KERMIT, value: 0x2189, source: "RevEng CRC-16/KERMIT check=0x2189"),
        CheckValue(algorithm: .crc16MODBUS, value: 0x4B37, source: "RevEng CRC-16/MODBUS check=0x4b37"),
        CheckValue(algorithm: .crc16ARC, value: 0xBB3D, source: "RevEng CRC-16/ARC check=0xbb3d"),
        // RevEng catalogue, https://reveng.sourceforge.io/crc-catalogue/1-15.htm
        CheckValue(algorithm: .crc8MAXIM, value: 0xA1, source: "RevEng CRC-8/MAXIM-DOW check=0xa1"),
        // By hand: 0x31 + 0x32 + … + 0x39 = 9 × 0x30 + (1 + … + 9) = 432 + 45 = 477 = 0x1DD, modulo 256 = 0xDD.
        CheckValue(algorithm: .sum8, value: 0xDD, source: "worked by hand"),
        // By hand: 0x100 − 0xDD = 0x23, so that 0xDD + 0x23 = 0x100 ≡ 0.
        CheckValue(algorithm: .sum8Complement, value: 0x23, source: "worked by hand"),
        // By hand: the high nibbles (nine 3s) XOR to 3; the low nibbles 1^2^…^9 = 1; so 0x31.
        CheckValue(algorithm: .xor8, value: 0x31, source: "worked by hand"),
    ]

    @Test("the check value of \"123456789\"", arguments: checkValues)
    func checkValue(_ vector: CheckValue) {
        #expect(vector.algorithm.compute(Self.check) == vector.value, Comment(rawValue: vector.source))
    }

    @Test("every algorithm has a check value here")
    func everyAlgorithmCovered() {
        #expect(Set(Self.checkValues.map(\.algorithm)) == Set(ChecksumAlgorithm.allCases))
    }

    @Test("width: one byte for the 8-bit checks, two for CRC-16")
    func widths() {
        for algorithm in ChecksumAlgorithm.allCases {
            #expect(algorithm.width == (algorithm.rawValue.hasPrefix("crc16") ? 2 : 1), "\(algorithm)")
        }
    }

    @Test("empty input gives the initial value (CRC init, 0 for sums)")
    func emptyInput() {
        // RevEng parameters: IBM-3740 and MODBUS start at 0xFFFF, the others at 0; no final XOR in any.
        let expected: [ChecksumAlgorithm: UInt16] = [
            .sum8: 0, .sum8Complement: 0, .xor8: 0, .crc8MAXIM: 0, .crc16IBM3740: 0xFFFF, .crc16XMODEM: 0,
            .crc16KERMIT: 0, .crc16MODBUS: 0xFFFF, .crc16ARC: 0,
        ]
        for algorithm in ChecksumAlgorithm.allCases {
            #expect(algorithm.compute([UInt8]()) == expected[algorithm], "\(algorithm)")
        }
    }

    @Test("8-bit sums wrap modulo 256 without trapping")
    func wrapping() {
        // 0xFF + 0x02 = 0x101 → 0x01; its complement is 0xFF. 0xFF ^ 0x0F = 0xF0.
        #expect(ChecksumAlgorithm.sum8.compute([0xFF, 0x02]) == 0x01)
        #expect(ChecksumAlgorithm.sum8Complement.compute([0xFF, 0x02]) == 0xFF)
        #expect(ChecksumAlgorithm.xor8.compute([0xFF, 0x0F]) == 0xF0)
        let long = [UInt8](repeating: 0xFF, count: 100_000)
        // 255 ≡ −1 (mod 256), so the sum is −100000 ≡ −160 ≡ 96 = 0x60 (100000 = 390 × 256 + 160).
        #expect(ChecksumAlgorithm.sum8.compute(long) == 0x60)
    }

    /// Real Viatom PC-60FW oximeter frames (`AA 55 T L … CRC`), CRC-8/MAXIM over every byte before the
    /// last: pedasmith/BluetoothDeviceController, BluetoothProtocolsDevicesCoreExtensions/
    /// Viatom_PulseOximeter_PC60FW_Factory.cs @ e092fb8e84a0cba68919bb40f123fd138284fc43, `#if EXAMPLE_DATA`
    /// (captured notifications; the last byte is the device's checksum).
    static let pc60fwFrames = [
        "AA550F07026E5FCC3722ED",
        "AA550F07020C0000000009",
        "AA550F0702000000000028",
        "AA550F08016140005100C05B",
        "AA55F0030303F6",
        "AA550F0801623F005100C000",
    ]

    @Test("CRC-8/MAXIM matches the checksum byte of real PC-60FW frames", arguments: pc60fwFrames)
    func pc60fw(_ hex: String) {
        let frame = bytes(hex)
        #expect(ChecksumAlgorithm.crc8MAXIM.compute(frame.dropLast()) == UInt16(frame[frame.count - 1]))
    }

    /// A Modbus RTU temperature/humidity sensor's request and reply, CRC-16/MODBUS sent low byte first:
    /// microrobotics/RS485-TH, Reading-Data-from-RS485.md-TH.md @ 7e26b46aeb0f1323228e80baf942b0f73e94c09b
    /// ("Request Data = 01 03 00 00 00 02 C4 0B", "Data Returned from sensor = 01 03 04 01 11 02 72 2A 8F",
    /// "C4 : … Lo Byte", "Output CRC-16 (Modbus) = 0x0BC4").
    @Test("CRC-16/MODBUS matches a real sensor's request and reply")
    func modbusSensor() {
        #expect(ChecksumAlgorithm.crc16MODBUS.compute(bytes("010300000002")) == 0x0BC4)
        #expect(ChecksumAlgorithm.crc16MODBUS.compute(bytes("01030401110272")) == 0x8F2A)
    }

    @Test("bit reversal used for reflected CRCs")
    func bitReversal() {
        // 0x8005 reversed is 0xA001 and 0x1021 reversed is 0x8408: the "reversed" polynomials the
        // RevEng catalogue's reflected models imply (and Wikipedia's CRC table lists).
        #expect(UInt16(0x8005).bitReversed == 0xA001)
        #expect(UInt16(0x1021).bitReversed == 0x8408)
    }
}
