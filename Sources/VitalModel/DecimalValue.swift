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
    /// as precision. Returns nil for anything else (exponent notation, `+`, spaces, empty, overflow).
    public init?(_ text: String) {
        self.init(text, positiveExponent: nil)
    }

    /// Parses plain decimal text as ``init(_:)`` does (nil `positiveExponent`), or, with `positiveExponent`
    /// (1 or more), a whole number whose last `positiveExponent` zeros belong to the exponent, as
    /// ``description`` writes a positive exponent: `"1200"` with 2 is 12 × 10², and `"0"` with 4 is 0 × 10⁴.
    /// So `DecimalValue(d.description, positiveExponent: …)` gives `d` back exactly, `Int64.min` included.
    public init?(_ text: String, positiveExponent: Int?) {
        let isDigit: (UInt8) -> Bool = { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
        var body = Substring(text).utf8[...]
        let negative = body.first == UInt8(ascii: "-")
        if negative { body = body.dropFirst() }
        let point = body.firstIndex(of: UInt8(ascii: "."))
        let whole = body[..<(point ?? body.endIndex)]
        let fraction = point.map { body[body.index(after: $0)...] } ?? body[body.endIndex...]
        guard !whole.isEmpty, whole.allSatisfy(isDigit), point == nil || (!fraction.isEmpty && fraction.allSatisfy(isDigit))
        else { return nil }
        var digits = Array(whole) + Array(fraction)
        var exponent = -fraction.count
        if let positiveExponent {
            guard positiveExponent > 0, point == nil else { return nil }
            if digits.contains(where: { $0 != UInt8(ascii: "0") }) {
                // The writer appended exactly that many zeros to the mantissa's digits.
                guard digits.count > positiveExponent, digits.suffix(positiveExponent).allSatisfy({ $0 == UInt8(ascii: "0") })
                else { return nil }
                digits.removeLast(positiveExponent)
            }
            exponent = positiveExponent
        }
        // The magnitude in 64 unsigned bits, so that -9223372036854775808 (Int64.min) parses too.
        var magnitude: UInt64 = 0
        for digit in digits {
            let (times10, overflow1) = magnitude.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times10.addingReportingOverflow(UInt64(digit - UInt8(ascii: "0")))
            guard !overflow1, !overflow2 else { return nil }
            magnitude = sum
        }
        if negative {
            guard magnitude <= UInt64(Int64.max) + 1 else { return nil }
            mantissa = Int64(truncatingIfNeeded: 0 &- magnitude)
        } else {
            guard magnitude <= UInt64(Int64.max) else { return nil }
            mantissa = Int64(magnitude)
        }
        self.exponent = exponent
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
    /// Only the ten ASCII digits: a range check on `Character` would also admit a digit with a combining mark.
    var isASCIIDigit: Bool { asciiValue.map { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) } ?? false }
}
