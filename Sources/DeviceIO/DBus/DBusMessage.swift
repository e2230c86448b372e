internal import CDBus

/// A libdbus message, owned by this wrapper (one reference, released on deinit).
///
/// Messages are immutable once sent or received, and libdbus locks their reference count, so a received
/// method call may be held by another thread and answered later (the agent does that).
final class DBusMessage: @unchecked Sendable {
    let raw: OpaquePointer

    /// Takes over the reference the caller owns (from a `dbus_message_new…` call).
    init(adopting raw: OpaquePointer) {
        self.raw = raw
    }

    /// Adds a reference of its own (for a message libdbus lends to a callback).
    init(retaining raw: OpaquePointer) {
        self.raw = dbus_message_ref(raw)
    }

    deinit {
        dbus_message_unref(raw)
    }

    // MARK: Creating

    static func methodCall(destination: String?, path: String, interface: String?, member: String) throws(DBusCallError) -> DBusMessage {
        let what = (interface.map { $0 + "." } ?? "") + member
        if let destination { try DBusNames.checkBusName(destination, what) }
        try DBusNames.checkPath(path, what)
        if let interface { try DBusNames.checkInterface(interface, what) }
        try DBusNames.checkMember(member, what)
        guard let raw = dbus_message_new_method_call(destination, path, interface, member) else { throw .noMemory(what) }
        // No bus activation: on a hub without an adapter bluetoothd is not running, and asking D-Bus to start it
        // makes every call wait 25 s for a service that never comes. Without it the call fails at once.
        dbus_message_set_auto_start(raw, 0)
        return DBusMessage(adopting: raw)
    }

    static func signal(path: String, interface: String, member: String) throws(DBusCallError) -> DBusMessage {
        let what = interface + "." + member
        try DBusNames.checkPath(path, what)
        try DBusNames.checkInterface(interface, what)
        try DBusNames.checkMember(member, what)
        guard let raw = dbus_message_new_signal(path, interface, member) else { throw .noMemory(what) }
        return DBusMessage(adopting: raw)
    }

    /// The (empty) method return for this method call; append the reply's values to it.
    func methodReturn() throws(DBusCallError) -> DBusMessage {
        guard let reply = dbus_message_new_method_return(raw) else { throw .noMemory(describedMember) }
        return DBusMessage(adopting: reply)
    }

    /// An error reply to this method call.
    func errorReply(name: String, message: String) throws(DBusCallError) -> DBusMessage {
        try DBusNames.checkErrorName(name, describedMember)
        guard !message.utf8.contains(0) else { throw .invalid(describedMember, "an error text contains a NUL character") }
        guard let reply = dbus_message_new_error(raw, name, message) else { throw .noMemory(describedMember) }
        return DBusMessage(adopting: reply)
    }

    // MARK: Header

    enum Kind { case methodCall, methodReturn, error, signal, other }

    var kind: Kind {
        switch dbus_message_get_type(raw) {
        case VG_DBUS_MESSAGE_TYPE_METHOD_CALL: .methodCall
        case VG_DBUS_MESSAGE_TYPE_METHOD_RETURN: .methodReturn
        case VG_DBUS_MESSAGE_TYPE_ERROR: .error
        case VG_DBUS_MESSAGE_TYPE_SIGNAL: .signal
        default: .other
        }
    }

    var path: String? { Self.text(dbus_message_get_path(raw)) }
    var interface: String? { Self.text(dbus_message_get_interface(raw)) }
    var member: String? { Self.text(dbus_message_get_member(raw)) }
    var sender: String? { Self.text(dbus_message_get_sender(raw)) }
    var errorName: String? { Self.text(dbus_message_get_error_name(raw)) }
    var signature: String { Self.text(dbus_message_get_signature(raw)) ?? "" }
    var expectsReply: Bool { dbus_message_get_no_reply(raw) == 0 }

    /// `interface.member`, for messages about this message.
    var describedMember: String {
        [interface, member].compactMap { $0 }.joined(separator: ".")
    }

    static func text(_ pointer: UnsafePointer<CChar>?) -> String? {
        pointer.map { String(cString: $0) }
    }

    // MARK: Arguments

    /// Appends `values` as the message's arguments, after checking everything libdbus would abort on.
    func append(_ values: [DBusValue]) throws(DBusCallError) {
        let what = describedMember
        for value in values { try DBusValueWriter.check(value, what) }
        var iterator = DBusMessageIter()
        dbus_message_iter_init_append(raw, &iterator)
        for value in values {
            guard DBusValueWriter.write(value, into: &iterator) else { throw .noMemory(what) }
        }
    }

    /// Every argument, read into values.
    func arguments() -> [DBusValue] {
        var iterator = DBusMessageIter()
        guard dbus_message_iter_init(raw, &iterator) != 0 else { return [] }
        var values: [DBusValue] = []
        while dbus_message_iter_get_arg_type(&iterator) != VG_DBUS_TYPE_INVALID {
            values.append(DBusValueReader.read(&iterator))
            _ = dbus_message_iter_next(&iterator)
        }
        return values
    }

    /// The text of an error reply's first argument (D-Bus convention), or "".
    var errorText: String {
        if case .string(let text)? = arguments().first { return text }
        return ""
    }
}

/// Checks of names and paths: libdbus aborts the process when given an invalid one, so nothing reaches it
/// unchecked.
enum DBusNames {
    static func checkPath(_ path: String, _ what: String) throws(DBusCallError) {
        guard !path.utf8.contains(0), dbus_validate_path(path, nil) != 0 else { throw .invalid(what, "'\(path)' is not a valid object path") }
    }

    static func checkInterface(_ name: String, _ what: String) throws(DBusCallError) {
        guard !name.utf8.contains(0), dbus_validate_interface(name, nil) != 0 else { throw .invalid(what, "'\(name)' is not a valid interface name") }
    }

    static func checkMember(_ name: String, _ what: String) throws(DBusCallError) {
        guard !name.utf8.contains(0), dbus_validate_member(name, nil) != 0 else { throw .invalid(what, "'\(name)' is not a valid member name") }
    }

    static func checkBusName(_ name: String, _ what: String) throws(DBusCallError) {
        guard !name.utf8.contains(0), dbus_validate_bus_name(name, nil) != 0 else { throw .invalid(what, "'\(name)' is not a valid bus name") }
    }

    static func checkErrorName(_ name: String, _ what: String) throws(DBusCallError) {
        guard !name.utf8.contains(0), dbus_validate_error_name(name, nil) != 0 else { throw .invalid(what, "'\(name)' is not a valid error name") }
    }

    static func isValidPath(_ path: String) -> Bool {
        !path.utf8.contains(0) && dbus_validate_path(path, nil) != 0
    }
}
