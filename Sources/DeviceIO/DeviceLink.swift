import ProfileCatalog
import VitalModel

/// What one ``DeviceLink/read(timeout:)`` gave.
public enum LinkInput: Sendable, Hashable {
    /// Bytes from the device: whatever one read returned on a serial port, exactly one input report on a
    /// hidraw link.
    case bytes([UInt8])
    /// The timeout passed without input.
    case timedOut
    /// ``DeviceLink/interrupt()`` was called.
    case interrupted
}

/// An open device node.
///
/// Thread-safe: ``interrupt()`` and ``close()`` may be called from any thread while ``read(timeout:)``
/// blocks. Reads and writes block the calling thread (poll, read, write): call them on a dedicated
/// thread, never on the Swift concurrency pool.
public protocol DeviceLink: AnyObject, Sendable {
    /// The device node, such as `/dev/ttyUSB0`.
    var path: String { get }
    /// Waits up to `timeout` (nil: until input or an interrupt) and returns the bytes one read gave (a
    /// hidraw link: exactly one input report per `.bytes`). Throws an error with
    /// ``DeviceIOError/isDisconnect`` set when the device is gone.
    func read(timeout: Duration?) throws(DeviceIOError) -> LinkInput
    /// Writes all of `bytes`, waiting while the device is not ready, for at most 2 s in all.
    func write(_ bytes: [UInt8]) throws(DeviceIOError)
    /// Makes a blocked read, or the next one, return ``LinkInput/interrupted``; idempotent.
    func interrupt()
    /// Closes the node; later reads and writes fail with a clear error; idempotent.
    func close()
}

/// Opens device nodes the way a profile's transport says.
public enum DeviceLinks {
    /// Opens `path` with the profile transport's settings: a serial transport as a ``SerialPort``, a hidraw
    /// transport as a ``HidrawPort``. Bluetooth transports have no device node to open here.
    public static func open(path: String, transport: Transport) throws(DeviceIOError) -> any DeviceLink {
        switch transport {
        case .serial(let settings):
            return try SerialPort.open(path: path, settings: settings)
        case .hidraw(let settings):
            return try HidrawPort.open(path: path, settings: settings)
        case .ble:
            throw DeviceIOError(operation: "open", path: path,
                                fix: "this profile uses Bluetooth LE, which is not opened as a device node; Bluetooth LE sessions come with issue #6")
        case .rfcomm:
            throw DeviceIOError(operation: "open", path: path,
                                fix: "this profile uses Bluetooth Classic (rfcomm), which is connected by the device's address, not opened "
                                    + "as a device node; use DeviceLinks.connect(address:transport:timeout:cancellation:), as the daemon does "
                                    + "for its configured Bluetooth Classic devices (issue #6)")
        }
    }

    /// Connects to a Bluetooth Classic device at `address` the way an `rfcomm` transport says, as an
    /// ``RfcommLink``, waiting at most `timeout`; `cancellation` ends the wait early. Other transports
    /// are refused: they are opened by device node (``open(path:transport:)``) or through BlueZ (LE).
    public static func connect(address: EUI48, transport: Transport, timeout: Duration,
                               cancellation: LinkCancellation? = nil) throws(DeviceIOError) -> any DeviceLink {
        guard case .rfcomm(let settings) = transport else {
            throw DeviceIOError(operation: "connect", path: "bluetooth:" + address.bluetoothText,
                                fix: "this profile's transport is \(transport.name), not rfcomm; give a Bluetooth Classic device a profile with "
                                    + "\"transport\": {\"rfcomm\": {\"channel\": N}}")
        }
        return try RfcommLink.connect(address: address, channel: settings.channel, timeout: timeout, cancellation: cancellation)
    }
}
