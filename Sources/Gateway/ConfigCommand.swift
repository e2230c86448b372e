import Foundation
import ProfileCatalog
import Uplink
import VitalModel
#if canImport(Glibc)
import Glibc
#endif

/// `vitalgate config`: check the daemon's configuration before (re)starting the service, and find the JSON Schema
/// editors check it with.
///
/// `check` reads the file with the daemon's own parser, so it accepts and refuses exactly what `vitalgated`
/// would, then looks at the files the configuration names: a secret (token, client secret, private key) must
/// exist, be a regular file, be closed to other users (the daemon's Authenticator refuses it otherwise) and be
/// readable by the service user. Nothing it prints contains an identifier or a secret.
enum ConfigCommand {
    static let usage = """
        Usage: vitalgate config SUBCOMMAND [options]

        Subcommands:
          check [FILE] [--json] [--service-user NAME]
                                  read FILE as the daemon does (default /etc/vitalgate/config.json), check the
                                  secret files it names, and summarise it without naming anyone
          schema [--content]      print the path of the configuration's JSON Schema (for editors), or its content

        Options:
          --json                  print one JSON object instead of text
          --service-user NAME     the account the service runs as, which must be able to read the secrets
                                  (default vitalgate; give it when a drop-in changes User=)

        Exit status: 0 good, 1 the file or a file it names has a problem, 2 usage error.
        """

    static let defaultFile = "/etc/vitalgate/config.json"
    /// Where the Debian package installs the schema.
    static let installedSchema = "/usr/share/vitalgate/config.schema.json"
    /// The account `vitalgated.service` runs as (`User=vitalgate`, systemd/sysusers.d).
    static let serviceUser = "vitalgate"

    static func run(_ arguments: [String]) -> CommandResult {
        guard let sub = arguments.first else { return CommandResult(stderr: usage + "\n", exitCode: 2) }
        let rest = Array(arguments.dropFirst())
        if ["--help", "-h", "help"].contains(sub) || rest.contains("--help") || rest.contains("-h") {
            return CommandResult(stdout: usage + "\n")
        }
        do {
            switch sub {
            case "check":
                let parsed = try Arguments(rest, flags: ["json"], options: ["service-user"], command: "config check")
                guard parsed.operands.count <= 1 else { throw UsageError("config check takes one FILE, got \(parsed.operands.count)") }
                let report = ConfigCheck.run(file: parsed.operands.first ?? defaultFile, serviceUser: parsed.value("service-user") ?? serviceUser)
                return CommandResult(stdout: parsed.has("json") ? report.json.prettyPrinted() + "\n" : report.text,
                                     exitCode: report.problems.isEmpty ? 0 : 1)
            case "schema":
                let parsed = try Arguments(rest, flags: ["content"], options: [], command: "config schema")
                guard parsed.operands.isEmpty else { throw UsageError("config schema takes no operands") }
                return schema(printContent: parsed.has("content"))
            default:
                throw UsageError("unknown subcommand '\(sub)'")
            }
        } catch {
            return CommandResult(stderr: "vitalgate config: \(error)\nSee `vitalgate config --help`.\n", exitCode: 2)
        }
    }

    static func schema(printContent: Bool, executable: String = CommandLine.arguments.first ?? "") -> CommandResult {
        guard let path = schemaPath(executable: executable) else {
            return CommandResult(stderr: "vitalgate config: the configuration schema is not installed (looked beside the program "
                                 + "and at \(installedSchema)). Fix: reinstall the vitalgate package\n", exitCode: 1)
        }
        guard printContent else { return CommandResult(stdout: path + "\n") }
        guard let data = FileManager.default.contents(atPath: path) else {
            return CommandResult(stderr: "vitalgate config: cannot read \(path). Fix: check its permissions\n", exitCode: 1)
        }
        let text = String(decoding: data, as: UTF8.self)
        return CommandResult(stdout: text.hasSuffix("\n") ? text : text + "\n")
    }

    /// The schema of the source tree the tool was built in (`systemd/config.schema.json` above the executable),
    /// else the installed one; nil when neither exists. Found like ``ProfileCatalog/defaultDirectory(executable:)``.
    static func schemaPath(executable: String) -> String? {
        var url = URL(fileURLWithPath: executable).resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<6 {
            let candidate = url.appendingPathComponent("systemd/config.schema.json").path
            if FileManager.default.fileExists(atPath: candidate) { return candidate }
            url.deleteLastPathComponent()
        }
        return FileManager.default.fileExists(atPath: installedSchema) ? installedSchema : nil
    }
}

/// The result of `vitalgate config check`: the parsed configuration (nil when the daemon would refuse the file),
/// the problems that make the check fail, notes that do not, and what was found about each named file.
struct ConfigCheck {
    /// A file the configuration names, and whether it must be a secret.
    struct NamedFile {
        var field: String
        var path: String
        /// What the file holds, for messages ("private key file").
        var what: String
        var secret: Bool
        /// "ok", "problem" or "unchecked" (this user may not look at it).
        var status = "ok"
    }

    var file: String
    var configuration: DaemonConfiguration?
    var problems: [ProfileError] = []
    var notes: [ProfileError] = []
    var files: [NamedFile] = []

    static func run(file: String, serviceUser: String) -> ConfigCheck {
        var check = ConfigCheck(file: file)
        let configuration: DaemonConfiguration
        do { configuration = try DaemonConfiguration.load(file) } catch {
            check.problems.append(error)
            return check
        }
        check.configuration = configuration
        let located = FileManager.default.contents(atPath: file).flatMap { try? LocatedJSONParser.parse(bytes: Array($0)) }
        let account = ServiceAccount(name: serviceUser)
        for var named in namedFiles(configuration) {
            let location = located.flatMap { locate($0, named.field.split(separator: ".").map(String.init)) }
            switch inspect(named, account: account) {
            case .ok: break
            case .problem(let problem, let fix):
                named.status = "problem"
                check.problems.append(ProfileError(file: file, location: location, field: named.field, problem: problem, fix: fix))
            case .unchecked(let problem, let fix):
                named.status = "unchecked"
                check.notes.append(ProfileError(file: file, location: location, field: named.field, problem: problem, fix: fix))
            }
            check.files.append(named)
        }
        if account == nil && check.files.contains(where: \.secret) {
            check.notes.append(ProfileError(file: file, location: nil, field: "",
                                            problem: "there is no user \"\(serviceUser)\" on this machine, so whether the service can read the secret files was not checked",
                                            fix: "install the vitalgate package (systemd-sysusers creates the user), or name the service's user with --service-user"))
        }
        return check
    }

    /// The files the daemon will open: secrets (whose mode matters) and certificates (which must only exist).
    static func namedFiles(_ configuration: DaemonConfiguration) -> [NamedFile] {
        var files: [NamedFile] = []
        switch configuration.auth {
        case .none: break
        case .bearerTokenFile(let path):
            files.append(NamedFile(field: "server.auth.tokenFile", path: path, what: "bearer token file", secret: true))
        case .clientCredentials(let credentials):
            files.append(NamedFile(field: "server.auth.secretFile", path: credentials.secretFile, what: "client secret file", secret: true))
        case .smartBackendServices(let smart):
            files.append(NamedFile(field: "server.auth.privateKeyFile", path: smart.privateKeyFile, what: "private key file", secret: true))
        }
        if let path = configuration.tls.caBundlePath {
            files.append(NamedFile(field: "server.tls.caBundle", path: path, what: "CA bundle", secret: false))
        }
        if let path = configuration.tls.clientCertificatePath {
            files.append(NamedFile(field: "server.tls.clientCertificate", path: path, what: "TLS client certificate", secret: false))
        }
        if let path = configuration.tls.clientKeyPath {
            files.append(NamedFile(field: "server.tls.clientKey", path: path, what: "TLS client key", secret: true))
        }
        return files
    }

    enum Finding: Equatable {
        case ok
        case problem(String, fix: String)
        /// This user cannot tell (no permission to look): not the file's fault.
        case unchecked(String, fix: String)
    }

    /// The checks the daemon makes when it reads a secret (a regular file that is the service's alone), plus whether
    /// the service user can read it at all, which the daemon would only find at its first upload.
    static func inspect(_ named: NamedFile, account: ServiceAccount?) -> Finding {
        let path = named.path
        var info = stat()
        guard stat(path, &info) == 0 else {
            let code = errno
            let reason = String(cString: strerror(code))
            switch code {
            case ENOENT, ENOTDIR:
                return .problem("the \(named.what) \(path) does not exist",
                                fix: named.secret ? "create it (mode 0600, owner \(ConfigCommand.serviceUser)) or correct the path"
                                                  : "install it or correct the path")
            case EACCES:
                return .unchecked("cannot look at the \(named.what) \(path): \(reason)", fix: "run the check as root (sudo vitalgate config check)")
            default:
                return .problem("cannot look at the \(named.what) \(path): \(reason) (errno \(code))", fix: "check \(path)")
            }
        }
        guard info.st_mode & S_IFMT == S_IFREG else {
            return .problem("the \(named.what) \(path) is not a regular file", fix: "point the setting at the file that holds the \(named.what)")
        }
        let mode = info.st_mode & 0o777
        // The daemon's own rule, judged for the service's account rather than for whoever runs this check.
        if named.secret, let exposure = SecretFiles.exposure(owner: info.st_uid, group: info.st_gid, mode: mode,
                                                             service: account.map { SecretFiles.Service(uid: $0.uid, groups: $0.groups) }) {
            return .problem("the \(named.what) \(path) \(exposure), and the daemon refuses it", fix: SecretFiles.fix(path))
        }
        if named.secret, let account, !account.mayRead(owner: info.st_uid, group: info.st_gid, mode: mode) {
            return .problem("the service user \(account.name) cannot read the \(named.what) \(path) (mode \(SecretFiles.octal(mode)))",
                            fix: "chown \(account.name) \(path) && chmod 0600 \(path), or chgrp \(account.name) \(path) && chmod 0640 \(path)")
        }
        return .ok
    }

    /// Where `path` (object keys) is written in the file, for errors about a value the parser accepted.
    static func locate(_ json: LocatedJSON, _ path: [String]) -> SourceLocation? {
        guard let key = path.first else { return json.location }
        guard case .object(let members) = json.value, let member = members.first(where: { $0.key == key }) else { return nil }
        return locate(member.value, Array(path.dropFirst()))
    }

    // MARK: Output

    /// One line per problem and note, then `FILE: ok` (or the number of problems) and a summary without identifiers.
    var text: String {
        var out = problems.map { "\($0)\n" }.joined() + notes.map { "note: \($0)\n" }.joined()
        guard let configuration else { return out }
        out += problems.isEmpty ? "\(file): ok\n" : "\(file): \(problems.count) problem\(problems.count == 1 ? "" : "s")\n"
        for (name, value) in summaryLines(configuration) { out += "  \(name): \(value)\n" }
        return out
    }

    func summaryLines(_ configuration: DaemonConfiguration) -> [(String, String)] {
        let members = configuration.household.members.count, devices = configuration.household.devices.count
        let household = members == 0 ? "no members (readings are held unassigned unless a visit is open)"
            : "\(members) member\(members == 1 ? "" : "s"), \(devices) device\(devices == 1 ? "" : "s")"
        let secrets = files.filter(\.secret)
        return [
            ("server", "\(configuration.baseURL) (\(configuration.mode.rawValue), batches of \(configuration.batchSize))"),
            ("auth", Self.authName(configuration.auth) + (configuration.tls.clientCertificatePath != nil ? " with mutual TLS" : "")),
            ("secret files", secrets.isEmpty ? "none" : "\(secrets.filter { $0.status == "ok" }.count) of \(secrets.count) ok"),
            ("household", household),
            ("health worker", configuration.healthWorker == nil ? "not set" : "set"),
            ("metrics file", configuration.metrics.map { "\($0.textfile) (every \($0.interval.components.seconds) s)" } ?? "none"),
            ("control socket", configuration.controlSocket),
            ("state directory", configuration.stateDirectory),
        ]
    }

    /// The method as the file's `server.auth.method` names it.
    static func authMethod(_ auth: AuthMethod) -> String {
        switch auth {
        case .none: "none"
        case .bearerTokenFile: "bearer"
        case .clientCredentials: "client-credentials"
        case .smartBackendServices: "smart-backend-services"
        }
    }

    static func authName(_ auth: AuthMethod) -> String {
        guard case .smartBackendServices(let smart) = auth else { return authMethod(auth) }
        return authMethod(auth) + " (\(smart.algorithm.rawValue))"
    }

    var json: JSONValue {
        func error(_ error: ProfileError) -> JSONValue {
            ["field": .string(error.field), "line": error.location.map { .int($0.line) } ?? .null,
             "column": error.location.map { .int($0.column) } ?? .null, "problem": .string(error.problem),
             "fix": .string(error.fix), "message": .string(error.description)]
        }
        var summary = JSONValue.null
        if let configuration {
            summary = [
                "server": .string(configuration.baseURL),
                "mode": .string(configuration.mode.rawValue),
                "batchSize": .int(configuration.batchSize),
                "auth": .string(Self.authMethod(configuration.auth)),
                "mutualTLS": .bool(configuration.tls.clientCertificatePath != nil),
                "householdMembers": .int(configuration.household.members.count),
                "householdDevices": .int(configuration.household.devices.count),
                "healthWorker": .bool(configuration.healthWorker != nil),
                "metricsFile": configuration.metrics.map { .string($0.textfile) } ?? .null,
                "controlSocket": .string(configuration.controlSocket),
                "stateDirectory": .string(configuration.stateDirectory),
            ]
        }
        return [
            "file": .string(file),
            "ok": .bool(problems.isEmpty),
            "problems": .array(problems.map(error)),
            "notes": .array(notes.map(error)),
            "files": .array(files.map { ["field": .string($0.field), "path": .string($0.path), "secret": .bool($0.secret), "status": .string($0.status)] }),
            "summary": summary,
        ]
    }
}

/// The service user's ids and groups, to tell whether it may read a file by its owner, group and mode.
struct ServiceAccount: Equatable {
    var name: String
    var uid: uid_t
    var groups: Set<gid_t>

    init(name: String, uid: uid_t, groups: Set<gid_t>) {
        self.name = name
        self.uid = uid
        self.groups = groups
    }

    /// The account `name` from the user database; nil when there is none.
    init?(name: String) {
        guard let user = UserDatabase.user(named: name) else { return nil }
        self.name = name
        self.uid = user.uid
        self.groups = UserDatabase.groups(ofUser: name, primary: user.gid)
    }

    /// Whether the permission bits let this account read a file (root reads everything).
    func mayRead(owner: uid_t, group: gid_t, mode: mode_t) -> Bool {
        if uid == 0 { return true }
        if owner == uid { return mode & 0o400 != 0 }
        if groups.contains(group) { return mode & 0o040 != 0 }
        return mode & 0o004 != 0
    }
}
