import VitalModel

/// How a Bluetooth LE address was assigned (BlueZ `Device1.AddressType`).
public enum BLEAddressType: String, Sendable, Hashable {
    case `public`
    case random
}

/// A Bluetooth LE device as the adapter knows it: from its advertisements, or from the adapter's store of
/// paired devices.
public struct BLEDeviceInfo: Sendable, Hashable {
    public var address: EUI48
    public var addressType: BLEAddressType
    /// The advertised (or cached) local name.
    public var name: String?
    /// Service UUIDs it advertised or, once connected, that its GATT tree has. A Bluetooth SIG 16-bit UUID
    /// is written as 4 upper-case hex digits (`1810`); any other UUID in full, upper-case, with dashes.
    public var serviceUUIDs: [String]
    /// Manufacturer-specific advertising data by company id.
    public var manufacturerData: [UInt16: [UInt8]]
    public var rssi: Int?
    /// Paired: keys were exchanged. Bonded: they are stored and survive restarts.
    public var paired: Bool
    public var bonded: Bool
    /// The operator adopted the device (`vitalgate bluetooth pair`): the hub may connect to it on its own.
    public var trusted: Bool
    public var connected: Bool
    /// GATT discovery has finished on the current connection.
    public var servicesResolved: Bool

    public init(address: EUI48, addressType: BLEAddressType = .public, name: String? = nil, serviceUUIDs: [String] = [],
                manufacturerData: [UInt16: [UInt8]] = [:], rssi: Int? = nil, paired: Bool = false, bonded: Bool = false,
                trusted: Bool = false, connected: Bool = false, servicesResolved: Bool = false) {
        self.address = address
        self.addressType = addressType
        self.name = name
        self.serviceUUIDs = serviceUUIDs
        self.manufacturerData = manufacturerData
        self.rssi = rssi
        self.paired = paired
        self.bonded = bonded
        self.trusted = trusted
        self.connected = connected
        self.servicesResolved = servicesResolved
    }
}

/// One characteristic of a connected device's GATT tree.
public struct BLECharacteristicInfo: Sendable, Hashable {
    /// The service's UUID, written as in ``BLEDeviceInfo/serviceUUIDs``.
    public var service: String
    public var uuid: String
    /// BlueZ's `Flags`: `read`, `write`, `write-without-response`, `notify`, `indicate`, `encrypt-read`, …
    public var flags: Set<String>

    public init(service: String, uuid: String, flags: Set<String>) {
        self.service = service
        self.uuid = uuid
        self.flags = flags
    }
}

/// What the Bluetooth stack reports, in the order it happened.
public enum BLEEvent: Sendable, Hashable {
    /// The adapter appeared, disappeared (`present` false) or was powered on or off.
    case adapter(present: Bool, powered: Bool)
    /// A device was found, or a property of one changed (name, services, RSSI, connected, paired…).
    case device(BLEDeviceInfo)
    /// The adapter forgot the device (it was removed, or a scan result aged out), or BlueZ's view of it
    /// went away with the adapter, with bluetoothd (it is reported again when bluetoothd is back) or with the
    /// bus connection. Not a sign that the device was unpaired.
    case deviceRemoved(EUI48)
    /// A notification or indication arrived on a characteristic the hub subscribed to.
    case value(EUI48, service: String, characteristic: String, bytes: [UInt8])
}

/// How the pairing agent answers the Bluetooth stack on the hub's behalf.
public struct BLEPairingPolicy: Sendable {
    /// What the agent can show or type: `NoInputNoOutput` for a hub without a person at hand (Just Works
    /// only), `KeyboardDisplay` when a person can read or type a passkey.
    public enum Capability: String, Sendable {
        case noInputNoOutput = "NoInputNoOutput"
        case keyboardDisplay = "KeyboardDisplay"
        case displayOnly = "DisplayOnly"
        case keyboardOnly = "KeyboardOnly"
    }

    public var capability: Capability
    /// Whether to confirm a Just Works pairing or an incoming service authorisation from this device.
    public var mayPair: @Sendable (EUI48) -> Bool
    /// The passkey the device shows, typed in by a person; nil refuses the pairing.
    public var passkey: @Sendable (EUI48) -> UInt32?
    /// A passkey for the person to type on the device.
    public var display: @Sendable (EUI48, UInt32) -> Void

    public init(capability: Capability, mayPair: @escaping @Sendable (EUI48) -> Bool,
                passkey: @escaping @Sendable (EUI48) -> UInt32? = { _ in nil },
                display: @escaping @Sendable (EUI48, UInt32) -> Void = { _, _ in }) {
        self.capability = capability
        self.mayPair = mayPair
        self.passkey = passkey
        self.display = display
    }
}

/// The hub's side of Bluetooth LE: one adapter, its scans, connections, pairing and GATT.
///
/// Implemented over BlueZ's D-Bus API by ``BlueZCentral`` (one owner of GATT per device: bluetoothd), and by
/// fakes in tests. Events arrive on the implementation's own thread, in order; handlers must not block.
/// Every other method blocks the calling thread until BlueZ answers or `timeout` passes: call them from a
/// dedicated thread, never from the Swift concurrency pool, and never from the event handler.
public protocol BLECentral: AnyObject, Sendable {
    /// Connects to the stack, registers the pairing agent, and reports the adapter and every device it
    /// already knows as events before new ones.
    func start(pairing: BLEPairingPolicy, events: @escaping @Sendable (BLEEvent) -> Void) throws(DeviceIOError)
    /// Unregisters the agent, stops scanning and returns once no more events will be delivered; idempotent.
    func stop()
    /// Powers the adapter on if needed and scans for devices advertising any of `services`; an empty list
    /// stops scanning.
    func scan(services: [String]) throws(DeviceIOError)
    func connect(_ address: EUI48, timeout: Duration) throws(DeviceIOError)
    func disconnect(_ address: EUI48)
    /// Pairs (and bonds) with the device through the agent's policy.
    func pair(_ address: EUI48, timeout: Duration) throws(DeviceIOError)
    /// Marks the device as adopted (trusted) or not.
    func setTrusted(_ address: EUI48, _ trusted: Bool) throws(DeviceIOError)
    /// Forgets the device and its keys.
    func remove(_ address: EUI48) throws(DeviceIOError)
    /// The GATT tree of a connected device whose services are resolved.
    func characteristics(of address: EUI48) throws(DeviceIOError) -> [BLECharacteristicInfo]
    func read(_ address: EUI48, service: String, characteristic: String, timeout: Duration) throws(DeviceIOError) -> [UInt8]
    func write(_ address: EUI48, service: String, characteristic: String, value: [UInt8], withResponse: Bool,
               timeout: Duration) throws(DeviceIOError)
    /// Subscribes to notifications or indications; values then arrive as ``BLEEvent/value(_:service:characteristic:bytes:)``.
    func subscribe(_ address: EUI48, service: String, characteristic: String, timeout: Duration) throws(DeviceIOError)
}
