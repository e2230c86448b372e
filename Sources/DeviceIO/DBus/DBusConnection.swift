#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization
import VitalModel
internal import CDBus

/// A private connection to a D-Bus bus, driven by one thread of its own.
///
/// Thread rules: after ``start(onMessage:onDisconnect:)`` only the connection's thread touches libdbus's
/// connection. It sleeps in `poll` on the socket and a self-pipe (no periodic wake-up when idle), reads,
/// writes and dispatches. Other threads hand it jobs (``perform(_:)``) and wake it through the pipe:
/// ``call(destination:path:interface:member:arguments:timeout:)`` sends from there and blocks its caller on a
/// semaphore until the reply or the timeout; ``send(_:)`` queues a reply or signal. Incoming signals and
/// method calls reach `onMessage` on the connection's thread, in the order they arrived; it must not
/// block, and must not call ``call(destination:path:interface:member:arguments:timeout:)`` (that would wait
/// for its own thread; it fails at once instead).
final class DBusConnection: @unchecked Sendable {
    /// Handles one incoming signal or method call on the connection's thread; true when it answered (or
    /// will answer) a method call.
    typealias MessageHandler = @Sendable (DBusMessage) -> Bool

    /// The connection's name on the bus (`:1.42`); peers address method calls to it.
    let uniqueName: String
    /// Where the connection goes, for messages: `D-Bus system bus` or `D-Bus bus ADDRESS`.
    let busDescription: String

    // Touched by the connection's thread only once started (and by init / an unstarted close).
    private let raw: OpaquePointer
    private var socket: Int32 = -1
    private var pending: [UInt64: (call: OpaquePointer, box: PendingCallBox)] = [:]

    private let wakeRead: Int32
    private let wakeWrite: Mutex<Int32?>
    private let queue = Mutex(JobQueue())
    private let threadID = Mutex<pthread_t?>(nil)
    private let finished = DispatchSemaphore(value: 0)
    private let exported = Mutex<[String: MessageHandler]>([:])
    private let handlers = Mutex<(message: MessageHandler?, disconnect: (@Sendable () -> Void)?)>((nil, nil))

    /// A unit of work for the connection's thread; `usable` is false when the connection has ended and the
    /// job should only report that.
    typealias Job = @Sendable (_ usable: Bool) -> Void

    private struct JobQueue {
        var jobs: [Job] = []
        var started = false
        var stopping = false
        var ended = false
        var nextToken: UInt64 = 1
    }

    private static let threadsInitialised: Bool = dbus_threads_init_default() != 0

    /// Opens and registers the connection (blocks until the bus answers `Hello`). `address` nil: the system
    /// bus, at `$DBUS_SYSTEM_BUS_ADDRESS` or the standard socket.
    init(address: String?) throws(DBusCallError) {
        let what = address.map { "connect to the D-Bus bus at \($0)" } ?? "connect to the D-Bus system bus"
        guard Self.threadsInitialised else { throw .noMemory(what) }
        if let address, address.utf8.contains(0) { throw .invalid(what, "the bus address contains a NUL character") }
        var error = DBusError()
        dbus_error_init(&error)
        defer { dbus_error_free(&error) }
        func failure() -> DBusCallError {
            DBusCallError(name: DBusMessage.text(error.name) ?? DBusCallError.disconnectedName,
                          message: DBusMessage.text(error.message) ?? "", member: what)
        }
        var opened: OpaquePointer?
        if let address {
            opened = dbus_connection_open_private(address, &error)
            if let connection = opened, dbus_bus_register(connection, &error) == 0 {
                dbus_connection_close(connection)
                dbus_connection_unref(connection)
                opened = nil
            }
        } else {
            opened = dbus_bus_get_private(DBUS_BUS_SYSTEM, &error)
        }
        guard let connection = opened else { throw failure() }
        // A private connection's default is to exit the process when the bus goes away.
        dbus_connection_set_exit_on_disconnect(connection, 0)

        var pipeEnds: [Int32] = [-1, -1]
        guard pipe(&pipeEnds) == 0,
              pipeEnds.allSatisfy({ fcntl($0, F_SETFD, FD_CLOEXEC) == 0 && fcntl($0, F_SETFL, O_NONBLOCK) == 0 }) else {
            let code = errno
            for end in pipeEnds where end >= 0 { Glibc.close(end) }
            dbus_connection_close(connection)
            dbus_connection_unref(connection)
            throw DBusCallError(name: DBusCallError.noMemoryName,
                                message: "pipe failed: \(String(cString: strerror(code))) (errno \(code))", member: what)
        }
        raw = connection
        uniqueName = DBusMessage.text(dbus_bus_get_unique_name(connection)) ?? ""
        busDescription = address.map { "D-Bus bus \($0)" } ?? "D-Bus system bus"
        wakeRead = pipeEnds[0]
        wakeWrite = Mutex(pipeEnds[1])
        var fd: Int32 = -1
        _ = dbus_connection_get_unix_fd(connection, &fd)
        socket = fd
    }

    deinit {
        // The thread holds a reference while it runs, so reaching deinit means it ended or never began.
        let started = queue.withLock { $0.started }
        if !started { releaseUnstarted() }
    }

    // MARK: Lifecycle

    /// Starts the connection's thread. `onMessage` gets every incoming signal and every method call no
    /// exported object took; `onDisconnect` runs once on that thread if the bus goes away.
    func start(onMessage: @escaping MessageHandler, onDisconnect: @escaping @Sendable () -> Void) {
        let first = queue.withLock { state in
            defer { state.started = true }
            return !state.started && !state.ended
        }
        guard first else { return }
        handlers.withLock { $0 = (onMessage, onDisconnect) }
        let context = Unmanaged.passUnretained(self).toOpaque()
        _ = dbus_connection_add_filter(raw, { _, message, context in
            guard let message, let context else { return DBUS_HANDLER_RESULT_NOT_YET_HANDLED }
            let connection = Unmanaged<DBusConnection>.fromOpaque(context).takeUnretainedValue()
            return connection.filter(message) ? DBUS_HANDLER_RESULT_HANDLED : DBUS_HANDLER_RESULT_NOT_YET_HANDLED
        }, context, nil)
        dbus_connection_set_wakeup_main_function(raw, { context in
            guard let context else { return }
            Unmanaged<DBusConnection>.fromOpaque(context).takeUnretainedValue().wake()
        }, context, nil)
        let thread = Thread { [self] in
            threadID.withLock { $0 = pthread_self() }
            run()
            finished.signal()
        }
        thread.name = "vitalgate-dbus"
        thread.start()
    }

    /// Ends the connection: the thread finishes what it is doing, closes the connection and fails whatever
    /// is still queued. Waits for the thread unless called on it. Idempotent.
    func close() {
        let (started, alreadyEnded) = queue.withLock { state in
            state.stopping = true
            return (state.started, state.ended)
        }
        guard started else {
            releaseUnstarted()
            return
        }
        wake()
        if !isOnConnectionThread && !alreadyEnded {
            finished.wait()
            finished.signal()  // a second close() returns at once
        }
    }

    /// Whether the caller is the connection's thread (where a blocking call would deadlock).
    var isOnConnectionThread: Bool {
        threadID.withLock { id in id.map { pthread_equal($0, pthread_self()) != 0 } ?? false }
    }

    /// Whether the thread still runs and accepts work.
    var isOpen: Bool {
        queue.withLock { $0.started && !$0.ended && !$0.stopping }
    }

    // MARK: Work from other threads

    /// Runs `job` on the connection's thread, or at once with `usable` false when the connection has ended;
    /// false in that case.
    @discardableResult
    func perform(_ job: @escaping Job) -> Bool {
        let accepted = queue.withLock { state in
            guard state.started, !state.ended else { return false }
            state.jobs.append(job)
            return true
        }
        if accepted { wake() } else { job(false) }
        return accepted
    }

    /// Sends a message that needs no reply (a method return, an error, a signal) from the connection's
    /// thread; false when the connection has ended.
    @discardableResult
    func send(_ message: DBusMessage) -> Bool {
        perform { [self] usable in
            if usable { _ = dbus_connection_send(raw, message.raw, nil) }
        }
    }

    /// Exports an object: method calls to `path` go to `handler` on the connection's thread, which must
    /// answer each (now, or later through ``send(_:)``).
    func export(_ path: String, handler: @escaping MessageHandler) {
        exported.withLock { $0[path] = handler }
    }

    func unexport(_ path: String) {
        exported.withLock { $0[path] = nil }
    }

    /// Sends a method call and calls `completion` on the connection's thread with the reply's values, the
    /// error reply, or a timeout error once `timeout` has passed.
    func callAsync(destination: String?, path: String, interface: String?, member: String, arguments: [DBusValue] = [],
                   timeout: Duration, completion: @escaping @Sendable (Result<[DBusValue], DBusCallError>) -> Void) {
        let what = (interface.map { $0 + "." } ?? "") + member
        let message: DBusMessage
        do {
            message = try DBusMessage.methodCall(destination: destination, path: path, interface: interface, member: member)
            try message.append(arguments)
        } catch {
            completion(.failure(error))
            return
        }
        let token = queue.withLock { state in
            defer { state.nextToken += 1 }
            return state.nextToken
        }
        // One timer per outstanding call, cancelled when the call ends: an idle connection has no timers.
        let timer = CallTimer(after: timeout) { [weak self] in
            self?.expire(token, what: what, after: timeout)
        }
        let finish: @Sendable (Result<[DBusValue], DBusCallError>) -> Void = { result in
            timer.cancel()
            completion(result)
        }
        perform { [self] usable in
            guard usable else {
                finish(.failure(DBusCallError(name: DBusCallError.disconnectedName,
                                              message: "the connection to the \(busDescription) is closed", member: what)))
                return
            }
            startCall(message, token: token, what: what, completion: finish)
        }
        // Started after the call is queued, so its expiry job can only run after the call has started.
        timer.start()
    }

    /// Sends a method call and blocks the calling thread until the reply arrives or `timeout` passes.
    func call(destination: String?, path: String, interface: String?, member: String, arguments: [DBusValue] = [],
              timeout: Duration) throws(DBusCallError) -> [DBusValue] {
        let what = (interface.map { $0 + "." } ?? "") + member
        guard !isOnConnectionThread else {
            throw .invalid(what, "a blocking D-Bus call was made from the connection's own thread (an event handler); "
                + "it would wait for itself. Call it from another thread")
        }
        let done = DispatchSemaphore(value: 0)
        // nil: waiting; .some: the answer, or the caller gave up (then a late answer is dropped).
        let outcome = Mutex<Result<[DBusValue], DBusCallError>?>(nil)
        callAsync(destination: destination, path: path, interface: interface, member: member, arguments: arguments,
                  timeout: timeout) { result in
            outcome.withLock { if $0 == nil { $0 = result } }
            done.signal()
        }
        // The connection's thread reports the timeout itself; the extra second only matters if that thread is
        // stuck (a blocking event handler), and then the caller still returns.
        let stuck = DBusCallError(name: DBusCallError.timeoutName,
                                  message: "no reply within \(timeout); the D-Bus thread did not answer (is an event handler blocking it?)",
                                  member: what)
        if done.wait(timeout: .now() + Self.interval(timeout) + .seconds(1)) == .timedOut {
            outcome.withLock { if $0 == nil { $0 = .failure(stuck) } }
        }
        switch outcome.withLock({ $0 }) ?? .failure(stuck) {
        case .success(let values): return values
        case .failure(let error): throw error
        }
    }

    /// Subscribes to signals matching `rule` (a D-Bus match rule) through the bus daemon.
    func addMatch(_ rule: String, timeout: Duration) throws(DBusCallError) {
        _ = try call(destination: "org.freedesktop.DBus", path: "/org/freedesktop/DBus", interface: "org.freedesktop.DBus",
                     member: "AddMatch", arguments: [.string(rule)], timeout: timeout)
    }

    // MARK: The connection's thread

    private func wake() {
        wakeWrite.withLock { fd in
            guard let fd else { return }
            var byte: UInt8 = 1
            _ = Glibc.write(fd, &byte, 1)
        }
    }

    private func run() {
        while true {
            runJobs()
            while dbus_connection_dispatch(raw) == DBUS_DISPATCH_DATA_REMAINS {}
            let stopping = queue.withLock { $0.stopping }
            if stopping || dbus_connection_get_is_connected(raw) == 0 { break }
            var events = Int16(POLLIN)
            if dbus_connection_has_messages_to_send(raw) != 0 { events |= Int16(POLLOUT) }
            var fds = [pollfd(fd: socket, events: events, revents: 0), pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)]
            if poll(&fds, 2, -1) < 0 {
                if errno == EINTR { continue }
                break
            }
            if fds[1].revents != 0 { drainWakePipe() }
            if Int32(fds[0].revents) & Int32(POLLNVAL) != 0 { break }
            if fds[0].revents != 0 { _ = dbus_connection_read_write(raw, 0) }
        }
        let lost = dbus_connection_get_is_connected(raw) == 0
        shutDown()
        if lost && !queue.withLock({ $0.stopping }) {
            handlers.withLock { $0.disconnect }?()
        }
        handlers.withLock { $0 = (nil, nil) }
    }

    private func runJobs() {
        let jobs = queue.withLock { state in
            defer { state.jobs = [] }
            return state.jobs
        }
        for job in jobs { job(true) }
    }

    private func drainWakePipe() {
        var buffer = [UInt8](repeating: 0, count: 64)
        while Glibc.read(wakeRead, &buffer, buffer.count) > 0 {}
    }

    /// Closes the connection, fails outstanding calls and queued jobs, and frees the pipe.
    private func shutDown() {
        // Cancelled calls never notify, so their callers hear it here.
        for (_, entry) in pending.sorted(by: { $0.key < $1.key }) {
            entry.box.fail(DBusCallError(name: DBusCallError.disconnectedName,
                                         message: "the \(busDescription) connection ended before the reply", member: entry.box.what))
            dbus_pending_call_cancel(entry.call)
            dbus_pending_call_unref(entry.call)
        }
        pending = [:]
        // The filter stays: nothing dispatches after this, and the connection is freed below.
        dbus_connection_set_wakeup_main_function(raw, nil, nil, nil)
        if dbus_connection_get_is_connected(raw) != 0 { dbus_connection_close(raw) }
        dbus_connection_unref(raw)
        let leftovers = queue.withLock { state in
            state.ended = true
            defer { state.jobs = [] }
            return state.jobs
        }
        for job in leftovers { job(false) }
        wakeWrite.withLock { fd in
            if let open = fd { Glibc.close(open) }
            fd = nil
        }
        Glibc.close(wakeRead)
    }

    private func releaseUnstarted() {
        let release = queue.withLock { state in
            defer { state.ended = true }
            return !state.ended && !state.started
        }
        guard release else { return }
        dbus_connection_close(raw)
        dbus_connection_unref(raw)
        wakeWrite.withLock { fd in
            if let open = fd { Glibc.close(open) }
            fd = nil
        }
        Glibc.close(wakeRead)
    }

    /// Called by libdbus for every incoming message, on this thread, in order.
    private func filter(_ rawMessage: OpaquePointer) -> Bool {
        let message = DBusMessage(retaining: rawMessage)
        switch message.kind {
        case .methodCall:
            if let path = message.path, let handler = exported.withLock({ $0[path] }) {
                return handler(message)
            }
            return handlers.withLock { $0.message }?(message) ?? false
        case .signal:
            // The local Disconnected signal is libdbus's; the loop notices the closed connection itself.
            if message.interface == "org.freedesktop.DBus.Local" { return false }
            _ = handlers.withLock { $0.message }?(message)
            return false
        default:
            return false
        }
    }

    /// Sends `message` with a pending reply; on this thread.
    private func startCall(_ message: DBusMessage, token: UInt64, what: String,
                           completion: @escaping @Sendable (Result<[DBusValue], DBusCallError>) -> Void) {
        var call: OpaquePointer?
        guard dbus_connection_send_with_reply(raw, message.raw, &call, VG_DBUS_TIMEOUT_INFINITE) != 0 else {
            completion(.failure(.noMemory(what)))
            return
        }
        guard let call else {
            completion(.failure(DBusCallError(name: DBusCallError.disconnectedName,
                                              message: "the \(busDescription) connection was lost", member: what)))
            return
        }
        let box = PendingCallBox(token: token, what: what, connection: self, completion: completion)
        let context = Unmanaged.passRetained(box).toOpaque()
        guard dbus_pending_call_set_notify(call, { call, context in
            guard let call, let context else { return }
            Unmanaged<PendingCallBox>.fromOpaque(context).takeUnretainedValue().complete(call)
        }, context, { context in
            guard let context else { return }
            Unmanaged<PendingCallBox>.fromOpaque(context).release()
        }) != 0 else {
            Unmanaged<PendingCallBox>.fromOpaque(context).release()
            dbus_pending_call_cancel(call)
            dbus_pending_call_unref(call)
            completion(.failure(.noMemory(what)))
            return
        }
        pending[token] = (call, box)
        // Everything runs on this thread, so the reply cannot have been dispatched before the notify was set.
    }

    /// The pending call `token` answered; on this thread. Drops libdbus's call object.
    fileprivate func finishCall(_ token: UInt64) {
        if let entry = pending.removeValue(forKey: token) { dbus_pending_call_unref(entry.call) }
    }

    /// Fails call `token` with a timeout if it is still waiting.
    private func expire(_ token: UInt64, what: String, after timeout: Duration) {
        perform { [self] usable in
            guard usable, let entry = pending.removeValue(forKey: token) else { return }
            // Cancelling frees the notify's box without calling it, so the caller hears of the timeout here.
            entry.box.fail(DBusCallError(name: DBusCallError.timeoutName, message: "no reply within \(timeout)", member: what))
            dbus_pending_call_cancel(entry.call)
            dbus_pending_call_unref(entry.call)
        }
    }

    static func interval(_ duration: Duration) -> DispatchTimeInterval {
        let milliseconds = max(0, duration.wholeMilliseconds)
        return .milliseconds(Int(clamping: milliseconds))
    }
}

/// What a pending call reports to: its caller's completion, called once, on the connection's thread.
private final class PendingCallBox: @unchecked Sendable {
    let token: UInt64
    let what: String
    private weak var connection: DBusConnection?
    private var completion: (@Sendable (Result<[DBusValue], DBusCallError>) -> Void)?

    init(token: UInt64, what: String, connection: DBusConnection,
         completion: @escaping @Sendable (Result<[DBusValue], DBusCallError>) -> Void) {
        self.token = token
        self.what = what
        self.connection = connection
        self.completion = completion
    }

    /// The reply (or libdbus's own error for a lost peer) arrived.
    func complete(_ call: OpaquePointer) {
        let result: Result<[DBusValue], DBusCallError>
        if let rawReply = dbus_pending_call_steal_reply(call) {
            let reply = DBusMessage(adopting: rawReply)
            if reply.kind == .error {
                result = .failure(DBusCallError(name: reply.errorName ?? DBusCallError.noReplyName, message: reply.errorText, member: what))
            } else {
                result = .success(reply.arguments())
            }
        } else {
            result = .failure(DBusCallError(name: DBusCallError.noReplyName, message: "the call ended without a reply", member: what))
        }
        connection?.finishCall(token)
        deliver(result)
    }

    func fail(_ error: DBusCallError) {
        deliver(.failure(error))
    }

    private func deliver(_ result: Result<[DBusValue], DBusCallError>) {
        guard let completion else { return }
        self.completion = nil
        completion(result)
    }
}

/// A one-shot timer for a call's timeout. Dispatch sources are thread-safe; Swift's overlay does not mark
/// them Sendable, hence the box.
private final class CallTimer: @unchecked Sendable {
    private let source: DispatchSourceTimer

    init(after timeout: Duration, _ handler: @escaping @Sendable () -> Void) {
        source = DispatchSource.makeTimerSource(queue: .global())
        source.schedule(deadline: .now() + DBusConnection.interval(timeout))
        source.setEventHandler(handler: handler)
    }

    /// Dispatch requires a source to be resumed before it is released; cancelled first, it never fires.
    func start() {
        source.resume()
    }

    func cancel() {
        source.cancel()
    }
}
