import VitalModel

/// The key that makes a device's re-sent stored records land on the rows they already have.
///
/// `device|kind|time`: the same parts as the FHIR Observation identifier (device, measurement type, device
/// time; the patient is attached to the row, not the key), so two rows with one base key would upload
/// under one identifier and the server would keep only one of them. The device is named by its System
/// ID, else Bluetooth address, else USB vendor:product:serial (else profile, model and serial number); the
/// time is, for a reading that summarises a window of samples, the window's start and end instants in
/// milliseconds (as its identifier has the start and the duration: windows of one device differ in one of
/// them); else the device's own timestamp when it sent one (a re-sent record keeps it); else the hub's
/// receive instant in milliseconds (then only an exact re-delivery matches).
///
/// A row with the same base key is the same reading only when its values, user slot, sequence number and
/// window (sample counts, minimum, maximum) are equal too. Otherwise it is another reading that a device clock which did not advance gave the same
/// time: it is stored under a collision key, the base key with `#rx:` and its receive instant, and uploaded
/// with an identifier made from the receive time (``isCollision(_:)``). Free text is percent-escaped so
/// `#` and `|` never occur in the base key.
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
        if let window = reading.window {
            timePart = "win:" + String(window.start.unixMilliseconds) + ".." + String(window.end.unixMilliseconds)
        } else if let stamp = reading.deviceTime {
            timePart = "dt:" + stamp.time.iso8601(includeMilliseconds: stamp.resolution == .millisecond)
                + (stamp.utcOffsetQuarterHours.map { formatUTCOffset(seconds: $0 * 900) } ?? "")
        } else {
            timePart = "rx:" + String(reading.receivedAt.instant.outboxMilliseconds)
        }
        return [devicePart, reading.kind.rawValue, timePart].joined(separator: "|")
    }

    /// True when a stored reading's JSON is the same reading as `json` (same base key assumed): the same
    /// values, user slot, sequence number and window. Receive time, subject and everything else may differ (a
    /// device re-sends its stored records in a later session).
    static func isSameReading(stored: JSONValue, as json: JSONValue) -> Bool {
        essenceMembers.allSatisfy { member in
            // `null` and absent are the same: the writer omits some members when they are nil.
            var mine = stored[member] ?? .null, theirs = json[member] ?? .null
            // Versions before schema 2 stored the devices' "unknown user" (0xFF) as no slot.
            if member == "userSlot" {
                if mine == .null { mine = .int(Reading.unknownUserSlot) }
                if theirs == .null { theirs = .int(Reading.unknownUserSlot) }
            }
            return mine == theirs
        }
    }

    /// The members of a reading's JSON that tell two readings with one key apart.
    static let essenceMembers = ["values", "userSlot", "sequenceNumber", "window"]

    /// Those members alone, as kept for a pruned reading.
    static func essence(of json: JSONValue) -> JSONValue {
        .object(essenceMembers.compactMap { member in json[member].map { (member, $0) } })
    }

    /// True when `key` was made by ``collision(base:reading:)``: the row's upload is identified by its
    /// receive time, because another reading holds the base key.
    static func isCollision(_ key: String) -> Bool { key.contains(collisionMarker) }

    private static let collisionMarker = "#rx:"

    /// The key of a reading that collides with `base` but is another reading: its receive instant added.
    static func collision(base: String, reading: Reading) -> String {
        base + collisionMarker + String(reading.receivedAt.instant.outboxMilliseconds)
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
