/// An exact decimal number `mantissa × 10^exponent` that keeps the precision the device reported.
///
/// IEEE 11073 SFLOAT/FLOAT numbers carry their precision in the exponent: `0xF014` is `2.0`, not `2`.
/// FHIR decimals must keep it, so readings never pass through `Double`.
public struct DecimalValue: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let mantissa: Int64
    public let exponent: Int

    public init(mantissa: Int64, exponent: Int) {
        self.mantissa = mantissa
        self.exponent = exponent
    }

    /// Parses plain decimal text such as `"120"`, `"-79.50"` or `"0.0009765625"`; trailing zeros are kept
    /// as precision. Returns nil for anything else (exponent notation, empty, overflow).
    public init?(_ text: String) {
        var digits = Substring(text)
        var negative = false
        if digits.first == "-" { negative = true; digits = digits.dropFirst() }
        let parts = digits.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count <= 2, let whole = parts.first, !whole.isEmpty,
              whole.allSatisfy(\.isASCIIDigit) else { return nil }
        let fraction = parts.count == 2 ? parts[1] : ""
        guard parts.count == 1 || (!fraction.isEmpty && fraction.allSatisfy(\.isASCIIDigit)),
              let magnitude = Int64(whole + fraction) else { return nil }
        mantissa = negative ? -magnitude : magnitude
        exponent = -fraction.count
    }

    /// Exact text, with as many fraction digits as the exponent says (FHIR decimal form, no exponent notation).
    public var description: String {
        let magnitude = mantissa.magnitude
        let sign = mantissa < 0 ? "-" : ""
        if exponent >= 0 {
            return magnitude == 0 ? "0" : sign + String(magnitude) + String(repeating: "0", count: exponent)
        }
        let places = -exponent
        var digits = String(magnitude)
        if digits.count <= places { digits = String(repeating: "0", count: places - digits.count + 1) + digits }
        let split = digits.index(digits.endIndex, offsetBy: -places)
        return sign + digits[..<split] + "." + digits[split...]
    }

    /// A binary approximation, for arithmetic on clocks and for display only; never for FHIR values.
    public var doubleValue: Double {
        var value = Double(mantissa)
        if exponent >= 0 { for _ in 0..<exponent { value *= 10 } } else { for _ in 0 ..< -exponent { value /= 10 } }
        return value
    }

    public static func < (lhs: DecimalValue, rhs: DecimalValue) -> Bool { lhs.doubleValue < rhs.doubleValue }
}

extension Character {
    var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}
