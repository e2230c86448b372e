import Testing
import VitalModel
@testable import ProfileEngine

@Suite("IEEE 11073 SFLOAT and FLOAT")
struct IEEE11073NumberTests {
    @Test("SFLOAT vectors from HL7 FLOATS.md, Wireshark, Nordic and gatt-parser", arguments: SIGVectors.numbers.sfloat)
    func sfloat(_ vector: NumberVector) {
        let raw = UInt16(vector.hex, radix: 16)!
        #expect(IEEE11073Number.sfloat(raw).description == vector.expected, "source: \(vector.source.where)")
    }

    @Test("FLOAT vectors from HL7 FLOATS.md, Wireshark, Nordic and gatt-parser", arguments: SIGVectors.numbers.float)
    func float(_ vector: NumberVector) {
        let raw = UInt32(vector.hex, radix: 16)!
        #expect(IEEE11073Number.float(raw).description == vector.expected, "source: \(vector.source.where)")
    }

    @Test("the vector tables cover every special value of both formats")
    func specialsCovered() {
        let names = Set(SpecialValue.allCases.map(\.rawValue))
        #expect(names.isSubset(of: Set(SIGVectors.numbers.sfloat.map(\.expected))))
        #expect(names.isSubset(of: Set(SIGVectors.numbers.float.map(\.expected))))
    }

    @Test("the exponent is signed, not biased: 0x8001 is 1e-8, 0x7001 is 1e7")
    func signedExponent() {
        // A biased-exponent decoder (seen in public code, device-protocols.md §3.1) gets both wrong.
        #expect(IEEE11073Number.sfloat(0x8001) == .number(DecimalValue(mantissa: 1, exponent: -8)))
        #expect(IEEE11073Number.sfloat(0x7001) == .number(DecimalValue(mantissa: 1, exponent: 7)))
        #expect(IEEE11073Number.sfloat(0x0FFF) == .number(DecimalValue(mantissa: -1, exponent: 0)))
        #expect(IEEE11073Number.float(0x80FF_FFFF) == .number(DecimalValue(mantissa: -1, exponent: -128)))
    }

    @Test("every 16-bit pattern decodes without trapping, and only the five specials are not numbers")
    func exhaustiveSFLOAT() {
        var specials = 0
        for raw in UInt16.min...UInt16.max {
            if case .special = IEEE11073Number.sfloat(raw) { specials += 1 }
        }
        #expect(specials == 5)
    }
}
