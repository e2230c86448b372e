/// One D-Bus value, as read from or written to a message: the basic types, arrays (with their element
/// signature, so an empty array still has a type), dictionary entries, structs and variants.
///
/// A dictionary is an array of ``dictEntry(_:_:)`` values with the element signature `{kv}`; the
/// `dictionary(...)` helpers build the ones BlueZ uses.
indirect enum DBusValue: Sendable, Hashable {
    case byte(UInt8)
    case bool(Bool)
    case int16(Int16)
    case uint16(UInt16)
    case int32(Int32)
    case uint32(UInt32)
    case int64(Int64)
    case uint64(UInt64)
    case double(Double)
    case string(String)
    case objectPath(String)
    case signature(String)
    /// A received file descriptor's index; VitalGate never sends one (BlueZ's Acquire* calls are not used).
    case unixFD(Int32)
    /// Element signature (`y`, `s`, `{sv}`, …) and the elements.
    case array(String, [DBusValue])
    case dictEntry(DBusValue, DBusValue)
    case structure([DBusValue])
    case variant(DBusValue)

    /// The value's D-Bus type signature.
    var signature: String {
        switch self {
        case .byte: "y"
        case .bool: "b"
        case .int16: "n"
        case .uint16: "q"
        case .int32: "i"
        case .uint32: "u"
        case .int64: "x"
        case .uint64: "t"
        case .double: "d"
        case .string: "s"
        case .objectPath: "o"
        case .signature: "g"
        case .unixFD: "h"
        case .array(let element, _): "a" + element
        case .dictEntry(let key, let value): "{" + key.signature + value.signature + "}"
        case .structure(let members): "(" + members.map(\.signature).joined() + ")"
        case .variant: "v"
        }
    }

    // MARK: Building

    /// `ay`.
    static func bytes(_ bytes: [UInt8]) -> DBusValue { .array("y", bytes.map(DBusValue.byte)) }

    /// `as`.
    static func strings(_ strings: [String]) -> DBusValue { .array("s", strings.map(DBusValue.string)) }

    /// `a{sv}`, sorted by key so the same dictionary always makes the same message.
    static func dictionary(_ entries: [String: DBusValue]) -> DBusValue {
        .array("{sv}", entries.sorted { $0.key < $1.key }.map { .dictEntry(.string($0.key), .variant($0.value)) })
    }

    // MARK: Reading

    /// The value inside any number of variants.
    var unwrapped: DBusValue {
        if case .variant(let inner) = self { return inner.unwrapped }
        return self
    }

    var string: String? {
        switch unwrapped {
        case .string(let text), .objectPath(let text), .signature(let text): text
        default: nil
        }
    }

    var bool: Bool? {
        if case .bool(let value) = unwrapped { return value }
        return nil
    }

    var uint16: UInt16? {
        if case .uint16(let value) = unwrapped { return value }
        return nil
    }

    var uint32: UInt32? {
        if case .uint32(let value) = unwrapped { return value }
        return nil
    }

    /// Any integer type, widened.
    var integer: Int64? {
        switch unwrapped {
        case .byte(let value): Int64(value)
        case .int16(let value): Int64(value)
        case .uint16(let value): Int64(value)
        case .int32(let value): Int64(value)
        case .uint32(let value): Int64(value)
        case .int64(let value): value
        case .uint64(let value): value <= UInt64(Int64.max) ? Int64(value) : nil
        default: nil
        }
    }

    /// An `ay` as bytes.
    var byteArray: [UInt8]? {
        guard case .array("y", let elements) = unwrapped else { return nil }
        return elements.compactMap { if case .byte(let byte) = $0 { byte } else { nil } }
    }

    /// The elements of any array.
    var elements: [DBusValue]? {
        if case .array(_, let elements) = unwrapped { return elements }
        return nil
    }

    /// An `as` or `ao` as strings.
    var stringArray: [String]? {
        elements?.compactMap(\.string)
    }

    /// The entries of any dictionary (`a{..}`), in message order.
    var entries: [(key: DBusValue, value: DBusValue)]? {
        guard let elements else { return nil }
        return elements.compactMap { if case .dictEntry(let key, let value) = $0 { (key, value) } else { nil } }
    }

    /// A dictionary with string or object-path keys (`a{sv}`, `a{oa{sa{sv}}}`, …); a repeated key keeps the last value.
    var stringKeyed: [String: DBusValue]? {
        guard let entries else { return nil }
        var result: [String: DBusValue] = [:]
        for (key, value) in entries {
            if let name = key.string { result[name] = value }
        }
        return result
    }
}
