import Foundation
import Testing
import VitalGateTestKit
@testable import Gateway
#if canImport(Glibc)
import Glibc
#endif

/// `vitalgate config check|schema`: the daemon's parser decides, secret files are checked as the daemon's
/// Authenticator would, and nothing printed names a person.
@Suite("vitalgate config")
struct ConfigCommandTests {
    static let grandfather = "099060000001", grandmother = "099163000002"
    static let practitioner = "urn:vitalgate:test:practitioner|CHW-0042"

    /// A scratch directory with a private key, a certificate and a configuration naming them.
    struct Scratch {
        let directory: String
        var key: String { directory + "/secrets/hub-key.pem" }
        var certificate: String { directory + "/hub.crt" }
        var config: String { directory + "/config.json" }

        init() throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("vitalgate-config-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: directory + "/secrets", withIntermediateDirectories: true)
            try write(key, "-----BEGIN PRIVATE KEY-----\nnot a real key\n-----END PRIVATE KEY-----\n", mode: 0o600)
            try write(certificate, "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n", mode: 0o644)
        }

        func write(_ path: String, _ text: String, mode: mode_t) throws {
            try Data(text.utf8).write(to: URL(fileURLWithPath: path))
            #expect(chmod(path, mode) == 0)
        }

        /// A hub's configuration: a household of two on a two-user cuff, a health worker, SMART auth with
        /// mutual TLS, a metrics file. `server` replaces the server section's members after baseURL.
        func writeConfig(batchSize: String = "20") throws {
            try write(config, """
                {
                  "stateDirectory": "\(directory)/state",
                  "household": {
                    "members": [{"label": "ong", "patient": "cccd:\(ConfigCommandTests.grandfather)"},
                                {"label": "ba", "patient": "cccd:\(ConfigCommandTests.grandmother)"}],
                    "devices": [{"bluetooth": "F1:0B:50:00:00:11", "slots": {"1": "ong", "2": "ba"}}]
                  },
                  "healthWorker": {"identifier": "\(ConfigCommandTests.practitioner)"},
                  "server": {
                    "baseURL": "https://fhir.example.vn/r4",
                    "batchSize": \(batchSize),
                    "auth": {"method": "smart-backend-services", "clientID": "hub-1", "privateKeyFile": "\(key)"},
                    "tls": {"clientCertificate": "\(certificate)", "clientKey": "\(key)"}
                  },
                  "metrics": {"textfile": "\(directory)/vitalgate.prom", "intervalSeconds": 30},
                  "control": {"socket": "\(directory)/control.sock"}
                }
                """, mode: 0o640)
        }

        func remove() { try? FileManager.default.removeItem(atPath: directory) }
    }

    /// The user running the tests: as the service user, it owns every file the test writes.
    static var currentUser: String {
        guard let entry = getpwuid(getuid()) else { return "root" }
        return String(cString: entry.pointee.pw_name)
    }

    func run(_ arguments: [String]) -> CommandResult { CommandLineTool.run(arguments) { nil } }

    /// Line and column (1-based) of the first `needle` in `text`, moved right by `offset` characters.
    func position(of needle: String, in text: String, offset: Int = 0) throws -> String {
        let range = try #require(text.range(of: needle))
        let before = text[..<text.index(range.lowerBound, offsetBy: offset)]
        let line = before.filter { $0 == "\n" }.count + 1
        let column = before.split(separator: "\n", omittingEmptySubsequences: false).last.map { $0.unicodeScalars.count + 1 } ?? 1
        return "\(line):\(column)"
    }

    @Test("a good configuration: `FILE: ok` and a summary that names no one")
    func okSummary() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        try scratch.writeConfig()
        let check = ConfigCheck.run(file: scratch.config, serviceUser: Self.currentUser)
        #expect(check.problems.isEmpty && check.notes.isEmpty, "\(check.problems) \(check.notes)")
        #expect(check.files.map(\.field) == ["server.auth.privateKeyFile", "server.tls.clientCertificate", "server.tls.clientKey"])
        #expect(check.files.allSatisfy { $0.status == "ok" })
        let lines = check.text.split(separator: "\n").map(String.init)
        #expect(lines.first == "\(scratch.config): ok")
        #expect(lines.contains("  server: https://fhir.example.vn/r4 (transaction, batches of 20)"))
        #expect(lines.contains("  auth: smart-backend-services (ES384) with mutual TLS"))
        #expect(lines.contains("  secret files: 2 of 2 ok"))
        #expect(lines.contains("  household: 2 members, 1 device"))
        #expect(lines.contains("  health worker: set"))
        #expect(lines.contains("  metrics file: \(scratch.directory)/vitalgate.prom (every 30 s)"))
        #expect(lines.contains("  control socket: \(scratch.directory)/control.sock"))

        // Through the command line, with this user standing in for the service's.
        let result = run(["config", "check", scratch.config, "--service-user", Self.currentUser])
        #expect(result.exitCode == 0, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.contains("\(scratch.config): ok\n"))
        let json = run(["config", "check", "--json", scratch.config, "--service-user=\(Self.currentUser)"])
        #expect(json.exitCode == 0)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect(object["ok"] as? Bool == true && (object["problems"] as? [Any])?.isEmpty == true)
        let summary = try #require(object["summary"] as? [String: Any])
        #expect(summary["householdMembers"] as? Int == 2 && summary["householdDevices"] as? Int == 1)
        #expect(summary["healthWorker"] as? Bool == true && summary["auth"] as? String == "smart-backend-services")

        for output in [check.text, result.stdout + result.stderr, json.stdout] {
            for secret in [Self.grandfather, Self.grandmother, "CHW-0042", "practitioner", "cccd", "\"ong\"", "\"ba\"", "not a real key"] {
                #expect(!output.contains(secret), "the output names \(secret): \(output)")
            }
        }
    }

    @Test("a mistake: exit 1 with file, line, column and field, in text and JSON")
    func mistake() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        try scratch.writeConfig(batchSize: "5000")
        let text = try String(contentsOfFile: scratch.config, encoding: .utf8)
        let place = try position(of: "\"batchSize\": 5000", in: text, offset: "\"batchSize\": ".count)
        let result = run(["config", "check", scratch.config])
        #expect(result.exitCode == 1)
        #expect(result.stdout.hasPrefix("\(scratch.config):\(place): server.batchSize: 5000 is out of range. Fix: use a value in 1...1000"),
                "\(result.stdout)")
        #expect(!result.stdout.contains(": ok"))

        let json = run(["config", "check", scratch.config, "--json"])
        #expect(json.exitCode == 1)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let problem = try #require((object["problems"] as? [[String: Any]])?.first)
        #expect(problem["field"] as? String == "server.batchSize")
        #expect("\(problem["line"] as? Int ?? 0):\(problem["column"] as? Int ?? 0)" == place)
        #expect(object["ok"] as? Bool == false && object["summary"] is NSNull)

        // An unknown member points at its key and suggests the near one.
        try scratch.writeConfig()
        let good = try String(contentsOfFile: scratch.config, encoding: .utf8)
        try scratch.write(scratch.config, good.replacingOccurrences(of: "\"healthWorker\"", with: "\"healthWorkr\""), mode: 0o640)
        let unknown = run(["config", "check", scratch.config])
        let keyPlace = try position(of: "\"healthWorkr\"", in: String(contentsOfFile: scratch.config, encoding: .utf8))
        #expect(unknown.exitCode == 1)
        #expect(unknown.stdout.hasPrefix("\(scratch.config):\(keyPlace): healthWorkr: unknown member (did you mean \"healthWorker\"?)"), "\(unknown.stdout)")

        // A wrong identifier is refused without repeating it.
        try scratch.write(scratch.config, good.replacingOccurrences(of: Self.grandmother, with: "098163000002"), mode: 0o640)
        let identifier = run(["config", "check", scratch.config])
        #expect(identifier.exitCode == 1 && identifier.stdout.contains("household.members[1].patient: "))
        #expect(!identifier.stdout.contains("098163000002") && !identifier.stdout.contains(Self.grandfather))
    }

    @Test("a secret any user can read: exit 1, naming the chmod that fixes it")
    func worldReadableSecret() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        try scratch.writeConfig()
        #expect(chmod(scratch.key, 0o644) == 0)
        let text = try String(contentsOfFile: scratch.config, encoding: .utf8)
        let keyPlace = try position(of: "\"\(scratch.key)\"", in: text)
        let check = ConfigCheck.run(file: scratch.config, serviceUser: Self.currentUser)
        #expect(check.problems.count == 2)  // the SMART key and the TLS key are the same file
        let first = try #require(check.problems.first)
        #expect(first.field == "server.auth.privateKeyFile")
        #expect(first.location?.description == keyPlace)
        #expect(first.problem.contains("mode 0644") && first.fix.hasPrefix("chown root:vitalgate \(scratch.key) && chmod 0640"))
        #expect(check.problems.last?.field == "server.tls.clientKey")
        #expect(check.files.filter(\.secret).allSatisfy { $0.status == "problem" })
        #expect(check.files.first { !$0.secret }?.status == "ok")  // a certificate may be public
        #expect(check.text.contains("\(scratch.config): 2 problems\n") && check.text.contains("  secret files: 0 of 2 ok\n"))
        #expect(!check.text.contains("not a real key"))

        let result = run(["config", "check", scratch.config, "--service-user", Self.currentUser])
        #expect(result.exitCode == 1)
        #expect(result.stdout.contains("Fix: chown root:vitalgate \(scratch.key)"), "\(result.stdout)")

        #expect(chmod(scratch.key, 0o640) == 0)
        #expect(ConfigCheck.run(file: scratch.config, serviceUser: Self.currentUser).problems.isEmpty)
        // The daemon's rule, for the service's account: group access for a group the service is not in is refused too.
        #expect(chown(scratch.key, getuid(), 54_321) == 0)
        let foreign = ConfigCheck.run(file: scratch.config, serviceUser: Self.currentUser)
        #expect(foreign.problems.first?.problem.contains("open to group 54321") == true, "\(foreign.problems)")
    }

    @Test("a secret file that does not exist, or is a directory: exit 1")
    func missingSecret() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        try scratch.writeConfig()
        try FileManager.default.removeItem(atPath: scratch.key)
        let result = run(["config", "check", scratch.config])
        #expect(result.exitCode == 1)
        #expect(result.stdout.contains("server.auth.privateKeyFile: the private key file \(scratch.key) does not exist. Fix: create it (mode 0600"),
                "\(result.stdout)")
        #expect(result.stdout.contains("server.tls.clientKey: the TLS client key \(scratch.key) does not exist"))

        try FileManager.default.createDirectory(atPath: scratch.key, withIntermediateDirectories: false)
        let directory = ConfigCheck.run(file: scratch.config, serviceUser: Self.currentUser)
        #expect(directory.problems.first?.problem == "the private key file \(scratch.key) is not a regular file")

        try FileManager.default.removeItem(atPath: scratch.certificate)
        let certificate = ConfigCheck.run(file: scratch.config, serviceUser: Self.currentUser)
        #expect(certificate.problems.contains { $0.field == "server.tls.clientCertificate" && $0.problem.hasSuffix("does not exist") })
    }

    @Test("a secret the service user cannot read is a problem; the permission bits decide")
    func serviceUserMustRead() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        var info = stat()
        #expect(stat(scratch.key, &info) == 0)
        // Someone else: neither the owner nor in the file's group.
        let stranger = ServiceAccount(name: "stranger", uid: info.st_uid &+ 4242, groups: [info.st_gid &+ 4242])
        let key = ConfigCheck.NamedFile(field: "server.auth.privateKeyFile", path: scratch.key, what: "private key file", secret: true)
        guard case .problem(let problem, let fix) = ConfigCheck.inspect(key, account: stranger) else {
            Issue.record("a key the service user cannot read passed")
            return
        }
        #expect(problem.contains("the service user stranger cannot read") && fix.hasPrefix("chown stranger \(scratch.key)"))

        let owner = ServiceAccount(name: "owner", uid: info.st_uid, groups: [])
        #expect(ConfigCheck.inspect(key, account: owner) == .ok)
        let member = ServiceAccount(name: "member", uid: info.st_uid &+ 4242, groups: [info.st_gid])
        #expect(chmod(scratch.key, 0o640) == 0)
        #expect(ConfigCheck.inspect(key, account: member) == .ok)
        #expect(chmod(scratch.key, 0o600) == 0)
        #expect(ConfigCheck.inspect(key, account: member) != .ok)

        // The bits as the kernel reads them: the owner's bits alone for the owner, the group's for a member.
        let service = ServiceAccount(name: "service", uid: 1000, groups: [1000, 27])
        #expect(!service.mayRead(owner: 1000, group: 1000, mode: 0o000))
        #expect(!service.mayRead(owner: 1000, group: 1000, mode: 0o070))
        #expect(service.mayRead(owner: 0, group: 27, mode: 0o640))
        #expect(!service.mayRead(owner: 0, group: 0, mode: 0o640))
        #expect(ServiceAccount(name: "root", uid: 0, groups: [0]).mayRead(owner: 1, group: 1, mode: 0o000))
        #expect(ServiceAccount(name: "no-such-user-\(UUID().uuidString.prefix(8))") == nil)
    }

    @Test("the shipped example loads with the daemon's parser and names its secrets under /etc/vitalgate/secrets")
    func shippedExample() throws {
        let example = RepositoryPaths.root.appendingPathComponent("systemd/config.example.json").path
        let configuration = try DaemonConfiguration.load(example)
        #expect(configuration.household.members.count == 2 && configuration.household.devices.count == 2)
        #expect(configuration.household.devices.contains { $0.slots.count == 2 })
        let check = ConfigCheck.run(file: example, serviceUser: Self.currentUser)
        #expect(check.configuration != nil)
        #expect(check.files.filter(\.secret).map(\.path).allSatisfy { $0.hasPrefix("/etc/vitalgate/secrets/") })
        #expect(check.files.filter(\.secret).count == 2)
    }

    @Test("`config schema` finds the schema beside the program and prints its path or content")
    func schema() throws {
        let expected = RepositoryPaths.root.appendingPathComponent("systemd/config.schema.json").path
        let executable = RepositoryPaths.root.appendingPathComponent(".build/debug/vitalgate").path
        #expect(ConfigCommand.schemaPath(executable: executable) == expected)
        let path = ConfigCommand.schema(printContent: false, executable: executable)
        #expect(path.exitCode == 0 && path.stdout == expected + "\n")
        let content = ConfigCommand.schema(printContent: true, executable: executable)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(content.stdout.utf8)) as? [String: Any])
        #expect(object["$schema"] as? String == "https://json-schema.org/draft/2020-12/schema")
        let elsewhere = ConfigCommand.schemaPath(executable: "/nonexistent-\(UUID().uuidString)/bin/vitalgate")
        #expect(elsewhere == (FileManager.default.fileExists(atPath: ConfigCommand.installedSchema) ? ConfigCommand.installedSchema : nil))
    }

    @Test("usage mistakes exit 2")
    func usage() {
        #expect(run(["config"]).exitCode == 2)
        #expect(run(["config", "frobnicate"]).exitCode == 2)
        #expect(run(["config", "check", "a.json", "b.json"]).exitCode == 2)
        #expect(run(["config", "check", "--bogus"]).exitCode == 2)
        #expect(run(["config", "schema", "extra"]).exitCode == 2)
        let help = run(["config", "--help"])
        #expect(help.exitCode == 0 && help.stdout.contains("check [FILE] [--json]"))
        #expect(run(["--help"]).stdout.contains("  config "))
        let missing = run(["config", "check", "/nonexistent-\(UUID().uuidString).json"])
        #expect(missing.exitCode == 1 && missing.stdout.contains("cannot read the configuration file"))
    }
}
