import VitalModel
/// udev rules generated from the USB profiles: they give the service group access to the device nodes
/// that a profile claims, and no others, and tag them so the daemon sees them come and go.
public enum UdevRules {
    public static let fileName = "60-vitalgate-devices.rules"

    public static func generate(_ catalog: ProfileCatalog, group: String = "vitalgate") -> String {
        var lines = [
            "# Generated from DeviceProfiles/ by `vitalgate profile udev-rules`; do not edit by hand.",
            "# Device nodes a profile claims become readable by the \(group) group and are tagged for vitalgated.",
            "",
        ]
        for profile in catalog.profiles.sorted(by: { $0.id < $1.id }) {
            let subsystem: String
            switch profile.transport {
            case .serial(let serial): subsystem = "tty"; lines.append(comment("\(profile.id): \(profile.vendor) \(profile.model), serial \(serial.summary)"))
            case .hidraw(let hid): subsystem = "hidraw"; lines.append(comment("\(profile.id): \(profile.vendor) \(profile.model), HID reports of \(hid.reportSize) bytes"))
            case .ble, .rfcomm: continue
            }
            for usb in profile.match.usb {
                var keys = ["ACTION!=\"remove\"", "SUBSYSTEM==\"\(subsystem)\"", "SUBSYSTEMS==\"usb\"",
                            "ATTRS{idVendor}==\"\(hex4(usb.vendorID).lowercased())\"", "ATTRS{idProduct}==\"\(hex4(usb.productID).lowercased())\""]
                if let manufacturer = usb.manufacturer { keys.append("ATTRS{manufacturer}==\"\(escape(manufacturer))\"") }
                if let product = usb.product { keys.append("ATTRS{product}==\"\(escape(product))\"") }
                if let interface = usb.interface {
                    keys.append("ATTRS{bInterfaceNumber}==\"" + hexByte(UInt8(truncatingIfNeeded: interface)).lowercased() + "\"")
                }
                keys += ["GROUP=\"\(group)\"", "MODE=\"0660\"", "TAG+=\"vitalgate\"", "ENV{VITALGATE_PROFILE}=\"\(profile.id)\""]
                lines.append(keys.joined(separator: ", "))
            }
            lines.append("")
        }
        return lines.joined(separator: "\n")
    }

    /// A comment line; control characters cannot end it early (the loader rejects them too).
    static func comment(_ text: String) -> String {
        "# " + String(text.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? "?" : Character($0) })
    }

    /// udev match values are glob patterns: quote the characters that would act as wildcards.
    static func escape(_ text: String) -> String {
        var out = ""
        for character in text {
            if character.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) { out += "?"; continue }
            switch character {
            case "*", "?", "[", "]", "|": out += "[\(character)]"
            case "\"", "\\": out += "?"
            default: out.append(character)
            }
        }
        return out
    }
}
