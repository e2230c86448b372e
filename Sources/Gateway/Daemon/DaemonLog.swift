import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The daemon's log: one line per event on standard error with a syslog priority prefix (`<3>` error,
/// `<4>` warning, `<6>` info) that journald reads. Messages name readings by their local id (`r12`) and never
/// carry a patient identifier, a name or a measured value (ARCHITECTURE §7.7); callers pass only such text.
public final class DaemonLog: Sendable {
    public enum Priority: Int, Sendable {
        case error = 3
        case warning = 4
        case notice = 5
        case info = 6
        case debug = 7
    }

    /// A warning or error as `vitalgate status` shows it.
    public struct Problem: Sendable {
        public var at: Date
        public var priority: Priority
        public var message: String
    }

    /// Serialises whole lines from several threads; holds the last warnings and errors for `vitalgate status`.
    private let lock = Mutex<[Problem]>([])
    /// How many recent problems are kept.
    static let recentLimit = 20

    public init() {}

    /// The last warnings and errors, oldest first (they carry no identifier or value, like every log line).
    public var recentProblems: [Problem] { lock.withLock { $0 } }

    public func log(_ priority: Priority, _ message: String) {
        let line = "<\(priority.rawValue)>" + message.replacingOccurrences(of: "\n", with: " ") + "\n"
        // write(2), not FileHandle: a failed write to a closed journal stream must not trap.
        lock.withLock { problems in
            if priority.rawValue <= Priority.warning.rawValue {
                problems.append(Problem(at: Date(), priority: priority, message: message))
                if problems.count > Self.recentLimit { problems.removeFirst(problems.count - Self.recentLimit) }
            }
            let bytes = Array(line.utf8)
            var offset = 0
            while offset < bytes.count {
                let written = bytes[offset...].withUnsafeBytes { Glibc.write(STDERR_FILENO, $0.baseAddress, $0.count) }
                if written < 0, errno == EINTR { continue }
                guard written > 0 else { return }
                offset += written
            }
        }
    }

    public func error(_ message: String) { log(.error, message) }
    public func warning(_ message: String) { log(.warning, message) }
    public func info(_ message: String) { log(.info, message) }
}
