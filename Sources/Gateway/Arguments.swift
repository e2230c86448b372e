/// A command-line usage mistake: what was wrong and how to ask for help. Exit status 2.
public struct UsageError: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Options and operands of one command, parsed against the options it declares.
///
/// Accepts `--name value`, `--name=value` and `--flag`; `--` ends options. No third-party parser: the
/// grammar is small and its errors should read like the rest of VitalGate's.
struct Arguments {
    private(set) var flags: Set<String> = []
    private(set) var values: [String: String] = [:]
    private(set) var operands: [String] = []

    init(_ arguments: [String], flags known: Set<String>, options: Set<String>, command: String) throws(UsageError) {
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            if argument == "--" { operands += arguments[index...]; break }
            guard argument.hasPrefix("--") else { operands.append(argument); continue }
            var name = String(argument.dropFirst(2))
            var inline: String?
            if let equals = name.firstIndex(of: "=") {
                inline = String(name[name.index(after: equals)...])
                name = String(name[..<equals])
            }
            if known.contains(name) {
                guard inline == nil else { throw UsageError("--\(name) takes no value") }
                flags.insert(name)
            } else if options.contains(name) {
                if let inline {
                    values[name] = inline
                } else {
                    guard index < arguments.count else { throw UsageError("--\(name) needs a value") }
                    values[name] = arguments[index]
                    index += 1
                }
            } else {
                let all = (known.union(options)).sorted().map { "--" + $0 }.joined(separator: ", ")
                throw UsageError("unknown option --\(name) for `vitalgate \(command)`; it takes \(all)")
            }
        }
    }

    func value(_ name: String) -> String? { values[name] }
    func has(_ flag: String) -> Bool { flags.contains(flag) }
}
