import VitalModel
import ProfileEngine

/// A device profile: one device model described as data (`DeviceProfiles/<vendor>/<model>.json`).
public struct DeviceProfile: Sendable {
    /// `<vendor>/<model>`, the file's path under `DeviceProfiles/` without `.json`.
    public var id: String
    /// Raised by the author whenever the decoded meaning changes; stored with each reading.
    public var revision: Int
    public var vendor: String
    public var model: String
    /// Other model names sold with the same protocol.
    public var aliases: [String]
    public var kinds: [MeasurementKind]
    public var summary: String?
    public var match: ProfileMatch
    public var transport: Transport
    public var engine: any DeviceEngine
    public var time: TimeBehaviour
    /// The file the profile was loaded from (empty for profiles built in code).
    public var file: String

    public init(id: String, revision: Int, vendor: String, model: String, aliases: [String] = [], kinds: [MeasurementKind],
                summary: String? = nil, match: ProfileMatch, transport: Transport, engine: any DeviceEngine,
                time: TimeBehaviour, file: String) {
        self.id = id
        self.revision = revision
        self.vendor = vendor
        self.model = model
        self.aliases = aliases
        self.kinds = kinds
        self.summary = summary
        self.match = match
        self.transport = transport
        self.engine = engine
        self.time = time
        self.file = file
    }
}

/// How a device is recognised before any byte is exchanged.
public struct ProfileMatch: Sendable, Hashable {
    public var usb: [USBMatch]
    public var bluetooth: BluetoothMatch?

    public init(usb: [USBMatch] = [], bluetooth: BluetoothMatch? = nil) {
        self.usb = usb
        self.bluetooth = bluetooth
    }
}

/// A USB device (or USB-serial bridge) as udev sees it.
public struct USBMatch: Sendable, Hashable {
    public var vendorID: UInt16
    public var productID: UInt16
    /// `bInterfaceNumber`, for composite devices.
    public var interface: Int?
    /// The USB manufacturer and product strings, exactly; needed where a generic bridge chip (CP210x,
    /// PL2303) is shared by many products.
    public var manufacturer: String?
    public var product: String?

    public init(vendorID: UInt16, productID: UInt16, interface: Int? = nil, manufacturer: String? = nil, product: String? = nil) {
        self.vendorID = vendorID
        self.productID = productID
        self.interface = interface
        self.manufacturer = manufacturer
        self.product = product
    }

    /// `10C4:EA60`, as lsusb prints it.
    public var vendorProduct: String { hex4(vendorID) + ":" + hex4(productID) }
}

/// A Bluetooth device by what it advertises.
public struct BluetoothMatch: Sendable, Hashable {
    /// Service UUIDs (16-bit upper-case hex, or 128-bit with dashes) in the advertisement or GATT tree.
    public var services: [String]
    /// Local-name patterns; `*` matches any run of characters.
    public var names: [String]
    public var manufacturerData: [ManufacturerDataMatch]

    public init(services: [String] = [], names: [String] = [], manufacturerData: [ManufacturerDataMatch] = []) {
        self.services = services
        self.names = names
        self.manufacturerData = manufacturerData
    }

    /// Whether `name` matches one of the patterns (true when there are none).
    public func matchesName(_ name: String) -> Bool {
        names.isEmpty || names.contains { globMatch($0, name) }
    }
}

public struct ManufacturerDataMatch: Sendable, Hashable {
    public var company: UInt16
    /// Bytes after the company id that must match under `mask` (all bits when no mask).
    public var prefix: [UInt8]
    public var mask: [UInt8]?

    public init(company: UInt16, prefix: [UInt8] = [], mask: [UInt8]? = nil) {
        self.company = company
        self.prefix = prefix
        self.mask = mask
    }
}

/// How bytes reach the device.
public enum Transport: Sendable, Hashable {
    case serial(SerialSettings)
    case hidraw(HIDSettings)
    case ble(BLESettings)
    case rfcomm(RFCOMMSettings)

    public var name: String {
        switch self {
        case .serial: "serial"
        case .hidraw: "hidraw"
        case .ble: "ble"
        case .rfcomm: "rfcomm"
        }
    }
}

public struct SerialSettings: Sendable, Hashable {
    public enum Parity: String, Sendable, Hashable, CaseIterable { case none, odd, even }
    public enum FlowControl: String, Sendable, Hashable, CaseIterable {
        case none
        case xonXoff = "xon-xoff"
        case rtsCts = "rts-cts"
    }
    /// Some devices draw power from, or wake on, the modem control lines.
    public enum Line: String, Sendable, Hashable, CaseIterable {
        case on, off
        /// Low for `pulseMilliseconds`, then high: a reset or wake-up toggle.
        case pulse
    }

    public static let baudRates = [1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600]

    public var baud: Int
    public var dataBits: Int
    public var parity: Parity
    public var stopBits: Int
    public var flowControl: FlowControl
    public var dtr: Line?
    public var rts: Line?
    public var pulseMilliseconds: Int
    /// Open with TIOCEXCL so no other program reads the device at the same time.
    public var exclusive: Bool

    public init(baud: Int, dataBits: Int = 8, parity: Parity = .none, stopBits: Int = 1, flowControl: FlowControl = .none,
                dtr: Line? = nil, rts: Line? = nil, pulseMilliseconds: Int = 100, exclusive: Bool = true) {
        self.baud = baud
        self.dataBits = dataBits
        self.parity = parity
        self.stopBits = stopBits
        self.flowControl = flowControl
        self.dtr = dtr
        self.rts = rts
        self.pulseMilliseconds = pulseMilliseconds
        self.exclusive = exclusive
    }

    /// `19200 8O1`, the way device manuals write it.
    public var summary: String {
        "\(baud) \(dataBits)\(parity.rawValue.prefix(1).uppercased())\(stopBits)" + (flowControl == .none ? "" : " \(flowControl.rawValue)")
    }
}

public struct HIDSettings: Sendable, Hashable {
    /// Bytes per output and input report, without a report id.
    public var reportSize: Int
    /// Report id to prefix output reports with (nil: the device uses unnumbered reports).
    public var reportID: Int?
    /// Byte that fills an output report after the command.
    public var padding: UInt8
    /// Feature reports to send when the device is opened, in order.
    public var featureReports: [[UInt8]]

    public init(reportSize: Int, reportID: Int? = nil, padding: UInt8 = 0, featureReports: [[UInt8]] = []) {
        self.reportSize = reportSize
        self.reportID = reportID
        self.padding = padding
        self.featureReports = featureReports
    }
}

public struct BLESettings: Sendable, Hashable {
    public enum Pairing: String, Sendable, Hashable, CaseIterable {
        case none
        case justWorks = "just-works"
        case passkey
    }
    public enum Bond: String, Sendable, Hashable, CaseIterable {
        case keep
        /// The device forgets bonds (for example on power cycle); pair again each session.
        case perSession = "per-session"
    }
    public enum Mode: String, Sendable, Hashable, CaseIterable { case notify, indicate, read, write }

    public struct Characteristic: Sendable, Hashable {
        public var service: String
        public var uuid: String
        public var mode: Mode
        public init(service: String, uuid: String, mode: Mode) {
            self.service = service
            self.uuid = uuid
            self.mode = mode
        }
    }

    public var characteristics: [Characteristic]
    public var pairing: Pairing
    public var bond: Bond
    /// What the person must do on the device, e.g. "hold the Bluetooth button 3 s until P blinks".
    public var pairingHint: String?
    /// Pause after each write some devices need (A&D: 40 or 100 ms).
    public var writeDelayMilliseconds: Int

    public init(characteristics: [Characteristic], pairing: Pairing = .none, bond: Bond = .keep, pairingHint: String? = nil,
                writeDelayMilliseconds: Int = 0) {
        self.characteristics = characteristics
        self.pairing = pairing
        self.bond = bond
        self.pairingHint = pairingHint
        self.writeDelayMilliseconds = writeDelayMilliseconds
    }
}

public struct RFCOMMSettings: Sendable, Hashable {
    public var channel: Int
    public init(channel: Int) { self.channel = channel }
}

/// What the device's clock is and whether VitalGate may set it.
public struct TimeBehaviour: Sendable, Hashable {
    public enum SetMethod: String, Sendable, Hashable, CaseIterable {
        case none
        /// Write Current Time (0x2A2B).
        case currentTime = "current-time"
        /// Write Date Time (0x2A08), as A&D monitors expect.
        case dateTime = "date-time"
        /// A command of the device's own protocol.
        case vendorCommand = "vendor-command"
    }
    public enum Zone: String, Sendable, Hashable, CaseIterable {
        /// The device keeps local wall-clock time (the usual case).
        case local
        case utc
        /// The device clock is not tied to any zone (or there is no clock).
        case none
    }

    public var deviceClock: Bool
    public var set: SetMethod
    public var zone: Zone

    public init(deviceClock: Bool, set: SetMethod = .none, zone: Zone = .local) {
        self.deviceClock = deviceClock
        self.set = set
        self.zone = zone
    }
}

func hex4(_ value: UInt16) -> String {
    hexByte(UInt8(value >> 8)) + hexByte(UInt8(truncatingIfNeeded: value))
}

/// `*` matches any run of characters, everything else itself.
func globMatch(_ pattern: String, _ text: String) -> Bool {
    let p = Array(pattern), t = Array(text)
    var pi = 0, ti = 0, star = -1, mark = 0
    while ti < t.count {
        if pi < p.count, p[pi] == t[ti] {
            pi += 1
            ti += 1
        } else if pi < p.count, p[pi] == "*" {
            star = pi
            mark = ti
            pi += 1
        } else if star >= 0 {
            pi = star + 1
            mark += 1
            ti = mark
        } else {
            return false
        }
    }
    while pi < p.count, p[pi] == "*" { pi += 1 }
    return pi == p.count
}
