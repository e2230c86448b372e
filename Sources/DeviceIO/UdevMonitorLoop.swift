#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization
internal import CUdev

/// One run of ``UdevDiscovery``'s monitor: a udev netlink socket read by a thread of its own, which a
/// self-pipe wakes to stop.
///
/// The udev objects are used by that thread only (libudev objects are not thread-safe); `stop()` touches
/// just the pipe's write end, under a lock, so it never writes to a descriptor the thread has closed.
final class UdevMonitorLoop: @unchecked Sendable {
    private let udev: OpaquePointer
    private let monitor: OpaquePointer
    private let monitorFD: Int32
    private let wakeRead: Int32
    private let wakeWrite: Mutex<Int32?>
    private let handler: @Sendable (DeviceEvent) -> Void
    private let onFailure: @Sendable (DeviceIOError) -> Void
    private let finished = DispatchSemaphore(value: 0)
    private let threadID = Mutex<pthread_t?>(nil)
    /// What was reported attached, by syspath: a `remove` is answered from here because the USB parents'
    /// sysfs attributes are gone by the time it arrives. Used by the monitor thread only (and by init).
    private var known: [String: AttachedDevice] = [:]

    static let fix = "check that udev is running (systemd-udevd) and that this process may open netlink sockets"

    init(handler: @escaping @Sendable (DeviceEvent) -> Void, onFailure: @escaping @Sendable (DeviceIOError) -> Void) throws(DeviceIOError) {
        guard let udev = udev_new() else {
            throw DeviceIOError.system("udev_new", path: "udev", fix: "check that libudev can read /sys (is /sys mounted?)")
        }
        guard let monitor = udev_monitor_new_from_netlink(udev, "udev") else {
            let code = errno
            udev_unref(udev)
            throw DeviceIOError.system("udev_monitor_new_from_netlink", path: "udev", code: code, fix: Self.fix)
        }
        var resources = (udev: udev, monitor: monitor, pipe: [Int32](repeating: -1, count: 2))
        func release() {
            udev_monitor_unref(resources.monitor)
            udev_unref(resources.udev)
            for fd in resources.pipe where fd >= 0 { Glibc.close(fd) }
        }
        for subsystem in UdevDeviceReader.subsystems {
            let status = udev_monitor_filter_add_match_subsystem_devtype(monitor, subsystem.rawValue, nil)
            if status < 0 {
                release()
                throw DeviceIOError.system("udev_monitor_filter_add_match_subsystem_devtype", path: subsystem.rawValue, code: -status, fix: Self.fix)
            }
        }
        // A larger buffer makes overflow (ENOBUFS) rarer when many nodes appear at once; it needs privileges
        // and is only a help, so failing here is fine.
        _ = udev_monitor_set_receive_buffer_size(monitor, 1 << 20)
        let status = udev_monitor_enable_receiving(monitor)
        if status < 0 {
            release()
            throw DeviceIOError.system("udev_monitor_enable_receiving", path: "udev", code: -status, fix: Self.fix)
        }
        // Glibc's module does not declare pipe2 (it needs _GNU_SOURCE), so the flags are set one by one.
        guard pipe(&resources.pipe) == 0,
              resources.pipe.allSatisfy({ fcntl($0, F_SETFD, FD_CLOEXEC) == 0 && fcntl($0, F_SETFL, O_NONBLOCK) == 0 }) else {
            let code = errno
            release()
            throw DeviceIOError.system("pipe", path: "udev monitor", code: code, fix: "raise the open-file limit (ulimit -n)")
        }
        // Listening already: whatever changes from here on arrives as an event after this snapshot.
        let present: [AttachedDevice]
        do {
            present = try UdevDiscovery.enumerate(udev)
        } catch {
            release()
            throw error
        }
        self.udev = udev
        self.monitor = monitor
        self.monitorFD = udev_monitor_get_fd(monitor)
        self.wakeRead = resources.pipe[0]
        self.wakeWrite = Mutex(resources.pipe[1])
        self.handler = handler
        self.onFailure = onFailure
        for device in present { known[device.syspath] = device }
    }

    func start() {
        let thread = Thread { [self] in
            threadID.withLock { $0 = pthread_self() }
            if let failure = run() { onFailure(failure) }
            release()
            finished.signal()
        }
        thread.name = "vitalgate-udev"
        thread.start()
    }

    /// Wakes the thread and, unless called from it (by the handler), waits until it has ended.
    func stop() {
        wakeWrite.withLock { fd in
            guard let fd else { return }
            var byte: UInt8 = 1
            _ = Glibc.write(fd, &byte, 1)
        }
        let onOwnThread = threadID.withLock { id in id.map { pthread_equal($0, pthread_self()) != 0 } ?? false }
        if !onOwnThread {
            finished.wait()
            finished.signal()  // a second stop() returns at once
        }
    }

    /// Frees everything of a loop that never started.
    func discard() {
        release()
    }

    private func release() {
        wakeWrite.withLock { fd in
            if let open = fd { Glibc.close(open) }
            fd = nil
        }
        Glibc.close(wakeRead)
        udev_monitor_unref(monitor)
        udev_unref(udev)
    }

    /// Reads events until stopped; returns the error that ended it otherwise.
    private func run() -> DeviceIOError? {
        var consecutiveErrors = 0
        while true {
            var fds = [pollfd(fd: monitorFD, events: Int16(POLLIN), revents: 0), pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)]
            if poll(&fds, 2, -1) < 0 {
                if errno == EINTR { continue }
                return DeviceIOError.system("poll", path: "udev monitor", fix: Self.fix)
            }
            if fds[1].revents != 0 { return nil }
            let events = Int32(fds[0].revents)
            if events & Int32(POLLNVAL) != 0 {
                return DeviceIOError(operation: "poll", path: "udev monitor", code: EBADF, fix: Self.fix)
            }
            guard events & Int32(POLLIN | POLLERR) != 0 else { continue }
            if receive() {
                consecutiveErrors = 0
            } else {
                consecutiveErrors += 1
                // A socket that keeps failing would spin this thread; give up and say so.
                if consecutiveErrors > 100 {
                    return DeviceIOError.system("udev_monitor_receive_device", path: "udev monitor", fix: Self.fix)
                }
            }
        }
    }

    /// Handles one event; false when the socket reported an error.
    private func receive() -> Bool {
        errno = 0
        guard let device = udev_monitor_receive_device(monitor) else {
            let code = errno
            if code == ENOBUFS {
                // The kernel dropped events: compare what is attached with what was reported.
                resynchronize()
                return true
            }
            return code == 0 || code == EAGAIN || code == EINTR
        }
        defer { udev_device_unref(device) }
        handle(action: UdevDeviceReader.string(udev_device_get_action(device)) ?? "", device: device)
        return true
    }

    private func handle(action: String, device: OpaquePointer) {
        let syspath = UdevDeviceReader.string(udev_device_get_syspath(device)) ?? ""
        switch action {
        case "remove":
            if let gone = known.removeValue(forKey: syspath) ?? UdevDeviceReader.readFromProperties(device) {
                handler(.removed(gone))
            }
        case "move":
            if let old = UdevDeviceReader.property(device, "DEVPATH_OLD"), let gone = known.removeValue(forKey: "/sys" + old) {
                handler(.removed(gone))
            }
            report(device, syspath: syspath, always: true)
        case "add":
            report(device, syspath: syspath, always: true)
        case "change", "bind":
            report(device, syspath: syspath, always: false)
        default:
            break
        }
    }

    /// Reads the node again; reports it unless `always` is false and nothing about it changed.
    private func report(_ device: OpaquePointer, syspath: String, always: Bool) {
        guard let attached = UdevDeviceReader.read(device) else { return }
        let previous = known.updateValue(attached, forKey: syspath)
        if always || previous != attached { handler(.added(attached)) }
    }

    private func resynchronize() {
        guard let present = try? UdevDiscovery.enumerate(udev) else { return }
        let now = Dictionary(present.map { ($0.syspath, $0) }) { first, _ in first }
        for (syspath, gone) in known.sorted(by: { $0.key < $1.key }) where now[syspath] == nil {
            known[syspath] = nil
            handler(.removed(gone))
        }
        for device in present where known[device.syspath] != device {
            known[device.syspath] = device
            handler(.added(device))
        }
    }
}
