#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization
internal import CUdev

/// Finds USB-backed serial (`tty`) and `hidraw` nodes through libudev, now and as they come and go.
///
/// To miss nothing, start the monitor first and enumerate second, then treat events by
/// ``AttachedDevice/syspath``: a device plugged in between the two calls shows up in both (an `.added` for a
/// node already listed is not a second device), and one unplugged in between is reported `.removed`.
///
/// ```swift
/// let discovery = UdevDiscovery()
/// try discovery.startMonitoring { event in inbox.append(event) }   // 1. listen (events wait in an inbox)
/// var present: [String: AttachedDevice] = [:]
/// for device in try discovery.enumerate() { present[device.syspath] = device }   // 2. look
/// // 3. apply the inbox, then every later event, to `present` by syspath: skip an .added equal to what is
/// //    there, and a .removed of a syspath that is not there
/// ```
///
/// `vitalgate devices --watch` (DeviceWatch in the Gateway) does exactly this.
///
/// Nothing here opens a device node. libudev calls block briefly (sysfs reads); `enumerate()` runs them on
/// the caller's thread and the monitor on a thread of its own, never on the Swift concurrency pool.
public final class UdevDiscovery: Sendable {
    private let state = Mutex(State())

    struct State {
        var monitor: UdevMonitorLoop?
        var failure: DeviceIOError?
    }

    public init() {}

    /// A monitor nobody can stop any more ends with its owner.
    deinit { stop() }

    /// The USB-backed tty and hidraw nodes attached now, sorted by node.
    public func enumerate() throws(DeviceIOError) -> [AttachedDevice] {
        guard let udev = udev_new() else {
            throw DeviceIOError.system("udev_new", path: "udev", fix: "check that libudev can read /sys (is /sys mounted?)")
        }
        defer { udev_unref(udev) }
        return try Self.enumerate(udev)
    }

    /// Starts a udev monitor on a dedicated thread and calls `handler` there for each change, in order.
    ///
    /// `add` gives `.added`; `change` gives `.added` again only when the description changed; `remove`
    /// gives `.removed` with the description seen while the node was attached (by then sysfs has forgotten
    /// the USB parents). When the kernel drops events because the socket overflowed, the monitor looks at
    /// what is attached and reports the difference, so the handler's picture stays right.
    /// The handler may call ``stop()``.
    /// `onFailure` is called (on the monitor thread) if the monitor ends by itself: from then on no hotplug
    /// event arrives, which the owner must make visible.
    public func startMonitoring(_ handler: @escaping @Sendable (DeviceEvent) -> Void,
                                onFailure: (@Sendable (DeviceIOError) -> Void)? = nil) throws(DeviceIOError) {
        let loop = try UdevMonitorLoop(handler: handler) { [weak self] error in
            self?.state.withLock { $0.failure = error }
            onFailure?(error)
        }
        let started: Bool = state.withLock { state in
            guard state.monitor == nil else { return false }
            state.monitor = loop
            state.failure = nil
            return true
        }
        guard started else {
            loop.discard()
            throw DeviceIOError(operation: "udev_monitor", path: "udev", fix: "call stop() before starting the monitor again")
        }
        loop.start()
    }

    /// Ends the monitor. When called from another thread it returns after the monitor thread has ended, so
    /// the handler is not called afterwards. Idempotent.
    public func stop() {
        let loop = state.withLock { state in
            defer { state.monitor = nil }
            return state.monitor
        }
        loop?.stop()
    }

    /// Set when the monitor thread ended by itself (the udev socket failed); nil while it runs.
    public var monitorFailure: DeviceIOError? {
        state.withLock { $0.failure }
    }

    static func enumerate(_ udev: OpaquePointer) throws(DeviceIOError) -> [AttachedDevice] {
        guard let enumerator = udev_enumerate_new(udev) else {
            throw DeviceIOError.system("udev_enumerate_new", path: "udev", fix: "check that libudev can read /sys (is /sys mounted?)")
        }
        defer { udev_enumerate_unref(enumerator) }
        for subsystem in UdevDeviceReader.subsystems {
            let status = udev_enumerate_add_match_subsystem(enumerator, subsystem.rawValue)
            if status < 0 {
                throw DeviceIOError.system("udev_enumerate_add_match_subsystem", path: subsystem.rawValue, code: -status,
                                           fix: "check that libudev is usable here")
            }
        }
        let status = udev_enumerate_scan_devices(enumerator)
        if status < 0 {
            throw DeviceIOError.system("udev_enumerate_scan_devices", path: "/sys", code: -status,
                                       fix: "check that /sys is mounted and readable")
        }
        var devices: [AttachedDevice] = []
        var entry = udev_enumerate_get_list_entry(enumerator)
        while let current = entry {
            entry = udev_list_entry_get_next(current)
            // A node may vanish between the scan and this read: then it is simply not listed.
            guard let name = udev_list_entry_get_name(current), let device = udev_device_new_from_syspath(udev, name) else { continue }
            defer { udev_device_unref(device) }
            if let attached = UdevDeviceReader.read(device) { devices.append(attached) }
        }
        return devices.sorted { ($0.node, $0.syspath) < ($1.node, $1.syspath) }
    }
}
