import Foundation
import VitalModel

/// A real FHIR R4 server (sekmet-fhir, started by `scripts/fhir-server/serve`) on 127.0.0.1 for upload
/// tests: a fresh data directory, a free port, a bounded life, stopped by PID in ``stop()`` or deinit.
///
/// All calls block (they run Python helpers); from async tests wrap them in ``onDedicatedThread(_:)``.
public final class LocalFHIRServer: Sendable {
    /// Inbound authentication schemes the server accepts.
    public enum AuthScheme: String, Sendable {
        case none, bearer, smart
    }

    /// How strictly the server validates the resources it receives.
    public enum Validation: String, Sendable {
        case strict, warn, off
    }

    /// A SMART Backend Services client: its id and the public key (PEM file) its assertions are checked with.
    public struct SMARTClient: Sendable, Hashable {
        public var id: String
        public var publicKeyPath: String

        public init(id: String, publicKeyPath: String) {
            self.id = id
            self.publicKeyPath = publicKeyPath
        }
    }

    public struct Options: Sendable {
        public var auth: [AuthScheme] = [.none]
        /// Static bearer tokens (with `.bearer`). The first one is also sent by this type's own helpers.
        public var bearerTokens: [String] = []
        public var smartClients: [SMARTClient] = []
        /// Client id to secret, for client_credentials with client_secret_basic (with `.smart`).
        public var clientSecrets: [String: String] = [:]
        /// Client id to the scopes it may be granted (default `system/*.*`).
        public var clientScopes: [String: String] = [:]
        public var tokenLifetimeSeconds: Int = 3600
        public var validation: Validation = .strict
        /// Certificate and key PEM files: serve HTTPS.
        public var tls: (certificatePath: String, keyPath: String)?
        /// The host name in the base URL (`localhost` to match a certificate); the bind is always 127.0.0.1.
        public var urlHost: String = "127.0.0.1"
        /// 0 picks a free port.
        public var port: Int = 0
        /// The server stops by itself after this long.
        public var maximumLifetime: Duration = .seconds(1800)
        /// How long start-up may take (a liveness bound, not a timing assertion).
        public var readyTimeout: Duration = .seconds(120)
        /// Where settings, database and log go; nil: a fresh temporary directory, removed by ``stop()``.
        public var dataDirectory: URL?

        public init() {}
    }

    /// `http://127.0.0.1:PORT/fhir` (or https).
    public let baseURL: String
    /// The base URL without `/fhir`: the SMART token endpoint is `{rootURL}/auth/token`.
    public let rootURL: String
    public let port: Int
    /// The server's process id.
    public let pid: Int32
    public let dataDirectory: URL
    /// The server's stdout and stderr (no access log, no request bodies).
    public let logPath: String

    private let process: BackgroundProcess
    private let removeDataOnStop: Bool
    private let helperHeaders: [String: String]

    private init(process: BackgroundProcess, dataDirectory: URL, removeDataOnStop: Bool,
                 helperHeaders: [String: String]) throws(TestProcessError) {
        guard let components = URLComponents(string: process.readyURL), let port = components.port else {
            throw TestProcessError("the FHIR server announced an unreadable URL: \(process.readyURL)")
        }
        self.process = process
        self.baseURL = process.readyURL
        self.rootURL = baseURL.hasSuffix("/fhir") ? String(baseURL.dropLast("/fhir".count)) : baseURL
        self.port = port
        self.pid = process.pid
        self.dataDirectory = dataDirectory
        self.logPath = process.logPath
        self.removeDataOnStop = removeDataOnStop
        self.helperHeaders = helperHeaders
    }

    deinit {
        stop()
    }

    /// Starts a server and waits until `GET /fhir/metadata` answers.
    public static func start(_ options: Options = .init()) throws(TestProcessError) -> LocalFHIRServer {
        let directory = options.dataDirectory ?? FileManager.default.temporaryDirectory
            .appendingPathComponent("vitalgate-fhir-\(UUID().uuidString)")
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw TestProcessError("cannot create the FHIR server's data directory \(directory.path): \(error)")
        }
        var arguments = ["--data", directory.path, "--port", String(options.port),
                         "--auth", options.auth.map(\.rawValue).joined(separator: ","),
                         "--token-lifetime", String(options.tokenLifetimeSeconds),
                         "--validation", options.validation.rawValue, "--url-host", options.urlHost,
                         "--max-seconds", String(Int(options.maximumLifetime.timeInterval.rounded(.up)))]
        for token in options.bearerTokens { arguments += ["--bearer-token", token] }
        for client in options.smartClients { arguments += ["--smart-client", "\(client.id):\(client.publicKeyPath)"] }
        for (id, secret) in options.clientSecrets.sorted(by: { $0.key < $1.key }) {
            arguments += ["--client-secret", "\(id):\(secret)"]
        }
        for (id, scopes) in options.clientScopes.sorted(by: { $0.key < $1.key }) {
            arguments += ["--client-scopes", "\(id):\(scopes)"]
        }
        if let tls = options.tls { arguments += ["--tls", tls.certificatePath, tls.keyPath] }
        do throws(TestProcessError) {
            let process = try BackgroundProcess(script: ProcessRunner.script("scripts/fhir-server/serve"),
                                                arguments: arguments, workDirectory: directory,
                                                readyTimeout: options.readyTimeout, name: "fhir-server")
            var headers: [String: String] = [:]
            if let token = options.bearerTokens.first { headers["Authorization"] = "Bearer \(token)" }
            return try LocalFHIRServer(process: process, dataDirectory: directory,
                                       removeDataOnStop: options.dataDirectory == nil, helperHeaders: headers)
        } catch {
            if options.dataDirectory == nil { try? FileManager.default.removeItem(at: directory) }
            throw error
        }
    }

    /// Stops the server (SIGTERM to its PID, then SIGKILL after a grace period) and removes a temporary
    /// data directory. Safe to call more than once.
    public func stop() {
        process.stop()
        if removeDataOnStop { try? FileManager.default.removeItem(at: dataDirectory) }
    }

    /// Whether the server process is still running.
    public var isRunning: Bool { process.isRunning }

    /// `GET base/pathAndQuery` (or an absolute URL) with the first static bearer token, if any.
    public func get(_ pathAndQuery: String) throws(TestProcessError) -> (status: Int, body: JSONValue) {
        let reply = try request("GET", pathAndQuery)
        return (reply.status, reply.body)
    }

    /// Any request to this server, with the first static bearer token unless `headers` set Authorization.
    public func request(_ method: String, _ pathAndQuery: String, body: JSONValue? = nil,
                        headers: [String: String] = [:]) throws(TestProcessError) -> LoopbackReply {
        let bytes = body.map { Array($0.serialized().utf8) }
        let merged = helperHeaders.merging(headers) { _, given in given }
        return try LoopbackHTTP.send(method: method, base: baseURL, pathAndQuery, body: bytes, headers: merged)
    }

    /// Creates (or finds, through If-None-Exist) the Patient with this identifier; returns its server id.
    @discardableResult
    public func createPatient(system: String, value: String) throws(TestProcessError) -> String {
        let patient: JSONValue = [
            "resourceType": "Patient",
            "identifier": [["system": .string(system), "value": .string(value)]],
        ]
        let reply = try request("POST", "Patient", body: patient,
                                headers: ["If-None-Exist": LoopbackHTTP.identifierQuery(system: system, value: value)])
        guard reply.status == 201 || reply.status == 200, case .string(let id)? = reply.body["id"] else {
            throw TestProcessError("creating a test Patient answered \(reply.status): \(reply.body.serialized())")
        }
        return id
    }

    /// The `total` of `query` (such as `Observation?subject=Patient/ID`) with `_summary=count`.
    public func searchCount(_ query: String) throws(TestProcessError) -> Int {
        let reply = try request("GET", query + (query.contains("?") ? "&" : "?") + "_summary=count")
        guard reply.status == 200, case .number(let total)? = reply.body["total"], let count = Int(total) else {
            throw TestProcessError("search \(query) answered \(reply.status) without a total: "
                + reply.body.serialized())
        }
        return count
    }

    /// Every resource matching `query`, following the Bundle's `next` links (at most `maximumPages`).
    public func searchAll(_ query: String, maximumPages: Int = 1000) throws(TestProcessError) -> [JSONValue] {
        var resources: [JSONValue] = []
        var next: String? = query
        var pages = 0
        while let page = next {
            pages += 1
            guard pages <= maximumPages else {
                throw TestProcessError("search \(query) has more than \(maximumPages) pages. Fix: raise "
                    + "maximumPages or add _count")
            }
            let reply = try request("GET", page)
            guard reply.status == 200, reply.body["resourceType"] == "Bundle" else {
                throw TestProcessError("search page \(page) answered \(reply.status): \(reply.body.serialized())")
            }
            if case .array(let entries)? = reply.body["entry"] {
                resources += entries.compactMap { $0["resource"] }
            }
            next = nil
            if case .array(let links)? = reply.body["link"] {
                for link in links where link["relation"] == "next" {
                    if case .string(let url)? = link["url"] { next = url }
                }
            }
        }
        return resources
    }
}
