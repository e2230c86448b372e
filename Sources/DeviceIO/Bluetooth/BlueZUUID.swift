/// Bluetooth UUIDs between BlueZ's form and VitalGate's.
///
/// BlueZ writes every UUID in full and in lower case; profiles and ``BLEDeviceInfo`` write a Bluetooth SIG
/// UUID (`0000XXXX-0000-1000-8000-00805f9b34fb`) as its 4 hex digits in upper case (`1810`) and any other
/// UUID in full, upper case, with dashes.
public enum BlueZUUID {
    static let sigSuffix = "-0000-1000-8000-00805F9B34FB"

    /// VitalGate's form of a UUID BlueZ reported (anything unrecognised is just upper-cased).
    public static func normalized(_ text: String) -> String {
        let upper = text.uppercased()
        if upper.utf8.count == 36, upper.hasPrefix("0000"), upper.hasSuffix(sigSuffix) {
            return String(upper.dropFirst(4).prefix(4))
        }
        return upper
    }

    /// VitalGate's form of a UUID a person or a profile wrote (`1810`, `2a35`, `00002a35-…`, a 128-bit
    /// vendor UUID, or 8 hex digits for a 32-bit SIG UUID); nil when it is not a UUID.
    public static func canonical(_ text: String) -> String? {
        let upper = text.uppercased()
        let digits = Array(upper.utf8)
        func isHex(_ byte: UInt8) -> Bool { (48...57).contains(byte) || (65...70).contains(byte) }
        switch digits.count {
        case 4 where digits.allSatisfy(isHex):
            return upper
        case 8 where digits.allSatisfy(isHex):
            return normalized(upper + sigSuffix)
        case 36:
            for (index, byte) in digits.enumerated() {
                let dash = index == 8 || index == 13 || index == 18 || index == 23
                guard dash ? byte == 45 : isHex(byte) else { return nil }
            }
            return normalized(upper)
        default:
            return nil
        }
    }

    /// The full lower-case form BlueZ expects in a discovery filter; nil when `text` is not a UUID.
    public static func full(_ text: String) -> String? {
        guard let canonical = canonical(text) else { return nil }
        let long = canonical.utf8.count == 4 ? "0000" + canonical + sigSuffix : canonical
        return long.lowercased()
    }
}
