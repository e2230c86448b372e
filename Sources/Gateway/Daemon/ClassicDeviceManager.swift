import Assignment
import DeviceIO
import Foundation
import Outbox
import ProfileCatalog
import Synchronization
import VitalModel

/// Talks to the Bluetooth Classic serial (SPP) devices the configuration names, each by its address and
/// profile, on a thread of its own: connect over RFCOMM, run a ``DeviceSession`` with the profile's
/// engine, store every reading in the Outbox before the device hears anything more (ARCHITECTURE §2,
/// §7.1), close, and connect again later.
///
/// Nothing announces such a device (there is no hotplug for a radio link), so the hub asks:
/// - after a session whose script finished (the device gave what it had), the next connection waits the
///   longest pause, 1 min: SPP devices are polled, and most are switched off between uses;
/// - after a failed connection or a session that ended badly (the device went quiet, hung up, or the
///   Outbox refused the readings), after 1 s, 2 s, 4 s… up to 1 min (``SessionBackoff``); a session that
///   stored new readings starts that count again.
///
/// Readings carry the device's Bluetooth address as its identity (the PHD identifier's EUI-48). Readings
/// with a user slot are held as unassigned, as the USB manager does (through the same ``OutboxSink``).
/// Log lines name the address and the profile, never a reading's value or its citizen.
final class ClassicDeviceManager: Sendable {
    /// Opens the link to a device; the daemon's uses RFCOMM (``rfcommConnector``), tests substitute a
    /// pseudo-terminal. Must end early, with any error, once `cancellation` is cancelled.
    typealias Connector = @Sendable (_ address: EUI48, _ profile: DeviceProfile, _ cancellation: LinkCancellation)
        throws(DeviceIOError) -> any DeviceLink
    /// Waits `delay` before the next connection, returning early once `cancellation` is cancelled.
    typealias Pause = @Sendable (_ delay: Duration, _ cancellation: LinkCancellation) -> Void

    /// One configured device.
    struct Device: Sendable {
        var address: EUI48
        var profile: DeviceProfile
    }

    /// Counters for logs and tests.
    struct Totals: Sendable, Hashable {
        var connections = 0
        var failedConnections = 0
        var sessions = 0
        var readings = 0
        var problems = 0
    }

    /// How long the daemon's connector waits for a device to answer: paging a device that is off takes
    /// about 5 s, pairing prompts longer.
    static let connectTimeout = Duration.seconds(30)

    /// Connects over RFCOMM on the profile's channel.
    static let rfcommConnector: Connector = { address, profile, cancellation throws(DeviceIOError) in
        try DeviceLinks.connect(address: address, transport: profile.transport, timeout: connectTimeout, cancellation: cancellation)
    }

    /// Waits on the cancellation, so a stop ends the pause at once.
    static let interruptiblePause: Pause = { delay, cancellation in cancellation.wait(timeout: delay) }

    let devices: [Device]
    private let outbox: Outbox
    private let assignment: AssignmentRules
    private let onStored: @Sendable () -> Void
    private let log: DaemonLog
    private let connector: Connector
    private let pause: Pause
    private let state = Mutex(State())
    private let totals = Mutex(Totals())
    private let threadsDone = DispatchGroup()

    private struct State {
        var started = false
        var stopping = false
        /// Per running device (by index in ``devices``): its cancellation and its session while one runs.
        var cancellations: [Int: LinkCancellation] = [:]
        var sessions: [Int: DeviceSession] = [:]
    }

    /// - Parameters:
    ///   - devices: the configured devices; each profile must have an `rfcomm` transport (others are
    ///     reported and skipped at ``start()``), and an address listed twice is used once.
    ///   - assignment: whose each reading is (household, visit, or held).
    ///   - onStored: called after readings were committed (wakes the uplink).
    ///   - connector: how a device is reached; the default connects over RFCOMM.
    ///   - pause: how the wait between connections is spent; the default waits, interruptibly.
    init(devices: [(address: EUI48, profile: DeviceProfile)], outbox: Outbox, assignment: AssignmentRules, log: DaemonLog,
         onStored: @escaping @Sendable () -> Void, connector: @escaping Connector = ClassicDeviceManager.rfcommConnector,
         pause: @escaping Pause = ClassicDeviceManager.interruptiblePause) {
        self.devices = devices.map { Device(address: $0.address, profile: $0.profile) }
        self.outbox = outbox
        self.assignment = assignment
        self.onStored = onStored
        self.log = log
        self.connector = connector
        self.pause = pause
    }

    var currentTotals: Totals { totals.withLock { $0 } }

    /// Starts one thread per usable device; returns at once. Calling it again does nothing.
    func start() throws(DeviceIOError) {
        var usable: [(Int, LinkCancellation)] = []
        var seen: Set<EUI48> = []
        for (index, device) in devices.enumerated() {
            let label = Self.describe(device)
            guard case .rfcomm = device.profile.transport else {
                log.error("classic devices: \(label) is not used: its profile's transport is \(device.profile.transport.name), not rfcomm. "
                    + "Fix: give the device a Bluetooth Classic profile, or remove it from the Bluetooth Classic devices")
                continue
            }
            guard seen.insert(device.address).inserted else {
                log.warning("classic devices: \(label) is listed more than once; it is connected once. Fix: remove the repeated entry")
                continue
            }
            usable.append((index, try LinkCancellation()))
        }
        let begin = state.withLock { state -> Bool in
            guard !state.started, !state.stopping else { return false }
            state.started = true
            for (index, cancellation) in usable { state.cancellations[index] = cancellation }
            return true
        }
        guard begin else { return }
        for (index, cancellation) in usable {
            threadsDone.enter()
            let thread = Thread { [self] in
                defer { threadsDone.leave() }
                run(index, cancellation: cancellation)
            }
            thread.name = "vitalgate-classic"
            thread.start()
        }
        log.info("classic devices: \(usable.count) of \(devices.count) Bluetooth Classic device(s) in use")
    }

    /// Cancels connections and pauses, stops running sessions, and waits up to `limit` for every device's
    /// thread to return. Returns whether they all did.
    @discardableResult
    func stop(waitingUpTo limit: Duration) -> Bool {
        let (cancellations, sessions) = state.withLock { state in
            state.stopping = true
            return (Array(state.cancellations.values), Array(state.sessions.values))
        }
        cancellations.forEach { $0.cancel() }
        sessions.forEach { $0.stop() }
        let milliseconds = Int(clamping: limit.milliseconds(roundingUp: true))
        guard threadsDone.wait(timeout: .now() + .milliseconds(milliseconds)) == .success else {
            log.warning("classic devices: a device's thread did not stop within \(limit); its connection is closed when the process exits")
            return false
        }
        return true
    }

    private var isStopping: Bool { state.withLock { $0.stopping } }

    // MARK: One device

    /// What one connection came to.
    private enum Attempt {
        /// The script finished: the device gave what it had.
        case finished
        /// The connection failed or the session ended badly; `progressed`: it stored new readings all the same.
        case failed(progressed: Bool)
        case stopped
    }

    /// Connects, runs a session, pauses, and again, until ``stop(waitingUpTo:)``. Runs on the device's thread.
    private func run(_ index: Int, cancellation: LinkCancellation) {
        let device = devices[index]
        let label = Self.describe(device)
        var backoff = SessionBackoff()
        while !isStopping {
            let delay: Duration
            switch attempt(device, index: index, label: label, cancellation: cancellation) {
            case .stopped:
                return
            case .finished:
                backoff.reset()
                delay = SessionBackoff.maximum
            case .failed(let progressed):
                delay = backoff.delay(afterFailure: progressed)
            }
            guard !isStopping else { return }
            log.info("classic devices: \(label): connecting again in \(delay.components.seconds) s")
            pause(delay, cancellation)
        }
    }

    private func attempt(_ device: Device, index: Int, label: String, cancellation: LinkCancellation) -> Attempt {
        let link: any DeviceLink
        do {
            link = try connector(device.address, device.profile, cancellation)
        } catch {
            if cancellation.isCancelled || isStopping { return .stopped }
            totals.withLock { $0.failedConnections += 1 }
            // A device switched off or out of range is the usual state of a polled device: not an error.
            if [ETIMEDOUT, EHOSTDOWN].contains(error.code) {
                log.info("classic devices: \(label) is not reachable: \(error)")
            } else {
                log.error("classic devices: \(label): \(error)")
            }
            return .failed(progressed: false)
        }
        totals.withLock { $0.connections += 1 }
        let sink = OutboxSink(outbox: outbox, assignment: assignment, onStored: onStored)
        let session = DeviceSession(profile: device.profile, device: DeviceIdentity(bluetoothAddress: device.address), link: link,
                                    sink: sink,
                                    // Streaming profiles keep the session open themselves (`frames.stream`); a
                                    // finished script here is the device's own end.
                                    quietAfterFinish: .zero)
        let registered = state.withLock { state -> Bool in
            guard !state.stopping else { return false }
            state.sessions[index] = session
            return true
        }
        guard registered else {
            link.close()
            return .stopped
        }
        log.info("classic devices: \(label): connected; session started (\(device.profile.engine.name))")
        totals.withLock { $0.sessions += 1 }
        let outcome = session.run()
        link.close()
        _ = state.withLock { $0.sessions.removeValue(forKey: index) }
        totals.withLock {
            $0.readings += outcome.counters.readings
            $0.problems += outcome.counters.problems
        }
        ReadingCounters.daemon.unreadable(outcome.counters.problems)
        let summary = outcome.counters.logSummary
        // New rows, not readings the device re-sent: a device failing at the same point after re-sending its
        // memory must still back off.
        let progressed = sink.newReadings > 0
        switch outcome.end {
        case .finished(complete: true):
            log.info("classic devices: \(label): session finished; \(summary)")
            return .finished
        case .finished(complete: false):
            log.info("classic devices: \(label): the device stopped answering; \(summary)")
            return .failed(progressed: progressed)
        case .disconnected:
            log.info("classic devices: \(label): disconnected; \(summary)")
            return .failed(progressed: progressed)
        case .stopped:
            log.info("classic devices: \(label): session stopped; \(summary)")
            return .stopped
        case .storeFailed(let reason):
            log.error("classic devices: \(label): the Outbox refused readings, so the device was not acknowledged: \(reason); \(summary)")
            return .failed(progressed: progressed)
        case .failed(let error):
            log.error("classic devices: \(label): \(error); \(summary)")
            return .failed(progressed: progressed)
        }
    }

    /// `C4:F3:12:53:F2:C9 (contec/cms50ew)`: enough to find the device, nothing personal.
    static func describe(_ device: Device) -> String {
        device.address.bluetoothText + " (\(device.profile.id))"
    }
}
