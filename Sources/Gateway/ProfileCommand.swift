import Foundation
import VitalModel
import ProfileEngine
import ProfileCatalog

/// `vitalgate profile`: the vendor kit. Check a profile, replay its captures, list what ships, and
/// generate the udev rules the profiles imply.
struct ProfileCommand {
    static let usage = """
        Usage: vitalgate profile SUBCOMMAND [options]

        Subcommands:
          lint [FILE...] [--json]          check profile files: schema, ranges, cross-references, captures
                                           (default: every shipped profile)
          test [FILE|ID...] [--json]       replay every capture beside each profile and compare the readings
                                           with its .expected.json (default: every shipped profile)
          decode --profile ID|PATH ...     bytes in, readings or FHIR out (see `vitalgate decode --help`)
          simulate PROFILE --capture FILE  play the device side of a capture on a pseudo-terminal
          list [--json]                    the shipped profiles
          udev-rules [--check FILE]        print the udev rules the USB profiles imply, or check a file

        Options:
          --profiles DIR                   the profile tree (default: the shipped DeviceProfiles)

        Exit status: 0 all good, 1 a profile or capture failed, 2 usage error.
        """

    static func run(_ arguments: [String], input: () -> String?) -> CommandResult {
        guard let sub = arguments.first else { return CommandResult(stderr: usage + "\n", exitCode: 2) }
        let rest = Array(arguments.dropFirst())
        if rest.contains("--help") || rest.contains("-h") || sub == "--help" || sub == "help" {
            return sub == "decode" ? DecodeCommand.run(["--help"], input: input) : CommandResult(stdout: usage + "\n")
        }
        do {
            switch sub {
            case "lint": return try lint(rest)
            case "test": return try test(rest)
            case "list": return try list(rest)
            case "udev-rules": return try udevRules(rest)
            case "decode": return DecodeCommand.run(rest, input: input)
            case "simulate": return SimulateCommand.run(rest)
            default: throw UsageError("unknown subcommand '\(sub)'")
            }
        } catch let error as UsageError {
            return CommandResult(stderr: "vitalgate profile: \(error)\nSee `vitalgate profile --help`.\n", exitCode: 2)
        } catch {
            return CommandResult(stderr: "vitalgate profile: \(error)\n", exitCode: 1)
        }
    }

    static func lint(_ arguments: [String]) throws -> CommandResult {
        let parsed = try Arguments(arguments, flags: ["json"], options: ["profiles"], command: "profile lint")
        var files = parsed.operands
        var out = "", errors = 0
        var overlaps: [String] = []
        var results: [JSONValue] = []
        if files.isEmpty {
            // Every shipped profile, plus the checks that need them all (overlapping USB claims).
            let root = try ProfileResolver.directory(parsed.value("profiles"))
            files = ProfileCatalog.profileFiles(in: root)
            overlaps = ProfileLint.overlaps(in: ProfileCatalog.load(directory: root)).map { "\($0)" }
            out += overlaps.map { "\($0)\n" }.joined()
        }
        for file in files {
            let findings = ProfileLint.lint(file: file)
            errors += findings.filter { $0.severity == .error }.count
            out += findings.isEmpty ? "\(file): ok\n" : findings.map { "\($0)\n" }.joined()
            results.append(["file": .string(file), "ok": .bool(!findings.contains { $0.severity == .error }),
                            "findings": .array(findings.map { ["severity": .string("\($0.severity)"), "text": .string("\($0)")] })])
        }
        if parsed.has("json") {
            out = JSONValue.object([("files", .array(results)), ("overlaps", .array(overlaps.map(JSONValue.string))),
                                    ("errors", .int(errors))]).prettyPrinted() + "\n"
        }
        return CommandResult(stdout: out, exitCode: errors == 0 ? 0 : 1)
    }

    static func test(_ arguments: [String]) throws -> CommandResult {
        let parsed = try Arguments(arguments, flags: ["json"], options: ["profiles"], command: "profile test")
        var profiles: [DeviceProfile] = []
        var out = "", failures = 0
        var results: [JSONValue] = []
        func result(_ profile: String, _ capture: String?, passed: Bool, readings: Int? = nil, problems: Int? = nil,
                    differences: [String] = [], error: String? = nil) {
            results.append(["profile": .string(profile), "capture": capture.map(JSONValue.string) ?? .null, "passed": .bool(passed),
                            "readings": readings.map { .int($0) } ?? .null, "problems": problems.map { .int($0) } ?? .null,
                            "differences": .array(differences.map(JSONValue.string)), "error": error.map(JSONValue.string) ?? .null])
        }
        if parsed.operands.isEmpty {
            let catalog = ProfileCatalog.load(directory: try ProfileResolver.directory(parsed.value("profiles")))
            for error in catalog.errors {
                out += "FAIL \(error.file): \(error)\n"
                result(error.file, nil, passed: false, error: "\(error)")
                failures += 1
            }
            profiles = catalog.profiles
        } else {
            for operand in parsed.operands {
                do {
                    profiles.append(try ProfileResolver.resolve(operand, directory: parsed.value("profiles")))
                } catch {
                    out += "FAIL \(operand): \(error)\n"
                    result(operand, nil, passed: false, error: "\(error)")
                    failures += 1
                }
            }
        }
        var passed = 0
        for profile in profiles {
            let captures = ProfileCatalog.captures(for: profile)
            if captures.isEmpty {
                out += "FAIL \(profile.id): no captures in \(ProfileCatalog.captureDirectory(for: profile))/\n"
                result(profile.id, nil, passed: false, error: "no captures")
                failures += 1
            }
            for capture in captures {
                let file = URL(fileURLWithPath: capture).lastPathComponent
                let name = "\(profile.id) \(file)"
                do {
                    let replay = Replay.run(try Capture.load(file: capture), profile: profile)
                    let expected = try ExpectedReadings.load(file: ProfileCatalog.expectedFile(for: capture))
                    let differences = replay.scriptDifferences + expected.differences(from: replay)
                    result(profile.id, file, passed: differences.isEmpty, readings: replay.readings.count, problems: replay.problems.count,
                           differences: differences.map { "\($0)" })
                    if differences.isEmpty {
                        passed += 1
                        out += "PASS \(name): \(replay.readings.count) reading\(replay.readings.count == 1 ? "" : "s")"
                            + (replay.problems.isEmpty ? "" : ", \(replay.problems.count) expected problem\(replay.problems.count == 1 ? "" : "s")") + "\n"
                    } else {
                        failures += 1
                        out += "FAIL \(name)\n" + differences.map { "  \($0)\n" }.joined()
                    }
                } catch {
                    failures += 1
                    out += "FAIL \(name): \(error)\n"
                    result(profile.id, file, passed: false, error: "\(error)")
                }
            }
        }
        out += "\(passed) capture\(passed == 1 ? "" : "s") passed, \(failures) failed, \(profiles.count) profile\(profiles.count == 1 ? "" : "s")\n"
        if parsed.has("json") {
            out = JSONValue.object([("results", .array(results)), ("passed", .int(passed)), ("failed", .int(failures))]).prettyPrinted() + "\n"
        }
        return CommandResult(stdout: out, exitCode: failures == 0 ? 0 : 1)
    }

    static func list(_ arguments: [String]) throws -> CommandResult {
        let parsed = try Arguments(arguments, flags: ["json"], options: ["profiles"], command: "profile list")
        let catalog = ProfileCatalog.load(directory: try ProfileResolver.directory(parsed.value("profiles")))
        if parsed.has("json") {
            let items: [JSONValue] = catalog.profiles.map { profile in
                ["id": .string(profile.id), "vendor": .string(profile.vendor), "model": .string(profile.model),
                 "transport": .string(profile.transport.name), "engine": .string(profile.engine.name),
                 "kinds": .array(profile.kinds.map { .string($0.rawValue) }), "file": .string(profile.file)]
            }
            return CommandResult(stdout: JSONValue.array(items).prettyPrinted() + "\n", exitCode: catalog.errors.isEmpty ? 0 : 1)
        }
        var out = ""
        for profile in catalog.profiles {
            out += "\(profile.id)  \(profile.vendor) \(profile.model)  [\(profile.transport.name), \(profile.engine.name)]  "
                + profile.kinds.map(\.rawValue).joined(separator: ", ") + "\n"
        }
        let errors = catalog.errors.map { "broken: \($0)\n" }.joined()
        return CommandResult(stdout: out, stderr: errors, exitCode: catalog.errors.isEmpty ? 0 : 1)
    }

    static func udevRules(_ arguments: [String]) throws -> CommandResult {
        let parsed = try Arguments(arguments, flags: [], options: ["profiles", "check"], command: "profile udev-rules")
        let catalog = ProfileCatalog.load(directory: try ProfileResolver.directory(parsed.value("profiles")))
        let rules = UdevRules.generate(catalog)
        guard let file = parsed.value("check") else { return CommandResult(stdout: rules) }
        guard let committed = FileManager.default.contents(atPath: file).map({ String(decoding: $0, as: UTF8.self) }) else {
            throw UsageError("cannot read \(file)")
        }
        return committed == rules
            ? CommandResult(stdout: "\(file) matches the profiles\n")
            : CommandResult(stderr: "\(file) differs from the rules the profiles generate; regenerate it with `vitalgate profile udev-rules > \(file)`\n", exitCode: 1)
    }
}
