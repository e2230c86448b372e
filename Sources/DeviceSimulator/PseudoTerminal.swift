#if canImport(Glibc)
import Glibc
#endif
internal import CPseudoTerminal

/// A pseudo-terminal pair standing in for a serial port: the simulator plays the device on the master
/// side, the host opens ``slavePath`` as it would open `/dev/ttyUSB0`.
///
/// Both sides are raw (`cfmakeraw`), so every byte passes unchanged: no echo, no CR/LF translation, no
/// XON/XOFF, no signals from control characters. The simulator keeps one descriptor of the slave open
/// for the pair's lifetime, for three reasons: the raw settings stay in force until the host applies its
/// own, bytes written before the host opens the port wait in the slave's input queue instead of being
/// lost, and ``unreadByteCount()`` can tell how much the host has not read yet.
///
/// Both descriptors are closed when the value is released; the host then sees a hang-up, as when a
/// USB adapter is unplugged.
public final class PseudoTerminal: Sendable {
    /// The device path the host opens, such as `/dev/pts/7`.
    public let slavePath: String
    /// The master side, non-blocking. Exposed for test tools that need to poll it themselves.
    public let masterDescriptor: Int32
    /// The simulator's own descriptor of the slave (see the type's documentation).
    let heldSlave: Int32
    /// An inotify descriptor reporting reads of the slave (`IN_ACCESS`), or -1 where that is not possible.
    /// The simulator's own slave descriptor never reads, so every event is the host reading.
    let readWatch: Int32

    /// Creates a pair with `posix_openpt`, `grantpt`, `unlockpt` and `ptsname_r`, and makes both sides raw.
    public init() throws(SimulatorError) {
        let fix = "check that /dev/ptmx exists and devpts is mounted (in containers: mount -t devpts devpts /dev/pts)"
        let master = vg_posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC)
        guard master >= 0 else { throw .system("posix_openpt", errno, fix: fix) }
        func fail(_ call: String, extra: Int32 = -1) -> SimulatorError {
            let code = errno
            if extra >= 0 { _ = Glibc.close(extra) }
            _ = Glibc.close(master)
            return .system(call, code, fix: fix)
        }
        guard vg_grantpt(master) == 0 else { throw fail("grantpt") }
        guard vg_unlockpt(master) == 0 else { throw fail("unlockpt") }
        var name = [CChar](repeating: 0, count: 256)
        guard name.withUnsafeMutableBufferPointer({ vg_ptsname_r(master, $0.baseAddress, $0.count) }) == 0 else { throw fail("ptsname_r") }
        let path = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let slave = Glibc.open(path, O_RDWR | O_NOCTTY | O_CLOEXEC)
        guard slave >= 0 else { throw fail("open \(path)") }
        guard Self.makeRaw(slave) else { throw fail("tcsetattr on \(path)", extra: slave) }
        // The master has its own line discipline for the host-to-device direction; Linux starts it raw,
        // set it anyway so nothing depends on that default.
        guard Self.makeRaw(master) else { throw fail("tcsetattr on the master", extra: slave) }
        // Not every C library honours O_CLOEXEC in posix_openpt; a spawned host must not inherit the master.
        _ = fcntl(master, F_SETFD, FD_CLOEXEC)
        let flags = fcntl(master, F_GETFL)
        guard flags >= 0, fcntl(master, F_SETFL, flags | O_NONBLOCK) == 0 else { throw fail("fcntl O_NONBLOCK", extra: slave) }
        var watch = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        if watch >= 0, inotify_add_watch(watch, path, UInt32(IN_ACCESS)) < 0 {
            _ = Glibc.close(watch)
            watch = -1
        }
        self.slavePath = path
        self.masterDescriptor = master
        self.heldSlave = slave
        self.readWatch = watch
    }

    deinit {
        if readWatch >= 0 { _ = Glibc.close(readWatch) }
        _ = Glibc.close(heldSlave)
        _ = Glibc.close(masterDescriptor)
    }

    /// Whether ``hostHasRead()`` can tell anything (inotify is available for the slave).
    public var observesReads: Bool { readWatch >= 0 }

    /// Whether the host has read from the terminal since the last call; always false when reads cannot
    /// be observed.
    public func hostHasRead() -> Bool {
        guard readWatch >= 0 else { return false }
        var events = [UInt8](repeating: 0, count: 1024)
        var any = false
        while true {
            let count = events.withUnsafeMutableBytes { Glibc.read(readWatch, $0.baseAddress, $0.count) }
            if count > 0 { any = true; continue }
            if count < 0 && errno == EINTR { continue }
            return any
        }
    }

    static func makeRaw(_ descriptor: Int32) -> Bool {
        var settings = termios()
        guard tcgetattr(descriptor, &settings) == 0 else { return false }
        cfmakeraw(&settings)
        return tcsetattr(descriptor, TCSANOW, &settings) == 0
    }

    /// Bytes the simulator wrote that the host has not read yet (the slave's input queue), or nil when
    /// the kernel does not say.
    public func unreadByteCount() -> Int? {
        var count: Int32 = 0
        return ioctl(heldSlave, UInt(FIONREAD), &count) == 0 ? Int(count) : nil
    }

    /// Waits until the host has read everything written to it, or `timeout` passes. Returns whether the
    /// queue was empty. The queue must stay empty for 200 ms, because bytes written to the master reach
    /// the slave's queue through a kernel work queue, late on a busy machine.
    public func waitUntilDrained(timeout: Duration) -> Bool {
        let clock = ContinuousClock()
        let end = clock.now.advanced(by: timeout)
        var emptySince: ContinuousClock.Instant?
        while true {
            let now = clock.now
            if unreadByteCount() ?? 0 == 0 {
                if let since = emptySince {
                    if now - since >= .milliseconds(200) { return true }
                } else {
                    emptySince = now
                }
            } else {
                emptySince = nil
            }
            if now >= end { return false }
            _ = poll(nil, 0, 10)
        }
    }
}

/// The C library's text for an `errno` value.
func errnoDescription(_ code: Int32) -> String {
    guard let text = strerror(code) else { return "error \(code)" }
    return String(cString: text) + " (errno \(code))"
}
