import VitalModel

/// How the hub keeps its own clock, reported on the PhgDevice (MDC time-sync codes, fhir-mapping.md §1.8).
public enum TimeSyncMethod: String, Sendable, Hashable, CaseIterable {
    case none
    case ntpv4
    /// SNTPv4 (RFC 4330): what systemd-timesyncd speaks, the default on Raspberry Pi OS and Debian.
    case sntpv4 = "sntpv4-rfc4330"
    case gps
    case other

    var mdc: MDCCode {
        switch self {
        case .none: MDCCode(532_224, "MDC_TIME_SYNC_NONE")
        case .ntpv4: MDCCode(532_226, "MDC_TIME_SYNC_NTPV4")
        case .sntpv4: MDCCode(532_228, "MDC_TIME_SYNC_SNTPV4_RFC4330")
        case .gps: MDCCode(532_238, "MDC_TIME_SYNC_GPS")
        case .other: MDCCode(532_236, "MDC_TIME_SYNC_OTHER")
        }
    }
}

/// The hub itself, which FHIR calls the PHG (personal health gateway).
public struct GatewayIdentity: Sendable, Hashable {
    /// A stable EUI-64, normally derived from the hub's Ethernet MAC.
    public var systemID: EUI64
    public var ethernetAddress: EUI48?
    public var softwareVersion: String
    public var timeSync: TimeSyncMethod
    /// The kinds of reading this hub can take, listed as the PhgDevice's specializations.
    public var supportedKinds: [MeasurementKind]

    public init(systemID: EUI64, ethernetAddress: EUI48? = nil, softwareVersion: String, timeSync: TimeSyncMethod,
                supportedKinds: [MeasurementKind] = [.bloodPressure, .heartRate]) {
        self.systemID = systemID
        self.ethernetAddress = ethernetAddress
        self.softwareVersion = softwareVersion
        self.timeSync = timeSync
        self.supportedKinds = supportedKinds
    }

    /// Identity of a hub with the given MAC: EUI-64 by inserting FF-FE, SNTP sync as systemd-timesyncd does.
    public static func derived(fromEthernet mac: EUI48, softwareVersion: String) -> GatewayIdentity {
        GatewayIdentity(systemID: EUI64(derivedFrom: mac), ethernetAddress: mac, softwareVersion: softwareVersion,
                        timeSync: .sntpv4)
    }
}

/// Who a reading's Observations are about.
public enum SubjectReference: Sendable, Hashable {
    /// A conditional reference `Patient?identifier=SYSTEM|VALUE` that the server resolves in a transaction.
    case identifier(PatientIdentifier)
    /// A Patient resolved on the server from its national identifier: referenced as `Patient/<id>`, while the
    /// observation identifiers keep using the national identifier, so that switching between conditional and
    /// resolved references never makes a second copy of a reading on the server.
    case resolved(logicalID: String, identifier: PatientIdentifier)

    /// The part of the PHD observation identifier that names the patient (fhir-mapping.md §1.5).
    var identifierPart: String {
        switch self {
        case .identifier(let patient), .resolved(_, let patient): patient.value + "-" + patient.system
        }
    }

    /// The `subject` element. A conditional reference is resolved by the server only inside a transaction
    /// (R4 http.html); elsewhere the same patient is given as a logical reference by identifier.
    func reference(conditional: Bool) -> JSONValue {
        switch self {
        case .identifier(let patient) where conditional:
            ["reference": .string("Patient?" + identifierMatchQuery(system: patient.system, value: patient.value))]
        case .identifier(let patient):
            logicalReference("Patient", system: patient.system, value: patient.value)
        case .resolved(let id, _):
            ["reference": .string("Patient/" + id)]
        }
    }
}

/// Everything FHIR output depends on besides the readings. Identifier systems and profile claims are
/// configuration, not code (ARCHITECTURE §6).
public struct FHIRExportConfiguration: Sendable, Hashable {
    public var gateway: GatewayIdentity
    /// Claim the PHD IG and R4 vital-signs profiles in `meta.profile`. Turn off for servers that reject
    /// profiles they do not have installed (fhir-mapping.md §3.2).
    public var claimProfiles: Bool
    /// The identifier system for devices known only by their USB serial number (no EUI-64, no Bluetooth
    /// address): the PHD IG has no system for them (fhir-mapping.md §1.5).
    public var usbSerialSystem: String

    public init(gateway: GatewayIdentity, claimProfiles: Bool = true,
                usbSerialSystem: String = "urn:vitalgate:usb-serial") {
        self.gateway = gateway
        self.claimProfiles = claimProfiles
        self.usbSerialSystem = usbSerialSystem
    }
}

extension SubjectReference {
    /// The Patient's logical id on the server, when it has been resolved.
    public var logicalID: String? {
        switch self {
        case .identifier: nil
        case .resolved(let id, _): id
        }
    }
}

/// A logical reference by identifier (R4 references.html#logical), which needs no resource on the server.
func logicalReference(_ type: String, system: String, value: String) -> JSONValue {
    ["type": .string(type), "identifier": ["system": .string(system), "value": .string(value)]]
}
