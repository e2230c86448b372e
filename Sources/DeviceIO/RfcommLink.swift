internal import CBluetooth
import VitalModel
#if canImport(Glibc)
import Glibc
#endif

/// A Bluetooth Classic serial link (SPP) to a device: an RFCOMM socket connected through the kernel's
/// Bluetooth stack (libbluetooth's address types), read and written like a serial port.
///
/// SPP devices speak the same byte protocols as USB-serial ones, so a profile's engine runs over this
/// link unchanged. The link's ``path`` names the device for logs and errors: `rfcomm:C4:F3:12:53:F2:C9:ch1`.
///
/// ```swift
/// let link = try RfcommLink.connect(address: EUI48("C4:F3:12:53:F2:C9")!, channel: 1, timeout: .seconds(20))
/// defer { link.close() }
/// if case .bytes(let bytes) = try link.read(timeout: .seconds(1)) { … }
/// ```
public final class RfcommLink: DeviceLink {
    public let path: String
    /// The device's Bluetooth address.
    public let address: EUI48
    /// The RFCOMM channel the device's serial service listens on.
    public let channel: Int
    let node: NodeDescriptor

    /// RFCOMM server channels a device can offer.
    public static let channels = 1...30

    init(path: String, address: EUI48, channel: Int, node: NodeDescriptor) {
        self.path = path
        self.address = address
        self.channel = channel
        self.node = node
    }

    deinit { node.close() }

    /// `rfcomm:C4:F3:12:53:F2:C9:ch1`: the address as `bluetoothctl` writes it, and the channel.
    public static func path(address: EUI48, channel: Int) -> String {
        "rfcomm:" + address.bluetoothText + ":ch\(channel)"
    }

    /// Connects to `address` on `channel`, waiting at most `timeout` for the device to answer.
    ///
    /// The socket is non-blocking from the start; the connect is bounded by poll and `timeout`, and
    /// `cancellation` (if given) ends it early with an `ECANCELED` error. Blocks the calling thread: call
    /// it on a dedicated thread. Errors say what to do: a kernel without Bluetooth or RFCOMM, a service
    /// not allowed Bluetooth sockets, no adapter, a device that is off, out of range or not paired, a
    /// wrong channel.
    public static func connect(address: EUI48, channel: Int, timeout: Duration,
                               cancellation: LinkCancellation? = nil) throws(DeviceIOError) -> RfcommLink {
        let path = path(address: address, channel: channel)
        guard channels.contains(channel) else {
            throw DeviceIOError(operation: "connect", path: path,
                                fix: "\(channel) is not an RFCOMM channel (they are 1 to 30); " + channelFix(address))
        }
        guard timeout > .zero else {
            throw DeviceIOError(operation: "connect", path: path, fix: "give a connect timeout above zero (\(timeout) was given); report this as a bug")
        }
        if cancellation?.isCancelled == true { throw cancelled(path) }
        let descriptor = vg_rfcomm_socket()
        guard descriptor >= 0 else {
            let code = errno
            throw .system("socket", path: path, code: code, fix: socketFix(code))
        }
        let node = try NodeDescriptor(path: path, descriptor: descriptor, kind: .socket)
        do throws(DeviceIOError) {
            try completeConnect(descriptor, address: address, channel: channel, timeout: timeout, cancellation: cancellation, path: path)
        } catch {
            node.close()
            throw error
        }
        return RfcommLink(path: path, address: address, channel: channel, node: node)
    }

    public func read(timeout: Duration?) throws(DeviceIOError) -> LinkInput {
        try node.read(timeout: timeout, capacity: 4096)
    }

    public func write(_ bytes: [UInt8]) throws(DeviceIOError) {
        try node.write(bytes, stalledFix: "the device is not taking bytes over Bluetooth; bring it closer, or switch it off and on")
    }

    public func interrupt() { node.interrupt() }

    public func close() { node.close() }

    // MARK: Connecting

    /// Starts the connect and waits for its end, the deadline or the cancellation.
    private static func completeConnect(_ descriptor: Int32, address: EUI48, channel: Int, timeout: Duration,
                                        cancellation: LinkCancellation?, path: String) throws(DeviceIOError) {
        let started = address.bytes.withUnsafeBufferPointer { vg_rfcomm_connect(descriptor, $0.baseAddress, UInt8(channel)) }
        if started == 0 { return }
        let code = errno
        // EINTR: a non-blocking connect goes on in the background, as with EINPROGRESS.
        guard code == EINPROGRESS || code == EINTR else {
            throw .system("connect", path: path, code: code, fix: connectFix(code, address: address, channel: channel, timeout: timeout))
        }
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        while true {
            var descriptors = [pollfd(fd: descriptor, events: Int16(POLLOUT), revents: 0),
                               pollfd(fd: cancellation?.descriptor ?? -1, events: Int16(POLLIN), revents: 0)]
            let ready = poll(&descriptors, 2, NodeDescriptor.milliseconds(until: deadline, clock: clock))
            if ready < 0 {
                let pollCode = errno
                if pollCode == EINTR { continue }
                throw .system("poll", path: path, code: pollCode, fix: "report this as a bug")
            }
            if descriptors[1].revents != 0 || cancellation?.isCancelled == true { throw cancelled(path) }
            if descriptors[0].revents != 0 {
                var result = vg_socket_error(descriptor)
                if result == 0 { return }
                if result < 0 { result = errno }
                throw .system("connect", path: path, code: result, fix: connectFix(result, address: address, channel: channel, timeout: timeout))
            }
            if clock.now >= deadline {
                throw .system("connect", path: path, code: ETIMEDOUT, fix: connectFix(ETIMEDOUT, address: address, channel: channel, timeout: timeout))
            }
        }
    }

    static func cancelled(_ path: String) -> DeviceIOError {
        DeviceIOError(operation: "connect", path: path, code: ECANCELED, fix: "the connection was cancelled because VitalGate is stopping; nothing to do")
    }

    // MARK: Fixes

    static func channelFix(_ address: EUI48) -> String {
        let text = address.bluetoothText
        return "find the device's serial channel with `sdptool browse \(text)` (the \"Serial Port\" record's Channel) "
            + "or `bluetoothctl info \(text)`, and correct transport.rfcomm.channel in the profile"
    }

    static func socketFix(_ code: Int32) -> String {
        switch code {
        case EAFNOSUPPORT:
            "this kernel has no Bluetooth sockets (AF_BLUETOOTH): run on a kernel with Bluetooth (CONFIG_BT) and load it "
                + "(`modprobe bluetooth`); a container or virtual machine uses its host's kernel and needs the adapter passed through"
        case EPROTONOSUPPORT:
            "this kernel's Bluetooth has no RFCOMM: load it (`modprobe rfcomm`, CONFIG_BT_RFCOMM)"
        case EACCES, EPERM:
            "this service may not open Bluetooth sockets: allow AF_BLUETOOTH (RestrictAddressFamilies= in the vitalgated unit) "
                + "and add the service user to the bluetooth group"
        case EMFILE, ENFILE:
            "the process is out of file descriptors (raise ulimit -n)"
        default:
            "check that Bluetooth works on this machine (`bluetoothctl show`)"
        }
    }

    static func connectFix(_ code: Int32, address: EUI48, channel: Int, timeout: Duration) -> String {
        let text = address.bluetoothText
        switch code {
        case ECONNREFUSED:
            return "the device has no serial service on channel \(channel); " + channelFix(address)
        case ETIMEDOUT:
            return "the device did not answer within \(timeout): it is switched off or out of range; switch it on and bring it "
                + "within a few metres of the hub"
        case EHOSTDOWN:
            return "the device is not answering: switch it on, bring it within range, and pair it with this hub once "
                + "(`bluetoothctl pair \(text)`, then `bluetoothctl trust \(text)`)"
        case EHOSTUNREACH, ENETUNREACH, ENETDOWN, ENODEV:
            return "no powered Bluetooth adapter can reach the device: check `bluetoothctl show` (Powered: yes; `bluetoothctl power on`) "
                + "and `rfkill list` (`rfkill unblock bluetooth`)"
        case EACCES, EPERM:
            return "the connection was refused for lack of permission: pair the device with this hub (`bluetoothctl pair \(text)`, "
                + "with the PIN from its manual), allow AF_BLUETOOTH for the service and add its user to the bluetooth group"
        case ECONNRESET, ECONNABORTED:
            return "the device dropped the connection while it was being set up; it may be connected to another host (a phone): "
                + "disconnect it there and try again"
        case EBUSY, EALREADY, EISCONN:
            return "another connection to the device is in progress; wait for it to end"
        default:
            return "check that the device is on and paired (`bluetoothctl info \(text)`)"
        }
    }
}
