import VitalModel

/// Why a profile file cannot be used: the file, the line and column, the field, what is wrong and how
/// to fix it. A profile with an error is skipped; the others keep working.
public struct ProfileError: Error, Sendable, Hashable, CustomStringConvertible {
    public var file: String
    public var location: SourceLocation?
    /// The field's path, such as `engine.frames.messages[1].values[0].field.offset`.
    public var field: String
    public var problem: String
    public var fix: String

    public init(file: String, location: SourceLocation?, field: String, problem: String, fix: String) {
        self.file = file
        self.location = location
        self.field = field
        self.problem = problem
        self.fix = fix
    }

    public var description: String {
        let place = location.map { "\(file):\($0.line):\($0.column)" } ?? file
        let what = field.isEmpty ? problem : "\(field): \(problem)"
        return fix.isEmpty ? "\(place): \(what)" : "\(place): \(what). Fix: \(fix)"
    }
}

/// Typed, located access to one JSON object of a profile. It knows its path, reports wrong types and
/// out-of-range numbers at the value's position, and at ``finish()`` rejects members nobody asked for,
/// because an unknown key is usually a typo that would otherwise be silently ignored.
package struct ProfileObject {
    package let file: String
    package let path: String
    package let location: SourceLocation
    private let members: [LocatedJSON.Member]
    private var used: Set<String> = []

    package init(_ json: LocatedJSON, file: String, path: String) throws(ProfileError) {
        guard case .object(let members) = json.value else {
            throw ProfileError(file: file, location: json.location, field: path,
                               problem: "expected an object, found \(json.kindName)", fix: "write { ... } here")
        }
        self.file = file
        self.path = path
        self.location = json.location
        self.members = members
    }

    package func childPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    package func error(_ key: String?, _ problem: String, fix: String, at location: SourceLocation? = nil) -> ProfileError {
        ProfileError(file: file, location: location ?? (key.flatMap { member($0)?.value.location } ?? self.location),
                     field: key.map(childPath) ?? path, problem: problem, fix: fix)
    }

    package var keys: [String] { members.map(\.key) }

    package func member(_ key: String) -> LocatedJSON.Member? { members.first { $0.key == key } }

    package func has(_ key: String) -> Bool { member(key) != nil }

    /// The raw value of `key`, marking it used.
    package mutating func raw(_ key: String) -> LocatedJSON? {
        used.insert(key)
        return member(key)?.value
    }

    package mutating func required(_ key: String, _ what: String) throws(ProfileError) -> LocatedJSON {
        guard let value = raw(key) else {
            throw error(nil, "\"\(key)\" is missing", fix: "add \"\(key)\": \(what)")
        }
        return value
    }

    package mutating func string(_ key: String, required: Bool = false, example: String = "\"...\"") throws(ProfileError) -> String? {
        guard let json = required ? try self.required(key, example) : raw(key) else { return nil }
        guard case .string(let text) = json.value else {
            throw error(key, "expected a string, found \(json.kindName)", fix: "write it as \(example)")
        }
        guard !text.isEmpty else { throw error(key, "is empty", fix: "write it as \(example) or leave the member out") }
        // Profile text ends up in generated files (udev rules) and messages: a line break there could
        // smuggle in a rule of its own.
        guard !containsControlCharacter(text) else {
            throw error(key, "contains a control character (a line break, tab or similar)", fix: "write it on one line, without escapes such as \\n")
        }
        return text
    }

    package mutating func bool(_ key: String) throws(ProfileError) -> Bool? {
        guard let json = raw(key) else { return nil }
        guard case .bool(let flag) = json.value else {
            throw error(key, "expected true or false, found \(json.kindName)", fix: "write true or false without quotes")
        }
        return flag
    }

    /// An integer within `range`; fractions, exponents and out-of-range values are errors.
    package mutating func int(_ key: String, in range: ClosedRange<Int>, required: Bool = false) throws(ProfileError) -> Int? {
        guard let json = required ? try self.required(key, "a whole number in \(range.lowerBound)...\(range.upperBound)") : raw(key) else { return nil }
        return try Self.int(json, in: range, file: file, path: childPath(key))
    }

    package static func int(_ json: LocatedJSON, in range: ClosedRange<Int>, file: String, path: String) throws(ProfileError) -> Int {
        // A whole number too long for Int is out of range, not "a fraction".
        if case .number(let text) = json.value, Int(text) == nil, !text.contains(where: { ".eE".contains($0) }) {
            throw ProfileError(file: file, location: json.location, field: path,
                               problem: "\(text) is out of range", fix: "use a value in \(range.lowerBound)...\(range.upperBound)")
        }
        guard case .number(let text) = json.value, let value = Int(text) else {
            throw ProfileError(file: file, location: json.location, field: path,
                               problem: "expected a whole number, found \(json.kindName == "a number" ? "a fraction or exponent" : json.kindName)",
                               fix: "write a whole number in \(range.lowerBound)...\(range.upperBound) without quotes")
        }
        guard range.contains(value) else {
            throw ProfileError(file: file, location: json.location, field: path,
                               problem: "\(value) is out of range", fix: "use a value in \(range.lowerBound)...\(range.upperBound)")
        }
        return value
    }

    /// One of a fixed set of words.
    package mutating func choice<T: RawRepresentable>(_ key: String, _ type: T.Type, required: Bool = false) throws(ProfileError) -> T?
        where T.RawValue == String, T: CaseIterable {
        let choices = T.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
        guard let text = try string(key, required: required, example: choices) else { return nil }
        guard let value = T(rawValue: text) else {
            throw error(key, "\"\(text)\" is not one of \(choices)", fix: "use one of \(choices)")
        }
        return value
    }

    /// Hex bytes written as a string, spaces allowed: `"AA 55"`.
    package mutating func hexBytes(_ key: String, required: Bool = false, count: ClosedRange<Int> = 1...4096) throws(ProfileError) -> [UInt8]? {
        guard let text = try string(key, required: required, example: "\"AA 55\"") else { return nil }
        guard let bytes = parseHexBytes(text) else {
            throw error(key, "\"\(text)\" is not hex bytes", fix: "write pairs of hex digits, optionally separated by spaces, like \"AA 55\"")
        }
        guard count.contains(bytes.count) else {
            throw error(key, "has \(bytes.count) bytes", fix: "give \(count.lowerBound == count.upperBound ? "\(count.lowerBound)" : "\(count.lowerBound)...\(count.upperBound)") bytes")
        }
        return bytes
    }

    /// A 16-bit identifier written as four hex digits (USB ids, Bluetooth company ids).
    package mutating func hex16(_ key: String, required: Bool = false) throws(ProfileError) -> UInt16? {
        guard let text = try string(key, required: required, example: "\"10C4\"") else { return nil }
        // UInt16(_:radix:) alone would take "+A60"; only four ASCII hex digits are an id.
        guard text.utf8.count == 4, text.utf8.allSatisfy({ hexDigitValue($0) != nil }), let value = UInt16(text, radix: 16) else {
            throw error(key, "\"\(text)\" is not four hex digits", fix: "write it like \"10C4\", as lsusb shows it")
        }
        return value
    }

    package mutating func array(_ key: String, required: Bool = false, nonEmpty: Bool = true) throws(ProfileError) -> [(LocatedJSON, String)]? {
        guard let json = required ? try self.required(key, "[ ... ]") : raw(key) else { return nil }
        guard case .array(let items) = json.value else {
            throw error(key, "expected an array, found \(json.kindName)", fix: "write [ ... ] here")
        }
        if nonEmpty && items.isEmpty { throw error(key, "is empty", fix: "list at least one entry or leave the member out") }
        return items.enumerated().map { ($0.element, "\(childPath(key))[\($0.offset)]") }
    }

    package mutating func object(_ key: String, required: Bool = false) throws(ProfileError) -> ProfileObject? {
        guard let json = required ? try self.required(key, "{ ... }") : raw(key) else { return nil }
        return try ProfileObject(json, file: file, path: childPath(key))
    }

    package mutating func strings(_ key: String, required: Bool = false, nonEmpty: Bool = true) throws(ProfileError) -> [String]? {
        try locatedStrings(key, required: required, nonEmpty: nonEmpty)?.map(\.text)
    }

    /// Like ``strings(_:required:nonEmpty:)``, with each item's place, so an error about one item points at it.
    package mutating func locatedStrings(_ key: String, required: Bool = false, nonEmpty: Bool = true) throws(ProfileError)
        -> [(text: String, location: SourceLocation, path: String)]? {
        guard let items = try array(key, required: required, nonEmpty: nonEmpty) else { return nil }
        var result: [(text: String, location: SourceLocation, path: String)] = []
        for (item, path) in items {
            guard case .string(let text) = item.value, !text.isEmpty else {
                throw ProfileError(file: file, location: item.location, field: path,
                                   problem: "expected a non-empty string, found \(item.kindName)", fix: "write it in quotes")
            }
            guard !containsControlCharacter(text) else {
                throw ProfileError(file: file, location: item.location, field: path,
                                   problem: "contains a control character (a line break, tab or similar)", fix: "write it on one line")
            }
            result.append((text, item.location, path))
        }
        return result
    }

    /// Rejects members that no reader asked for, naming the closest known one.
    package func finish(allowed extra: [String] = []) throws(ProfileError) {
        for member in members where !used.contains(member.key) && !extra.contains(member.key) {
            let known = used.union(extra).sorted()
            let suggestion = known.min { editDistance($0, member.key) < editDistance($1, member.key) }
            let near = suggestion.flatMap { editDistance($0, member.key) <= 3 ? " (did you mean \"\($0)\"?)" : nil } ?? ""
            throw ProfileError(file: file, location: member.keyLocation, field: childPath(member.key),
                               problem: "unknown member\(near)",
                               fix: "remove it or correct the name; allowed here: " + known.map { "\"\($0)\"" }.joined(separator: ", "))
        }
    }
}

/// Exactly one member, naming a variant (`{"serial": {...}}`); returns its key and object.
func singleVariant(_ json: LocatedJSON, file: String, path: String, choices: [String]) throws(ProfileError) -> (String, ProfileObject) {
    let object = try ProfileObject(json, file: file, path: path)
    let list = choices.map { "\"\($0)\"" }.joined(separator: ", ")
    guard object.keys.count == 1, let key = object.keys.first else {
        throw ProfileError(file: file, location: json.location, field: path,
                           problem: object.keys.isEmpty ? "is empty" : "has \(object.keys.count) members",
                           fix: "give exactly one of \(list)")
    }
    guard choices.contains(key) else {
        let near = choices.min { editDistance($0, key) < editDistance($1, key) }.map { " (did you mean \"\($0)\"?)" } ?? ""
        throw ProfileError(file: file, location: object.member(key)?.keyLocation, field: "\(path).\(key)",
                           problem: "unknown kind\(near)", fix: "use one of \(list)")
    }
    var mutable = object
    let inner = try mutable.object(key, required: true)!
    return (key, inner)
}

/// Hex bytes in a profile or capture (separators allowed between bytes); at least one byte.
func parseHexBytes(_ text: String) -> [UInt8]? {
    guard let bytes = hexBytes(text, separators: true), !bytes.isEmpty else { return nil }
    return bytes
}

/// Levenshtein distance, for "did you mean" hints on short keys.
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    guard !a.isEmpty else { return b.count }
    guard !b.isEmpty else { return a.count }
    var previous = Array(0...b.count)
    for (i, ca) in a.enumerated() {
        var current = [i + 1] + Array(repeating: 0, count: b.count)
        for (j, cb) in b.enumerated() {
            current[j + 1] = min(previous[j + 1] + 1, current[j] + 1, previous[j] + (ca == cb ? 0 : 1))
        }
        previous = current
    }
    return previous[b.count]
}

/// C0 and C1 control characters and DEL.
func containsControlCharacter(_ text: String) -> Bool {
    text.unicodeScalars.contains { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) || $0 == "\u{2028}" || $0 == "\u{2029}" }
}
