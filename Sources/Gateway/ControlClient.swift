import Foundation
import VitalModel
#if canImport(Glibc)
import Glibc
#endif

/// Why a request to the daemon's control socket failed, each with what to do about it.
enum ControlClientError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The path does not fit a Unix socket address.
    case pathTooLong(path: String)
    /// No socket file (or no directory): the daemon is not running.
    case notRunning(path: String)
    /// The file system refused this user the directory or the socket.
    case permissionDenied(path: String)
    /// A socket file nobody listens on: the daemon was killed, or is between stop and start.
    case staleSocket(path: String)
    /// No answer within the timeout.
    case timedOut(path: String, timeout: Duration)
    /// Any other failure to connect, with the system's reason.
    case cannotConnect(path: String, reason: String)
    /// The daemon closed the connection without answering.
    case noAnswer(path: String)
    /// The answer is not JSON, or longer than any answer should be.
    case malformedAnswer(path: String, reason: String)

    var description: String {
        switch self {
        case .pathTooLong(let path):
            "the control socket path \(path) is too long for a Unix socket. Fix: give a shorter path"
        case .notRunning(let path):
            "vitalgated is not running (no \(path)). Fix: systemctl start vitalgated, "
                + "or give --state-dir to read the Outbox directly"
        case .permissionDenied(let path):
            "permission denied on \(path): this user may not reach vitalgated's control socket. "
                + "Fix: run the command with sudo, or check that /run/vitalgate is mode 0755 (RuntimeDirectoryMode=0755) "
                + "so that vitalgated's operator-group check decides"
        case .staleSocket(let path):
            "nothing answers on \(path) (connection refused): vitalgated stopped without removing its socket, or is "
                + "restarting. Fix: systemctl restart vitalgated, and see journalctl -u vitalgated if it does not come up"
        case .timedOut(let path, let timeout):
            "vitalgated did not answer on \(path) within \(timeout). Fix: check systemctl status vitalgated and "
                + "journalctl -u vitalgated; try again"
        case .cannotConnect(let path, let reason):
            "cannot connect to vitalgated at \(path): \(reason). Fix: check systemctl status vitalgated"
        case .noAnswer(let path):
            "vitalgated closed the connection on \(path) without answering. Fix: see journalctl -u vitalgated, then try again"
        case .malformedAnswer(let path, let reason):
            "vitalgated's answer on \(path) is not usable: \(reason). Fix: check that vitalgate and vitalgated are "
                + "the same version (vitalgate version)"
        }
    }
}

/// The `vitalgate` side of the control socket (see ``ControlServer``): one request, one answer, one connection.
enum ControlClient {
    /// No answer is expected to be larger than this; a longer line is a broken peer, not data.
    static let maximumAnswerBytes = 64 << 20

    /// Connects to `path`, sends `request` as one line and returns the answer line. Blocks for at most about
    /// `timeout` per step (connecting, sending, each read): call it from a thread, not the Swift concurrency pool.
    static func request(path: String, _ request: JSONValue, timeout: Duration) throws(ControlClientError) -> JSONValue {
        guard let (address, length) = UnixSocket.address(path) else {
            throw .pathTooLong(path: path)
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .cannotConnect(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        // SO_SNDTIMEO also bounds a connect that waits for room in a full listen queue.
        var limit = timeval(tv_sec: Int(timeout.components.seconds),
                            tv_usec: Int(timeout.components.attoseconds / 1_000_000_000_000))
        if limit.tv_sec == 0 && limit.tv_usec == 0 { limit.tv_usec = 1 }
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))

        if UnixSocket.withSockaddr(address, { connect(fd, $0, length) }) != 0 {
            let code = errno
            switch code {
            case ENOENT, ENOTDIR: throw .notRunning(path: path)
            case EACCES, EPERM: throw .permissionDenied(path: path)
            case ECONNREFUSED: throw .staleSocket(path: path)
            case EAGAIN, EINPROGRESS, ETIMEDOUT: throw .timedOut(path: path, timeout: timeout)
            default: throw .cannotConnect(path: path, reason: String(cString: strerror(code)))
            }
        }
        // A failed send is not yet a failure: a daemon that refuses without reading (busy, stopping, request too
        // long) has still written its reason, and that is worth more than "broken pipe".
        let sent = UnixSocket.sendAll(Array((request.serialized() + "\n").utf8), to: fd)
        let sendError = sent ? 0 : errno
        var reader = UnixSocket.LineReader(fd: fd, maximumBytes: maximumAnswerBytes)
        var readError: Int32 = 0
        switch reader.next(readError: &readError) {
        case .line(let line):
            do { return try JSONValue.parse(bytes: line) } catch {
                throw .malformedAnswer(path: path, reason: "not JSON (\(error))")
            }
        case .tooLong:
            throw .malformedAnswer(path: path, reason: "longer than \(maximumAnswerBytes) bytes")
        case .closed:
            if readError == EAGAIN || readError == EWOULDBLOCK || sendError == EAGAIN || sendError == EWOULDBLOCK {
                throw .timedOut(path: path, timeout: timeout)
            }
            throw .noAnswer(path: path)
        }
    }
}
