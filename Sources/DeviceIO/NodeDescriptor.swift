import Synchronization
import VitalModel
#if canImport(Glibc)
import Glibc
#endif

/// The descriptor of an open device node or connected stream socket, shared by ``SerialPort``,
/// ``HidrawPort`` and ``RfcommLink``: poll-based reads that a self-pipe can interrupt, complete writes
/// with a time limit, and a close that is safe while another thread is blocked in a read.
///
/// The descriptor is closed only once no read or write is using it, so a number the kernel hands out
/// again can never be polled or written by mistake.
final class NodeDescriptor: Sendable {
    /// What the descriptor is: it decides which errors mean "the device went away" and how bytes are written.
    enum Kind: Sendable {
        /// A tty or hidraw node: the kernel reports a vanished device as EIO, ENODEV or ENXIO.
        case deviceNode
        /// A connected stream socket (RFCOMM): the peer hanging up or the radio link dropping comes as
        /// ECONNRESET, ENOTCONN, EPIPE, ETIMEDOUT, EHOSTDOWN or ECONNABORTED, and writes must not raise SIGPIPE.
        case socket
    }

    let path: String
    let kind: Kind
    /// Read end of the self-pipe; in every poll of a read.
    private let wakeRead: Int32
    private let wakeWrite: Int32
    private let state: Mutex<State>

    private struct State {
        var descriptor: Int32
        var closed = false
        /// Reads and writes in progress.
        var users = 0
        /// Runs just before the descriptor is closed (e.g. TIOCNXCL).
        var beforeClose: (@Sendable (Int32) -> Void)?
        /// An interrupt was requested and no read has returned `.interrupted` for it yet.
        var interruptPending = false
    }

    /// How long a write may wait for the device to take its bytes.
    static let writeLimit = Duration.seconds(2)
    static let disconnectFix = "the device was unplugged, switched off or hung up; reconnect it and the session starts again"

    /// Takes ownership of `descriptor` (closed on failure too).
    init(path: String, descriptor: Int32, kind: Kind = .deviceNode) throws(DeviceIOError) {
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else {
            let code = errno
            _ = Glibc.close(descriptor)
            throw .system("pipe", path: path, code: code, fix: "the process may be out of file descriptors (raise ulimit -n)")
        }
        for end in ends {
            _ = fcntl(end, F_SETFD, FD_CLOEXEC)
            _ = fcntl(end, F_SETFL, fcntl(end, F_GETFL) | O_NONBLOCK)
        }
        self.path = path
        self.kind = kind
        self.wakeRead = ends[0]
        self.wakeWrite = ends[1]
        self.state = Mutex(State(descriptor: descriptor))
    }

    deinit {
        let descriptor = state.withLock { state -> Int32 in
            defer { state.descriptor = -1 }
            return state.closed ? -1 : state.descriptor
        }
        if descriptor >= 0 { _ = Glibc.close(descriptor) }
        _ = Glibc.close(wakeRead)
        _ = Glibc.close(wakeWrite)
    }

    /// Sets work to do on the descriptor right before it is closed.
    func onClose(_ body: @escaping @Sendable (Int32) -> Void) {
        state.withLock { $0.beforeClose = body }
    }

    /// Wakes a read blocked in poll, or the next one. Requests before that read returns count as one, so
    /// the pipe never holds more than one byte.
    func interrupt() {
        state.withLock { state in
            guard !state.interruptPending else { return }
            state.interruptPending = true
            let byte: UInt8 = 1
            _ = withUnsafePointer(to: byte) { Glibc.write(wakeWrite, $0, 1) }
        }
    }

    func close() {
        let pending = state.withLock { state -> (Int32, (@Sendable (Int32) -> Void)?)? in
            guard !state.closed else { return nil }
            state.closed = true
            return state.users == 0 ? (state.descriptor, state.beforeClose) : nil
        }
        if let (descriptor, beforeClose) = pending {
            beforeClose?(descriptor)
            _ = Glibc.close(descriptor)
        } else {
            // A read may be blocked in poll: wake it so it lets go of the descriptor.
            interrupt()
        }
    }

    /// Runs `body` with the descriptor, which stays open meanwhile even if ``close()`` is called.
    func using<T>(_ operation: String, _ body: (Int32) throws(DeviceIOError) -> T) throws(DeviceIOError) -> T {
        let descriptor = state.withLock { state -> Int32? in
            guard !state.closed else { return nil }
            state.users += 1
            return state.descriptor
        }
        guard let descriptor else {
            throw DeviceIOError(operation: operation, path: path, fix: "the port was closed; open it again")
        }
        defer {
            let pending = state.withLock { state -> (@Sendable (Int32) -> Void)?? in
                state.users -= 1
                return state.closed && state.users == 0 ? .some(state.beforeClose) : nil
            }
            if let beforeClose = pending {
                beforeClose?(descriptor)
                _ = Glibc.close(descriptor)
            }
        }
        return try body(descriptor)
    }

    // MARK: Reading

    /// One read of at most `capacity` bytes once input arrives, or `.timedOut` / `.interrupted`.
    func read(timeout: Duration?, capacity: Int) throws(DeviceIOError) -> LinkInput {
        try using("read") { descriptor throws(DeviceIOError) -> LinkInput in
            let clock = ContinuousClock()
            let deadline = timeout.map { clock.now.advanced(by: $0) }
            while true {
                let wait: Int32 = deadline.map { Self.milliseconds(until: $0, clock: clock) } ?? -1
                var descriptors = [pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0),
                                   pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)]
                let ready = poll(&descriptors, 2, wait)
                if ready < 0 {
                    let code = errno
                    if code == EINTR { continue }
                    throw .system("poll", path: path, code: code, fix: "report this as a bug")
                }
                if descriptors[0].revents != 0 {
                    drainWakePipe()
                    return .interrupted
                }
                if ready == 0 {
                    if let deadline, clock.now >= deadline { return .timedOut }
                    continue
                }
                let revents = descriptors[1].revents
                if revents & Int16(POLLNVAL) != 0 {
                    throw DeviceIOError(operation: "poll", path: path, fix: "the descriptor is not open; report this as a bug")
                }
                // Read even when a hang-up is flagged too: bytes that arrived before it are still there.
                if revents & Int16(POLLIN) != 0 {
                    if let bytes = try readOnce(descriptor, capacity: capacity) { return .bytes(bytes) }
                    continue
                }
                if revents & Int16(POLLHUP | POLLERR) != 0 {
                    // A socket says why (SO_ERROR): a reset, or a radio link that timed out.
                    let code = kind == .socket ? Self.pendingSocketError(descriptor) : 0
                    throw DeviceIOError(operation: code == 0 ? "poll" : "read", path: path, code: code, fix: Self.disconnectFix,
                                        isDisconnect: true)
                }
            }
        }
    }

    /// The bytes one `read` returned; nil when there was nothing after all (EAGAIN).
    private func readOnce(_ descriptor: Int32, capacity: Int) throws(DeviceIOError) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: capacity)
        while true {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
            if count > 0 { return Array(buffer[0..<count]) }
            if count == 0 {
                // End of file on a tty or hidraw node: it was hung up or removed.
                throw DeviceIOError(operation: "read", path: path, fix: Self.disconnectFix, isDisconnect: true)
            }
            let code = errno
            if isDisconnect(code) {
                throw .system("read", path: path, code: code, fix: Self.disconnectFix, isDisconnect: true)
            }
            switch code {
            case EINTR: continue
            case EAGAIN: return nil
            default:
                throw .system("read", path: path, code: code, fix: "check the device and its cable; if it persists, unplug and replug it")
            }
        }
    }

    /// Takes the interrupt: a later ``interrupt()`` wakes the next read.
    private func drainWakePipe() {
        state.withLock { state in
            state.interruptPending = false
            var sink = [UInt8](repeating: 0, count: 64)
            while sink.withUnsafeMutableBytes({ Glibc.read(wakeRead, $0.baseAddress, $0.count) }) > 0 {}
        }
    }

    // MARK: Writing

    /// Writes all of `bytes`, retrying partial writes and waiting (poll) while the device is not ready,
    /// for at most ``writeLimit``.
    func write(_ bytes: [UInt8], stalledFix: String) throws(DeviceIOError) {
        try using("write") { descriptor throws(DeviceIOError) in
            let clock = ContinuousClock()
            let deadline = clock.now.advanced(by: Self.writeLimit)
            var offset = 0
            while offset < bytes.count {
                let written = bytes[offset...].withUnsafeBytes { writeOnce(descriptor, $0) }
                if written > 0 {
                    offset += written
                    continue
                }
                let code = written < 0 ? errno : EAGAIN
                if isDisconnect(code) {
                    throw .system("write", path: path, code: code, fix: Self.disconnectFix, isDisconnect: true)
                }
                switch code {
                case EINTR: continue
                case EAGAIN: break
                default:
                    throw .system("write", path: path, code: code, fix: "check the device and its cable; if it persists, unplug and replug it")
                }
                guard clock.now < deadline else {
                    throw .system("write", path: path, code: ETIMEDOUT,
                                  fix: "the device took \(offset) of \(bytes.count) bytes in \(Self.writeLimit); " + stalledFix)
                }
                var descriptors = [pollfd(fd: descriptor, events: Int16(POLLOUT), revents: 0)]
                let ready = poll(&descriptors, 1, Self.milliseconds(until: deadline, clock: clock))
                if ready < 0, errno != EINTR {
                    throw .system("poll", path: path, code: errno, fix: "report this as a bug")
                }
                let revents = descriptors[0].revents
                if ready > 0, revents & Int16(POLLOUT) == 0, revents & Int16(POLLHUP | POLLERR) != 0 {
                    throw DeviceIOError(operation: "write", path: path, fix: Self.disconnectFix, isDisconnect: true)
                }
            }
        }
    }

    /// One write(2), or send(2) without SIGPIPE on a socket: a peer that hung up must end the session,
    /// not the process.
    private func writeOnce(_ descriptor: Int32, _ bytes: UnsafeRawBufferPointer) -> Int {
        switch kind {
        case .deviceNode: Glibc.write(descriptor, bytes.baseAddress, bytes.count)
        case .socket: Glibc.send(descriptor, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL))
        }
    }

    /// Whether `code` from a read or write means the device is gone.
    func isDisconnect(_ code: Int32) -> Bool {
        switch kind {
        case .deviceNode: [EIO, ENODEV, ENXIO, EPIPE].contains(code)
        case .socket: [ECONNRESET, ENOTCONN, EPIPE, ETIMEDOUT, EHOSTDOWN, ECONNABORTED, EIO].contains(code)
        }
    }

    /// The error a socket has pending (SO_ERROR), 0 when none or when it cannot be read.
    static func pendingSocketError(_ descriptor: Int32) -> Int32 {
        var error: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(descriptor, SOL_SOCKET, SO_ERROR, &error, &length) == 0 else { return 0 }
        return error
    }

    // MARK: Time

    /// Milliseconds from now until `deadline`, rounded up so a poll never wakes just before it.
    static func milliseconds(until deadline: ContinuousClock.Instant, clock: ContinuousClock) -> Int32 {
        let now = clock.now
        guard deadline > now else { return 0 }
        return Int32(clamping: (deadline - now).milliseconds(roundingUp: true))
    }
}
