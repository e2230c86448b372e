import Foundation

/// `application/x-www-form-urlencoded` serialisation of one name or value (the WHATWG URL standard's
/// byte serializer): letters, digits and `*-._` stay, space becomes `+`, every other byte `%XX`.
/// RFC 6749 §2.3.1 applies the same encoding to the client id and secret before HTTP Basic.
func formURLEncoded(_ text: String) -> String {
    var out = ""
    for byte in text.utf8 {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "*"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"):
            out.unicodeScalars.append(Unicode.Scalar(byte))
        case UInt8(ascii: " "):
            out += "+"
        default:
            out += "%" + String(byte >> 4, radix: 16, uppercase: true) + String(byte & 0xF, radix: 16, uppercase: true)
        }
    }
    return out
}

/// A form body from ordered fields.
func formBody(_ fields: [(String, String)]) -> [UInt8] {
    Array(fields.map { "\(formURLEncoded($0.0))=\(formURLEncoded($0.1))" }.joined(separator: "&").utf8)
}

/// Base64url without padding (RFC 7515 §2), as JWS uses it.
func base64URLEncoded<Bytes: Collection>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
    var text = Data(bytes).base64EncodedString()
    while text.last == "=" { text.removeLast() }
    return String(text.map { $0 == "+" ? "-" : $0 == "/" ? "_" : $0 })
}
