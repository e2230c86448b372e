import Foundation
import Synchronization

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

    private let sink = Mutex<FileHandle>(FileHandle.standardError)

    public init() {}

    public func log(_ priority: Priority, _ message: String) {
        let line = "<\(priority.rawValue)>" + message.replacingOccurrences(of: "\n", with: " ") + "\n"
        sink.withLock { $0.write(Data(line.utf8)) }
    }

    public func error(_ message: String) { log(.error, message) }
    public func warning(_ message: String) { log(.warning, message) }
    public func info(_ message: String) { log(.info, message) }
}
