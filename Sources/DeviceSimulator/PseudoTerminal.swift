import Synchronization
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
/// Both descriptors are closed when the value is released (or the master earlier, by ``hangUp()``); the
/// host then sees a hang-up, as when a USB adapter is unplugged. ``init(adoptingMaster:)`` plays on a
/// pseudo-terminal someone else created, such as umockdev's emulated serial node.
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

    /// Whether the master is still open: ``hangUp()`` closes it early, exactly once.
    private let masterOpen = Atomic<Bool>(true)

    /// Creates a pair with `posix_openpt`, `grantpt`, `unlockpt` and `ptsname_r`, and makes both sides raw.
    public init() throws(SimulatorError) {
        let fix = "check that /dev/ptmx exists and devpts is mounted (in containers: mount -t devpts devpts /dev/pts)"
        let master = vg_posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC)
        guard master >= 0 else { throw .system("posix_openpt", errno, fix: fix) }
        guard vg_grantpt(master) == 0 else {
            let code = errno
            _ = Glibc.close(master)
            throw .system("grantpt", code, fix: fix)
        }
        do {
            (slavePath, heldSlave, readWatch) = try Self.prepare(master: master, fix: fix)
        } catch {
            _ = Glibc.close(master)
            throw error
        }
        masterDescriptor = master
    }

    /// Takes over the master side of an existing pseudo-terminal, such as the one umockdev's testbed
    /// gives for an emulated serial node (`UMockdev.Testbed.get_dev_fd`), so the simulator plays the
    /// device behind that node.
    ///
    /// The slave is found with `ptsname_r` and held open like a pair this type created; both sides are
    /// made raw, and the master becomes non-blocking and close-on-exec. On success the terminal owns
    /// `descriptor` and closes it when released (or at ``hangUp()``); on failure the descriptor stays
    /// open and remains the caller's.
    ///
    /// The host sees a hang-up only when every copy of the master is closed: a harness that passed its
    /// master to this process must close its own copy.
    public init(adoptingMaster descriptor: Int32) throws(SimulatorError) {
        let fix = "pass the master side of a pseudo-terminal (opened from /dev/ptmx), open in this process"
        guard descriptor >= 0, fcntl(descriptor, F_GETFD) >= 0 else {
            throw .system("adopting descriptor \(descriptor)", descriptor < 0 ? EBADF : errno, fix: fix)
        }
        (slavePath, heldSlave, readWatch) = try Self.prepare(master: descriptor, fix: fix)
        masterDescriptor = descriptor
    }

    /// Unlocks `master` (a master from posix_openpt starts locked; an adopted one may already be
    /// unlocked, and unlocking twice is harmless), finds and opens its slave, makes both sides raw, makes
    /// the master non-blocking and close-on-exec, and watches the slave for reads. Never closes `master`.
    private static func prepare(master: Int32, fix: String) throws(SimulatorError) -> (path: String, slave: Int32, watch: Int32) {
        func fail(_ call: String, closing slave: Int32 = -1) -> SimulatorError {
            let code = errno
            if slave >= 0 { _ = Glibc.close(slave) }
            return .system(call, code, fix: fix)
        }
        guard vg_unlockpt(master) == 0 else { throw fail("unlockpt") }
        var name = [CChar](repeating: 0, count: 256)
        guard name.withUnsafeMutableBufferPointer({ vg_ptsname_r(master, $0.baseAddress, $0.count) }) == 0 else { throw fail("ptsname_r") }
        let path = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let slave = Glibc.open(path, O_RDWR | O_NOCTTY | O_CLOEXEC)
        guard slave >= 0 else { throw fail("open \(path)") }
        guard makeRaw(slave) else { throw fail("tcsetattr on \(path)", closing: slave) }
        // The master has its own line discipline for the host-to-device direction; Linux starts it raw,
        // set it anyway so nothing depends on that default.
        guard makeRaw(master) else { throw fail("tcsetattr on the master", closing: slave) }
        // Not every C library honours O_CLOEXEC in posix_openpt, and an adopted master was inherited:
        // a spawned host must not inherit the master.
        _ = fcntl(master, F_SETFD, FD_CLOEXEC)
        let flags = fcntl(master, F_GETFL)
        guard flags >= 0, fcntl(master, F_SETFL, flags | O_NONBLOCK) == 0 else { throw fail("fcntl O_NONBLOCK", closing: slave) }
        var watch = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        if watch >= 0, inotify_add_watch(watch, path, UInt32(IN_ACCESS)) < 0 {
            _ = Glibc.close(watch)
            watch = -1
        }
        return (path, slave, watch)
    }

    deinit {
        if readWatch >= 0 { _ = Glibc.close(readWatch) }
        _ = Glibc.close(heldSlave)
        if masterOpen.load(ordering: .acquiring) { _ = Glibc.close(masterDescriptor) }
    }

    /// Closes the master now, as when a USB adapter is unplugged: the host's reads fail with EIO and its
    /// polls report POLLHUP. Later calls do nothing; ``masterDescriptor`` must not be used afterwards.
    public func hangUp() {
        if masterOpen.exchange(false, ordering: .acquiringAndReleasing) { _ = Glibc.close(masterDescriptor) }
    }

    /// Whether ``hangUp()`` was called.
    public var isHungUp: Bool { !masterOpen.load(ordering: .acquiring) }

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
