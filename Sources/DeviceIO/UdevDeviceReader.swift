internal import CUdev

/// Reads an ``AttachedDevice`` out of a libudev device. Only sysfs and udev's properties are read: the
/// node itself is never opened.
enum UdevDeviceReader {
    /// The subsystems VitalGate cares about: serial ports (USB-serial bridges, CDC-ACM) and raw HID.
    static let subsystems: [AttachedDevice.Subsystem] = [.tty, .hidraw]

    /// The node's description when it is a tty or hidraw node with a USB device above it, else nil
    /// (a built-in UART, a virtual console, a Bluetooth HID device).
    static func read(_ device: OpaquePointer) -> AttachedDevice? {
        guard let subsystemText = string(udev_device_get_subsystem(device)),
              let subsystem = AttachedDevice.Subsystem(rawValue: subsystemText),
              let node = string(udev_device_get_devnode(device)),
              let syspath = string(udev_device_get_syspath(device)),
              // Owned by `device`; not to be unreferenced.
              let usbDevice = udev_device_get_parent_with_subsystem_devtype(device, "usb", "usb_device")
        else { return nil }
        var attached = AttachedDevice(subsystem: subsystem, node: node, syspath: syspath)
        attached.vendorID = hex16(attribute(usbDevice, "idVendor"))
        attached.productID = hex16(attribute(usbDevice, "idProduct"))
        attached.manufacturer = attribute(usbDevice, "manufacturer")
        attached.product = attribute(usbDevice, "product")
        attached.serialNumber = attribute(usbDevice, "serial")
        if let interface = udev_device_get_parent_with_subsystem_devtype(device, "usb", "usb_interface") {
            attached.interfaceNumber = attribute(interface, "bInterfaceNumber").flatMap { Int($0, radix: 16) }
        }
        attached.portPath = property(device, "ID_PATH") ?? string(udev_device_get_sysname(usbDevice))
        return attached
    }

    /// For a `remove` event of a node seen for the first time: its USB parents may already be gone from
    /// sysfs, so what udev's rules put in the event (`usb_id`'s `ID_*` properties) has to do.
    static func readFromProperties(_ device: OpaquePointer) -> AttachedDevice? {
        guard let subsystemText = string(udev_device_get_subsystem(device)),
              let subsystem = AttachedDevice.Subsystem(rawValue: subsystemText),
              let node = string(udev_device_get_devnode(device)),
              let syspath = string(udev_device_get_syspath(device)),
              property(device, "ID_BUS") == "usb" || property(device, "ID_VENDOR_ID") != nil
        else { return nil }
        var attached = AttachedDevice(subsystem: subsystem, node: node, syspath: syspath)
        attached.vendorID = hex16(property(device, "ID_VENDOR_ID"))
        attached.productID = hex16(property(device, "ID_MODEL_ID"))
        attached.serialNumber = property(device, "ID_SERIAL_SHORT")
        attached.interfaceNumber = property(device, "ID_USB_INTERFACE_NUM").flatMap { Int($0, radix: 16) }
        attached.portPath = property(device, "ID_PATH")
        return attached
    }

    static func attribute(_ device: OpaquePointer, _ name: String) -> String? {
        string(udev_device_get_sysattr_value(device, name))
    }

    static func property(_ device: OpaquePointer, _ name: String) -> String? {
        string(udev_device_get_property_value(device, name))
    }

    static func string(_ pointer: UnsafePointer<CChar>?) -> String? {
        pointer.map { String(cString: $0) }
    }

    /// `idVendor` is four hex digits, such as `10c4`.
    static func hex16(_ text: String?) -> UInt16? {
        text.flatMap { UInt16($0.trimmingWhitespace(), radix: 16) }
    }
}

extension String {
    fileprivate func trimmingWhitespace() -> String {
        var text = Substring(self)
        while text.first?.isWhitespace == true { text = text.dropFirst() }
        while text.last?.isWhitespace == true { text = text.dropLast() }
        return String(text)
    }
}
