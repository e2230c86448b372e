import VitalModel

/// IEEE 11073-20601 number formats used by Bluetooth SIG health characteristics.
///
/// SFLOAT: 4-bit signed exponent, 12-bit signed mantissa. FLOAT: 8-bit signed exponent, 24-bit signed
/// mantissa. Value = mantissa × 10^exponent, exponent unbiased (two's complement). Special values are
/// recognised on the raw bits before any sign extension (HL7 PHD FLOATS.md; fhir-mapping.md §1.7).
public enum IEEE11073Number {
    /// Decodes a 16-bit SFLOAT, keeping its precision (`0xF014` → `2.0`).
    public static func sfloat(_ raw: UInt16) -> NumericValue {
        switch raw {
        case 0x07FF: return .special(.notANumber)
        case 0x0800: return .special(.notAtThisResolution)
        case 0x07FE: return .special(.positiveInfinity)
        case 0x0802: return .special(.negativeInfinity)
        case 0x0801: return .special(.reserved)
        default:
            let mantissa = Int64(Int16(bitPattern: raw << 4) >> 4)
            let exponent = Int(Int8(bitPattern: UInt8(raw >> 12) << 4) >> 4)
            return .number(DecimalValue(mantissa: mantissa, exponent: exponent))
        }
    }

    /// Decodes a 32-bit FLOAT, keeping its precision.
    public static func float(_ raw: UInt32) -> NumericValue {
        switch raw {
        case 0x007F_FFFF: return .special(.notANumber)
        case 0x0080_0000: return .special(.notAtThisResolution)
        case 0x007F_FFFE: return .special(.positiveInfinity)
        case 0x0080_0002: return .special(.negativeInfinity)
        case 0x0080_0001: return .special(.reserved)
        default:
            let mantissa = Int64(Int32(bitPattern: raw << 8) >> 8)
            let exponent = Int(Int8(bitPattern: UInt8(raw >> 24)))
            return .number(DecimalValue(mantissa: mantissa, exponent: exponent))
        }
    }
}
