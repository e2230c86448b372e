import Foundation
import VitalModel

/// A fault-injecting HTTP proxy (`scripts/fault-proxy/fault_proxy.py`) between a client under test and a
/// server on 127.0.0.1, with a seeded plan and counters. Stopped by PID in ``stop()`` or deinit.
///
/// All calls block; from async tests wrap them in ``onDedicatedThread(_:)``.
public final class FaultProxy: Sendable {
    /// What the proxy does with one request.
    public enum Fault: Sendable, Hashable, CustomStringConvertible {
        /// No fault: forward to the upstream.
        case forward
        /// Answer this status without calling the upstream; 429 always carries Retry-After (the plan's
        /// `retryAfter` unless given), 401 a Bearer challenge.
        case status(Int, retryAfter: Int? = nil)
        /// Read the request and never answer (until the client gives up or `timeoutCap`).
        case timeout
        /// Read the request and close with RST; the upstream never sees it.
        case reset
        /// Forward (the upstream processes it), then close with RST.
        case resetAfterForward
        /// Forward, then send the full Content-Length with only part of the body and close.
        case truncate
        /// A 200 with an HTML page; the upstream never sees it.
        case garbage200
        /// A 502 with an HTML page; the upstream never sees it.
        case garbage502

        /// The fault's name in plans, decisions and counters (`fault.NAME`).
        public var description: String {
            switch self {
            case .forward: "forward"
            case .status(let code, let retryAfter?): "status:\(code):\(retryAfter)"
            case .status(let code, nil): "status:\(code)"
            case .timeout: "timeout"
            case .reset: "reset"
            case .resetAfterForward: "reset-after-forward"
            case .truncate: "truncate"
            case .garbage200: "garbage-200"
            case .garbage502: "garbage-502"
            }
        }
    }

    /// The fault plan: a fixed sequence for the first matching requests, then seeded draws.
    public struct Plan: Sendable {
        public var seed: UInt64 = 0
        /// Faults for the first matching requests, in order of arrival.
        public var sequence: [Fault] = []
        /// After the sequence, each matching request draws one of these (in this order) or forwards.
        public var probabilities: [(fault: Fault, probability: Double)] = []
        /// Faults apply only to this method (nil: any).
        public var method: String?
        /// Faults apply only to this exact path, such as `/fhir` (nil: any).
        public var path: String?
        /// Faults apply only below this path prefix (nil: any).
        public var pathPrefix: String?
        /// Any request whose body contains one of these is answered 422 with an OperationOutcome (issue
        /// code `processing`) naming the Bundle entry that carries it.
        public var poisonMarkers: [String] = []
        /// The first matching request carrying each distinct Bearer token is answered 401 "expired".
        public var expireEachTokenOnce = false
        public var retryAfterSeconds = 1
        public var timeoutCapSeconds = 60.0
        public var truncateFraction = 0.5

        public init(seed: UInt64 = 0, sequence: [Fault] = [], method: String? = nil, path: String? = nil) {
            self.seed = seed
            self.sequence = sequence
            self.method = method
            self.path = path
        }

        /// The plan as the proxy reads it.
        public var json: JSONValue {
            var match: [(String, JSONValue)] = []
            if let method { match.append(("method", .string(method))) }
            if let path { match.append(("path", .string(path))) }
            if let pathPrefix { match.append(("path_prefix", .string(pathPrefix))) }
            return .object([
                ("seed", .number(String(seed))),
                ("sequence", .array(sequence.map { .string($0.description) })),
                ("probabilities", .object(probabilities.map { ($0.fault.description, .number(String($0.probability))) })),
                ("match", .object(match)),
                ("poison", .array(poisonMarkers.map { .string($0) })),
                ("expire_tokens", .bool(expireEachTokenOnce)),
                ("retry_after", .number(String(retryAfterSeconds))),
                ("timeout_cap", .number(String(timeoutCapSeconds))),
                ("truncate_fraction", .number(String(truncateFraction))),
            ])
        }
    }

    /// The proxy's root, `http://127.0.0.1:PORT`.
    public let rootURL: String
    /// The root plus the upstream URL's path: with `upstream` = a server's `/fhir` base, the FHIR base to
    /// give the client under test.
    public let baseURL: String
    public let port: Int
    /// The proxy's process id.
    public let pid: Int32
    public let logPath: String
    private let statsPath: String
    private let workDirectory: URL
    private let process: BackgroundProcess

    private init(process: BackgroundProcess, upstreamPath: String, statsPath: String,
                 workDirectory: URL) throws(TestProcessError) {
        guard let components = URLComponents(string: process.readyURL), let port = components.port else {
            throw TestProcessError("the fault proxy announced an unreadable URL: \(process.readyURL)")
        }
        self.process = process
        self.rootURL = process.readyURL
        self.baseURL = process.readyURL + upstreamPath
        self.port = port
        self.pid = process.pid
        self.logPath = process.logPath
        self.statsPath = statsPath
        self.workDirectory = workDirectory
    }

    deinit {
        stop()
    }

    /// Starts a proxy in front of `upstream` (`http://127.0.0.1:PORT[/path]`, such as a
    /// ``LocalFHIRServer/baseURL``) and waits for its ready line.
    public static func start(upstream: String, plan: Plan = .init(), maximumLifetime: Duration = .seconds(600),
                             maximumConnections: Int = 64) throws(TestProcessError) -> FaultProxy {
        guard let components = URLComponents(string: upstream), components.scheme == "http",
              components.host == "127.0.0.1" || components.host == "localhost", let port = components.port else {
            throw TestProcessError("the fault proxy's upstream must be http://127.0.0.1:PORT[/path], got \(upstream)")
        }
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("vitalgate-proxy-\(UUID().uuidString)")
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw TestProcessError("cannot create the fault proxy's directory \(directory.path): \(error)")
        }
        let planPath = directory.appendingPathComponent("plan.json").path
        let statsPath = directory.appendingPathComponent("stats.json").path
        guard FileManager.default.createFile(atPath: planPath, contents: Data(plan.json.serialized().utf8)) else {
            throw TestProcessError("cannot write the fault plan to \(planPath)")
        }
        let arguments = ["--upstream", "http://127.0.0.1:\(port)", "--plan", planPath, "--stats-file", statsPath,
                         "--max-seconds", String(Int(maximumLifetime.timeInterval.rounded(.up))),
                         "--max-connections", String(maximumConnections)]
        do throws(TestProcessError) {
            let process = try BackgroundProcess(script: ProcessRunner.script("scripts/fault-proxy/fault_proxy.py"),
                                                arguments: arguments, workDirectory: directory,
                                                readyTimeout: .seconds(60), name: "fault-proxy")
            let path = components.path.hasSuffix("/") ? String(components.path.dropLast()) : components.path
            return try FaultProxy(process: process, upstreamPath: path, statsPath: statsPath, workDirectory: directory)
        } catch {
            try? FileManager.default.removeItem(at: directory)
            throw error
        }
    }

    /// The counters so far: `requests`, `matched`, `forwarded`, `forwarded_request_bytes`,
    /// `forwarded_response_bytes`, `connections`, `upstream_errors`, and `fault.NAME` for each fault injected
    /// (including `fault.poison` and `fault.expired-token`).
    public func stats() throws(TestProcessError) -> [String: Int] {
        let reply = try LoopbackHTTP.send(base: rootURL, "/__proxy/stats")
        return try Self.counters(reply.body)
    }

    /// The fault chosen for each matching request, in order of arrival.
    public func decisions() throws(TestProcessError) -> [String] {
        let reply = try LoopbackHTTP.send(base: rootURL, "/__proxy/decisions")
        guard case .array(let items) = reply.body else {
            throw TestProcessError("the fault proxy's decisions are not a JSON array")
        }
        return items.compactMap { if case .string(let name) = $0 { name } else { nil } }
    }

    /// Stops the proxy by PID and returns the counters it wrote on exit (nil if it could not write them).
    /// Safe to call more than once.
    @discardableResult
    public func stop() -> [String: Int]? {
        process.stop()
        defer { try? FileManager.default.removeItem(at: workDirectory) }
        guard let data = FileManager.default.contents(atPath: statsPath),
              let json = try? JSONValue.parse(bytes: [UInt8](data)) else { return nil }
        return try? Self.counters(json)
    }

    private static func counters(_ json: JSONValue) throws(TestProcessError) -> [String: Int] {
        guard case .object(let members) = json else {
            throw TestProcessError("the fault proxy's counters are not a JSON object")
        }
        var counters: [String: Int] = [:]
        for (name, value) in members {
            if case .number(let text) = value, let count = Int(text) { counters[name] = count }
        }
        return counters
    }
}
