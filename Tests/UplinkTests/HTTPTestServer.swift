import Foundation
import Synchronization
@testable import Uplink

/// Runs blocking work (curl, processes, files) on a thread of its own and waits without blocking the
/// concurrency pool. Expectations stay in the test's task: the body returns values, the test checks them.
func blocking<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        let thread = Thread { continuation.resume(returning: body()) }
        thread.name = "uplink-test"
        thread.start()
    }
}

/// `client.send(request)` on a dedicated thread.
func send(_ client: HTTPClient, _ request: HTTPRequest) async -> Result<HTTPResponse, TransportError> {
    await blocking { Result { () throws(TransportError) in try client.send(request) } }
}

/// `authenticator.authorization()` on a dedicated thread.
func authorize(_ authenticator: Authenticator) async -> Result<String?, AuthError> {
    await blocking { Result { () throws(AuthError) in try authenticator.authorization() } }
}

struct TestSetupError: Error, CustomStringConvertible {
    var description: String
}

/// A fresh directory under the system's temporary directory; the test removes it.
func makeTemporaryDirectory() throws -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("uplink-tests-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// Directories that live for the whole test run (generated keys and certificates), removed at exit.
private let runDirectories = Mutex<[String]?>(nil)

/// A fresh directory removed when the test process exits.
func makeRunDirectory() throws -> String {
    let path = try makeTemporaryDirectory()
    runDirectories.withLock { directories in
        if directories == nil {
            directories = []
            atexit {
                for path in runDirectories.withLock({ $0 ?? [] }) { try? FileManager.default.removeItem(atPath: path) }
            }
        }
        directories?.append(path)
    }
    return path
}

/// `Tests/UplinkTests/Fixtures/<name>`.
func fixturePath(_ name: String) -> String {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/\(name)").path
}

struct ToolResult: Sendable {
    var status: Int32
    var output: [UInt8]
    var errorText: String
}

/// Runs a command found on PATH (openssl, python3) to completion; output goes through files so a chatty
/// stderr cannot fill a pipe and stall it.
func runTool(_ arguments: [String], in directory: String? = nil) throws -> ToolResult {
    let scratch = try makeTemporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: scratch) }
    let outPath = scratch + "/out", errPath = scratch + "/err"
    _ = FileManager.default.createFile(atPath: outPath, contents: nil)
    _ = FileManager.default.createFile(atPath: errPath, contents: nil)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
    process.standardInput = FileHandle.nullDevice
    process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
    process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
    try process.run()
    process.waitUntilExit()
    return ToolResult(status: process.terminationStatus,
                      output: Array(try Data(contentsOf: URL(fileURLWithPath: outPath))),
                      errorText: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")
}

/// Runs openssl and fails the setup when it does.
@discardableResult
func openssl(_ arguments: [String], in directory: String) throws -> [UInt8] {
    let result = try runTool(["openssl"] + arguments, in: directory)
    guard result.status == 0 else {
        throw TestSetupError(description: "openssl \(arguments.joined(separator: " ")) failed: \(result.errorText)")
    }
    return result.output
}

/// The scripted peer in Fixtures/test_http_server.py, on 127.0.0.1 and a free port; stopped by PID.
final class TestHTTPServer: @unchecked Sendable {
    let port: Int
    let scheme: String
    let logPath: String
    private let process: Process

    var baseURL: String { "\(scheme)://127.0.0.1:\(port)" }

    private init(process: Process, port: Int, scheme: String, logPath: String) {
        self.process = process
        self.port = port
        self.scheme = scheme
        self.logPath = logPath
    }

    /// Starts the server with `arguments` and waits (at most 30 s) for its ready line.
    static func start(_ arguments: [String] = [], tls: Bool = false) async throws -> TestHTTPServer {
        try await blocking { Result { try launch(arguments, tls: tls) } }.get()
    }

    private static func launch(_ arguments: [String], tls: Bool) throws -> TestHTTPServer {
        let logPath = FileManager.default.temporaryDirectory.appendingPathComponent("uplink-test-server-\(UUID().uuidString).log").path
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", fixturePath("test_http_server.py"), "--lifetime", "120"] + arguments
        let output = Pipe()
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = output
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        try process.run()
        // The ready line is the only output; read until its newline, or EOF if the server died.
        let reader = output.fileHandleForReading
        var line = Data()
        let deadline = Date().addingTimeInterval(30)
        while !line.contains(UInt8(ascii: "\n")) && Date() < deadline {
            let chunk = reader.availableData
            if chunk.isEmpty { break }
            line.append(chunk)
        }
        let words = String(decoding: line, as: UTF8.self).split(separator: " ")
        guard words.count == 3, words[0] == "listening", let port = Int(words[2].trimmingCharacters(in: .whitespacesAndNewlines)) else {
            kill(process.processIdentifier, SIGTERM)
            let log = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            throw TestSetupError(description: "test server did not start: \(String(decoding: line, as: UTF8.self)) \(log)")
        }
        return TestHTTPServer(process: process, port: port, scheme: tls ? "https" : "http", logPath: logPath)
    }

    /// Stops the server by its PID.
    func stop() {
        kill(process.processIdentifier, SIGTERM)
        try? FileManager.default.removeItem(atPath: logPath)
    }

    /// Stops the server and waits until it has exited, so its port is closed.
    func stopAndWait() async {
        stop()
        await blocking { self.process.waitUntilExit() }
    }

    /// The server's counters (connections, token requests, last token form and client assertion).
    func stats(using client: HTTPClient) async throws -> [String: Any] {
        let response = try await send(client, HTTPRequest(url: baseURL + "/stats")).get()
        return try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any] ?? [:]
    }
}

/// Private CAs, server and client certificates made once per test run with the openssl CLI.
struct TestPKI: Sendable {
    let directory: String

    /// The CA that issued the servers' certificates.
    var serverCA: String { directory + "/server-ca.pem" }
    /// A CA that issued nothing the servers use.
    var otherCA: String { directory + "/other-ca.pem" }
    /// A server certificate for 127.0.0.1 and localhost.
    var serverCertificate: String { directory + "/server.pem" }
    var serverKey: String { directory + "/server.key" }
    /// A server certificate issued by ``serverCA`` for another host name only.
    var mismatchCertificate: String { directory + "/mismatch.pem" }
    var mismatchKey: String { directory + "/mismatch.key" }
    /// The CA the mTLS server trusts for clients, and a client certificate it issued.
    var clientCA: String { directory + "/client-ca.pem" }
    var clientCertificate: String { directory + "/client.pem" }
    var clientKey: String { directory + "/client.key" }
    /// A client certificate from ``otherCA``, which the mTLS server does not trust.
    var strangerCertificate: String { directory + "/stranger.pem" }
    var strangerKey: String { directory + "/stranger.key" }

    static let shared: Result<TestPKI, any Error> = Result { try TestPKI.generate() }

    private static func generate() throws -> TestPKI {
        let directory = try makeRunDirectory()
        let ecKey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        func ca(_ name: String) throws {
            try openssl(["req", "-x509", "-new"] + ecKey + ["-keyout", "\(name).key", "-out", "\(name).pem",
                         "-days", "3", "-subj", "/CN=VitalGate test \(name)"], in: directory)
        }
        func leaf(_ name: String, issuer: String, subject: String, extensions: String) throws {
            try openssl(["req", "-new"] + ecKey + ["-keyout", "\(name).key", "-out", "\(name).csr", "-subj", "/CN=\(subject)"],
                        in: directory)
            try extensions.write(toFile: "\(directory)/\(name).ext", atomically: true, encoding: .utf8)
            try openssl(["x509", "-req", "-in", "\(name).csr", "-CA", "\(issuer).pem", "-CAkey", "\(issuer).key",
                         "-set_serial", "0x\(UUID().uuidString.prefix(8))", "-days", "3", "-out", "\(name).pem",
                         "-extfile", "\(name).ext"], in: directory)
        }
        try ca("server-ca")
        try ca("other-ca")
        try ca("client-ca")
        try leaf("server", issuer: "server-ca", subject: "127.0.0.1",
                 extensions: "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n")
        try leaf("mismatch", issuer: "server-ca", subject: "other.example",
                 extensions: "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:other.example\n")
        try leaf("client", issuer: "client-ca", subject: "vitalgate-hub-1",
                 extensions: "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n")
        try leaf("stranger", issuer: "other-ca", subject: "stranger-hub",
                 extensions: "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n")
        return TestPKI(directory: directory)
    }

    /// The shared PKI, generated on first use (on a dedicated thread: it runs openssl).
    static func get() async throws -> TestPKI {
        try await blocking { shared }.get()
    }
}

/// A clock tests move by hand.
final class TestClock: Sendable {
    private let current: Mutex<Date>

    init(_ start: Date = Date()) { current = Mutex(start) }

    var now: Date { current.withLock { $0 } }

    func advance(by seconds: TimeInterval) { current.withLock { $0 = $0.addingTimeInterval(seconds) } }
}
