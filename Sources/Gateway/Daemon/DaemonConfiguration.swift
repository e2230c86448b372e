import Assignment
import FHIRExport
import Foundation
import ProfileCatalog
import Uplink
import VitalModel

/// The daemon's configuration file (`/etc/vitalgate/config.json`): where state lives, the FHIR server and how
/// to authenticate, whose readings these are. Every error names the file, line, column and field.
public struct DaemonConfiguration: Sendable {
    /// Where the Outbox database and the ingest socket live (`StateDirectory=` under systemd).
    public var stateDirectory: String
    /// The file it was read from, for errors found later.
    public var file: String
    public var baseURL: String
    public var mode: UplinkConfiguration.Mode
    public var subjectStyle: UplinkConfiguration.SubjectStyle
    public var batchSize: Int
    public var backoff: Backoff
    public var claimProfiles: Bool
    /// The MAC address the hub's identity is derived from; nil: the machine's own, found when the daemon starts
    /// (commands that only read the Outbox never need it).
    public var gatewayAddress: EUI48?
    public var auth: AuthMethod
    public var tls: TLSOptions
    public var connectTimeout: Duration
    public var requestTimeout: Duration
    /// Whose readings these are: members with their identifiers, devices and user slots bound to them (the
    /// older `owner` setting is a household of one). What it cannot attribute is held unassigned.
    public var household: Household
    /// The community health worker using this kit: the performer of readings taken during visits.
    public var healthWorker: PerformerIdentifier?

    /// The rules that attribute readings to the household's members and to visits.
    public var assignment: AssignmentRules { AssignmentRules(household: household) }
    public var identifierSystems: IdentifierSystems
    /// The ingest socket: readings from device sessions and `vitalgate ingest`, acknowledged after commit.
    public var ingestSocket: String
    /// Delivered readings are pruned from the Outbox after this long; unsent ones never are.
    public var keepDelivered: Duration
    /// Ingest stops while the state directory's file system has less free space than this.
    public var reservedFreeBytes: Int
    /// Whether the daemon finds USB serial and hidraw devices through udev and reads those a profile claims.
    public var discoverDevices: Bool
    /// Where the device profiles are; nil: the shipped ones (`VITALGATE_PROFILES`, then the installed tree).
    public var profilesDirectory: String?
    /// Profiles allowed to open a generic USB-serial bridge (CP210x, PL2303, …) that they claim by the chip's
    /// ids alone: the operator says the device behind it is theirs.
    public var serialBridgeProfiles: Set<String>
    /// Bluetooth LE through BlueZ, heart-rate windows, Bluetooth Classic serial devices.
    public var bluetooth = BluetoothSettings()
    /// The Prometheus text file for node_exporter's textfile collector; nil: none is written.
    public var metrics: MetricsSettings?
    /// The control socket `vitalgate status`, `readings`, `visit` and `assign` talk to.
    public var controlSocket = "/run/vitalgate/control.sock"
    /// Groups whose members may use the control socket (besides root and the service user); nil: the default
    /// `vitalgate-operators`, when that group exists.
    public var operatorGroups: [String]?

    /// The Outbox database path.
    public var outboxPath: String { Self.outboxPath(in: stateDirectory) }

    /// The Outbox database in a state directory.
    public static func outboxPath(in stateDirectory: String) -> String { stateDirectory + "/outbox.db" }

    /// How the Uplink is to talk to the server, with the hub's identity (the machine's MAC unless configured).
    public func uplinkConfiguration(hostAddress: () -> EUI48? = HostIdentity.firstEthernetAddress) throws(ProfileError) -> UplinkConfiguration {
        guard let mac = gatewayAddress ?? hostAddress() else {
            throw ProfileError(file: file, location: nil, field: "gateway.ethernetAddress",
                               problem: "this machine has no wired or built-in Wi-Fi interface with a fixed MAC address to derive the hub's identity from",
                               fix: "set gateway.ethernetAddress to a stable MAC address")
        }
        let identity = GatewayIdentity.derived(fromEthernet: mac, softwareVersion: VitalGateVersion.current)
        return UplinkConfiguration(baseURL: baseURL, mode: mode, subjectStyle: subjectStyle, batchSize: batchSize, backoff: backoff,
                                   export: FHIRExportConfiguration(gateway: identity, claimProfiles: claimProfiles))
    }

    /// Reads and checks `path`.
    public static func load(_ path: String) throws(ProfileError) -> DaemonConfiguration {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ProfileError(file: path, location: nil, field: "", problem: "cannot read the configuration file",
                               fix: "check the path and that the service user may read it")
        }
        let json: LocatedJSON
        do { json = try LocatedJSONParser.parse(bytes: Array(data)) } catch {
            throw ProfileError(file: path, location: error.location, field: "", problem: error.problem, fix: "write valid JSON")
        }
        return try parse(json, file: path)
    }

    static func parse(_ json: LocatedJSON, file: String) throws(ProfileError) -> DaemonConfiguration {
        var top = try ProfileObject(json, file: file, path: "")
        let stateDirectory = try top.string("stateDirectory") ?? "/var/lib/vitalgate"

        var identifierSystems = IdentifierSystems.vietnam
        if var systems = try top.object("identifierSystems") {
            identifierSystems.citizenID = try systems.string("citizenID") ?? identifierSystems.citizenID
            identifierSystems.socialInsurance = try systems.string("socialInsurance") ?? identifierSystems.socialInsurance
            try systems.finish()
        }
        let (household, healthWorker) = try HouseholdSettings.parse(&top, identifierSystems: identifierSystems, file: file)

        var server = try top.object("server", required: true)!
        guard let baseURL = try server.string("baseURL", required: true, example: "\"https://fhir.example.vn/r4\""),
              baseURL.hasPrefix("https://") || baseURL.hasPrefix("http://") else {
            throw server.error("baseURL", "the server address must start with https:// (or http:// on a trusted network)",
                               fix: "write the FHIR base URL, e.g. \"https://fhir.example.vn/r4\"")
        }
        let mode = try server.choice("mode", UplinkConfiguration.Mode.self) ?? .transaction
        let subjectStyle = try server.choice("subjectReference", UplinkConfiguration.SubjectStyle.self) ?? .conditional
        let batchSize = try server.int("batchSize", in: 1...1000) ?? 50
        let claimProfiles = try server.bool("claimProfiles") ?? true
        var connectTimeout = Duration.seconds(10), requestTimeout = Duration.seconds(60)
        if var timeouts = try server.object("timeouts") {
            connectTimeout = .seconds(try timeouts.int("connectSeconds", in: 1...600) ?? 10)
            requestTimeout = .seconds(try timeouts.int("requestSeconds", in: 1...3600) ?? 60)
            try timeouts.finish()
        }
        var backoff = Backoff()
        if var retry = try server.object("retry") {
            let initial = try retry.int("initialMilliseconds", in: 10...600_000) ?? 1000
            let maximum = try retry.int("maximumSeconds", in: 1...86_400) ?? 300
            backoff = Backoff(initial: .milliseconds(initial), maximum: .seconds(maximum))
            try retry.finish()
        }
        var tls = TLSOptions()
        if var tlsObject = try server.object("tls") {
            tls.caBundlePath = try tlsObject.string("caBundle")
            tls.clientCertificatePath = try tlsObject.string("clientCertificate")
            tls.clientKeyPath = try tlsObject.string("clientKey")
            if (tls.clientCertificatePath == nil) != (tls.clientKeyPath == nil) {
                throw tlsObject.error(nil, "mutual TLS needs both clientCertificate and clientKey",
                                      fix: "give both files, or neither")
            }
            try tlsObject.finish()
        }
        let auth = try parseAuth(&server)
        try server.finish()

        var gatewayAddress: EUI48?
        if var gateway = try top.object("gateway") {
            if let text = try gateway.string("ethernetAddress", example: "\"DC:A6:32:01:02:03\"") {
                guard let mac = EUI48(text) else {
                    throw gateway.error("ethernetAddress", "\"\(text)\" is not a MAC address", fix: "write six hex bytes, e.g. \"DC:A6:32:01:02:03\"")
                }
                gatewayAddress = mac
            }
            try gateway.finish()
        }

        let ingestSocket = try top.string("ingestSocket") ?? stateDirectory + "/ingest.sock"
        var keepDelivered = Duration.seconds(30 * 86_400)
        if var retention = try top.object("retention") {
            keepDelivered = .seconds(86_400 * (try retention.int("deliveredDays", in: 0...3650) ?? 30))
            try retention.finish()
        }
        let metrics = try MetricsSettings.parse(&top)
        // The control socket: under systemd in RuntimeDirectory (/run/vitalgate), else beside the Outbox.
        var controlSocket = (ProcessInfo.processInfo.environment["RUNTIME_DIRECTORY"].map { $0 + "/control.sock" })
            ?? stateDirectory + "/control.sock"
        var operatorGroups: [String]? = nil
        if var control = try top.object("control") {
            controlSocket = try control.string("socket", example: "\"/run/vitalgate/control.sock\"") ?? controlSocket
            operatorGroups = try control.strings("operatorGroups", nonEmpty: false)
            try control.finish()
        }
        var reserved = 8 << 20
        if var outbox = try top.object("outbox") {
            reserved = (try outbox.int("reservedFreeMiB", in: 0...102_400) ?? 8) << 20
            try outbox.finish()
        }
        var discoverDevices = true
        var profilesDirectory: String?
        var serialBridgeProfiles: Set<String> = []
        if var devices = try top.object("devices") {
            discoverDevices = try devices.bool("discover") ?? true
            profilesDirectory = try devices.string("profiles", example: "\"/usr/share/vitalgate/profiles\"")
            for (item, path) in try devices.array("serialBridges") ?? [] {
                guard case .string(let id) = item.value, !id.isEmpty else {
                    throw ProfileError(file: file, location: item.location, field: path, problem: "is not a profile id",
                                       fix: "write the id of a profile, e.g. \"contec/cms50d-plus\"")
                }
                serialBridgeProfiles.insert(id)
            }
            try devices.finish()
        }
        let bluetooth = try BluetoothSettings.parse(&top, file: file)
        try top.finish()

        var configuration = DaemonConfiguration(
            stateDirectory: stateDirectory, file: file, baseURL: baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL,
            mode: mode, subjectStyle: subjectStyle, batchSize: batchSize, backoff: backoff, claimProfiles: claimProfiles,
            gatewayAddress: gatewayAddress, auth: auth, tls: tls, connectTimeout: connectTimeout, requestTimeout: requestTimeout,
            household: household, healthWorker: healthWorker, identifierSystems: identifierSystems, ingestSocket: ingestSocket, keepDelivered: keepDelivered,
            reservedFreeBytes: reserved, discoverDevices: discoverDevices, profilesDirectory: profilesDirectory,
            serialBridgeProfiles: serialBridgeProfiles)
        configuration.bluetooth = bluetooth
        configuration.metrics = metrics
        configuration.controlSocket = controlSocket
        configuration.operatorGroups = operatorGroups
        return configuration
    }

    enum AuthKind: String, CaseIterable {
        case none
        case bearer
        case clientCredentials = "client-credentials"
        case smartBackendServices = "smart-backend-services"
    }

    static func parseAuth(_ server: inout ProfileObject) throws(ProfileError) -> AuthMethod {
        guard var auth = try server.object("auth") else { return .none }
        let method: AuthMethod
        switch try auth.choice("method", AuthKind.self, required: true)! {
        case .none:
            method = .none
        case .bearer:
            method = .bearerTokenFile(path: try auth.string("tokenFile", required: true, example: "\"/etc/vitalgate/secrets/token\"")!)
        case .clientCredentials:
            method = .clientCredentials(ClientCredentials(
                tokenURL: try auth.string("tokenURL"), clientID: try auth.string("clientID", required: true)!,
                secretFile: try auth.string("secretFile", required: true)!, scope: try auth.string("scope")))
        case .smartBackendServices:
            let algorithm = try auth.choice("algorithm", JWSAlgorithm.self) ?? .es384
            method = .smartBackendServices(SMARTBackendServices(
                tokenURL: try auth.string("tokenURL"), clientID: try auth.string("clientID", required: true)!,
                privateKeyFile: try auth.string("privateKeyFile", required: true)!, keyID: try auth.string("keyID"),
                algorithm: algorithm,
                scope: try auth.string("scope") ?? "system/Patient.rs system/Device.crs system/Observation.crs"))
        }
        try auth.finish()
        return method
    }
}

/// Facts about the machine the hub runs on.
public enum HostIdentity {
    /// What ``persistentAddress(stateDirectory:detect:)`` found.
    public enum Kept: Sendable, Hashable {
        /// Read from the state directory, as chosen on an earlier start.
        case kept(EUI48)
        /// Detected now and written down (the first start, or the file was damaged: `replacedDamaged`).
        case chosen(EUI48, replacedDamaged: Bool)
        /// Nothing kept and nothing to detect.
        case none
    }

    /// The MAC address the hub's identity is derived from, chosen once and kept in `<stateDirectory>/hub-address`.
    ///
    /// The hub's PhgDevice and the identity of USB devices without a serial number are derived from it, and
    /// the server recognises re-sent readings by them: if it changed (a USB network adapter that sorts
    /// before the built-in one, a replaced Wi-Fi module), a monitor re-sending its memory would create copies.
    /// So the first detected address is written down and used from then on.
    public static func persistentAddress(stateDirectory: String,
                                         detect: () -> EUI48? = firstEthernetAddress) -> Kept {
        let path = stateDirectory + "/hub-address"
        var damaged = false
        if let data = FileManager.default.contents(atPath: path) {
            let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            if let mac = EUI48(text) { return .kept(mac) }
            damaged = true
        }
        guard let mac = detect() else { return .none }
        // Written aside and renamed, so a crash never leaves half an address.
        try? Data((mac.description + "\n").utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
        return .chosen(mac, replacedDamaged: damaged)
    }

    /// The MAC address of the first physical network interface (sorted by name) whose address is burnt in: not
    /// a bridge, veth, docker or other virtual interface, and not a randomised Wi-Fi address, which would give
    /// the hub a new identity, and the server a new gateway Device, on every boot.
    public static func firstEthernetAddress() -> EUI48? {
        let root = "/sys/class/net"
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: root) else { return nil }
        func read(_ name: String, _ file: String) -> String? {
            (try? String(contentsOfFile: "\(root)/\(name)/\(file)", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        for name in names.sorted() where name != "lo" {
            // Physical interfaces have a `device` link; `addr_assign_type` 0 is a permanent (burnt-in) address.
            guard FileManager.default.fileExists(atPath: "\(root)/\(name)/device"),
                  read(name, "type") == "1", read(name, "addr_assign_type") == "0",
                  let text = read(name, "address"), let mac = EUI48(text), mac.bytes != [0, 0, 0, 0, 0, 0] else { continue }
            return mac
        }
        return nil
    }
}
