import Foundation
import Synchronization
import VitalGateTestKit
@testable import Uplink

/// `client.send(request)` on a dedicated thread (curl blocks), keeping the transport error's type.
func send(_ client: HTTPClient, _ request: HTTPRequest) async throws -> Result<HTTPResponse, TransportError> {
    try await onDedicatedThread { Result { () throws(TransportError) in try client.send(request) } }
}

/// `authenticator.authorization()` on a dedicated thread, keeping the auth error's type.
func authorize(_ authenticator: Authenticator) async throws -> Result<String?, AuthError> {
    try await onDedicatedThread { Result { () throws(AuthError) in try authenticator.authorization() } }
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

/// The openssl CLI (found on PATH) run in `directory`, killed if it outlives ProcessRunner's timeout.
func runOpenSSL(_ arguments: [String], in directory: String) throws(TestProcessError) -> ProcessOutput {
    try ProcessRunner.run("/usr/bin/env", ["openssl"] + arguments, currentDirectory: directory)
}

/// Runs openssl and fails the setup when it does; returns its stdout.
@discardableResult
func openssl(_ arguments: [String], in directory: String) throws(TestProcessError) -> [UInt8] {
    let result = try runOpenSSL(arguments, in: directory)
    guard result.status == 0 else {
        throw TestProcessError("openssl \(arguments.joined(separator: " ")) failed: \(result.standardError)")
    }
    return result.standardOutput
}

/// The scripted peer in Fixtures/test_http_server.py, on 127.0.0.1 and a free port, launched by
/// VitalGateTestKit's ``BackgroundProcess`` (so it also dies with the test process); stopped by PID.
final class TestHTTPServer: Sendable {
    let port: Int
    /// `http(s)://127.0.0.1:PORT`, as the server announced it.
    let baseURL: String
    private let process: BackgroundProcess
    /// Holds the ready file and the server's log; removed once the server has exited.
    private let workDirectory: String

    private init(process: BackgroundProcess, port: Int, workDirectory: String) {
        self.process = process
        self.port = port
        self.baseURL = process.readyURL
        self.workDirectory = workDirectory
    }

    /// Starts the server with `arguments` and waits (at most 30 s) for its ready line; `tls` says which
    /// scheme the arguments must have produced.
    static func start(_ arguments: [String] = [], tls: Bool = false) async throws -> TestHTTPServer {
        try await onDedicatedThread { try launch(arguments, tls: tls) }
    }

    private static func launch(_ arguments: [String], tls: Bool) throws -> TestHTTPServer {
        let directory = try makeTemporaryDirectory()
        do {
            let process = try BackgroundProcess(script: fixturePath("test_http_server.py"),
                                                arguments: ["--lifetime", "1800"] + arguments,
                                                workDirectory: URL(fileURLWithPath: directory),
                                                readyTimeout: .seconds(30), name: "test-http-server")
            guard let components = URLComponents(string: process.readyURL), let port = components.port,
                  components.scheme == (tls ? "https" : "http") else {
                process.stop()
                throw TestProcessError("the test server announced \(process.readyURL), not a \(tls ? "https" : "http") URL")
            }
            return TestHTTPServer(process: process, port: port, workDirectory: directory)
        } catch {
            try? FileManager.default.removeItem(atPath: directory)
            throw error
        }
    }

    /// Stops the server by its PID without waiting: the exit is awaited and its files removed on a
    /// thread of its own, so a `defer` in an async test never blocks the concurrency pool.
    func stop() {
        let process = self.process, directory = workDirectory
        kill(process.pid, SIGTERM)
        let reaper = Thread {
            process.stop()
            try? FileManager.default.removeItem(atPath: directory)
        }
        reaper.name = "uplink-test-server-stop"
        reaper.start()
    }

    /// Stops the server and waits until it has exited, so its port is closed.
    func stopAndWait() async throws {
        let process = self.process, directory = workDirectory
        try await onDedicatedThread {
            process.stop()
            try? FileManager.default.removeItem(atPath: directory)
        }
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
        try await onDedicatedThread { try shared.get() }
    }
}

/// A clock tests move by hand.
final class TestClock: Sendable {
    private let current: Mutex<Date>

    init(_ start: Date = Date()) { current = Mutex(start) }

    var now: Date { current.withLock { $0 } }

    func advance(by seconds: TimeInterval) { current.withLock { $0 = $0.addingTimeInterval(seconds) } }
}
