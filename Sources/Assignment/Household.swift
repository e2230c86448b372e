import VitalModel

/// The people whose readings a hub uploads, and which device (or which user slot of a multi-user cuff) is whose.
///
/// A family says it once: member 1 is this citizen, the cuff's user 1 is member 1, user 2 is member 2, the
/// scale is grandmother's. Readings the household cannot attribute are held unassigned, never guessed.
public struct Household: Sendable, Hashable {
    /// A person of the household: a local label (what the family calls them, never sent anywhere) and their
    /// national identifier.
    public struct Member: Sendable, Hashable {
        public var label: String
        public var patient: PatientIdentifier

        public init(label: String, patient: PatientIdentifier) {
            self.label = label
            self.patient = patient
        }
    }

    /// Which devices an entry means. Every field given must match; at least one is given.
    public struct DeviceSelector: Sendable, Hashable {
        /// A profile id such as `omron/hem-7600t`: any device of that model.
        public var profile: String?
        public var bluetoothAddress: EUI48?
        /// The IEEE 11073 System ID (Bluetooth Device Information 0x2A23).
        public var systemID: EUI64?
        /// The USB or device serial number.
        public var serialNumber: String?

        public init(profile: String? = nil, bluetoothAddress: EUI48? = nil, systemID: EUI64? = nil, serialNumber: String? = nil) {
            self.profile = profile
            self.bluetoothAddress = bluetoothAddress
            self.systemID = systemID
            self.serialNumber = serialNumber
        }

        public var isEmpty: Bool { profile == nil && bluetoothAddress == nil && systemID == nil && serialNumber == nil }

        /// True when every given field matches the reading's device and profile.
        public func matches(_ reading: Reading) -> Bool {
            guard !isEmpty else { return false }
            if let profile, profile != reading.source.profileID { return false }
            if let bluetoothAddress, bluetoothAddress != reading.device.bluetoothAddress { return false }
            if let systemID, systemID != reading.device.systemID { return false }
            if let serialNumber, serialNumber != reading.device.usb?.serial && serialNumber != reading.device.serialNumber {
                return false
            }
            return true
        }

        /// True when the entry names one device (its address, System ID or serial number), not only its model.
        public var namesDevice: Bool { bluetoothAddress != nil || systemID != nil || serialNumber != nil }

        /// An entry naming the device itself beats one naming its model. A profile beside a device name adds nothing:
        /// two entries that name the same device (by address and by serial number, say) are a conflict to hold.
        var specificity: Int { namesDevice ? 2 : (profile != nil ? 1 : 0) }
    }

    /// A device of the household: either it belongs to one member, or its user slots are bound to members.
    public struct DeviceBinding: Sendable, Hashable {
        public var selector: DeviceSelector
        /// The member a single-user device belongs to (by label).
        public var member: String?
        /// User slot (as the device numbers it, as `vitalgate readings` shows it) → member label.
        public var slots: [Int: String]

        public init(selector: DeviceSelector, member: String? = nil, slots: [Int: String] = [:]) {
            self.selector = selector
            self.member = member
            self.slots = slots
        }
    }

    public var members: [Member]
    public var devices: [DeviceBinding]

    public init(members: [Member] = [], devices: [DeviceBinding] = []) {
        self.members = members
        self.devices = devices
    }

    /// A household of one: what the older `owner` setting means.
    public static func single(_ patient: PatientIdentifier) -> Household {
        Household(members: [Member(label: "owner", patient: patient)])
    }

    public func member(_ label: String) -> Member? { members.first { $0.label == label } }

    /// The entries that claim the reading's device, most specific first; ties are returned together.
    func bindings(for reading: Reading) -> [DeviceBinding] {
        let matching = devices.filter { $0.selector.matches(reading) }
        guard let best = matching.map(\.selector.specificity).max() else { return [] }
        return matching.filter { $0.selector.specificity == best }
    }
}
