/// Why a D-Bus call or message failed: the D-Bus error name and message the peer (or libdbus, or this
/// layer) gave, and the method it was about.
///
/// Local failures use the standard names: `org.freedesktop.DBus.Error.Timeout` when the caller's timeout
/// passed, `…Disconnected` when the bus connection is gone, `…InvalidArgs` when a value could not be put
/// into a message (this layer checks what libdbus would otherwise abort on), `…NoMemory`.
struct DBusCallError: Error, Sendable, Hashable, CustomStringConvertible {
    /// `org.bluez.Error.Failed`, `org.freedesktop.DBus.Error.ServiceUnknown`, …
    var name: String
    /// The error's text, such as `le-connection-abort-by-local`.
    var message: String
    /// `interface.member` of the call, or what was being done.
    var member: String

    static let timeoutName = "org.freedesktop.DBus.Error.Timeout"
    static let noReplyName = "org.freedesktop.DBus.Error.NoReply"
    static let disconnectedName = "org.freedesktop.DBus.Error.Disconnected"
    static let invalidArgsName = "org.freedesktop.DBus.Error.InvalidArgs"
    static let noMemoryName = "org.freedesktop.DBus.Error.NoMemory"

    var isTimeout: Bool { name == Self.timeoutName || name == Self.noReplyName }
    var isDisconnected: Bool { name == Self.disconnectedName }

    static func invalid(_ member: String, _ message: String) -> DBusCallError {
        DBusCallError(name: invalidArgsName, message: message, member: member)
    }

    static func noMemory(_ member: String) -> DBusCallError {
        DBusCallError(name: noMemoryName, message: "libdbus could not allocate memory", member: member)
    }

    /// `org.bluez.Error.Failed: le-connection-abort-by-local`, the form ``DeviceIOError/cause`` carries.
    var cause: String { message.isEmpty ? name : name + ": " + message }

    var description: String { "\(member): \(cause)" }
}
