/// A 48-bit IEEE address (Bluetooth device address, Ethernet MAC), most significant byte first.
public struct EUI48: Sendable, Hashable, CustomStringConvertible {
    public let bytes: [UInt8]

    /// Accepts `C4:F3:12:53:F2:C9`, `C4-F3-12-53-F2-C9` or `C4F31253F2C9`, any case.
    public init?(_ text: String) {
        guard let bytes = parseHexAddress(text, count: 6) else { return nil }
        self.bytes = bytes
    }

    public init?(bytes: [UInt8]) {
        guard bytes.count == 6 else { return nil }
        self.bytes = bytes
    }

    /// `C4-F3-12-53-F2-C9`: the form FHIR Device identifiers use.
    public var description: String { hexString(bytes, separator: "-") }
    /// `C4F31253F2C9`: the form the PHD observation identifier uses.
    public var compactHex: String { hexString(bytes, separator: "") }
    /// `C4:F3:12:53:F2:C9`: how BlueZ, `bluetoothctl` and device labels write a Bluetooth address.
    public var bluetoothText: String { hexString(bytes, separator: ":") }
}

/// A 64-bit IEEE identifier (the IEEE 11073 / Device Information System ID), most significant byte first.
public struct EUI64: Sendable, Hashable, CustomStringConvertible {
    public let bytes: [UInt8]

    public init?(_ text: String) {
        guard let bytes = parseHexAddress(text, count: 8) else { return nil }
        self.bytes = bytes
    }

    public init?(bytes: [UInt8]) {
        guard bytes.count == 8 else { return nil }
        self.bytes = bytes
    }

    /// The EUI-64 derived from a MAC by inserting `FF-FE` in the middle (how a hub without a System ID
    /// gets a stable one, fhir-mapping.md §1.9).
    public init(derivedFrom mac: EUI48) {
        bytes = Array(mac.bytes[0..<3]) + [0xFF, 0xFE] + Array(mac.bytes[3..<6])
    }

    public var description: String { hexString(bytes, separator: "-") }
    public var compactHex: String { hexString(bytes, separator: "") }
}

/// USB identity of a device reached over USB serial or HID.
public struct USBIdentity: Sendable, Hashable {
    public let vendorID: UInt16
    public let productID: UInt16
    /// The iSerial string, when the device has one.
    public let serial: String?

    public init(vendorID: UInt16, productID: UInt16, serial: String?) {
        self.vendorID = vendorID
        self.productID = productID
        self.serial = serial
    }

    /// `0C45:7406`, the form PhdDevice's USB property uses.
    public var vendorProduct: String {
        hexString([UInt8(vendorID >> 8), UInt8(vendorID & 0xFF)], separator: "") + ":"
            + hexString([UInt8(productID >> 8), UInt8(productID & 0xFF)], separator: "")
    }
}

/// Who a reading came from: transport addresses and what the device says about itself.
///
/// At least one of ``systemID``, ``bluetoothAddress`` or ``usb`` (with a serial) must be known for a reading to
/// be uploaded, because the server-side duplicate check is keyed on it.
public struct DeviceIdentity: Sendable, Hashable {
    public var systemID: EUI64?
    public var bluetoothAddress: EUI48?
    public var usb: USBIdentity?
    public var manufacturer: String?
    public var model: String?
    public var serialNumber: String?
    public var firmwareRevision: String?
    public var hardwareRevision: String?
    public var softwareRevision: String?

    public init(systemID: EUI64? = nil, bluetoothAddress: EUI48? = nil, usb: USBIdentity? = nil,
                manufacturer: String? = nil, model: String? = nil, serialNumber: String? = nil,
                firmwareRevision: String? = nil, hardwareRevision: String? = nil, softwareRevision: String? = nil) {
        self.systemID = systemID
        self.bluetoothAddress = bluetoothAddress
        self.usb = usb
        self.manufacturer = manufacturer
        self.model = model
        self.serialNumber = serialNumber
        self.firmwareRevision = firmwareRevision
        self.hardwareRevision = hardwareRevision
        self.softwareRevision = softwareRevision
    }
}

private func parseHexAddress(_ text: String, count: Int) -> [UInt8]? {
    let compact = text.filter { $0 != ":" && $0 != "-" }
    // ASCII digits only: `Character.isHexDigit` also accepts fullwidth forms (`１`, `Ａ`) that no radix parse reads.
    guard compact.count == count * 2, compact.utf8.count == compact.count,
          compact.utf8.allSatisfy({ hexDigitValue($0) != nil }) else { return nil }
    // Separators, when present, must sit between every byte: reject `C4F3-1253...`.
    if compact.count != text.count {
        let groups = text.split(omittingEmptySubsequences: false) { $0 == ":" || $0 == "-" }
        guard groups.count == count, groups.allSatisfy({ $0.count == 2 }) else { return nil }
    }
    var bytes: [UInt8] = []
    var index = compact.startIndex
    while index < compact.endIndex {
        let next = compact.index(index, offsetBy: 2)
        guard let byte = UInt8(compact[index..<next], radix: 16) else { return nil }
        bytes.append(byte)
        index = next
    }
    return bytes
}

/// Upper-case hex of `bytes`, joined by `separator`.
public func hexString(_ bytes: [UInt8], separator: String) -> String {
    let digits = Array("0123456789ABCDEF")
    return bytes.map { String([digits[Int($0 >> 4)], digits[Int($0 & 0x0F)]]) }.joined(separator: separator)
}
