#if canImport(Glibc)
import Glibc
#endif

/// A failure of a device node or of udev: the operation, the node, the C library's error and how to fix it.
///
/// Messages name device nodes and USB ids, never a patient or a measured value, so they may be logged.
public struct DeviceIOError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What was attempted: `open`, `tcsetattr`, `TIOCEXCL`, `HIDIOCSFEATURE`, `read`, `write`, `poll`, `udev_monitor`…
    public var operation: String
    /// The device node (or the udev object) it was attempted on.
    public var path: String
    /// `errno`, or 0 when the failure did not come from the C library.
    public var code: Int32
    /// What to do about it.
    public var fix: String
    /// The device went away (unplugged, hang-up): the session ends and waits for it to come back.
    public var isDisconnect: Bool
    /// The underlying error when it is not an `errno`: for BlueZ, the D-Bus error name and its text
    /// (`org.bluez.Error.Failed: le-connection-abort-by-local`).
    public var cause: String?

    public init(operation: String, path: String, code: Int32 = 0, fix: String, isDisconnect: Bool = false, cause: String? = nil) {
        self.operation = operation
        self.path = path
        self.code = code
        self.fix = fix
        self.isDisconnect = isDisconnect
        self.cause = cause
    }

    /// An error from the C library's current `errno`.
    public static func system(_ operation: String, path: String, code: Int32 = errno, fix: String,
                              isDisconnect: Bool = false) -> DeviceIOError {
        DeviceIOError(operation: operation, path: path, code: code, fix: fix, isDisconnect: isDisconnect)
    }

    public var description: String {
        var text = "\(path): \(operation) failed"
        if code != 0 { text += ": " + Self.errnoText(code) }
        if let cause { text += ": " + cause }
        if isDisconnect { text += " (the device was disconnected)" }
        return text + ". Fix: " + fix
    }

    /// The C library's text for an `errno` value, with the number.
    static func errnoText(_ code: Int32) -> String {
        guard let text = strerror(code) else { return "error \(code)" }
        return String(cString: text) + " (errno \(code))"
    }
}
