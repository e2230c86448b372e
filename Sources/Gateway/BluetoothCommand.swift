import Foundation
import Synchronization
import VitalModel
import ProfileCatalog
import DeviceIO

/// `vitalgate bluetooth`: find, adopt and forget Bluetooth LE devices through BlueZ.
///
/// Adopting a device is pairing it when its profile asks for pairing, then marking it trusted in BlueZ;
/// the daemon connects only to trusted devices a profile claims. The command talks to bluetoothd over the
/// system bus (`DBUS_SYSTEM_BUS_ADDRESS` when set) with an agent of its own, so a running daemon keeps its
/// default agent.
struct BluetoothCommand {
    static let usage = """
        Usage: vitalgate bluetooth scan [--seconds N] [--json] [--adapter hciN] [--profiles DIR]
               vitalgate bluetooth list [--json] [--adapter hciN] [--profiles DIR]
               vitalgate bluetooth pair ADDRESS [--passkey-stdin] [--timeout SECONDS] [--adapter hciN] [--profiles DIR]
               vitalgate bluetooth forget ADDRESS [--adapter hciN]

        scan     scans for devices advertising a service some Bluetooth profile claims (default 10 s) and lists
                 each with the profile that claims it, or why none does
        list     the devices BlueZ knows (seen, paired, trusted) and their profiles
        pair     adopts a device: pairs it if its profile says pairing is needed (just-works or passkey), then
                 trusts it, which tells vitalgated it may connect; a profile with "pairing": "none" is only
                 trusted. A passkey the hub must show is printed; with --passkey-stdin, the passkey the device
                 shows is read from standard input. A device BlueZ has not seen yet is scanned for first.
        forget   removes the device and its keys from BlueZ (the hub stops reading it)

        ADDRESS is the device's Bluetooth address, C4:F3:12:53:F2:C9.

        Options:
          --adapter hciN     the Bluetooth adapter (default: the first BlueZ reports)
          --profiles DIR     the profile tree to match against (default: the shipped DeviceProfiles)
          --seconds N        how long scan listens (default 10)
          --timeout SECONDS  how long pair waits for the device and the person (default 60)
          --json             print a JSON array instead of text

        Exit status: 0 done, 1 BlueZ failed or no profile claims the device, 2 usage error.
        """

    /// Runs `arguments` (after `bluetooth`). `busAddress` replaces the system bus (tests); `input` gives the
    /// passkey lines for `--passkey-stdin`; `emit` writes lines a person must see while the command runs.
    static func run(_ arguments: [String], busAddress: String? = nil, input: @escaping @Sendable () -> String? = { readLine() },
                    emit: @escaping @Sendable (String) -> Void = DevicesCommand.writeToStandardOutput) -> CommandResult {
        if arguments.isEmpty { return CommandResult(stderr: usage + "\n", exitCode: 2) }
        if arguments.contains("--help") || arguments.contains("-h") || arguments.first == "help" {
            return CommandResult(stdout: usage + "\n")
        }
        let subcommand = arguments[0]
        do {
            switch subcommand {
            case "scan":
                let parsed = try Arguments(Array(arguments.dropFirst()), flags: ["json"], options: ["seconds", "adapter", "profiles"],
                                           command: "bluetooth scan")
                try noOperands(parsed, "scan")
                let seconds = try SimulateCommand.seconds(parsed.value("seconds"), option: "seconds", default: 10, range: 0.1...3600)
                return try scan(parsed, duration: seconds, busAddress: busAddress)
            case "list":
                let parsed = try Arguments(Array(arguments.dropFirst()), flags: ["json"], options: ["adapter", "profiles"],
                                           command: "bluetooth list")
                try noOperands(parsed, "list")
                return try list(parsed, busAddress: busAddress)
            case "pair":
                let parsed = try Arguments(Array(arguments.dropFirst()), flags: ["passkey-stdin"], options: ["adapter", "profiles", "timeout"],
                                           command: "bluetooth pair")
                let address = try address(parsed, "pair")
                let timeout = try SimulateCommand.seconds(parsed.value("timeout"), option: "timeout", default: 60, range: 1...3600)
                return try BluetoothPairing(address: address, timeout: timeout, passkeyFromInput: parsed.has("passkey-stdin"),
                                            matcher: matcher(parsed), input: input, emit: emit)
                    .run(central(parsed, busAddress: busAddress))
            case "forget":
                let parsed = try Arguments(Array(arguments.dropFirst()), flags: [], options: ["adapter"], command: "bluetooth forget")
                let address = try address(parsed, "forget")
                return try forget(address, central: central(parsed, busAddress: busAddress))
            default:
                throw UsageError("unknown bluetooth command '\(subcommand)'; it is scan, list, pair or forget")
            }
        } catch let error as UsageError {
            return CommandResult(stderr: "vitalgate bluetooth: \(error)\nSee `vitalgate bluetooth --help`.\n", exitCode: 2)
        } catch {
            return CommandResult(stderr: "vitalgate bluetooth \(subcommand): \(error)\n", exitCode: 1)
        }
    }

    // MARK: Subcommands

    static func scan(_ parsed: Arguments, duration: Duration, busAddress: String?) throws -> CommandResult {
        let matcher = try matcher(parsed)
        let services = matcher.services
        guard !services.isEmpty else {
            throw UsageError("no Bluetooth LE profile in the profile tree names a service to scan for")
        }
        let central = try central(parsed, busAddress: busAddress)
        let log = BluetoothDeviceLog()
        try central.start(pairing: quietPolicy) { log.record($0) }
        defer { central.stop() }
        try requireAdapter(log)
        log.beginScan()
        try central.scan(services: services)
        Thread.sleep(forTimeInterval: Double(duration.wholeMilliseconds) / 1000)
        try? central.scan(services: [])
        let seen = log.scanned
        if parsed.has("json") {
            return CommandResult(stdout: JSONValue.array(seen.map { describe($0, matcher) }).prettyPrinted() + "\n")
        }
        guard !seen.isEmpty else {
            return CommandResult(stdout: "no device advertising \(services.joined(separator: ", ")) was seen in \(formatted(duration))\n")
        }
        return CommandResult(stdout: seen.map { text($0, matcher) }.joined())
    }

    static func list(_ parsed: Arguments, busAddress: String?) throws -> CommandResult {
        let matcher = try matcher(parsed)
        let central = try central(parsed, busAddress: busAddress)
        let log = BluetoothDeviceLog()
        try central.start(pairing: quietPolicy) { log.record($0) }
        central.stop()
        try requireAdapter(log)
        let devices = log.known
        if parsed.has("json") {
            return CommandResult(stdout: JSONValue.array(devices.map { describe($0, matcher) }).prettyPrinted() + "\n")
        }
        guard !devices.isEmpty else { return CommandResult(stdout: "BlueZ knows no Bluetooth device\n") }
        return CommandResult(stdout: devices.map { text($0, matcher) }.joined())
    }

    static func forget(_ address: EUI48, central: BlueZCentral) throws -> CommandResult {
        let log = BluetoothDeviceLog()
        try central.start(pairing: quietPolicy) { log.record($0) }
        defer { central.stop() }
        try requireAdapter(log)
        try central.remove(address)
        return CommandResult(stdout: "forgot \(BluetoothDeviceLog.text(address)): BlueZ removed it and its keys\n")
    }

    // MARK: Shared

    /// This process's agent while it scans, lists or forgets: it agrees to nothing.
    static let quietPolicy = BLEPairingPolicy(capability: .noInputNoOutput, mayPair: { _ in false })

    static func central(_ parsed: Arguments, busAddress: String?) throws(UsageError) -> BlueZCentral {
        if let adapter = parsed.value("adapter"), !BlueZCentral.isAdapterName(adapter) {
            throw UsageError("--adapter \(adapter) is not an adapter name: write hci0, hci1, … as `bluetoothctl list` shows")
        }
        return BlueZCentral(adapter: parsed.value("adapter"), busAddress: busAddress, requestDefaultAgent: false)
    }

    static func matcher(_ parsed: Arguments) throws -> BLEProfileMatcher {
        let root = try ProfileResolver.directory(parsed.value("profiles"))
        guard ProfileResolver.isDirectory(root) else { throw UsageError("no profile tree at \(root)") }
        return BLEProfileMatcher(profiles: ProfileCatalog.load(directory: root).profiles)
    }

    static func requireAdapter(_ log: BluetoothDeviceLog) throws(DeviceIOError) {
        guard log.adapterPresent else {
            throw DeviceIOError(operation: "find the adapter", path: "BlueZ",
                                fix: "no Bluetooth adapter is present: plug one in, or check `bluetoothctl list` and `rfkill list` (and --adapter)")
        }
    }

    static func noOperands(_ parsed: Arguments, _ name: String) throws(UsageError) {
        guard parsed.operands.isEmpty else {
            throw UsageError("`vitalgate bluetooth \(name)` takes no operands (got \(parsed.operands.joined(separator: " ")))")
        }
    }

    static func address(_ parsed: Arguments, _ name: String) throws(UsageError) -> EUI48 {
        guard parsed.operands.count == 1 else { throw UsageError("`vitalgate bluetooth \(name)` takes one ADDRESS, such as C4:F3:12:53:F2:C9") }
        guard let address = EUI48(parsed.operands[0]) else {
            throw UsageError("'\(parsed.operands[0])' is not a Bluetooth address; write it as C4:F3:12:53:F2:C9")
        }
        return address
    }

    static func formatted(_ duration: Duration) -> String {
        let milliseconds = duration.wholeMilliseconds
        return milliseconds % 1000 == 0 ? "\(milliseconds / 1000) s" : "\(Double(milliseconds) / 1000) s"
    }

    // MARK: Output

    static func text(_ device: BLEDeviceInfo, _ matcher: BLEProfileMatcher) -> String {
        var out = BluetoothDeviceLog.text(device.address) + (device.name.map { "  \"\($0)\"" } ?? "  (no name)")
        if let rssi = device.rssi { out += "  rssi \(rssi)" }
        out += "\n"
        let state = [("paired", device.paired), ("bonded", device.bonded), ("trusted", device.trusted), ("connected", device.connected)]
            .filter(\.1).map(\.0)
        out += "  services: " + (device.serviceUUIDs.isEmpty ? "none advertised" : device.serviceUUIDs.joined(separator: ", ")) + "\n"
        if !state.isEmpty { out += "  state:    " + state.joined(separator: ", ") + "\n" }
        switch matcher.match(device) {
        case .profile(let profile):
            out += "  profile:  \(profile.id) (\(profile.vendor) \(profile.model)), pairing \(pairing(profile).rawValue)\n"
        case .none, .ambiguous:
            out += "  profile:  none, not adopted: \(matcher.explanation(for: device))\n"
        }
        return out
    }

    static func describe(_ device: BLEDeviceInfo, _ matcher: BLEProfileMatcher) -> JSONValue {
        var members: [(String, JSONValue)] = [
            ("address", .string(BluetoothDeviceLog.text(device.address))),
            ("addressType", .string(device.addressType.rawValue)),
            ("name", device.name.map(JSONValue.string) ?? .null),
            ("rssi", device.rssi.map { JSONValue.int($0) } ?? .null),
            ("services", .array(device.serviceUUIDs.map(JSONValue.string))),
            ("paired", .bool(device.paired)),
            ("bonded", .bool(device.bonded)),
            ("trusted", .bool(device.trusted)),
            ("connected", .bool(device.connected)),
        ]
        switch matcher.match(device) {
        case .profile(let profile):
            members += [("match", "profile"), ("profile", .string(profile.id)), ("pairing", .string(pairing(profile).rawValue)), ("reason", .null)]
        case .none:
            members += [("match", "none"), ("profile", .null), ("pairing", .null), ("reason", .string(matcher.explanation(for: device)))]
        case .ambiguous(let ids):
            members += [("match", "ambiguous"), ("profile", .null), ("pairing", .null), ("reason", .string(matcher.explanation(for: device))),
                        ("candidates", .array(ids.map(JSONValue.string)))]
        }
        return .object(members)
    }

    static func pairing(_ profile: DeviceProfile) -> BLESettings.Pairing {
        if case .ble(let settings) = profile.transport { return settings.pairing }
        return .none
    }
}

/// What a short-lived central reported: the adapter, the devices, and which devices were seen after a
/// scan started.
final class BluetoothDeviceLog: Sendable {
    private struct State {
        var adapterPresent = false
        var devices: [EUI48: BLEDeviceInfo] = [:]
        var order: [EUI48] = []
        var scanning = false
        var scanned: [EUI48] = []
    }

    private let state = Mutex(State())

    func record(_ event: BLEEvent) {
        state.withLock { state in
            switch event {
            case .adapter(let present, _):
                state.adapterPresent = present
            case .device(let info):
                if state.devices.updateValue(info, forKey: info.address) == nil { state.order.append(info.address) }
                // A device BlueZ hears during the scan has a signal strength; a cached one does not.
                if state.scanning, info.rssi != nil, !state.scanned.contains(info.address) { state.scanned.append(info.address) }
            case .deviceRemoved(let address):
                state.devices[address] = nil
                state.order.removeAll { $0 == address }
                state.scanned.removeAll { $0 == address }
            case .value:
                break
            }
        }
    }

    func beginScan() {
        state.withLock { $0.scanning = true }
    }

    var adapterPresent: Bool { state.withLock { $0.adapterPresent } }

    /// Every device, in the order BlueZ reported them.
    var known: [BLEDeviceInfo] { state.withLock { state in state.order.compactMap { state.devices[$0] } } }

    /// Devices heard since the scan began, in the order they were first heard.
    var scanned: [BLEDeviceInfo] { state.withLock { state in state.scanned.compactMap { state.devices[$0] } } }

    func device(_ address: EUI48) -> BLEDeviceInfo? { state.withLock { $0.devices[address] } }

    /// `C4:F3:12:53:F2:C9`, as BlueZ writes addresses.
    static func text(_ address: EUI48) -> String {
        address.bluetoothText
    }
}
