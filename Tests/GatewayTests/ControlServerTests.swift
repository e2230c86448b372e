import Foundation
import Synchronization
import Testing
import VitalGateTestKit
import VitalModel
@testable import Gateway
#if canImport(Glibc)
import Glibc
#endif

/// The control socket with real Unix sockets in a temporary directory: the transport, the peer-credential check
/// (with injected and with real peers), malformed and slow clients, stop(), and the client's error messages.
@Suite("Control socket")
struct ControlServerTests {
    /// A directory for one test's sockets, open to other users (the real-peer tests connect as nobody).
    final class SocketDirectory: Sendable {
        let path: String

        init() throws {
            path = FileManager.default.temporaryDirectory.appendingPathComponent("vg-ctl-\(UUID().uuidString.prefix(8))").path
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o755])
        }

        deinit { try? FileManager.default.removeItem(atPath: path) }

        var socket: String { path + "/control.sock" }
    }

    /// A client that writes raw bytes, for requests ControlClient would never send.
    struct RawClient: Sendable {
        let fd: Int32

        init(path: String) throws {
            guard let (address, length) = UnixSocket.address(path) else { throw TestFailure("\(path) does not fit a socket address") }
            fd = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            // A liveness bound: a server that never answers fails the test instead of hanging it.
            var limit = timeval(tv_sec: 60, tv_usec: 0)
            _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
            let connected = UnixSocket.withSockaddr(address) { connect(fd, $0, length) }
            guard connected == 0 else {
                let reason = String(cString: strerror(errno))
                Glibc.close(fd)
                throw TestFailure("cannot connect to \(path): \(reason)")
            }
        }

        func send(_ bytes: [UInt8]) -> Bool { UnixSocket.sendAll(bytes, to: fd) }

        /// The answer line as JSON, or nil when the server closed without one.
        func answer() -> JSONValue? {
            var reader = UnixSocket.LineReader(fd: fd, maximumBytes: 1 << 20)
            guard case .line(let line) = reader.next() else { return nil }
            return try? JSONValue.parse(bytes: line)
        }

        func close() { Glibc.close(fd) }
    }

    /// Counts the handler's calls across threads.
    final class Calls: Sendable {
        private let count = Mutex(0)
        func record() { count.withLock { $0 += 1 } }
        var value: Int { count.withLock { $0 } }
    }

    static let operators = ControlAccessPolicy.Group(name: "vitalgate-operators", id: 4242)
    static let wheel = ControlAccessPolicy.Group(name: "wheel", id: 10)

    /// A handler that echoes what it was given, so tests see what the server passed on.
    static func echo(_ calls: Calls) -> @Sendable (ControlRequest) -> JSONValue {
        { request in
            calls.record()
            return ["ok": true, "command": .string(request.command), "request": request.json, "actor": .string(request.actor),
                    "pid": .int(request.peer.pid), "uid": .int(request.peer.uid), "gid": .int(request.peer.gid),
                    "groups": .array((request.peer.supplementaryGroups ?? []).map { .int($0) })]
        }
    }

    static func start(_ directory: SocketDirectory, policy: ControlAccessPolicy = ControlAccessPolicy(daemonUID: getuid(), groups: []),
                      limits: ControlServer.Limits = ControlServer.Limits(),
                      credentials: (@Sendable (Int32) throws(PeerCredentials.ReadError) -> PeerCredentials)? = nil,
                      calls: Calls) throws -> ControlServer {
        let server = if let credentials {
            ControlServer(path: directory.socket, policy: policy, log: DaemonLog(), limits: limits, credentials: credentials,
                          handler: echo(calls))
        } else {
            ControlServer(path: directory.socket, policy: policy, log: DaemonLog(), limits: limits, handler: echo(calls))
        }
        try server.start()
        return server
    }

    /// One ControlClient request, run on a thread of its own.
    static func request(_ path: String, _ message: JSONValue, timeout: Duration = .seconds(60)) async throws
        -> Result<JSONValue, ControlClientError> {
        try await onDedicatedThread {
            Result { () throws(ControlClientError) in try ControlClient.request(path: path, message, timeout: timeout) }
        }
    }

    /// Raw bytes in, the answer out, on a thread of its own.
    static func exchange(_ path: String, _ bytes: [UInt8]) async throws -> JSONValue? {
        try await onDedicatedThread {
            let client = try RawClient(path: path)
            defer { client.close() }
            _ = client.send(bytes)
            return client.answer()
        }
    }

    static func error(_ answer: JSONValue?) -> String? {
        guard case .bool(false)? = answer?["ok"], case .string(let text)? = answer?["error"] else { return nil }
        return text
    }

    // MARK: Transport

    @Test("round trip: the handler gets the request object and the peer's kernel credentials; the client gets its answer")
    func roundTrip() async throws {
        let directory = try SocketDirectory()
        let calls = Calls()
        let server = try Self.start(directory, calls: calls)
        defer { server.stop() }
        let sent: JSONValue = ["command": "status", "verbose": true, "since": ["day": "2024-05-01"]]
        let answer = try await Self.request(directory.socket, sent).get()
        #expect(answer["ok"] == true)
        #expect(answer["command"] == "status")
        #expect(answer["request"] == sent)
        #expect(answer["pid"] == .int(getpid()))
        #expect(answer["uid"] == .int(getuid()))
        #expect(answer["gid"] == .int(getgid()))
        let userName = getpwuid(getuid()).map { String(cString: $0.pointee.pw_name) } ?? "uid \(getuid())"
        #expect(answer["actor"] == .string(userName))
        #expect(calls.value == 1)
    }

    @Test("the socket file is mode 0666: the peer check, not the file mode, decides")
    func socketMode() throws {
        let directory = try SocketDirectory()
        let server = try Self.start(directory, calls: Calls())
        defer { server.stop() }
        let attributes = try FileManager.default.attributesOfItem(atPath: directory.socket)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o666)
        #expect(attributes[.type] as? FileAttributeType == .typeSocket)
    }

    @Test("malformed requests get an error answer naming the problem; the handler never sees them", arguments: [
        ("not json\n", "not JSON"),
        ("\n", "not JSON"),
        ("[1, 2]\n", "not a JSON object"),
        ("\"status\"\n", "not a JSON object"),
        ("{\"verbose\": true}\n", "no \"command\""),
        ("{\"command\": 5}\n", "\"command\" is not a string"),
        ("{\"command\": null}\n", "\"command\" is not a string"),
        ("{\"command\": \"status\", \"command\": \"visit\"}\n", "not JSON"),
        ("{\"command\": \"status\"\n", "not JSON"),
    ])
    func malformed(_ request: String, _ problem: String) async throws {
        let directory = try SocketDirectory()
        let calls = Calls()
        let server = try Self.start(directory, calls: calls)
        defer { server.stop() }
        let answer = try await Self.exchange(directory.socket, Array(request.utf8))
        let error = try #require(Self.error(answer), "answer: \(answer?.serialized() ?? "none")")
        #expect(error.contains(problem))
        #expect(error.contains("Fix: "))
        #expect(calls.value == 0)
        // The server is still there for the next client.
        #expect(try await Self.request(directory.socket, ["command": "status"]).get()["ok"] == true)
    }

    @Test("a request line over 1 MiB is refused, whether or not its newline came", arguments: [false, true])
    func overlong(_ withNewline: Bool) async throws {
        let directory = try SocketDirectory()
        let calls = Calls()
        let server = try Self.start(directory, calls: calls)
        defer { server.stop() }
        #expect(server.limits.maximumRequestBytes == 1 << 20)
        let padding = String(repeating: "x", count: (1 << 20) + 10)
        let line = "{\"command\": \"status\", \"padding\": \"\(padding)\"}" + (withNewline ? "\n" : "")
        let answer = try await Self.exchange(directory.socket, Array(line.utf8))
        let error = try #require(Self.error(answer))
        #expect(error.contains("longer than 1048576 bytes"))
        #expect(calls.value == 0)
    }

    @Test("a client that connects and sends nothing does not keep a second client from its answer")
    func silentClientDoesNotBlock() async throws {
        let directory = try SocketDirectory()
        var limits = ControlServer.Limits()
        limits.requestTimeout = .seconds(120)
        let server = try Self.start(directory, limits: limits, calls: Calls())
        defer { server.stop() }
        let silent = try RawClient(path: directory.socket)
        defer { silent.close() }
        for _ in 0..<3 {
            #expect(try await Self.request(directory.socket, ["command": "status"]).get()["ok"] == true)
        }
    }

    @Test("a client that sends no complete line in time is told so and disconnected")
    func requestTimeout() async throws {
        let directory = try SocketDirectory()
        var limits = ControlServer.Limits()
        limits.requestTimeout = .milliseconds(200)
        let calls = Calls()
        let server = try Self.start(directory, limits: limits, calls: calls)
        defer { server.stop() }
        let answer = try await Self.exchange(directory.socket, Array("{\"command\": ".utf8))
        let error = try #require(Self.error(answer))
        #expect(error.contains("no complete request line within"))
        #expect(calls.value == 0)
    }

    @Test("beyond the client limit, a client is told to come back instead of waiting")
    func busy() async throws {
        let directory = try SocketDirectory()
        var limits = ControlServer.Limits()
        limits.maximumClients = 1
        limits.requestTimeout = .seconds(120)
        let server = try Self.start(directory, limits: limits, calls: Calls())
        defer { server.stop() }
        let silent = try RawClient(path: directory.socket)
        let refused = try await Self.request(directory.socket, ["command": "status"]).get()
        #expect(Self.error(refused)?.contains("answering 1 control requests at once") == true)
        silent.close()
        // Once the slot is free again, requests are answered; the server notices the hang-up at its own pace.
        var answered = false
        for _ in 0..<600 where !answered {
            answered = try await Self.request(directory.socket, ["command": "status"]).get()["ok"] == true
            if !answered { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(answered)
    }

    @Test("stop() removes the socket file, answers a client still sending, and later clients hear the daemon is not running")
    func stopUnlinks() async throws {
        let directory = try SocketDirectory()
        var limits = ControlServer.Limits()
        // A liveness bound: the silent client must still be waiting when stop() answers it.
        limits.requestTimeout = .seconds(600)
        let server = try Self.start(directory, limits: limits, calls: Calls())
        let silent = try RawClient(path: directory.socket)
        defer { silent.close() }
        _ = try await Self.request(directory.socket, ["command": "status"]).get()
        try await onDedicatedThread { server.stop() }
        #expect(!FileManager.default.fileExists(atPath: directory.socket))
        let error = try await onDedicatedThread { Self.error(silent.answer()) }
        #expect(error?.contains("vitalgated is stopping") == true)
        let after = await #expect(throws: ControlClientError.notRunning(path: directory.socket)) {
            try await Self.request(directory.socket, ["command": "status"]).get()
        }
        #expect(after?.description.contains("vitalgated is not running (no \(directory.socket)). Fix: systemctl start vitalgated") == true)
        server.stop()
    }

    @Test("a stale socket file from a killed daemon is replaced at start")
    func replacesStaleSocket() async throws {
        let directory = try SocketDirectory()
        try Self.leaveStaleSocket(at: directory.socket)
        let server = try Self.start(directory, calls: Calls())
        defer { server.stop() }
        #expect(try await Self.request(directory.socket, ["command": "status"]).get()["ok"] == true)
    }

    @Test("start refuses an abstract name, a path too long, a file that is no socket, and a socket another daemon answers on")
    func startRefusals() throws {
        let directory = try SocketDirectory()
        let policy = ControlAccessPolicy(daemonUID: getuid(), groups: [])
        func startError(_ path: String) -> String? {
            let server = ControlServer(path: path, policy: policy, log: DaemonLog()) { _ in ["ok": true] }
            do { try server.start() } catch { return error.description }
            server.stop()
            return nil
        }
        #expect(startError("@vitalgate-control")?.contains("abstract") == true)
        let long = directory.path + "/" + String(repeating: "d", count: 120) + ".sock"
        #expect(startError(long)?.contains("too long for a Unix socket") == true)
        #expect(startError("control.sock")?.contains("not absolute") == true)

        let plain = directory.path + "/plain"
        try Data("keep me".utf8).write(to: URL(fileURLWithPath: plain))
        #expect(startError(plain)?.contains("is not a socket") == true)
        #expect(try String(contentsOfFile: plain, encoding: .utf8) == "keep me")

        let live = try Self.start(directory, calls: Calls())
        defer { live.stop() }
        #expect(startError(directory.socket)?.contains("another process answers") == true)
        #expect(FileManager.default.fileExists(atPath: directory.socket))
    }

    // MARK: Access

    /// A peer as SO_PEERCRED and SO_PEERGROUPS would report it.
    static func peer(uid: uid_t, gid: gid_t, groups: [gid_t]?) -> PeerCredentials {
        PeerCredentials(pid: 4000, uid: uid, gid: gid, supplementaryGroups: groups)
    }

    @Test("who may use the socket: root, the daemon's user, members of an allowed group by any of their groups", arguments: [
        ("root", peer(uid: 0, gid: 0, groups: []), ControlAccessPolicy.Grant.root),
        ("the daemon's own user", peer(uid: 990, gid: 990, groups: [990]), .daemonUser),
        ("member via a supplementary group", peer(uid: 1000, gid: 1000, groups: [27, 4242]), .group("vitalgate-operators")),
        ("member of the second group", peer(uid: 1000, gid: 1000, groups: [10]), .group("wheel")),
        ("member via the primary group", peer(uid: 1001, gid: 4242, groups: []), .group("vitalgate-operators")),
        ("primary group, kernel without SO_PEERGROUPS", peer(uid: 1001, gid: 4242, groups: nil), .group("vitalgate-operators")),
    ])
    func allowed(_ name: String, _ peer: PeerCredentials, _ grant: ControlAccessPolicy.Grant) {
        let policy = ControlAccessPolicy(daemonUID: 990, groups: [Self.operators, Self.wheel])
        #expect(policy.grant(for: peer) == grant, "\(name)")
    }

    @Test("strangers are refused: other groups, no groups, groups unknown", arguments: [
        peer(uid: 1002, gid: 1002, groups: [27, 100]),
        peer(uid: 1003, gid: 1003, groups: []),
        peer(uid: 1004, gid: 1004, groups: nil),
        peer(uid: 65534, gid: 65534, groups: [65534]),
    ])
    func refused(_ peer: PeerCredentials) {
        let policy = ControlAccessPolicy(daemonUID: 990, groups: [Self.operators, Self.wheel])
        #expect(policy.grant(for: peer) == nil)
        #expect(ControlAccessPolicy(daemonUID: 990, groups: []).grant(for: peer) == nil)
    }

    @Test("a refused peer is told which group to join and how")
    func refusalMessage() {
        let policy = ControlAccessPolicy(daemonUID: 990, groups: [Self.operators])
        let named = policy.refusal(uid: 1002, userName: "lan")
        #expect(named.contains("user lan (uid 1002) is not allowed"))
        #expect(named.hasSuffix("Fix: add the user to group vitalgate-operators (usermod -aG vitalgate-operators lan), then log in again"))
        #expect(policy.refusal(uid: 1002, userName: nil).contains("(usermod -aG vitalgate-operators USER)"))
        #expect(ControlAccessPolicy(daemonUID: 990, groups: []).refusal(uid: 1002, userName: nil).contains("Fix: run the command as root"))
    }

    @Test("a refused peer gets the refusal over the socket and the handler is not called")
    func refusedOverSocket() async throws {
        let directory = try SocketDirectory()
        let calls = Calls()
        let stranger = Self.peer(uid: 54_321, gid: 54_321, groups: [100])
        let server = try Self.start(directory, policy: ControlAccessPolicy(daemonUID: 990, groups: [Self.operators]),
                                    credentials: { _ throws(PeerCredentials.ReadError) in stranger }, calls: calls)
        defer { server.stop() }
        let answer = try await Self.request(directory.socket, ["command": "assign"]).get()
        let error = try #require(Self.error(answer))
        #expect(error.contains("uid 54321 is not allowed"))
        #expect(error.contains("usermod -aG vitalgate-operators"))
        #expect(calls.value == 0)
    }

    @Test("strangers that connect and say nothing never take an operator's place")
    func strangersCannotCrowdOut() async throws {
        let directory = try SocketDirectory()
        var limits = ControlServer.Limits()
        limits.maximumClients = 1
        limits.requestTimeout = .seconds(120)
        let stranger = Self.peer(uid: 54_321, gid: 54_321, groups: [100])
        let root = Self.peer(uid: 0, gid: 0, groups: [])
        let accepted = Mutex(0)
        // The first three connections are a stranger's; the fourth is root's.
        let server = try Self.start(directory, policy: ControlAccessPolicy(daemonUID: 990, groups: [Self.operators]), limits: limits,
                                    credentials: { _ throws(PeerCredentials.ReadError) in
                                        accepted.withLock { count in count += 1; return count <= 3 ? stranger : root }
                                    }, calls: Calls())
        defer { server.stop() }
        let silent = try (0..<3).map { _ in try RawClient(path: directory.socket) }
        defer { silent.forEach { $0.close() } }
        // Each stranger is answered with the refusal at once, without being read from.
        for client in silent { #expect(Self.error(client.answer())?.contains("uid 54321 is not allowed") == true) }
        let answer = try await Self.request(directory.socket, ["command": "status"]).get()
        #expect(answer["ok"] == true, "\(answer)")
    }

    @Test("a connection whose credentials cannot be read is refused, not let through")
    func unreadableCredentials() async throws {
        let directory = try SocketDirectory()
        let calls = Calls()
        let server = try Self.start(directory, credentials: { _ throws(PeerCredentials.ReadError) in
            throw PeerCredentials.ReadError(description: "SO_PEERCRED failed: test")
        }, calls: calls)
        defer { server.stop() }
        let answer = try await Self.request(directory.socket, ["command": "status"]).get()
        #expect(Self.error(answer)?.contains("cannot read this connection's peer credentials") == true)
        #expect(calls.value == 0)
    }

    @Test("group names resolve once at start; an unknown name is an error with a fix")
    func groupResolution() throws {
        let ownGroup = try #require(getgrgid(getgid())).pointee
        let ownName = String(cString: ownGroup.gr_name)
        let policy = try ControlAccessPolicy.resolving(groupNames: [ownName], daemonUID: 990)
        #expect(policy.groups == [ControlAccessPolicy.Group(name: ownName, id: getgid())])

        let missing = "vg-no-such-group-\(UUID().uuidString.prefix(8))"
        let error = #expect(throws: ControlAccessPolicy.GroupError.self) {
            try ControlAccessPolicy.resolving(groupNames: [ownName, missing], daemonUID: 990)
        }
        #expect(error?.description.contains("\"\(missing)\" does not exist") == true)
        #expect(error?.description.contains("Fix: create it (groupadd --system \(missing))") == true)
    }

    @Test("a group database that cannot be asked is an error, not an empty policy")
    func groupLookupFailure() {
        let failure = ControlAccessPolicy.GroupError(description: "cannot look up the group")
        #expect(throws: failure) {
            try ControlAccessPolicy.resolving(groupNames: ["vitalgate-operators"], daemonUID: 990) { _ throws(ControlAccessPolicy.GroupError) in
                throw failure
            }
        }
    }

    @Test("SO_PEERCRED and SO_PEERGROUPS of a real socket name this process")
    func realCredentials() throws {
        var pair: [Int32] = [-1, -1]
        try #require(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &pair) == 0)
        defer { pair.forEach { _ = close($0) } }
        let peer = try PeerCredentials.of(socket: pair[0])
        #expect(peer.pid == getpid())
        #expect(peer.uid == getuid())
        #expect(peer.gid == getgid())
        var own = [gid_t](repeating: 0, count: Int(getgroups(0, nil)))
        _ = getgroups(Int32(own.count), &own)
        // Kernels since 4.13 report the supplementary groups; this machine's does.
        #expect(peer.supplementaryGroups.map(Set.init) == Set(own))
    }

    /// Runs a Python client as another user (setpriv), so the kernel reports real foreign credentials.
    static func requestAs(_ ids: [String], path: String) async throws -> JSONValue? {
        let script = """
            import socket, sys
            s = socket.socket(socket.AF_UNIX)
            s.settimeout(60)
            s.connect(sys.argv[1])
            try:
                s.sendall(b'{"command": "whoami"}\\n')
            except OSError:
                pass  # a refused peer is answered and closed before it is read from; the answer is still there
            sys.stdout.write(s.makefile("rb").readline().decode())
            """
        let output = try await onDedicatedThread {
            try ProcessRunner.run("/usr/bin/setpriv", ids + ["--", "/usr/bin/python3", "-I", "-c", script, path],
                                  timeout: .seconds(60))
        }
        guard output.status == 0 else { throw TestFailure("the client as \(ids) failed: \(output.standardError)") }
        return try JSONValue.parse(bytes: output.standardOutput)
    }

    static let canChangeUser = getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv")
        && FileManager.default.isExecutableFile(atPath: "/usr/bin/python3")

    @Test("real peers of another user: refused as a stranger, allowed by a supplementary or a primary group",
          .enabled(if: canChangeUser, "needs root, /usr/bin/setpriv and /usr/bin/python3 to connect as another user"))
    func realForeignPeers() async throws {
        let directory = try SocketDirectory()
        let calls = Calls()
        let server = try Self.start(directory, policy: ControlAccessPolicy(daemonUID: getuid(), groups: [Self.operators]), calls: calls)
        defer { server.stop() }

        let stranger = try await Self.requestAs(["--reuid=65534", "--regid=65534", "--clear-groups"], path: directory.socket)
        #expect(Self.error(stranger)?.contains("uid 65534") == true)
        #expect(Self.error(stranger)?.contains("usermod -aG vitalgate-operators") == true)
        #expect(calls.value == 0)

        let supplementary = try await Self.requestAs(["--reuid=65534", "--regid=65534", "--groups=4242"], path: directory.socket)
        #expect(supplementary?["ok"] == true)
        #expect(supplementary?["uid"] == 65534)
        #expect(supplementary?["gid"] == 65534)
        #expect(supplementary?["groups"] == [4242])

        let primary = try await Self.requestAs(["--reuid=65534", "--regid=4242", "--clear-groups"], path: directory.socket)
        #expect(primary?["ok"] == true)
        #expect(primary?["gid"] == 4242)
        #expect(calls.value == 2)
    }

    // MARK: Client errors

    /// Binds a socket at `path` and closes it without unlinking, as a killed daemon leaves it.
    static func leaveStaleSocket(at path: String) throws {
        let (address, length) = try #require(UnixSocket.address(path))
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        try #require(UnixSocket.withSockaddr(address) { bind(fd, $0, length) } == 0)
    }

    @Test("client: no socket file means the daemon is not running, with the way out")
    func clientMissingSocket() async throws {
        let directory = try SocketDirectory()
        let error = await #expect(throws: ControlClientError.notRunning(path: directory.socket)) {
            try await Self.request(directory.socket, ["command": "status"]).get()
        }
        #expect(error?.description == "vitalgated is not running (no \(directory.socket)). Fix: systemctl start vitalgated, "
            + "or give --state-dir to read the Outbox directly")
    }

    @Test("client: a socket file nobody listens on is reported as stale")
    func clientStaleSocket() async throws {
        let directory = try SocketDirectory()
        try Self.leaveStaleSocket(at: directory.socket)
        let error = await #expect(throws: ControlClientError.staleSocket(path: directory.socket)) {
            try await Self.request(directory.socket, ["command": "status"]).get()
        }
        #expect(error?.description.contains("connection refused") == true)
        #expect(error?.description.contains("Fix: systemctl restart vitalgated") == true)
    }

    @Test("client: a daemon that takes the request but never answers is a timeout")
    func clientTimeout() async throws {
        let directory = try SocketDirectory()
        let (address, length) = try #require(UnixSocket.address(directory.socket))
        // Listens and never accepts: the connection waits in the queue, as with a daemon whose threads are stuck.
        let listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(listener) }
        try #require(UnixSocket.withSockaddr(address) { bind(listener, $0, length) } == 0)
        try #require(listen(listener, 4) == 0)
        let timeout = Duration.milliseconds(200)
        let error = await #expect(throws: ControlClientError.timedOut(path: directory.socket, timeout: timeout)) {
            try await Self.request(directory.socket, ["command": "status"], timeout: timeout).get()
        }
        #expect(error?.description.contains("did not answer") == true)
    }

    @Test("client: the messages for the other failures each say what to do", arguments: [
        ControlClientError.pathTooLong(path: "/p"), .permissionDenied(path: "/p"), .cannotConnect(path: "/p", reason: "r"),
        .noAnswer(path: "/p"), .malformedAnswer(path: "/p", reason: "r"), .timedOut(path: "/p", timeout: .seconds(5)),
    ])
    func clientMessages(_ error: ControlClientError) {
        #expect(error.description.contains("/p"))
        #expect(error.description.contains("Fix: "))
    }
}
