import Foundation
import Outbox
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
        guard arguments.count == 2, arguments[0] == "--config" else {
            if arguments.contains("--help") || arguments.contains("-h") { print(usage); return 0 }
            FileHandle.standardError.write(Data((usage + "\n").utf8))
            return 64
        }
        let configuration: DaemonConfiguration
        do { configuration = try DaemonConfiguration.load(arguments[1]) } catch {
            log.error("configuration: \(error)")
            return 78
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
        let ingest = IngestServer(path: configuration.ingestSocket, outbox: outbox, defaultSubject: configuration.owner,
                                  identifierSystems: configuration.identifierSystems, log: log, onStored: { worker.wake() })
        do { try ingest.start() } catch {
            log.error("ingest: \(error)")
            return 74
        }
        worker.start()
        let devices = startDevices(configuration, hubAddress: hubAddress, outbox: outbox, log: log, onStored: { worker.wake() })
        notifySystemd("READY=1\nSTATUS=delivering readings")
        log.info("vitalgated \(VitalGateVersion.current) ready; uploading to \(uplink.baseURL)")

        let stop = DispatchSemaphore(value: 0)
        var sources: [DispatchSourceSignal] = []
        for signalNumber in [SIGTERM, SIGINT] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler { stop.signal() }
            source.resume()
            sources.append(source)
        }
        stop.wait()
        notifySystemd("STOPPING=1")
        log.info("stopping: no new readings are taken; the upload in progress is abandoned and re-sent on the next start")
        devices?.stop(waitingUpTo: .seconds(3))
        ingest.stop()
        worker.stop(waitingUpTo: .seconds(5))
        sources.forEach { $0.cancel() }
        log.info("stopped")
        return 0
    }

    /// Loads the profiles and starts udev discovery. A failure here leaves the daemon running: readings still
    /// come in through the ingest socket and the queue still drains.
    static func startDevices(_ configuration: DaemonConfiguration, hubAddress: EUI48?, outbox: Outbox, log: DaemonLog,
                             onStored: @escaping @Sendable () -> Void) -> DeviceManager? {
        guard configuration.discoverDevices else {
            log.info("devices: discovery is off (devices.discover is false); readings come only through the ingest socket")
            return nil
        }
        guard let directory = configuration.profilesDirectory ?? ProfileCatalog.defaultDirectory() else {
            log.error("devices: no device profiles found, so no device is read. Fix: set devices.profiles in \(configuration.file) "
                + "or VITALGATE_PROFILES")
            return nil
        }
        let catalog = ProfileCatalog.load(directory: directory)
        for error in catalog.errors {
            log.warning("devices: profile disabled: \(error)")
        }
        for id in configuration.serialBridgeProfiles.sorted() where catalog.profile(id) == nil {
            log.warning("devices: devices.serialBridges names \"\(id)\", which is no loaded profile. Fix: use an id `vitalgate profile list` shows")
        }
        let manager = DeviceManager(profiles: catalog.profiles, outbox: outbox, subject: configuration.owner,
                                    hubAddress: hubAddress,
                                    bridgeProfiles: configuration.serialBridgeProfiles, log: log,
                                    onStored: onStored)
        do { try manager.start() } catch {
            log.error("devices: discovery could not start: \(error); readings come only through the ingest socket")
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
