import VitalModel

/// A USB-backed serial (`tty`) or `hidraw` node as udev describes it, before anything is opened.
///
/// Everything here comes from sysfs (the node's USB device and interface), so reading it never talks to
/// the device. None of it is patient data: ids, USB strings and the port the device is plugged into.
public struct AttachedDevice: Sendable, Hashable {
    /// The kernel subsystem of the node; it decides which transports a profile may use on it.
    public enum Subsystem: String, Sendable, Hashable { case tty, hidraw }

    public var subsystem: Subsystem
    /// The device node, such as `/dev/ttyUSB0` or `/dev/hidraw0`.
    public var node: String
    /// The node's sysfs path: the key udev events use, so an `add` and its `remove` can be paired.
    public var syspath: String
    /// `idVendor` and `idProduct` of the USB device.
    public var vendorID: UInt16?
    public var productID: UInt16?
    /// `bInterfaceNumber` of the USB interface the node belongs to.
    public var interfaceNumber: Int?
    /// The USB string descriptors (iManufacturer, iProduct, iSerialNumber).
    public var manufacturer: String?
    public var product: String?
    public var serialNumber: String?
    /// udev's `ID_PATH` (`pci-0000:00:14.0-usb-0:3:1.0`), or the USB device's name (`1-3`) without it.
    public var portPath: String?

    public init(subsystem: Subsystem, node: String, syspath: String, vendorID: UInt16? = nil, productID: UInt16? = nil,
                interfaceNumber: Int? = nil, manufacturer: String? = nil, product: String? = nil,
                serialNumber: String? = nil, portPath: String? = nil) {
        self.subsystem = subsystem
        self.node = node
        self.syspath = syspath
        self.vendorID = vendorID
        self.productID = productID
        self.interfaceNumber = interfaceNumber
        self.manufacturer = manufacturer
        self.product = product
        self.serialNumber = serialNumber
        self.portPath = portPath
    }

    /// `10C4:EA60`, as lsusb prints it; `?` stands for an id udev did not give.
    public var vendorProduct: String {
        Self.hex4(vendorID) + ":" + Self.hex4(productID)
    }

    /// Tells two identical devices apart across unplugging and re-plugging.
    ///
    /// `usb-serial:<vendor>:<product>:<serial>` when the device has a serial number, so it keeps its key on
    /// any port; otherwise `usb-port:<portPath>`, so it keeps its key as long as it goes back into the same
    /// socket. (Some bridge chips ship with the same serial, e.g. CP210x "0001"; those look alike to this key.)
    public var stableKey: String {
        if let serial = serialNumber, !serial.isEmpty {
            return "usb-serial:\(Self.hex4(vendorID)):\(Self.hex4(productID)):\(serial)"
        }
        if let port = portPath, !port.isEmpty { return "usb-port:\(port)" }
        // Not reachable for a USB-backed node (the USB device's name is always known); the sysfs path is the
        // next most stable thing.
        return "usb-syspath:\(syspath)"
    }

    /// The identity readings from this device carry: USB ids with the serial number, the USB strings as
    /// manufacturer and model.
    public var identity: DeviceIdentity {
        let usb = vendorID.flatMap { vendor in
            productID.map { USBIdentity(vendorID: vendor, productID: $0, serial: nonEmpty(serialNumber)) }
        }
        return DeviceIdentity(usb: usb, manufacturer: nonEmpty(manufacturer), model: nonEmpty(product),
                              serialNumber: nonEmpty(serialNumber))
    }

    static func hex4(_ value: UInt16?) -> String {
        guard let value else { return "?" }
        return hexString([UInt8(value >> 8), UInt8(value & 0xFF)], separator: "")
    }
}

/// Stored strings stay as udev gave them; an empty one is treated as absent.
private func nonEmpty(_ text: String?) -> String? {
    guard let text, !text.isEmpty else { return nil }
    return text
}

/// A device node appearing or going away, in the order udev reported it.
public enum DeviceEvent: Sendable, Hashable {
    /// A new node, or a known node whose description changed (`change`): compare by ``AttachedDevice/syspath``.
    case added(AttachedDevice)
    /// The node is gone; the description is the one last seen while it was attached.
    case removed(AttachedDevice)
}
