import VitalModel

/// The key that makes a device's re-sent stored records land on the rows they already have.
///
/// `device|kind|slot:N|time|seq:N`: the device by its System ID, else Bluetooth address, else USB
/// vendor:product:serial (else profile, model and serial number); the device's own timestamp when it sent
/// one (a re-sent record keeps it), else the hub's receive instant in milliseconds (then only an exact
/// re-delivery matches). Free text is percent-escaped so `#` and `|` never occur in it: `#` starts the
/// suffix that tells apart readings a stuck device clock gave the same key.
enum DedupeKey {
    static func base(for reading: Reading) -> String {
        let device = reading.device
        let devicePart: String
        if let systemID = device.systemID {
            devicePart = "sys:" + systemID.compactHex
        } else if let address = device.bluetoothAddress {
            devicePart = "bt:" + address.compactHex
        } else if let usb = device.usb {
            devicePart = "usb:" + usb.vendorProduct + ":" + escape(usb.serial ?? "")
        } else {
            devicePart = "profile:" + escape(reading.source.profileID) + ":" + escape(device.model ?? "") + ":"
                + escape(device.serialNumber ?? "")
        }
        let timePart: String
        if let stamp = reading.deviceTime {
            timePart = "dt:" + stamp.time.iso8601(includeMilliseconds: stamp.resolution == .millisecond)
                + (stamp.utcOffsetQuarterHours.map { formatUTCOffset(seconds: $0 * 900) } ?? "")
        } else {
            timePart = "rx:" + String(reading.receivedAt.instant.outboxMilliseconds)
        }
        return [devicePart, reading.kind.rawValue, "slot:" + (reading.userSlot.map(String.init) ?? "-"), timePart,
                "seq:" + (reading.sequenceNumber.map(String.init) ?? "-")].joined(separator: "|")
    }

    /// The key of a reading that collides with `base` but is another reading: its receive instant added.
    static func collision(base: String, reading: Reading) -> String {
        base + "#rx:" + String(reading.receivedAt.instant.outboxMilliseconds)
    }

    private static func escape(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            if scalar == "%" || scalar == "|" || scalar == "#" || scalar.value < 0x20 {
                for byte in String(scalar).utf8 { out += "%" + hexString([byte], separator: "") }
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}
