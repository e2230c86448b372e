/// A line and column (both 1-based) in a text file, so an error can point an editor at the spot. The
/// column counts characters (Unicode scalars), as editors do, not UTF-8 bytes.
public struct SourceLocation: Sendable, Hashable, CustomStringConvertible {
    public var line: Int
    public var column: Int

    public init(line: Int, column: Int) {
        self.line = line
        self.column = column
    }

    public var description: String { "\(line):\(column)" }
}

/// A JSON value that remembers where it was written.
///
/// Profile files are written by hand; a loader error that says "line 14, column 9, `engine.frames.sync`"
/// saves a vendor the search that "invalid value" would cost. Foundation's parser forgets positions.
public struct LocatedJSON: Sendable {
    public indirect enum Value: Sendable {
        case object([Member])
        case array([LocatedJSON])
        case string(String)
        /// The number's exact text, so `0.005` stays `0.005`.
        case number(String)
        case bool(Bool)
        case null
    }

    public struct Member: Sendable {
        public var key: String
        public var keyLocation: SourceLocation
        public var value: LocatedJSON
    }

    public var value: Value
    public var location: SourceLocation

    /// What kind of value this is, for messages such as "expected a string, found a number".
    public var kindName: String {
        switch value {
        case .object: JSONValue.object([]).kindName
        case .array: JSONValue.array([]).kindName
        case .string(let text): JSONValue.string(text).kindName
        case .number(let text): JSONValue.number(text).kindName
        case .bool(let flag): JSONValue.bool(flag).kindName
        case .null: JSONValue.null.kindName
        }
    }
}

/// Why JSON text could not be parsed, and where.
public struct JSONSyntaxError: Error, Sendable, CustomStringConvertible {
    public var location: SourceLocation
    public var problem: String

    public var description: String { "\(location): \(problem)" }
}

/// A strict JSON (RFC 8259) parser over UTF-8 bytes that records positions and rejects duplicate keys.
public struct LocatedJSONParser {
    private let bytes: [UInt8]
    private var index = 0
    private var line = 1
    private var lineStart = 0
    /// UTF-8 continuation bytes seen on the current line, so that columns count characters. Non-ASCII
    /// text is only valid inside strings, and strings cannot span lines.
    private var lineContinuationBytes = 0
    /// Nesting is bounded so hostile input cannot exhaust the stack.
    private let maximumDepth = 64

    public static func parse(_ text: String) throws(JSONSyntaxError) -> LocatedJSON {
        var parser = LocatedJSONParser(bytes: Array(text.utf8))
        return try parser.parseDocument()
    }

    public static func parse(bytes: [UInt8]) throws(JSONSyntaxError) -> LocatedJSON {
        var parser = LocatedJSONParser(bytes: bytes)
        return try parser.parseDocument()
    }

    private init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    private var location: SourceLocation {
        SourceLocation(line: line, column: index - lineStart - lineContinuationBytes + 1)
    }

    private func fail(_ problem: String, at location: SourceLocation? = nil) -> JSONSyntaxError {
        JSONSyntaxError(location: location ?? self.location, problem: problem)
    }

    private mutating func parseDocument() throws(JSONSyntaxError) -> LocatedJSON {
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { index = 3; lineStart = 3 }
        skipWhitespace()
        let value = try parseValue(depth: 0)
        skipWhitespace()
        guard index == bytes.count else { throw fail("unexpected text after the end of the JSON document") }
        return value
    }

    private mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0D: index += 1
            case 0x0A:
                index += 1
                line += 1
                lineStart = index
                lineContinuationBytes = 0
            default: return
            }
        }
    }

    private func describeNext() -> String {
        guard index < bytes.count else { return "the end of the file" }
        let byte = bytes[index]
        return byte >= 0x20 && byte < 0x7F ? "'\(Character(Unicode.Scalar(byte)))'" : "byte 0x" + hexByte(byte)
    }

    private mutating func parseValue(depth: Int) throws(JSONSyntaxError) -> LocatedJSON {
        guard depth < maximumDepth else { throw fail("nesting deeper than \(maximumDepth) levels") }
        let start = location
        guard index < bytes.count else { throw fail("expected a value but the file ends") }
        switch bytes[index] {
        case UInt8(ascii: "{"): return try parseObject(depth: depth)
        case UInt8(ascii: "["): return try parseArray(depth: depth)
        case UInt8(ascii: "\""): return LocatedJSON(value: .string(try parseString()), location: start)
        case UInt8(ascii: "t"): try literal("true"); return LocatedJSON(value: .bool(true), location: start)
        case UInt8(ascii: "f"): try literal("false"); return LocatedJSON(value: .bool(false), location: start)
        case UInt8(ascii: "n"): try literal("null"); return LocatedJSON(value: .null, location: start)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return LocatedJSON(value: .number(try parseNumber()), location: start)
        default:
            throw fail("expected a value but found \(describeNext())")
        }
    }

    private mutating func literal(_ word: String) throws(JSONSyntaxError) {
        let expected = Array(word.utf8)
        guard bytes.count - index >= expected.count, Array(bytes[index..<index + expected.count]) == expected else {
            throw fail("expected '\(word)'")
        }
        index += expected.count
    }

    private mutating func parseObject(depth: Int) throws(JSONSyntaxError) -> LocatedJSON {
        let start = location
        index += 1
        var members: [LocatedJSON.Member] = []
        var seen: [String: SourceLocation] = [:]
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
            index += 1
            return LocatedJSON(value: .object([]), location: start)
        }
        while true {
            skipWhitespace()
            let keyLocation = location
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else {
                throw fail("expected a quoted member name but found \(describeNext())")
            }
            let key = try parseString()
            if let first = seen[key] {
                throw fail("member \"\(key)\" appears twice (first at \(first)); keep one", at: keyLocation)
            }
            seen[key] = keyLocation
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else {
                throw fail("expected ':' after \"\(key)\" but found \(describeNext())")
            }
            index += 1
            skipWhitespace()
            let value = try parseValue(depth: depth + 1)
            members.append(LocatedJSON.Member(key: key, keyLocation: keyLocation, value: value))
            skipWhitespace()
            guard index < bytes.count else { throw fail("the object opened at \(start) is not closed") }
            if bytes[index] == UInt8(ascii: ",") {
                index += 1
                continue
            }
            if bytes[index] == UInt8(ascii: "}") {
                index += 1
                return LocatedJSON(value: .object(members), location: start)
            }
            throw fail("expected ',' or '}' but found \(describeNext())")
        }
    }

    private mutating func parseArray(depth: Int) throws(JSONSyntaxError) -> LocatedJSON {
        let start = location
        index += 1
        var items: [LocatedJSON] = []
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
            index += 1
            return LocatedJSON(value: .array([]), location: start)
        }
        while true {
            skipWhitespace()
            items.append(try parseValue(depth: depth + 1))
            skipWhitespace()
            guard index < bytes.count else { throw fail("the array opened at \(start) is not closed") }
            if bytes[index] == UInt8(ascii: ",") {
                index += 1
                continue
            }
            if bytes[index] == UInt8(ascii: "]") {
                index += 1
                return LocatedJSON(value: .array(items), location: start)
            }
            throw fail("expected ',' or ']' but found \(describeNext())")
        }
    }

    private mutating func parseNumber() throws(JSONSyntaxError) -> String {
        let start = index
        let startLocation = location
        func digits() -> Int {
            let first = index
            while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { index += 1 }
            return index - first
        }
        if bytes[index] == UInt8(ascii: "-") { index += 1 }
        let whole = index
        guard digits() > 0 else { throw fail("a number needs digits after '-'") }
        if bytes[whole] == UInt8(ascii: "0"), index - whole > 1 { throw fail("numbers may not have leading zeros", at: startLocation) }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard digits() > 0 else { throw fail("a number needs digits after '.'") }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard digits() > 0 else { throw fail("a number needs digits in its exponent") }
        }
        return String(decoding: bytes[start..<index], as: UTF8.self)
    }

    private mutating func parseString() throws(JSONSyntaxError) -> String {
        let start = location
        index += 1
        var scalars = String.UnicodeScalarView()
        var chunkStart = index
        func flush(_ end: Int) throws(JSONSyntaxError) {
            guard chunkStart < end else { return }
            guard let text = String(validating: bytes[chunkStart..<end], as: UTF8.self) else {
                throw JSONSyntaxError(location: start, problem: "the string is not valid UTF-8")
            }
            scalars.append(contentsOf: text.unicodeScalars)
        }
        while true {
            guard index < bytes.count else { throw fail("the string opened at \(start) is not closed", at: start) }
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                try flush(index)
                index += 1
                return String(scalars)
            }
            if byte < 0x20 { throw fail("control character 0x\(hexByte(byte)) inside a string; escape it or close the string") }
            if byte != UInt8(ascii: "\\") {
                if byte & 0xC0 == 0x80 { lineContinuationBytes += 1 }
                index += 1
                continue
            }
            try flush(index)
            let escapeStart = location
            index += 1
            guard index < bytes.count else { throw fail("the string ends inside an escape") }
            let escape = bytes[index]
            index += 1
            switch escape {
            case UInt8(ascii: "\""): scalars.append("\"")
            case UInt8(ascii: "\\"): scalars.append("\\")
            case UInt8(ascii: "/"): scalars.append("/")
            case UInt8(ascii: "b"): scalars.append("\u{08}")
            case UInt8(ascii: "f"): scalars.append("\u{0C}")
            case UInt8(ascii: "n"): scalars.append("\n")
            case UInt8(ascii: "r"): scalars.append("\r")
            case UInt8(ascii: "t"): scalars.append("\t")
            case UInt8(ascii: "u"):
                var code = try hex4()
                if (0xD800...0xDBFF).contains(code) {
                    guard bytes.count - index >= 2, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") else {
                        throw fail("a high surrogate \\u escape must be followed by a low one", at: escapeStart)
                    }
                    let lowStart = location
                    index += 2
                    let low = try hex4()
                    guard (0xDC00...0xDFFF).contains(low) else { throw fail("invalid low surrogate in \\u escape", at: lowStart) }
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                }
                guard let scalar = Unicode.Scalar(code) else { throw fail("\\u escape names no character", at: escapeStart) }
                scalars.append(scalar)
            default:
                throw fail("unknown escape '\\\(Character(Unicode.Scalar(escape)))'", at: escapeStart)
            }
            chunkStart = index
        }
    }

    private mutating func hex4() throws(JSONSyntaxError) -> UInt32 {
        guard bytes.count - index >= 4 else { throw fail("a \\u escape needs four hex digits") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard let digit = hexDigitValue(bytes[index]) else { throw fail("a \\u escape needs four hex digits") }
            value = value << 4 | UInt32(digit)
            index += 1
        }
        return value
    }
}

/// Bytes written as pairs of ASCII hex digits (`1E7800`); with `separators`, a space, `:` or `-` may stand
/// between bytes (`1E 78:00`), never inside one. nil when anything else is in the text; empty text is no bytes.
public func hexBytes(_ text: String, separators: Bool = false) -> [UInt8]? {
    var bytes: [UInt8] = []
    var high: UInt8?
    for byte in text.utf8 {
        if separators, byte == UInt8(ascii: " ") || byte == UInt8(ascii: ":") || byte == UInt8(ascii: "-") {
            if high != nil { return nil }
            continue
        }
        guard let digit = hexDigitValue(byte) else { return nil }
        if let first = high {
            bytes.append(first << 4 | digit)
            high = nil
        } else {
            high = digit
        }
    }
    return high == nil ? bytes : nil
}

/// The value of one ASCII hex digit, or nil for any other byte.
public func hexDigitValue(_ byte: UInt8) -> UInt8? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
    default: nil
    }
}

/// Two upper-case hex digits for a byte.
public func hexByte(_ byte: UInt8) -> String {
    let digits = Array("0123456789ABCDEF")
    return String([digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]])
}

extension LocatedJSON {
    /// The value without positions, keeping member order and numbers' exact text.
    public var plain: JSONValue {
        switch value {
        case .object(let members): .object(members.map { ($0.key, $0.value.plain) })
        case .array(let items): .array(items.map(\.plain))
        case .string(let text): .string(text)
        case .number(let text): .number(text)
        case .bool(let flag): .bool(flag)
        case .null: .null
        }
    }
}

extension JSONValue {
    /// What kind of value this is, for messages such as "expected a string, found a number".
    public var kindName: String {
        switch self {
        case .object: "an object"
        case .array: "an array"
        case .string: "a string"
        case .number: "a number"
        case .bool: "true or false"
        case .null: "null"
        }
    }

    /// Parses JSON text strictly (RFC 8259, duplicate keys rejected, nesting bounded); numbers keep their
    /// exact text. For stored readings and server replies, where Foundation's parser would round decimals.
    public static func parse(_ text: String) throws(JSONSyntaxError) -> JSONValue {
        try LocatedJSONParser.parse(text).plain
    }

    /// Parses JSON from UTF-8 bytes, as read from a socket or an HTTP body.
    public static func parse(bytes: [UInt8]) throws(JSONSyntaxError) -> JSONValue {
        try LocatedJSONParser.parse(bytes: bytes).plain
    }
}
