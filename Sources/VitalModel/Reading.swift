/// An IEEE 11073 special value: the device sent a number slot that carries no number.
public enum SpecialValue: String, Sendable, Hashable, CaseIterable {
    case notANumber = "NaN"
    case notAtThisResolution = "NRes"
    case positiveInfinity = "+INF"
    case negativeInfinity = "-INF"
    case reserved
}

/// A number as a device reported it: a quantity, or a special value in the slot where it would be.
public enum NumericValue: Sendable, Hashable, CustomStringConvertible {
    case number(DecimalValue)
    case special(SpecialValue)

    public var description: String {
        switch self {
        case .number(let value): value.description
        case .special(let special): special.rawValue
        }
    }
}

/// One measured value of a reading: what it is, the number and its unit.
public struct MeasuredValue: Sendable, Hashable {
    public var type: MeasurementType
    public var value: NumericValue
    public var unit: MeasurementUnit

    public init(_ type: MeasurementType, _ value: NumericValue, _ unit: MeasurementUnit) {
        self.type = type
        self.value = value
        self.unit = unit
    }
}

/// The kind of reading: decides how the values are grouped into FHIR Observations.
public enum MeasurementKind: String, Sendable, Hashable, CaseIterable {
    /// Systolic, diastolic and mean pressure, optionally a pulse rate, from a cuff.
    case bloodPressure = "blood-pressure"
    /// A heart rate from a sensor (chest strap, watch), optionally with R-R intervals and energy.
    case heartRate = "heart-rate"
    case pulseOximetry = "pulse-oximetry"
    case bodyWeight = "body-weight"
    case bodyTemperature = "body-temperature"
    case glucose
}

/// IEEE 11073-10206 measurement-status conditions a device can attach to a reading. They become FHIR
/// `status`, `interpretation`, `dataAbsentReason` or `meta.security` (fhir-mapping.md §1.7).
public struct MeasurementStatus: OptionSet, Sendable, Hashable {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let invalid = MeasurementStatus(rawValue: 1 << 0)
    public static let questionable = MeasurementStatus(rawValue: 1 << 1)
    public static let notAvailable = MeasurementStatus(rawValue: 1 << 2)
    public static let calibrating = MeasurementStatus(rawValue: 1 << 3)
    public static let testData = MeasurementStatus(rawValue: 1 << 4)
    public static let demoData = MeasurementStatus(rawValue: 1 << 5)
    public static let earlyEstimate = MeasurementStatus(rawValue: 1 << 6)
    public static let validated = MeasurementStatus(rawValue: 1 << 7)
    public static let ongoing = MeasurementStatus(rawValue: 1 << 8)
    public static let fromStorage = MeasurementStatus(rawValue: 1 << 9)

    /// Names used in readings' JSON.
    public static let names: [(MeasurementStatus, String)] = [
        (.invalid, "invalid"), (.questionable, "questionable"), (.notAvailable, "not-available"),
        (.calibrating, "calibrating"), (.testData, "test-data"), (.demoData, "demo-data"),
        (.earlyEstimate, "early-estimate"), (.validated, "validated"), (.ongoing, "ongoing"),
        (.fromStorage, "from-storage"),
    ]

    public var names: [String] { MeasurementStatus.names.filter { contains($0.0) }.map(\.1) }
}

/// One bit of a device status field that FHIR carries as a PhdBitsEnumerationObservation component
/// (code `<MDC type>.<bit>` from the ASN1ToHL7 code system).
public struct StatusBit: Sendable, Hashable {
    public var bit: Int
    public var name: String
    /// Nil when the device sent a reserved value for this bit, so neither state can be claimed.
    public var isSet: Bool?

    public init(bit: Int, name: String, isSet: Bool?) {
        self.bit = bit
        self.name = name
        self.isSet = isSet
    }
}

/// A device status field, such as the blood-pressure measurement status (MDC 8410608).
public struct StatusBitField: Sendable, Hashable {
    public var type: MDCCode
    public var bits: [StatusBit]
    /// False when `type` and the bit numbering come from a source fhir-mapping.md has not confirmed: the field
    /// stays in the reading and its JSON, and FHIR export leaves it out until the code is verified.
    public var isVerified: Bool

    public init(type: MDCCode, bits: [StatusBit], isVerified: Bool = true) {
        self.type = type
        self.bits = bits
        self.isVerified = isVerified
    }

    public static let bloodPressureMeasurementStatus = MDCCode(8_410_608, "MDC_BLOOD_PRESSURE_MEASUREMENT_STATUS")
    /// Pulse-oximeter device and sensor status. Unverified: the code and the bit names come from the HL7 PHD
    /// IG's ASN1-to-HL7 table (HL7/phd `input/pagecontent/ASN1ToHL7Codes.md`), not from fhir-mapping.md.
    public static let pulseOximeterDeviceStatus = MDCCode(150_604, "MDC_PULS_OXIM_DEV_STATUS")
    /// Glucose meter device and sensor status. Unverified, from the same HL7 PHD IG table.
    public static let glucoseMeterDeviceStatus = MDCCode(8_417_752, "MDC_GLU_METER_DEV_STATUS")
}

/// Where on the body a reading was taken, such as the site of a thermometer.
public struct BodySite: Sendable, Hashable {
    /// The MDC code FHIR `Observation.bodySite` carries; nil where no source we trust gives one (the site is
    /// then kept in the reading and its JSON only).
    public var code: MDCCode?
    /// Stable name used in readings' JSON, such as `armpit` or `ear`.
    public var name: String

    public init(code: MDCCode?, name: String) {
        self.code = code
        self.name = name
    }
}

/// Whether a body-worn sensor touched the skin when it measured.
public enum SensorContact: String, Sendable, Hashable {
    case notSupported = "not-supported"
    case notDetected = "not-detected"
    case detected
}

/// Where a reading's bytes came from: the profile that decoded them and the frame or characteristic.
public struct ReadingSource: Sendable, Hashable {
    public var profileID: String
    /// A Bluetooth characteristic UUID such as `2A35`, or a frame name of a byte protocol.
    public var frame: String

    public init(profileID: String, frame: String) {
        self.profileID = profileID
        self.frame = frame
    }
}

/// One measurement event from one device: the single internal currency of VitalGate.
///
/// A reading holds what the device said, unchanged, and when the hub received it. Everything FHIR is
/// derived from it later by a pure function, so a stored reading can be re-exported at any time.
public struct Reading: Sendable, Hashable {
    public var kind: MeasurementKind
    public var values: [MeasuredValue]
    /// The device's own timestamp, when it sent one.
    public var deviceTime: DeviceTimestamp?
    /// When the hub received the reading.
    public var receivedAt: HubTimestamp
    public var device: DeviceIdentity
    /// The device's user slot (multi-user cuffs), as the device's profile numbers it: Bluetooth SIG
    /// devices send their user id (the Beurer BM85 sends 0 for its user 1), frame profiles may add an
    /// offset. Its meaning is per device model, which is why a household binds the slots of each device
    /// to members. Nil when the device has no users; ``unknownUserSlot`` (255, the Bluetooth SIG's 0xFF) when it
    /// has users but did not know who measured. Never negative.
    public var userSlot: Int?

    /// The user slot of a reading the device could not attribute to one of its users: held, never guessed.
    public static let unknownUserSlot = 255
    public var status: MeasurementStatus
    public var statusBits: [StatusBitField]
    public var sensorContact: SensorContact?
    /// A reading of the device clock at a known hub time, when the session could take one.
    public var clockCheck: DeviceClockCheck?
    public var source: ReadingSource
    /// The bytes the reading was decoded from.
    public var raw: [UInt8]
    /// Where on the body the device measured, when it said.
    public var bodySite: BodySite?
    /// The device's record number for this reading (Bluetooth glucose sequence number), used to download
    /// only newer records next time.
    public var sequenceNumber: Int?
    /// Set when the reading summarises a window of a continuous sensor's samples (its first value is their
    /// mean); nil for a reading the device sent as one measurement.
    public var window: MeasurementWindow?

    public init(kind: MeasurementKind, values: [MeasuredValue], deviceTime: DeviceTimestamp? = nil,
                receivedAt: HubTimestamp, device: DeviceIdentity, userSlot: Int? = nil,
                status: MeasurementStatus = [], statusBits: [StatusBitField] = [],
                sensorContact: SensorContact? = nil, clockCheck: DeviceClockCheck? = nil,
                source: ReadingSource, raw: [UInt8], bodySite: BodySite? = nil, sequenceNumber: Int? = nil,
                window: MeasurementWindow? = nil) {
        self.kind = kind
        self.values = values
        self.deviceTime = deviceTime
        self.receivedAt = receivedAt
        self.device = device
        self.userSlot = userSlot
        self.status = status
        self.statusBits = statusBits
        self.sensorContact = sensorContact
        self.clockCheck = clockCheck
        self.source = source
        self.raw = raw
        self.bodySite = bodySite
        self.sequenceNumber = sequenceNumber
        self.window = window
    }

    /// The first value of `type`, if the reading has one.
    public func value(_ type: MeasurementType) -> MeasuredValue? { values.first { $0.type == type } }
}
