import VitalModel
/// Parses a byte string written as hex: `1E7800`, `1e 78 00`, `1E:78:00` or `0x1E7800`.
func parseHex(_ text: String) -> Result<[UInt8], UsageError> {
    var digits = Substring(text)
    if digits.hasPrefix("0x") || digits.hasPrefix("0X") { digits = digits.dropFirst(2) }
    let cleaned = digits.filter { $0 != " " && $0 != ":" && $0 != "-" && $0 != "\t" }
    if cleaned.isEmpty { return .failure(UsageError("no hex digits")) }
    // ASCII digits only: `Character.isHexDigit` also accepts fullwidth forms that no radix parse reads.
    if let bad = cleaned.first(where: { $0.utf8.count != 1 || hexDigitValue($0.utf8.first!) == nil }) {
        return .failure(UsageError("'\(bad)' is not a hex digit"))
    }
    guard cleaned.count % 2 == 0 else {
        return .failure(UsageError("\(cleaned.count) hex digits is an odd count; every byte needs two"))
    }
    var bytes: [UInt8] = []
    bytes.reserveCapacity(cleaned.count / 2)
    var index = cleaned.startIndex
    while index < cleaned.endIndex {
        let next = cleaned.index(index, offsetBy: 2)
        guard let byte = UInt8(cleaned[index..<next], radix: 16) else { return .failure(UsageError("'\(cleaned[index..<next])' is not a hex byte")) }
        bytes.append(byte)
        index = next
    }
    return .success(bytes)
}
