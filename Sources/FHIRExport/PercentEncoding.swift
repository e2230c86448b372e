import VitalModel

/// Percent-encodes a search parameter value for a FHIR match URL (`ifNoneExist`, conditional references).
///
/// Everything except RFC 3986 unreserved characters is encoded, so `+` (which HAPI reads as a space,
/// fhir-mapping.md §3.2) always goes as `%2B`, and `:`/`/` in system URIs are encoded as in the reference.
public func percentEncodeQueryValue(_ text: String) -> String {
    var out = ""
    for byte in text.utf8 {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
             UInt8(ascii: "~"):
            out.unicodeScalars.append(Unicode.Scalar(byte))
        default:
            out += "%" + hexString([byte], separator: "")
        }
    }
    return out
}

/// `identifier=SYSTEM|VALUE` with both parts percent-encoded and the `|` separator kept literal.
public func identifierMatchQuery(system: String, value: String) -> String {
    "identifier=" + percentEncodeQueryValue(system) + "|" + percentEncodeQueryValue(value)
}
