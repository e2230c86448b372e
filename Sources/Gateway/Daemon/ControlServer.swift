import Dispatch
import Foundation
import Synchronization
import VitalModel
#if canImport(Glibc)
import Glibc
#endif

/// One request on the control socket, as a handler sees it.
struct ControlRequest: Sendable {
    /// The request's `command` member.
    var command: String
    /// The whole request object as the client sent it, `command` included.
    var json: JSONValue
    /// Who asked, from the kernel rather than from the request.
    var peer: PeerCredentials

    /// The audit trail's actor: the peer's user name, or `uid N`.
    var actor: String { peer.actor }
}

/// The daemon's control socket, for `vitalgate status`, `readings`, `visit`, `assign` and whatever else a handler
/// answers. This type is the transport and the access check only; it does not interpret commands.
///
/// Protocol: one request per connection. The client sends one JSON object on one line, `{"command": "status", …}`,
/// of at most ``Limits/maximumRequestBytes``; the server answers one JSON line and closes. The server's own answers
/// are `{"ok": false, "error": "…"}` for a refused peer, a malformed request, a request not sent in time, a busy
/// server or one stopping; every other answer is the handler's, which should carry `"ok"` the same way.
///
/// Access: the socket file is made mode 0666 and every connection is checked against a ``ControlAccessPolicy`` with
/// the peer's kernel credentials (`SO_PEERCRED`, `SO_PEERGROUPS`). File permissions alone would need the socket's
/// group to be the operators' group, which the service user would have to belong to (or chown with a capability it
/// does not have); they could allow only one group; and a refused operator would see a bare "permission denied"
/// instead of an answer that names the group to join. The directory holding the socket must let operators through
/// (`RuntimeDirectoryMode=0755`) for the peer check to be the one that decides.
///
/// Threads: accepting runs on a dedicated thread and each client on a thread of its own, at most
/// ``Limits/maximumClients`` at once; blocking socket calls never run on the Swift concurrency pool. A client must
/// send its request within ``Limits/requestTimeout`` and take the answer within ``Limits/answerTimeout``, so a stuck
/// or slow client cannot hold a thread.
final class ControlServer: Sendable {
    /// Where the daemon listens unless configured otherwise: systemd's `RuntimeDirectory=vitalgate`.
    static let defaultPath = "/run/vitalgate/control.sock"

    /// The bounds a client is held to.
    struct Limits: Sendable {
        /// A request line longer than this is refused; no command needs more, and memory stays bounded.
        var maximumRequestBytes = 1 << 20
        /// Time from connecting to a complete request line.
        var requestTimeout: Duration = .seconds(5)
        /// Time to take the whole answer.
        var answerTimeout: Duration = .seconds(10)
        /// Clients served at once; more are told to come back.
        var maximumClients = 8

        init() {}
    }

    /// Why the control socket could not be opened, with what to do about it.
    struct StartError: Error, Sendable, CustomStringConvertible {
        let description: String
    }

    let path: String
    let policy: ControlAccessPolicy
    let limits: Limits
    private let log: DaemonLog
    private let handler: @Sendable (ControlRequest) -> JSONValue
    private let credentials: @Sendable (Int32) throws(PeerCredentials.ReadError) -> PeerCredentials

    private struct State {
        var listener: Int32 = -1
        var started = false
        var stopping = false
        /// The socket file bound, by device and inode, so stop() unlinks only its own.
        var boundFile: (dev: UInt64, ino: UInt64)?
        var connections: [ObjectIdentifier: ControlConnection] = [:]
        /// When a refusal of each uid was last logged: a stranger knocking in a loop gets one line a minute.
        var refusalsLogged: [uid_t: ContinuousClock.Instant] = [:]
    }
    private let state = Mutex(State())
    /// Signalled when the accept thread has returned.
    private let acceptFinished = DispatchSemaphore(value: 0)
    /// Entered by each client thread while it runs.
    private let clientThreads = DispatchGroup()
    /// Runs the request and answer deadlines; its work items only shut a socket down.
    private let deadlines = DispatchQueue(label: "vitalgate-control-deadlines")

    /// - Parameters:
    ///   - path: the socket file; an abstract name (`@…`) is refused, as the file's owner and mode are part of the
    ///     design and an abstract socket has neither.
    ///   - handler: answers one request; called on the client's thread, so it may block (an Outbox query).
    ///   - credentials: reads a connection's peer credentials; tests give other peers than themselves.
    init(path: String, policy: ControlAccessPolicy, log: DaemonLog, limits: Limits = Limits(),
         credentials: @escaping @Sendable (Int32) throws(PeerCredentials.ReadError) -> PeerCredentials = { fd throws(PeerCredentials.ReadError) in
             try PeerCredentials.of(socket: fd)
         },
         handler: @escaping @Sendable (ControlRequest) -> JSONValue) {
        self.path = path
        self.policy = policy
        self.log = log
        self.limits = limits
        self.credentials = credentials
        self.handler = handler
    }

    /// Binds the socket, replacing a stale socket file, and starts accepting on a dedicated thread.
    ///
    /// Refuses to replace a socket another process still answers on, and any file that is not a socket.
    func start() throws(StartError) {
        if path.hasPrefix("@") {
            throw StartError(description: "the control socket \(path) is an abstract socket name. "
                + "Fix: give a file path such as \(Self.defaultPath)")
        }
        guard path.hasPrefix("/") else {
            throw StartError(description: "the control socket path \(path) is not absolute. Fix: give a path such as \(Self.defaultPath)")
        }
        guard let (address, length) = UnixSocket.address(path) else {
            throw StartError(description: "the control socket path \(path) is too long for a Unix socket "
                + "(at most \(MemoryLayout.size(ofValue: sockaddr_un().sun_path) - 1) bytes). Fix: choose a shorter path")
        }
        try state.withLock { state throws(StartError) in
            guard !state.started else { throw StartError(description: "the control socket \(path) is already started") }
            state.started = true
        }
        try removeStaleSocket(address, length)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else {
            throw StartError(description: "cannot create the control socket: \(String(cString: strerror(errno)))")
        }
        guard UnixSocket.withSockaddr(address, { bind(fd, $0, length) }) == 0 else {
            let code = errno
            close(fd)
            throw StartError(description: "cannot bind the control socket \(path): \(String(cString: strerror(code))). "
                + (code == ENOENT ? "Fix: create its directory (RuntimeDirectory=vitalgate in the unit does)"
                                  : "Fix: check that the service user may write its directory"))
        }
        // The peer check decides access (see the type's documentation), so everyone may connect.
        guard chmod(path, 0o666) == 0, listen(fd, 16) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            unlink(path)
            throw StartError(description: "cannot listen on the control socket \(path): \(reason)")
        }
        var status = stat()
        let bound: (dev: UInt64, ino: UInt64)? = lstat(path, &status) == 0 ? (UInt64(status.st_dev), UInt64(status.st_ino)) : nil
        state.withLock {
            $0.listener = fd
            $0.boundFile = bound
        }
        let thread = Thread { [self] in
            acceptLoop(fd)
            acceptFinished.signal()
        }
        thread.name = "vitalgate-control"
        thread.start()
    }

    /// Removes a socket file nobody answers on (left by a daemon that was killed); refuses a live one or a non-socket.
    private func removeStaleSocket(_ address: sockaddr_un, _ length: socklen_t) throws(StartError) {
        var status = stat()
        guard lstat(path, &status) == 0 else { return }
        guard status.st_mode & S_IFMT == S_IFSOCK else {
            throw StartError(description: "\(path) exists and is not a socket, so it is left alone. "
                + "Fix: remove it, or configure another control socket path")
        }
        let probe = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        if probe >= 0 {
            let connected = UnixSocket.withSockaddr(address) { connect(probe, $0, length) } == 0
            close(probe)
            if connected {
                throw StartError(description: "another process answers on the control socket \(path). "
                    + "Fix: stop the other vitalgated (systemctl stop vitalgated) or configure another path")
            }
        }
        unlink(path)
    }

    /// Stops accepting, removes the socket file, tells clients still sending their request that the daemon stops, and
    /// waits up to `waitingUpTo` for requests being handled and answered. The accept thread is joined before this
    /// returns.
    func stop(waitingUpTo limit: Duration = .seconds(2)) {
        let (fd, bound, connections) = state.withLock { state in
            defer { state.listener = -1; state.stopping = true }
            return (state.stopping ? -1 : state.listener, state.boundFile, Array(state.connections.values))
        }
        guard fd >= 0 else { return }
        // shutdown wakes the blocked accept(); the descriptor is closed only once the thread is out, so accept never
        // runs on a number a new file could have reused.
        shutdown(fd, Int32(SHUT_RDWR))
        acceptFinished.wait()
        close(fd)
        var status = stat()
        if let bound, lstat(path, &status) == 0, UInt64(status.st_dev) == bound.dev, UInt64(status.st_ino) == bound.ino {
            unlink(path)
        }
        for connection in connections { connection.stopReading() }
        if clientThreads.wait(timeout: .now() + limit.dispatchInterval) == .timedOut {
            log.warning("control: requests still being answered after \(limit); stopping without them")
        }
    }

    private func acceptLoop(_ fd: Int32) {
        var reportedShortage = false
        while true {
            // accept4 is not in Swift's Glibc module; the daemon starts no programs, so the window before
            // FD_CLOEXEC is harmless.
            let client = accept(fd, nil, nil)
            if client < 0 {
                let code = errno
                if state.withLock({ $0.stopping }) { return }
                switch code {
                case EINTR, ECONNABORTED, EPROTO:
                    continue
                case EMFILE, ENFILE, ENOBUFS, ENOMEM:
                    // Out of descriptors or memory: the condition passes, the socket must keep working after it.
                    if !reportedShortage {
                        log.warning("control: cannot accept a connection: \(String(cString: strerror(code))); retrying")
                        reportedShortage = true
                    }
                    usleep(100_000)
                    continue
                default:
                    log.error("control: the control socket stopped accepting: \(String(cString: strerror(code))). "
                        + "Fix: restart vitalgated (systemctl restart vitalgated)")
                    return
                }
            }
            reportedShortage = false
            _ = fcntl(client, F_SETFD, FD_CLOEXEC)
            let connection = ControlConnection(fd: client)
            // The kernel's credentials are checked before anything is read: a peer that may not ask never holds one
            // of the client threads, so strangers cannot crowd operators out.
            let peer: PeerCredentials
            do { peer = try credentials(client) } catch {
                log.warning("control: refused a connection whose peer credentials cannot be read: \(error)")
                _ = connection.send(Self.failure("vitalgated cannot read this connection's peer credentials (\(error)), so it cannot "
                    + "check access. Fix: connect over the Unix socket directly, not through a proxy"))
                connection.close()
                continue
            }
            guard policy.grant(for: peer) != nil else {
                noteRefusal(of: peer.uid)
                // No user-name lookup here: NSS may block, and this is the accept thread.
                _ = connection.send(Self.failure(policy.refusal(uid: peer.uid, userName: nil)))
                connection.close()
                continue
            }
            let refusal: String? = state.withLock { state in
                if state.stopping { return Self.stoppingMessage }
                guard state.connections.count < limits.maximumClients else {
                    return "vitalgated is answering \(limits.maximumClients) control requests at once. Fix: try again in a moment"
                }
                state.connections[ObjectIdentifier(connection)] = connection
                return nil
            }
            if let refusal {
                // Small enough for the socket buffer: this write does not block the accept thread.
                _ = connection.send(Self.failure(refusal))
                connection.close()
                continue
            }
            clientThreads.enter()
            let thread = Thread { [self] in
                serve(connection, peer: peer)
                state.withLock { _ = $0.connections.removeValue(forKey: ObjectIdentifier(connection)) }
                connection.close()
                clientThreads.leave()
            }
            thread.name = "vitalgate-control-client"
            thread.start()
        }
    }

    /// Logs a refused uid at most once a minute, as a notice: refusals are not the daemon's problems, and must not
    /// push real ones out of `vitalgate status`.
    private func noteRefusal(of uid: uid_t) {
        let now = ContinuousClock.now
        let due = state.withLock { state -> Bool in
            if let last = state.refusalsLogged[uid], now - last < .seconds(60) { return false }
            if state.refusalsLogged.count > 1000 { state.refusalsLogged.removeAll() }
            state.refusalsLogged[uid] = now
            return true
        }
        if due {
            log.log(.notice, "control: refused uid \(uid): not root, not the service user, not in an operator group "
                + "(further refusals of this uid within a minute are not logged)")
        }
    }

    static let stoppingMessage = "vitalgated is stopping. Fix: try again once it runs (systemctl status vitalgated)"

    /// `{"ok": false, "error": text}`.
    static func failure(_ text: String) -> JSONValue {
        ["ok": false, "error": .string(text)]
    }

    private func serve(_ connection: ControlConnection, peer: PeerCredentials) {
        connection.begin(.reading, deadline: limits.requestTimeout, on: deadlines)
        var reader = UnixSocket.LineReader(fd: connection.fd, maximumBytes: limits.maximumRequestBytes)
        let line: [UInt8]
        switch reader.next() {
        case .line(let text) where text.count <= limits.maximumRequestBytes:
            line = text
        case .line, .tooLong:
            log.warning("control: refused a request longer than \(limits.maximumRequestBytes) bytes from uid \(peer.uid)")
            respond(connection, Self.failure("the request is longer than \(limits.maximumRequestBytes) bytes. "
                + "Fix: send one JSON object of at most that size on one line"))
            return
        case .closed:
            switch connection.interruption {
            case .deadline?:
                respond(connection, Self.failure("no complete request line within \(limits.requestTimeout). "
                    + "Fix: send one JSON object on one line, ended by a newline, right after connecting"))
            case .stopping?:
                respond(connection, Self.failure(Self.stoppingMessage))
            case nil:
                break // The client hung up without asking anything: nothing to answer.
            }
            return
        }
        connection.begin(.handling, on: deadlines)
        switch Self.parse(line) {
        case .success(let (command, json)):
            respond(connection, handler(ControlRequest(command: command, json: json, peer: peer)))
        case .failure(let problem):
            log.warning("control: refused a malformed request from uid \(peer.uid): \(problem.logged)")
            respond(connection, Self.failure(problem.answer))
        }
    }

    /// Sends `answer` as one line within the answer timeout.
    private func respond(_ connection: ControlConnection, _ answer: JSONValue) {
        connection.begin(.answering, deadline: limits.answerTimeout, on: deadlines)
        _ = connection.send(answer)
        connection.begin(.finished, on: deadlines)
    }

    /// What is wrong with a request line: a short category for the log (never the request's content) and the
    /// client's answer.
    struct RequestProblem: Error, Equatable {
        var logged: String
        var answer: String
    }

    /// The request's command and object, or what is wrong with it.
    static func parse(_ line: [UInt8]) -> Result<(String, JSONValue), RequestProblem> {
        let json: JSONValue
        do { json = try JSONValue.parse(bytes: line) } catch {
            return .failure(RequestProblem(logged: "not JSON", answer: "the request is not JSON (\(error)). "
                + "Fix: send one JSON object such as {\"command\": \"status\"} on one line"))
        }
        guard case .object = json else {
            return .failure(RequestProblem(logged: "not a JSON object", answer: "the request is not a JSON object. "
                + "Fix: send one JSON object such as {\"command\": \"status\"} on one line"))
        }
        switch json["command"] {
        case .string(let command)?:
            return .success((command, json))
        case nil:
            return .failure(RequestProblem(logged: "no command", answer: "the request has no \"command\". "
                + "Fix: name the command, as in {\"command\": \"status\"}"))
        case _?:
            return .failure(RequestProblem(logged: "command not a string", answer: "the request's \"command\" is not a string. "
                + "Fix: name the command as a string, as in {\"command\": \"status\"}"))
        }
    }
}

/// One accepted control connection: its descriptor, what the server is doing with it, and whether a deadline or
/// stop() cut it off.
///
/// A cut-off is a `shutdown`, never a `close`, and happens under the same lock as `close()`: a deadline that fires
/// late can therefore never touch a descriptor number the process has since reused.
final class ControlConnection: Sendable {
    enum Phase: Sendable {
        /// Waiting for the request line. A deadline or stop() shuts only the receiving side, so the server can
        /// still say why.
        case reading
        /// The handler works: nothing cuts it off, so an action taken is answered.
        case handling
        /// Sending the answer: a deadline shuts both sides; stop() lets the answer go out.
        case answering
        /// The answer is sent, or abandoned: nothing is left to cut off.
        case finished
    }

    enum Interruption: Sendable, Equatable {
        case deadline
        case stopping
    }

    let fd: Int32

    private struct State {
        var phase = ControlConnection.Phase.handling
        /// Counts phases, so that the deadline of a phase already left does not fire.
        var generation = 0
        var interruption: ControlConnection.Interruption?
        /// The server is stopping: a request not yet read is no longer waited for.
        var stopping = false
        var closed = false
    }
    private let state = Mutex(State())

    init(fd: Int32) {
        self.fd = fd
    }

    /// Why the connection was cut off, if it was.
    var interruption: Interruption? { state.withLock { $0.interruption } }

    /// Enters `phase`; with a deadline, the connection is cut off if it is still in this phase by then.
    func begin(_ phase: Phase, deadline: Duration? = nil, on queue: DispatchQueue) {
        let generation = state.withLock { state in
            state.phase = phase
            state.generation += 1
            if phase == .reading && state.stopping { Self.cut(&state, fd: fd, .stopping) }
            return state.generation
        }
        guard let deadline else { return }
        queue.asyncAfter(deadline: .now() + deadline.dispatchInterval) { [self] in
            state.withLock { state in
                guard state.generation == generation, state.phase == .reading || state.phase == .answering else { return }
                Self.cut(&state, fd: fd, .deadline)
            }
        }
    }

    /// The server is stopping: stops waiting for a request not yet read, now or when reading begins.
    func stopReading() {
        state.withLock { state in
            state.stopping = true
            if state.phase == .reading { Self.cut(&state, fd: fd, .stopping) }
        }
    }

    private static func cut(_ state: inout State, fd: Int32, _ reason: Interruption) {
        guard !state.closed else { return }
        if state.interruption == nil { state.interruption = reason }
        shutdown(fd, Int32(state.phase == .reading ? SHUT_RD : SHUT_RDWR))
    }

    /// Sends `answer` as one line; false when the client is gone or a cut-off stopped it.
    func send(_ answer: JSONValue) -> Bool {
        UnixSocket.sendAll(Array((answer.serialized() + "\n").utf8), to: fd)
    }

    func close() {
        state.withLock { state in
            guard !state.closed else { return }
            state.closed = true
            _ = Glibc.close(fd)
        }
    }
}
