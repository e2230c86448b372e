internal import CUdev
internal import CBluetooth
internal import CDBus
import VitalModel

/// Checks that the device-side C libraries are linked and usable; discovery (issue #5) and BlueZ
/// (issue #6) build on them.
public enum DeviceLibraries {
    /// The libdbus version, e.g. `1.14.10`.
    public static var dbusVersion: String {
        var major: Int32 = 0, minor: Int32 = 0, micro: Int32 = 0
        dbus_get_version(&major, &minor, &micro)
        return "\(major).\(minor).\(micro)"
    }

    /// Whether a udev context can be created (it needs no device, only the library).
    public static func udevAvailable() -> Bool {
        guard let context = udev_new() else { return false }
        udev_unref(context)
        return true
    }

    /// Formats an address with libbluetooth's `ba2str`, which prints bdaddr_t (stored little-endian)
    /// most significant byte first.
    public static func bluetoothText(_ address: EUI48) -> String {
        var raw = bdaddr_t()
        withUnsafeMutableBytes(of: &raw.b) { buffer in
            for (index, byte) in address.bytes.reversed().enumerated() { buffer[index] = byte }
        }
        var text = [CChar](repeating: 0, count: 18)
        _ = ba2str(&raw, &text)
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
