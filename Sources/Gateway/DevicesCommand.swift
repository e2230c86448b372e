import Foundation
import Synchronization
import VitalModel
import ProfileCatalog
import DeviceIO

/// `vitalgate devices`: the USB serial and hidraw devices attached now, the profile each one would get,
/// and, with `--watch`, what is plugged in and out. It only reads udev and sysfs; no device is opened.
struct DevicesCommand {
    static let usage = """
        Usage: vitalgate devices [--profiles DIR] [--json] [--watch SECONDS]

        Lists the USB serial (tty) and hidraw devices attached now: node, USB ids, interface, USB strings,
        port, the key that tells identical devices apart, and the profile that claims it, or why none does
        ("no profile claims 10C4:EA60", "ambiguous: a/b, c/d"). A device no single profile claims is never
        opened by VitalGate. This command opens no device at all: it reads what udev knows.

        Options:
          --profiles DIR     the profile tree to match against (default: the shipped DeviceProfiles)
          --json             print a JSON array instead of text
          --watch SECONDS    print one JSON line per device attached now ("event": "present"), then one per
                             device plugged in ("added") or out ("removed") as it happens, until SECONDS have
                             passed or SIGINT/SIGTERM; the last line is {"event":"end",...}. A device
                             whose udev description changes is reported "added" again.

        Exit status: 0 listed, 1 udev failed or a profile is broken (the others are used), 2 usage error.
        """

    static func run(_ arguments: [String], emit: @escaping @Sendable (String) -> Void = writeToStandardOutput) -> CommandResult {
        if arguments.contains("--help") || arguments.contains("-h") { return CommandResult(stdout: usage + "\n") }
        do {
            let parsed = try Arguments(arguments, flags: ["json"], options: ["profiles", "watch"], command: "devices")
            guard parsed.operands.isEmpty else {
                throw UsageError("`vitalgate devices` takes no operands (got \(parsed.operands.joined(separator: " ")))")
            }
            let watch = try parsed.value("watch").map {
                try SimulateCommand.seconds($0, option: "watch", default: 0, range: 0.001...31_536_000)
            }
            let root = try ProfileResolver.directory(parsed.value("profiles"))
            guard ProfileResolver.isDirectory(root) else { throw UsageError("no profile tree at \(root)") }
            let catalog = ProfileCatalog.load(directory: root)
            let broken = catalog.errors.map { "vitalgate devices: broken profile, not used: \($0)\n" }.joined()
            let matcher = DeviceMatcher(profiles: catalog.profiles)

            var result: CommandResult
            if let watch {
                result = try watchDevices(matcher: matcher, duration: watch, emit: emit)
            } else {
                let devices = try UdevDiscovery().enumerate()
                result = CommandResult(stdout: parsed.has("json") ? json(devices, matcher) : text(devices, matcher))
            }
            result.stderr = broken + result.stderr
            if !catalog.errors.isEmpty && result.exitCode == 0 { result.exitCode = 1 }
            return result
        } catch let error as UsageError {
            return CommandResult(stderr: "vitalgate devices: \(error)\nSee `vitalgate devices --help`.\n", exitCode: 2)
        } catch {
            return CommandResult(stderr: "vitalgate devices: \(error)\n", exitCode: 1)
        }
    }

    /// Watch lines are read live (by people and by tests), so each goes out at once, unbuffered.
    static func writeToStandardOutput(_ line: String) {
        try? FileHandle.standardOutput.write(contentsOf: Data(line.utf8))
    }

    // MARK: Listing

    static func text(_ devices: [AttachedDevice], _ matcher: DeviceMatcher) -> String {
        guard !devices.isEmpty else { return "no USB serial or hidraw device is attached\n" }
        var out = ""
        for device in devices {
            out += "\(device.node)  \(device.subsystem.rawValue)  \(device.vendorProduct)"
                + (device.interfaceNumber.map { "  interface \($0)" } ?? "") + "\n"
            let strings = [("manufacturer", device.manufacturer), ("product", device.product), ("serial", device.serialNumber)]
                .compactMap { name, value in value.map { "\(name) \"\($0)\"" } }
            if !strings.isEmpty { out += "  usb:     " + strings.joined(separator: ", ") + "\n" }
            out += "  port:    \(device.portPath ?? "unknown")\n"
            out += "  key:     \(device.stableKey)\n"
            switch matcher.match(device) {
            case .profile(let profile): out += "  profile: \(profile.id) (\(profile.vendor) \(profile.model))\n"
            case .none, .ambiguous: out += "  profile: none, not opened: \(matcher.explanation(for: device))\n"
            }
        }
        return out + duplicateKeyNotes(devices)
    }

    static func json(_ devices: [AttachedDevice], _ matcher: DeviceMatcher) -> String {
        JSONValue.array(devices.map { describe($0, matcher) }).prettyPrinted() + "\n"
    }

    /// Devices that share a key cannot be told apart after re-plugging (bridges sold with one serial number).
    static func duplicateKeyNotes(_ devices: [AttachedDevice]) -> String {
        let byKey = Dictionary(grouping: devices, by: \.stableKey)
        return byKey.keys.sorted().compactMap { key in
            guard let nodes = byKey[key]?.map(\.node), nodes.count > 1 else { return nil }
            return "note: \(nodes.joined(separator: ", ")) share the key \(key): the USB serial number does not tell them apart\n"
        }.joined()
    }

    /// One device as a JSON object, with `event` first when given.
    static func describe(_ device: AttachedDevice, _ matcher: DeviceMatcher, event: String? = nil) -> JSONValue {
        var members: [(String, JSONValue)] = []
        if let event { members.append(("event", .string(event))) }
        func optional(_ text: String?) -> JSONValue { text.map(JSONValue.string) ?? .null }
        members += [
            ("node", .string(device.node)),
            ("subsystem", .string(device.subsystem.rawValue)),
            ("vendorId", optional(device.vendorID.map(hex4))),
            ("productId", optional(device.productID.map(hex4))),
            ("interface", device.interfaceNumber.map { JSONValue.int($0) } ?? .null),
            ("manufacturer", optional(device.manufacturer)),
            ("product", optional(device.product)),
            ("serialNumber", optional(device.serialNumber)),
            ("portPath", optional(device.portPath)),
            ("stableKey", .string(device.stableKey)),
            ("syspath", .string(device.syspath)),
        ]
        switch matcher.match(device) {
        case .profile(let profile):
            members += [("match", "profile"), ("profile", .string(profile.id)), ("reason", .null)]
        case .none:
            members += [("match", "none"), ("profile", .null), ("reason", .string(matcher.explanation(for: device)))]
        case .ambiguous(let ids):
            members += [("match", "ambiguous"), ("profile", .null), ("reason", .string(matcher.explanation(for: device))),
                        ("candidates", .array(ids.map(JSONValue.string)))]
        }
        return .object(members)
    }

    /// `10C4`, as lsusb prints an id.
    static func hex4(_ value: UInt16) -> String {
        hexString([UInt8(value >> 8), UInt8(value & 0xFF)], separator: "")
    }

    // MARK: Watching

    static func watchDevices(matcher: DeviceMatcher, duration: Duration, emit: @escaping @Sendable (String) -> Void) throws -> CommandResult {
        let watch = DeviceWatch(matcher: matcher, emit: emit)
        let discovery = UdevDiscovery()
        // Listen first, then look: nothing plugged in between is missed (DeviceWatch drops the doubles).
        try discovery.startMonitoring { watch.handle($0) }
        let devices: [AttachedDevice]
        do {
            devices = try discovery.enumerate()
        } catch {
            discovery.stop()
            throw error
        }
        watch.begin(with: devices)

        let stop = DispatchSemaphore(value: 0)
        let signalled = Mutex(false)
        var sources: [DispatchSourceSignal] = []
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler {
                signalled.withLock { $0 = true }
                stop.signal()
            }
            source.resume()
            sources.append(source)
        }
        _ = stop.wait(timeout: .now() + duration.dispatchInterval)
        discovery.stop()
        for source in sources { source.cancel() }
        for signalNumber in [SIGINT, SIGTERM] { signal(signalNumber, SIG_DFL) }

        let reason = signalled.withLock { $0 } ? "signal" : "time"
        var end: [(String, JSONValue)] = [("event", "end"), ("reason", .string(reason))]
        var result = CommandResult()
        if let failure = discovery.monitorFailure {
            end.append(("error", .string(failure.description)))
            result = CommandResult(stderr: "vitalgate devices: the udev monitor stopped: \(failure)\n", exitCode: 1)
        }
        emit(JSONValue.object(end).serialized() + "\n")
        return result
    }
}

/// Turns udev events into watch lines: holds them back until the attached devices are listed, then drops
/// the doubles that listening-before-looking brings (an `add` for a node already listed as it is, a
/// `remove` for a node never listed).
final class DeviceWatch: Sendable {
    private let matcher: DeviceMatcher
    private let emit: @Sendable (String) -> Void
    private let state = Mutex(State())

    struct State {
        var listed = false
        var held: [DeviceEvent] = []
        var present: [String: AttachedDevice] = [:]
    }

    init(matcher: DeviceMatcher, emit: @escaping @Sendable (String) -> Void) {
        self.matcher = matcher
        self.emit = emit
    }

    func begin(with devices: [AttachedDevice]) {
        state.withLock { state in
            for device in devices {
                state.present[device.syspath] = device
                line(device, "present")
            }
            state.listed = true
            for event in state.held { apply(event, to: &state) }
            state.held = []
        }
    }

    func handle(_ event: DeviceEvent) {
        state.withLock { state in
            if state.listed { apply(event, to: &state) } else { state.held.append(event) }
        }
    }

    /// Called with the lock held, so lines come out in event order.
    private func apply(_ event: DeviceEvent, to state: inout State) {
        switch event {
        case .added(let device):
            guard state.present[device.syspath] != device else { return }
            state.present[device.syspath] = device
            line(device, "added")
        case .removed(let device):
            guard let listed = state.present.removeValue(forKey: device.syspath) else { return }
            line(listed, "removed")
        }
    }

    private func line(_ device: AttachedDevice, _ event: String) {
        emit(DevicesCommand.describe(device, matcher, event: event).serialized() + "\n")
    }
}
