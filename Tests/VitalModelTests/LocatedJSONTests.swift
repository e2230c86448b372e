import Testing
@testable import VitalModel

/// The located JSON parser: positions, strictness, and no trap on any input. Expected positions are
/// counted by hand from the literal texts (line and column are 1-based; a column counts characters).
@Suite("LocatedJSON parser")
struct LocatedJSONTests {
    static func parse(_ text: String) -> Result<LocatedJSON, JSONSyntaxError> {
        Result { () throws(JSONSyntaxError) in try LocatedJSONParser.parse(text) }
    }

    static func error(_ text: String) -> JSONSyntaxError? {
        if case .failure(let error) = parse(text) { return error }
        return nil
    }

    static func error(bytes: [UInt8]) -> JSONSyntaxError? {
        do { _ = try LocatedJSONParser.parse(bytes: bytes) } catch { return error }
        return nil
    }

    static func members(_ json: LocatedJSON?) -> [LocatedJSON.Member] {
        if case .object(let members)? = json?.value { return members }
        return []
    }

    static func items(_ json: LocatedJSON?) -> [LocatedJSON] {
        if case .array(let items)? = json?.value { return items }
        return []
    }

    static func string(_ json: LocatedJSON?) -> String? {
        if case .string(let text)? = json?.value { return text }
        return nil
    }

    static let sample = """
        {
          "a": 1,
          "b": [true, null],
            "c": {"d": "x"}
        }
        """

    @Test("values and keys carry their line and column")
    func positions() throws {
        for (name, text) in [("LF", Self.sample), ("CRLF", Self.sample.replacingOccurrences(of: "\n", with: "\r\n"))] {
            let root = try Self.parse(text).get()
            #expect(root.location.description == "1:1", "\(name)")
            let members = Self.members(root)
            #expect(members.map(\.key) == ["a", "b", "c"])
            #expect(members.map(\.keyLocation.description) == ["2:3", "3:3", "4:5"], "\(name)")
            #expect(members.map(\.value.location.description) == ["2:8", "3:8", "4:10"], "\(name)")
            #expect(Self.items(members[1].value).map(\.location.description) == ["3:9", "3:15"], "\(name)")
            let inner = Self.members(members[2].value)
            #expect(inner.first?.keyLocation.description == "4:11", "\(name)")
            #expect(inner.first?.value.location.description == "4:16", "\(name)")
        }
    }

    @Test("a tab is one column; a non-ASCII character is one column")
    func columns() throws {
        let tabbed = try Self.parse("{\t\"a\":\t1}").get()
        #expect(Self.members(tabbed).first?.keyLocation.description == "1:3")
        #expect(Self.members(tabbed).first?.value.location.description == "1:8")
        // "Sức" is 3 characters but 5 UTF-8 bytes: the key after it is at column 14 (16 counting bytes).
        let vietnamese = try Self.parse(#"{"v": "Sức", "w": 2}"#).get()
        #expect(Self.members(vietnamese).last?.keyLocation.description == "1:14")
        #expect(Self.members(vietnamese).last?.value.location.description == "1:19")
        #expect(Self.error(#"{"v": "Sức", x}"#)?.location.description == "1:14")
    }

    @Test("numbers keep their exact text")
    func numbers() throws {
        let items = Self.items(try Self.parse("[0.005, -0, 1E+2, 120.50, 0, -12.5e-3]").get())
        let texts: [String] = items.compactMap { if case .number(let text) = $0.value { text } else { nil } }
        #expect(texts == ["0.005", "-0", "1E+2", "120.50", "0", "-12.5e-3"])
    }

    @Test("a member name that appears twice is an error at the second, naming the first")
    func duplicateKeys() {
        let error = Self.error("{\"a\": 1,\n \"a\": 2}")
        #expect(error?.location.description == "2:2")
        #expect(error?.problem == "member \"a\" appears twice (first at 1:2); keep one")
        // Escapes are decoded before comparing: "\u0061" is "a".
        #expect(Self.error(#"{"a": 1, "\u0061": 2}"#)?.problem.contains("appears twice") == true)
        // The same name in different objects is fine.
        #expect(Self.error(#"{"a": {"a": 1}, "b": {"a": 2}}"#) == nil)
    }

    struct SyntaxCase: Sendable, CustomTestStringConvertible {
        var text: String
        var location: String
        var phrase: String
        var testDescription: String { text.debugDescription }
    }

    static let syntaxCases: [SyntaxCase] = [
        SyntaxCase(text: "", location: "1:1", phrase: "expected a value but the file ends"),
        SyntaxCase(text: "   \n  ", location: "2:3", phrase: "expected a value but the file ends"),
        SyntaxCase(text: #"{"a": 1,}"#, location: "1:9", phrase: "expected a quoted member name but found '}'"),
        SyntaxCase(text: "[1,]", location: "1:4", phrase: "expected a value but found ']'"),
        SyntaxCase(text: #"{"a" 1}"#, location: "1:6", phrase: #"expected ':' after "a" but found '1'"#),
        SyntaxCase(text: #"{"a": 1 "b": 2}"#, location: "1:9", phrase: #"expected ',' or '}' but found '"'"#),
        SyntaxCase(text: "[1 2]", location: "1:4", phrase: "expected ',' or ']' but found '2'"),
        SyntaxCase(text: "{\"a\": 1\n", location: "2:1", phrase: "the object opened at 1:1 is not closed"),
        SyntaxCase(text: "[1, 2", location: "1:6", phrase: "the array opened at 1:1 is not closed"),
        SyntaxCase(text: #"{"a": "xyz"#, location: "1:7", phrase: "the string opened at 1:7 is not closed"),
        SyntaxCase(text: "\"a\tb\"", location: "1:3", phrase: "control character 0x09 inside a string"),
        SyntaxCase(text: "\"a\nb\"", location: "1:3", phrase: "control character 0x0A inside a string"),
        SyntaxCase(text: #""\x""#, location: "1:2", phrase: #"unknown escape '\x'"#),
        SyntaxCase(text: #""\u12G4""#, location: "1:6", phrase: #"a \u escape needs four hex digits"#),
        SyntaxCase(text: #""\u12"#, location: "1:4", phrase: #"a \u escape needs four hex digits"#),
        SyntaxCase(text: #""\uD834""#, location: "1:2", phrase: "a high surrogate \\u escape must be followed by a low one"),
        SyntaxCase(text: #""\uD834\u0041""#, location: "1:8", phrase: "invalid low surrogate"),
        SyntaxCase(text: #""\uDD1E""#, location: "1:2", phrase: "names no character"),
        SyntaxCase(text: "01", location: "1:1", phrase: "leading zeros"),
        SyntaxCase(text: "-", location: "1:2", phrase: "a number needs digits after '-'"),
        SyntaxCase(text: "-x", location: "1:2", phrase: "a number needs digits after '-'"),
        SyntaxCase(text: "1.", location: "1:3", phrase: "a number needs digits after '.'"),
        SyntaxCase(text: "1e", location: "1:3", phrase: "a number needs digits in its exponent"),
        SyntaxCase(text: "1e+", location: "1:4", phrase: "a number needs digits in its exponent"),
        SyntaxCase(text: "+1", location: "1:1", phrase: "expected a value but found '+'"),
        SyntaxCase(text: ".5", location: "1:1", phrase: "expected a value but found '.'"),
        SyntaxCase(text: "tru", location: "1:1", phrase: "expected 'true'"),
        SyntaxCase(text: "nul", location: "1:1", phrase: "expected 'null'"),
        SyntaxCase(text: "fals", location: "1:1", phrase: "expected 'false'"),
        SyntaxCase(text: "falsey", location: "1:6", phrase: "unexpected text after the end"),
        SyntaxCase(text: "NaN", location: "1:1", phrase: "expected a value but found 'N'"),
        SyntaxCase(text: "{} x", location: "1:4", phrase: "unexpected text after the end of the JSON document"),
        SyntaxCase(text: "{}{}", location: "1:3", phrase: "unexpected text after the end of the JSON document"),
        SyntaxCase(text: "{'a': 1}", location: "1:2", phrase: "expected a quoted member name but found '''"),
        SyntaxCase(text: "// comment\n{}", location: "1:1", phrase: "expected a value but found '/'"),
        SyntaxCase(text: "{\"a\": 1, /* c */ \"b\": 2}", location: "1:10", phrase: "expected a quoted member name but found '/'"),
        SyntaxCase(text: "{\"a\": 1}\u{0B}", location: "1:9", phrase: "unexpected text after the end"),
        SyntaxCase(text: "\u{A0}{}", location: "1:1", phrase: "expected a value but found byte 0xC2"),
    ]

    @Test("each syntax error class says what and where", arguments: syntaxCases)
    func syntax(_ testCase: SyntaxCase) {
        let error = Self.error(testCase.text)
        #expect(error?.location.description == testCase.location, "\(String(describing: error))")
        #expect(error?.problem.contains(testCase.phrase) == true, "\(String(describing: error))")
    }

    @Test("nesting is bounded at 64 levels, and deeper input is an error, not a stack overflow")
    func depth() {
        #expect(Self.error(String(repeating: "[", count: 64) + String(repeating: "]", count: 64)) == nil)
        let deep = Self.error(String(repeating: "[", count: 65) + String(repeating: "]", count: 65))
        #expect(deep?.problem == "nesting deeper than 64 levels")
        #expect(deep?.location.description == "1:65")
        #expect(Self.error(String(repeating: "{\"a\":", count: 200_000))?.problem == "nesting deeper than 64 levels")
        #expect(Self.error(String(repeating: "[", count: 1_000_000))?.problem == "nesting deeper than 64 levels")
    }

    @Test("a byte-order mark at the start is skipped and does not shift columns")
    func byteOrderMark() throws {
        let root = try LocatedJSONParser.parse(bytes: [0xEF, 0xBB, 0xBF] + Array(#"{"a": 1}"#.utf8))
        #expect(Self.members(root).first?.keyLocation.description == "1:2")
        #expect(root.location.description == "1:1")
        // Anywhere else it is not whitespace.
        #expect(Self.error(bytes: Array(" ".utf8) + [0xEF, 0xBB, 0xBF] + Array("{}".utf8))?.location.description == "1:2")
    }

    @Test("unicode escapes, surrogate pairs and raw UTF-8 become the characters")
    func unicode() throws {
        let items = Self.items(try Self.parse(#"["\u00e9", "\uD834\uDD1E", "\u0000", "é𝄞", "\/\"\\\b\f\n\r\t"]"#).get())
        #expect(items.map { Self.string($0) } == ["é", "𝄞", "\u{0}", "é𝄞", "/\"\\\u{8}\u{C}\n\r\t"])
    }

    @Test("invalid UTF-8 is an error at the string, never a trap or a replacement character")
    func invalidUTF8() {
        let cases: [[UInt8]] = [
            [0x22, 0xFF, 0x22],                      // never valid
            [0x22, 0xC0, 0xAF, 0x22],                // overlong '/'
            [0x22, 0x61, 0xE2, 0x82, 0x22],          // truncated three-byte sequence
            [0x22, 0xED, 0xA0, 0x80, 0x22],          // a UTF-16 surrogate encoded as UTF-8
            [0x22, 0xF4, 0x90, 0x80, 0x80, 0x22],    // above U+10FFFF
            [0x22, 0x80, 0x5C, 0x6E, 0x22],          // a stray continuation byte before an escape
        ]
        for bytes in cases {
            let error = Self.error(bytes: bytes)
            #expect(error?.problem == "the string is not valid UTF-8", "\(bytes)")
            #expect(error?.location.description == "1:1", "\(bytes)")
        }
        // Outside a string a non-ASCII byte is named in hex.
        #expect(Self.error(bytes: [0x5B, 0xFF, 0x5D])?.problem == "expected a value but found byte 0xFF")
    }

    @Test("every truncation and random bytes never trap")
    func neverTraps() {
        let text = Array((Self.sample + #"  [0.5e-3, "\uD834\uDD1E", "é", false]"#).utf8)
        for end in 0...text.count { _ = Self.error(bytes: Array(text[..<end])) }
        var state: UInt64 = 0x5EED
        let alphabet = Array(#"{}[]:,"\ 0123456789-+.eEtrufalsn"#.utf8) + [0x0A, 0xC3, 0xA9, 0xFF, 0xED]
        for _ in 0..<20_000 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let count = Int(state >> 58)
            var bytes: [UInt8] = []
            for index in 0..<count { bytes.append(alphabet[Int((state >> UInt64(index % 50)) % UInt64(alphabet.count))]) }
            _ = Self.error(bytes: bytes)
        }
    }

    @Test("kind names for messages")
    func kindNames() throws {
        let items = Self.items(try Self.parse(#"[{}, [], "", 1, true, null]"#).get())
        #expect(items.map(\.kindName) == ["an object", "an array", "a string", "a number", "true or false", "null"])
    }
}
