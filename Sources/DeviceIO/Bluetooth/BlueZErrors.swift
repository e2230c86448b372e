#if canImport(Glibc)
import Glibc
#endif

/// Turns D-Bus and BlueZ errors into ``DeviceIOError``s that say what to do.
///
/// `target` names the Bluetooth address or the adapter (device ids, fine in logs); no message here carries
/// a value read from a device.
enum BlueZErrors {
    /// Where a failure happened, which decides the advice.
    enum Stage {
        case bus, adapter, connect, pair, gatt, other
    }

    static let journal = "see `journalctl -u bluetooth` for bluetoothd's reason"
    static let wake = "wake the device (press its measurement or Bluetooth button) and keep it within a few metres; VitalGate retries"
    static let pairAgain = "put the device into pairing mode (its profile's pairing hint says how), keep it close and run "
        + "`vitalgate bluetooth pair ADDRESS` again; if it was paired with this hub before, forget it on both sides first "
        + "(`vitalgate bluetooth forget ADDRESS`)"

    static func error(_ failure: DBusCallError, operation: String, target: String, stage: Stage) -> DeviceIOError {
        let name = failure.name
        let text = failure.message.lowercased()
        func make(_ fix: String, disconnect: Bool = false, code: Int32 = 0) -> DeviceIOError {
            DeviceIOError(operation: operation, path: target, code: code, fix: fix, isDisconnect: disconnect, cause: failure.cause)
        }
        if failure.isTimeout {
            switch stage {
            case .connect: return make("the device did not finish connecting in time: " + wake, disconnect: true, code: ETIMEDOUT)
            case .pair: return make("pairing did not finish in time: " + pairAgain, code: ETIMEDOUT)
            case .gatt: return make("the device did not answer in time; it may have gone out of range: " + wake, disconnect: true, code: ETIMEDOUT)
            default: return make("bluetoothd did not answer in time; is it overloaded or hung? " + journal, code: ETIMEDOUT)
            }
        }
        switch name {
        case DBusCallError.disconnectedName:
            return make("the connection to the D-Bus system bus was lost (was dbus restarted?); restart vitalgated", disconnect: true)
        case "org.freedesktop.DBus.Error.ServiceUnknown", "org.freedesktop.DBus.Error.NameHasNoOwner":
            return make("bluetoothd is not running: start it with `systemctl start bluetooth` (Debian package bluez)")
        case "org.freedesktop.DBus.Error.AccessDenied":
            return make("this user may not talk to bluetoothd: run as the vitalgate service user, or allow the user in "
                + "/etc/dbus-1/system.d/bluetooth.conf (on Debian: add it to the `bluetooth` group)")
        case "org.freedesktop.DBus.Error.FileNotFound", "org.freedesktop.DBus.Error.NoServer", "org.freedesktop.DBus.Error.BadAddress",
             "org.freedesktop.DBus.Error.Spawn.ExecFailed":
            return make("no D-Bus system bus there: start dbus (`systemctl start dbus`) or correct DBUS_SYSTEM_BUS_ADDRESS")
        case "org.freedesktop.DBus.Error.UnknownObject", "org.freedesktop.DBus.Error.UnknownMethod",
             "org.freedesktop.DBus.Error.UnknownInterface":
            return make("BlueZ no longer has this device (it went out of range and was forgotten, or was removed): scan for it again",
                        disconnect: stage != .adapter && stage != .bus)
        case "org.freedesktop.DBus.Error.InvalidArgs", "org.bluez.Error.InvalidArguments":
            return make("BlueZ refused the arguments; check the UUIDs and values in the device's profile")
        case "org.freedesktop.DBus.Error.NoMemory":
            return make("the system is out of memory; restart vitalgated")
        case "org.bluez.Error.InProgress":
            return make("another connection or pairing with this device is under way (another program, or bluetoothd "
                + "reconnecting by itself): wait a few seconds and try again")
        case "org.bluez.Error.AlreadyExists":
            return make("the device is already paired; to pair it again, forget it first (`vitalgate bluetooth forget ADDRESS`)")
        case "org.bluez.Error.AuthenticationFailed", "org.bluez.Error.AuthenticationRejected", "org.bluez.Error.AuthenticationCanceled",
             "org.bluez.Error.AuthenticationTimeout":
            return make("pairing failed: " + pairAgain)
        case "org.bluez.Error.ConnectionAttemptFailed":
            return make("the connection attempt failed: " + wake, disconnect: true)
        case "org.bluez.Error.NotConnected":
            return make("the device is not connected (it disconnected): connect again", disconnect: true)
        case "org.bluez.Error.NotReady":
            return make("the Bluetooth adapter is not ready: unblock and power it (`rfkill unblock bluetooth`, then "
                + "`bluetoothctl power on`)")
        case "org.bluez.Error.DoesNotExist":
            return make("BlueZ does not know this device (any more): scan for it again (`vitalgate bluetooth scan`)", disconnect: stage != .adapter)
        case "org.bluez.Error.NotPermitted", "org.bluez.Error.NotAuthorized":
            return make("the device allows this only over an encrypted link: pair it (`vitalgate bluetooth pair ADDRESS`) and check "
                + "the profile's pairing setting")
        case "org.bluez.Error.NotSupported":
            return make("the device or the adapter does not support this; check the characteristics and modes in the device's profile")
        case "org.bluez.Error.InvalidValueLength", "org.bluez.Error.InvalidOffset":
            return make("the device refused the value's length; check the device's profile")
        case "org.bluez.Error.Rejected", "org.bluez.Error.Canceled":
            return make("the request was refused or cancelled: " + (stage == .pair ? pairAgain : journal))
        case "org.bluez.Error.Blocked":
            return make("the adapter is blocked: `rfkill unblock bluetooth`")
        case "org.bluez.Error.Failed":
            if text.contains("le-connection-abort-by-local") || text.contains("page-timeout") || text.contains("connection refused")
                || text.contains("connection-abort") || text.contains("host is down") {
                return make("the device stopped answering while connecting (asleep or out of range): " + wake, disconnect: true)
            }
            if text.contains("not connected") || text.contains("disconnected") || text.contains("connection reset") {
                return make("the device disconnected: connect again", disconnect: true)
            }
            if text.contains("not powered") || text.contains("rfkill") {
                return make("the Bluetooth adapter is off: `rfkill unblock bluetooth`, then `bluetoothctl power on`")
            }
            return make("bluetoothd reported a failure: " + journal, disconnect: stage == .connect)
        default:
            return make("unexpected error from BlueZ: " + journal, disconnect: stage == .connect)
        }
    }

    /// A failure with no D-Bus error behind it (the device is unknown, not connected, lacks a characteristic).
    static func local(_ operation: String, target: String, fix: String, disconnect: Bool = false, code: Int32 = 0) -> DeviceIOError {
        DeviceIOError(operation: operation, path: target, code: code, fix: fix, isDisconnect: disconnect)
    }
}
