import DeviceIO
import Foundation
import Outbox
import Synchronization
import ProfileCatalog
import Uplink
import VitalModel
#if canImport(Glibc)
import Glibc
#endif

/// `vitalgated`: opens the Outbox (recovering from an unclean stop), then takes readings in on the ingest
/// socket and delivers them to the FHIR server until SIGTERM.
public enum Daemon {
    static let usage = """
        Usage: vitalgated --config FILE

        Runs the VitalGate service: stores readings durably in the Outbox under the configured state
        directory and uploads them to the FHIR server. Stops cleanly on SIGTERM or SIGINT.
        """

    /// Runs the daemon; returns its exit status (sysexits.h): 0 after a clean stop, 64 for a usage mistake, 78 for a
    /// configuration error, 73 when the state directory cannot be made, 74 when the Outbox or the ingest socket
    /// cannot be opened.
    public static func main(_ arguments: [String]) -> Int32 {
        // A closed journal stream or a vanished client must be an error value, not a killed daemon.
        signal(SIGPIPE, SIG_IGN)
        let log = DaemonLog()
        let startedAt = Date()
        guard arguments.count == 2, arguments[0] == "--config" else {
            if arguments.contains("--help") || arguments.contains("-h") { print(usage); return 0 }
            FileHandle.standardError.write(Data((usage + "\n").utf8))
            return 64
        }
        // SIGTERM and SIGINT are taken from here on: one that comes while the daemon starts (systemctl stop right after
        // start) makes it stop cleanly once started, instead of killing it half-way.
        let stop = DispatchSemaphore(value: 0)
        var sources: [DispatchSourceSignal] = []
        for signalNumber in [SIGTERM, SIGINT] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler { stop.signal() }
            source.resume()
            sources.append(source)
        }
        let configuration: DaemonConfiguration
        do { configuration = try DaemonConfiguration.load(arguments[1]) } catch {
            log.error("configuration: \(error)")
            return 78
        }
        // Every secret the configuration names, now rather than at the first upload: a token another user can read is
        // refused at start like the TLS key, with the same rule `vitalgate config check` applies.
        for secret in ConfigCheck.namedFiles(configuration) where secret.secret {
            do { try SecretFiles.check(secret.path, what: "\(secret.what) (\(secret.field))") } catch {
                log.error("configuration: \(error)")
                return 78
            }
        }
        var info = stat()
        if stat(configuration.file, &info) == 0, info.st_mode & 0o004 != 0,
           !configuration.household.members.isEmpty || configuration.healthWorker != nil {
            log.warning("configuration: \(configuration.file) holds citizen identifiers and every user of this machine can read it. "
                + "Fix: chown root:vitalgate \(configuration.file) && chmod 0640 \(configuration.file)")
        }
        do {
            try FileManager.default.createDirectory(atPath: configuration.stateDirectory, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o750])
        } catch {
            log.error("cannot create the state directory \(configuration.stateDirectory): \(error.localizedDescription). "
                + "Fix: create it for the service user, or set stateDirectory")
            return 73
        }

        let outbox: Outbox
        do {
            outbox = try Outbox(path: configuration.outboxPath,
                                options: OutboxOptions(reservedFreeBytes: UInt64(configuration.reservedFreeBytes)))
        } catch {
            log.error("outbox: cannot open \(configuration.outboxPath): \(error)")
            return 74
        }
        // Quarantined, lost or salvaged rows are loss the operator must see (ARCHITECTURE §7.5, §7.8).
        log.log(outbox.recovery.isClean ? .info : (outbox.recovery.lostRows > 0 ? .error : .warning), "outbox: \(outbox.recovery)")

        // The hub's MAC, unless configured: chosen once, then kept in the state directory.
        var hubAddress = configuration.gatewayAddress
        if hubAddress == nil {
            switch HostIdentity.persistentAddress(stateDirectory: configuration.stateDirectory) {
            case .kept(let mac):
                hubAddress = mac
            case .chosen(let mac, let replacedDamaged):
                hubAddress = mac
                log.log(replacedDamaged ? .warning : .info,
                        (replacedDamaged ? "the hub address file was damaged; " : "") + "the hub's identity is derived from \(mac), "
                        + "kept in \(configuration.stateDirectory)/hub-address")
            case .none:
                break
            }
        }
        let uplink: UplinkConfiguration
        do { uplink = try configuration.uplinkConfiguration(hostAddress: { hubAddress }) } catch {
            log.error("configuration: \(error)")
            return 78
        }
        let http = HTTPClient(tls: configuration.tls, connectTimeout: configuration.connectTimeout,
                              requestTimeout: configuration.requestTimeout, userAgent: "VitalGate/\(VitalGateVersion.current)")
        let authenticator = Authenticator(method: configuration.auth, fhirBaseURL: uplink.baseURL, http: http)
        let deliverer = Deliverer(configuration: uplink, http: http, authenticator: authenticator)
        let worker = UplinkWorker(outbox: outbox, deliverer: deliverer, backoff: uplink.backoff,
                                  keepDelivered: configuration.keepDelivered, log: log)
        let ingest = IngestServer(path: configuration.ingestSocket, outbox: outbox, assignment: configuration.assignment,
                                  identifierSystems: configuration.identifierSystems, log: log, onStored: { worker.wake() })
        do { try ingest.start() } catch {
            log.error("ingest: \(error)")
            return 74
        }
        worker.start()
        let profiles = loadProfiles(configuration, log: log)
        let devices = startDevices(configuration, profiles: profiles, hubAddress: hubAddress, outbox: outbox, log: log,
                                   onStored: { worker.wake() })
        let bluetoothManager = Mutex<BluetoothManager?>(nil)
        // The metrics file and the control socket before READY=1: `systemctl start vitalgated && vitalgate status`
        // must find the socket. Neither blocks; each reads through a connection of its own.
        let metrics = MetricsFile.start(configuration.metrics, outbox: outbox, startedAt: startedAt, log: log)
        let control = startControl(configuration, outbox: outbox.companion(for: "control", log: log), log: log,
                                   onAssigned: { worker.wake() }) {
            var live: [JSONValue] = []
            live += devices?.live ?? []
            live += bluetoothManager.withLock { $0 }?.live ?? []
            return [
                "startedAt": .string(ISO8601DateFormatter().string(from: startedAt)), "pid": .int(getpid()),
                "sessions": .array(live),
                "recentProblems": .array(log.recentProblems.map { problem in
                    ["at": .string(ISO8601DateFormatter().string(from: problem.at)), "priority": .int(problem.priority.rawValue),
                     "message": .string(problem.message)]
                }),
            ]
        }
        notifySystemd("READY=1\nSTATUS=delivering readings")
        log.info("vitalgated \(VitalGateVersion.current) ready; uploading to \(uplink.baseURL)")
        let watchdog = Watchdog.requested().map { Watchdog(interval: $0, outbox: outbox, log: log) }
        watchdog?.start()

        // Bluetooth after READY=1 and the control socket: BlueZ's answers (or their absence on a hub without an
        // adapter) must never hold up the service's start, its watchdog or `vitalgate status`.
        let bluetooth = startBluetooth(configuration, profiles: profiles, outbox: outbox, log: log, onStored: { worker.wake() })
        bluetoothManager.withLock { $0 = bluetooth }
        let classic = startClassic(configuration, profiles: profiles, outbox: outbox, log: log, onStored: { worker.wake() })

        stop.wait()
        watchdog?.stop()
        notifySystemd("STOPPING=1")
        log.info("stopping: no new readings are taken; the upload in progress is abandoned and re-sent on the next start")
        devices?.stop(waitingUpTo: .seconds(3))
        bluetooth?.stop(waitingUpTo: .seconds(3))
        classic?.stop(waitingUpTo: .seconds(3))
        ingest.stop()
        control?.stop()
        worker.stop(waitingUpTo: .seconds(5))
        metrics?.stop()
        sources.forEach { $0.cancel() }
        log.info("stopped")
        return 0
    }

    /// The control socket for `vitalgate status`, `readings`, `visit` and `assign`: root, the service user and the
    /// operator groups may use it. Without it the daemon still runs (the CLI then reads the Outbox itself).
    static func startControl(_ configuration: DaemonConfiguration, outbox: Outbox, log: DaemonLog,
                             onAssigned: @escaping @Sendable () -> Void,
                             live: @escaping @Sendable () -> JSONValue) -> ControlServer? {
        let policy: ControlAccessPolicy
        if let groups = configuration.operatorGroups {
            do { policy = try .resolving(groupNames: groups) } catch {
                log.error("control: \(error); the control socket is not opened")
                return nil
            }
        } else {
            let name = ControlAccessPolicy.defaultGroupName
            var groups: [ControlAccessPolicy.Group] = []
            do {
                if let id = try ControlAccessPolicy.systemGroupID(name) {
                    groups = [.init(name: name, id: id)]
                } else {
                    // The packaged sysusers entry creates the group; a hand-run daemon may lack it.
                    log.info("control: no group \(name); only root and the service user may use the control socket")
                }
            } catch {
                log.warning("control: \(error); only root and the service user may use the control socket")
            }
            policy = ControlAccessPolicy(daemonUID: getuid(), groups: groups)
        }
        let server = ControlServer(path: configuration.controlSocket, policy: policy, log: log) { request in
            let context = ControlContext(outbox: outbox, configuration: configuration, live: live, actor: request.actor)
            let reply = ControlCommands.handle(request.json, context)
            if request.command == "assign" { onAssigned() }
            return reply
        }
        do { try server.start() } catch {
            log.error("control: \(error)")
            return nil
        }
        return server
    }

    /// The device profiles, with every broken one logged and left out; nil when there are none to load.
    static func loadProfiles(_ configuration: DaemonConfiguration, log: DaemonLog) -> [DeviceProfile]? {
        guard configuration.discoverDevices || configuration.bluetooth.enabled || !configuration.bluetooth.classic.isEmpty else { return [] }
        guard let directory = configuration.profilesDirectory ?? ProfileCatalog.defaultDirectory() else {
            log.error("devices: no device profiles found, so no device is read. Fix: set devices.profiles in \(configuration.file) "
                + "or VITALGATE_PROFILES")
            return nil
        }
        let catalog = ProfileCatalog.load(directory: directory)
        for error in catalog.errors {
            log.warning("devices: profile disabled: \(error)")
        }
        return catalog.profiles
    }

    /// Starts udev discovery. A failure here leaves the daemon running: readings still come in through the ingest
    /// socket and the queue still drains.
    static func startDevices(_ configuration: DaemonConfiguration, profiles: [DeviceProfile]?, hubAddress: EUI48?, outbox: Outbox,
                             log: DaemonLog, onStored: @escaping @Sendable () -> Void) -> DeviceManager? {
        guard configuration.discoverDevices else {
            log.info("devices: discovery is off (devices.discover is false); readings come only through the ingest socket")
            return nil
        }
        guard let profiles else { return nil }
        for id in configuration.serialBridgeProfiles.sorted() where !profiles.contains(where: { $0.id == id }) {
            log.warning("devices: devices.serialBridges names \"\(id)\", which is no loaded profile. Fix: use an id `vitalgate profile list` shows")
        }
        let manager = DeviceManager(profiles: profiles, outbox: outbox, assignment: configuration.assignment,
                                    hubAddress: hubAddress,
                                    bridgeProfiles: configuration.serialBridgeProfiles, log: log,
                                    onStored: onStored)
        do { try manager.start() } catch {
            log.error("devices: discovery could not start: \(error); readings come only through the ingest socket")
            return nil
        }
        return manager
    }

    /// Starts Bluetooth LE: adopted devices a profile claims are connected to. Without BlueZ the daemon goes on.
    static func startBluetooth(_ configuration: DaemonConfiguration, profiles: [DeviceProfile]?, outbox: Outbox, log: DaemonLog,
                               onStored: @escaping @Sendable () -> Void) -> BluetoothManager? {
        guard configuration.bluetooth.enabled else {
            log.info("bluetooth: off (bluetooth.enabled is false)")
            return nil
        }
        guard let profiles else { return nil }
        // bluetoothd may start after the daemon (systemd starts it when an adapter is plugged in): wait for it.
        let central = BlueZCentral(adapter: configuration.bluetooth.adapter, waitForBluetoothd: true)
        let manager = BluetoothManager(central: central, profiles: profiles, settings: configuration.bluetooth, outbox: outbox,
                                       assignment: configuration.assignment, log: log, onStored: onStored)
        do { try manager.start() } catch {
            log.error("bluetooth: \(error); Bluetooth LE devices are not read until vitalgated restarts")
            return nil
        }
        return manager
    }

    /// Starts the configured Bluetooth Classic serial devices.
    static func startClassic(_ configuration: DaemonConfiguration, profiles: [DeviceProfile]?, outbox: Outbox, log: DaemonLog,
                             onStored: @escaping @Sendable () -> Void) -> ClassicDeviceManager? {
        let wanted = configuration.bluetooth.classic
        guard !wanted.isEmpty, let profiles else { return nil }
        var devices: [(address: EUI48, profile: DeviceProfile)] = []
        for device in wanted {
            guard let profile = profiles.first(where: { $0.id == device.profileID }) else {
                log.error("bluetooth: bluetooth.classic names profile \"\(device.profileID)\" for \(device.address.bluetoothText), "
                    + "which is no loaded profile. Fix: use an id `vitalgate profile list` shows")
                continue
            }
            devices.append((device.address, profile))
        }
        let manager = ClassicDeviceManager(devices: devices, outbox: outbox, assignment: configuration.assignment, log: log, onStored: onStored)
        do { try manager.start() } catch {
            log.error("bluetooth: Classic devices: \(error)")
            return nil
        }
        return manager
    }

    /// Tells systemd about state changes when run as a `Type=notify` service; a no-op otherwise.
    static func notifySystemd(_ message: String) {
        guard let path = ProcessInfo.processInfo.environment["NOTIFY_SOCKET"], let (address, length) = UnixSocket.address(path) else { return }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return }
        defer { close(fd) }
        let bytes = Array(message.utf8)
        _ = UnixSocket.withSockaddr(address) { target in
            bytes.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, 0, target, length) }
        }
    }
}
