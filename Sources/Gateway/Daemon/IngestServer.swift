import Assignment
import Foundation
import Outbox
import Synchronization
import VitalModel
#if canImport(Glibc)
import Glibc
#endif

/// The ingest socket: device sessions and `vitalgate ingest` hand readings in here, and get an acknowledgement
/// only after the Outbox has committed them to disk (commit first, then acknowledge).
///
/// Protocol, one JSON object per line each way. A request is `{"readings": [{"reading": READING, "patient":
/// "cccd:…"}, …]}`, where READING is the `vitalgate decode` JSON and `patient` is optional (without it, the
/// household and visit rules decide, else the reading is held unassigned). The answer is `{"ok": true, "results": [{"id": 12, "duplicate": false}, …]}` once
/// stored, or `{"ok": false, "error": "…", "retry": true|false}`, in which case nothing was stored.
final class IngestServer: Sendable {
    let path: String
    let outbox: Outbox
    let assignment: AssignmentRules
    let identifierSystems: IdentifierSystems
    let log: DaemonLog
    /// Called after each commit, so the uplink wakes up.
    let onStored: @Sendable () -> Void
    /// The metrics file's counts of received, malformed, stored and refused readings.
    let counters: ReadingCounters
    private let listener = Mutex<Int32>(-1)

    /// A request line longer than this is refused: no reading batch needs more, and memory stays bounded.
    static let maximumLineBytes = 4 << 20

    init(path: String, outbox: Outbox, assignment: AssignmentRules, identifierSystems: IdentifierSystems,
         log: DaemonLog, counters: ReadingCounters = .daemon, onStored: @escaping @Sendable () -> Void) {
        self.path = path
        self.outbox = outbox
        self.assignment = assignment
        self.identifierSystems = identifierSystems
        self.log = log
        self.onStored = onStored
        self.counters = counters
    }

    struct StartError: Error, CustomStringConvertible {
        let description: String
    }

    /// Binds the socket (replacing a stale one) and starts accepting on a dedicated thread.
    func start() throws(StartError) {
        guard let (address, length) = UnixSocket.address(path), !path.hasPrefix("@") else {
            throw StartError(description: "the ingest socket path \(path) is too long for a Unix socket. Fix: set a shorter ingestSocket")
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw StartError(description: "cannot create the ingest socket: \(String(cString: strerror(errno)))") }
        unlink(path)
        let bound = UnixSocket.withSockaddr(address) { bind(fd, $0, length) }
        guard bound == 0, listen(fd, 16) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw StartError(description: "cannot listen on \(path): \(reason). Fix: check that the state directory exists and is writable")
        }
        chmod(path, 0o660)
        listener.withLock { $0 = fd }
        let thread = Thread { [self] in acceptLoop(fd) }
        thread.name = "vitalgate-ingest"
        thread.start()
    }

    /// Stops accepting; connections in progress finish their current request.
    func stop() {
        let fd = listener.withLock { fd in defer { fd = -1 }; return fd }
        guard fd >= 0 else { return }
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
        unlink(path)
    }

    /// At most this many senders at once, each on its own thread; more are told to come back.
    static let maximumClients = 16
    /// A sender silent for this long is disconnected, so an idle client cannot hold a thread forever.
    static let idleSeconds = 300
    private let clients = Mutex(0)

    private func acceptLoop(_ fd: Int32) {
        while true {
            let client = accept(fd, nil, nil)
            if client < 0 {
                if errno == EINTR || errno == ECONNABORTED { continue }
                return
            }
            _ = fcntl(client, F_SETFD, FD_CLOEXEC)
            var timeout = timeval(tv_sec: Self.idleSeconds, tv_usec: 0)
            _ = setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            let admitted = clients.withLock { count in
                guard count < Self.maximumClients else { return false }
                count += 1
                return true
            }
            guard admitted else {
                let answer = Self.refusal("vitalgated serves \(Self.maximumClients) senders at once; try again shortly", retry: true)
                _ = UnixSocket.sendAll(Array((answer.serialized() + "\n").utf8), to: client)
                close(client)
                continue
            }
            let thread = Thread { [self] in
                serve(client)
                clients.withLock { $0 -= 1 }
            }
            thread.name = "vitalgate-ingest-client"
            thread.start()
        }
    }

    private func serve(_ fd: Int32) {
        defer { close(fd) }
        var reader = UnixSocket.LineReader(fd: fd, maximumBytes: Self.maximumLineBytes)
        while true {
            switch reader.next() {
            case .line(let line):
                if line.isEmpty { continue }
                guard UnixSocket.sendAll(Array((handle(line).serialized() + "\n").utf8), to: fd) else { return }
            case .tooLong:
                counters.malformed(1)
                let answer = Self.refusal("the request line is longer than \(Self.maximumLineBytes) bytes", retry: false)
                _ = UnixSocket.sendAll(Array((answer.serialized() + "\n").utf8), to: fd)
                return
            case .closed:
                return
            }
        }
    }

    static func refusal(_ error: String, retry: Bool) -> JSONValue {
        ["ok": false, "error": .string(error), "retry": .bool(retry)]
    }

    /// Parses, stores and answers one request. Nothing is stored unless every reading in it is well formed.
    func handle(_ line: [UInt8]) -> JSONValue {
        let request: JSONValue
        do { request = try JSONValue.parse(bytes: line) } catch {
            return malformed(1, "the request is not JSON (\(error))")
        }
        guard case .array(let entries)? = request["readings"] else {
            return malformed(1, "the request has no \"readings\" array")
        }
        var incoming: [IncomingReading] = []
        var unnamed: [(Int, Reading)] = []
        for (index, entry) in entries.enumerated() {
            guard let readingJSON = entry["reading"] else {
                return malformed(entries.count, "readings[\(index)] has no \"reading\"")
            }
            let reading: Reading
            do { reading = try Reading(json: readingJSON) } catch {
                return malformed(entries.count, "readings[\(index)].reading: \(error)")
            }
            switch entry["patient"] {
            case .string(let text)?:
                do { incoming.append(IncomingReading(reading: reading, subject: try identifierSystems.parse(text))) } catch {
                    return malformed(entries.count, "readings[\(index)].patient: \(error.description)")
                }
            case .null?, nil:
                unnamed.append((incoming.count, reading))
                incoming.append(IncomingReading(reading: reading, subject: nil))
            default: return malformed(entries.count, "readings[\(index)].patient must be a string")
            }
        }
        do {
            let outcomes = try counters.storing(incoming.count, from: .ingest) {
                // Readings that came without a citizen go through the household and visit rules, like a session's;
                // inside the count, so that readings refused on an Outbox error there are counted too.
                for (slot, attributed) in zip(unnamed.map(\.0), try assignment.incoming(unnamed.map(\.1), outbox: outbox)) {
                    incoming[slot] = attributed
                }
                return try outbox.ingest(incoming)
            }
            var results: [JSONValue] = []
            var stored: [String] = []
            for outcome in outcomes {
                switch outcome {
                case .stored(let id):
                    results.append(["id": .int(id.rawValue), "duplicate": false])
                    stored.append("r\(id.rawValue)")
                case .duplicate(let id):
                    results.append(["id": .int(id.rawValue), "duplicate": true])
                }
            }
            if !stored.isEmpty {
                log.info("ingest: stored \(stored.count) reading(s) \(Self.range(stored))"
                    + (outcomes.count > stored.count ? ", \(outcomes.count - stored.count) already stored" : ""))
                onStored()
            }
            return ["ok": true, "results": .array(results)]
        } catch {
            log.error("ingest: refused \(incoming.count) reading(s), nothing stored: \(error)")
            return Self.refusal("\(error)", retry: true)
        }
    }

    /// A refusal of a request that cannot be read, counted: `count` readings (or one request) were not stored.
    private func malformed(_ count: Int, _ error: String) -> JSONValue {
        counters.malformed(count)
        return Self.refusal(error, retry: false)
    }

    /// `r3…r9` for a run of local ids: enough to find them, short in the journal.
    static func range(_ ids: [String]) -> String {
        guard let first = ids.first, let last = ids.last else { return "" }
        return first == last ? first : first + "…" + last
    }
}
