import Assignment
import DeviceIO
import Dispatch
import Foundation
import Outbox
import ProfileCatalog
import Synchronization
import VitalModel
#if canImport(Glibc)
import Glibc
#endif

/// Bluetooth LE devices for the daemon: scans for the services the profiles claim, connects to the devices the
/// operator adopted, and runs one ``BLESession`` per connected device on a thread of its own.
///
/// Which devices: only those BlueZ holds as trusted (`vitalgate bluetooth pair` pairs where the profile needs
/// it and trusts), and that exactly one profile claims. A cuff in the neighbour's flat advertises the same
/// Blood Pressure Service; connecting to it would put a stranger's readings into this household's record.
///
/// When: whenever BlueZ reports such a device (it advertised, or connected on its own) and no session runs
/// for it. After a connection ends normally the next attempt waits a few seconds (the kernel keeps an LE
/// link about 2 s after its last user, and a connect during that teardown hangs); after a failure the hub
/// tries again by itself after 1 s, 2 s, 4 s… up to 1 min, whether or not BlueZ reports the device again
/// (BlueZ reports a changed RSSI only beyond a threshold, so a device advertising steadily may say nothing).
/// A session that stored readings new to the Outbox resets the backoff.
final class BluetoothManager: Sendable {
    private let central: any BLECentral
    private let matcher: BLEProfileMatcher
    private let settings: BluetoothSettings
    private let outbox: Outbox
    private let assignment: AssignmentRules
    private let log: DaemonLog
    private let onStored: @Sendable () -> Void
    private let now: @Sendable () -> HubTimestamp
    private let timing: Timing
    private let state = Mutex(State())
    private let sessionsDone = DispatchGroup()
    /// Blocking calls made on behalf of events (scan after the adapter comes back), never on the event thread.
    private let control = DispatchQueue(label: "vitalgate-bluetooth-control")

    /// Waits the manager uses; tests shorten them.
    struct Timing: Sendable {
        /// After a normal disconnect, before connecting to the device again.
        var reconnectDelay = Duration.seconds(3)
        /// The first retry after a failure; doubles up to ``maximumBackoff``.
        var initialBackoff = Duration.seconds(1)
        var maximumBackoff = Duration.seconds(60)
        /// How long a device must be quiet after its last value before the hub sets its clock.
        var quietBeforeClockSet = Duration.seconds(3)
    }

    private struct Peer {
        var info: BLEDeviceInfo
        var session: BLESession?
        var notBefore = ContinuousClock.now
        var backoff: SessionBackoff
        var retryScheduled = false
        /// The profile decision last logged, so a device advertising every second is explained once.
        var explained: String?
        /// BlueZ forgot the device while its session was running; the entry goes when the session ends.
        var removed = false
    }

    /// The adopted (trusted) Bluetooth LE devices, for `vitalgate status`: address and whether a session runs. Not
    /// their advertised names, which are often people's ("Lan's phone"), and not the neighbours' devices.
    var live: [JSONValue] {
        state.withLock { state in
            state.peers.filter { $0.value.info.trusted }.sorted { $0.key.bluetoothText < $1.key.bluetoothText }.map { address, peer in
                ["transport": "bluetooth-le", "device": .string(address.bluetoothText), "session": .bool(peer.session != nil)]
            }
        }
    }

    private struct State {
        var peers: [EUI48: Peer] = [:]
        var stopping = false
    }

    /// Counters for logs and tests.
    struct Totals: Sendable, Hashable {
        var sessions = 0
        var readings = 0
        var problems = 0
        var failures = 0
    }
    private let totals = Mutex(Totals())
    var currentTotals: Totals { totals.withLock { $0 } }

    init(central: any BLECentral, profiles: [DeviceProfile], settings: BluetoothSettings, outbox: Outbox,
         assignment: AssignmentRules, log: DaemonLog, onStored: @escaping @Sendable () -> Void,
         now: @escaping @Sendable () -> HubTimestamp = { HubTimestamp.now() }, timing: Timing = Timing()) {
        self.central = central
        self.matcher = BLEProfileMatcher(profiles: profiles)
        self.settings = settings
        self.outbox = outbox
        self.assignment = assignment
        self.log = log
        self.onStored = onStored
        self.now = now
        self.timing = timing
    }

    /// Registers the pairing agent, takes in the devices BlueZ knows, and starts scanning. A missing adapter is
    /// not an error: scanning starts when one appears.
    func start() throws(DeviceIOError) {
        let policy = BLEPairingPolicy(capability: .noInputNoOutput, mayPair: { [self] address in mayPair(address) })
        try central.start(pairing: policy, events: { [self] event in handle(event) })
        let services = matcher.services
        do {
            try central.scan(services: services)
            log.info("bluetooth: scanning for \(services.joined(separator: ", ")); connecting to trusted devices a profile claims")
        } catch {
            log.warning("bluetooth: cannot scan yet: \(error)")
        }
    }

    /// Ends every session, waiting up to `limit`, then lets go of BlueZ.
    func stop(waitingUpTo limit: Duration) {
        let sessions = state.withLock { state -> [BLESession] in
            state.stopping = true
            return state.peers.values.compactMap(\.session)
        }
        sessions.forEach { $0.stop() }
        if sessionsDone.wait(timeout: .now() + limit.dispatchInterval) == .timedOut {
            log.warning("bluetooth: a session did not stop within \(limit)")
        }
        central.stop()
    }

    /// The agent confirms pairing only for devices the operator adopted and a profile claims.
    func mayPair(_ address: EUI48) -> Bool {
        state.withLock { state in
            guard let peer = state.peers[address], peer.info.trusted || peer.session != nil else { return false }
            if case .profile = matcher.match(peer.info) { return true }
            return false
        }
    }

    // MARK: Events (on the stack's event thread: nothing here blocks)

    func handle(_ event: BLEEvent) {
        switch event {
        case .adapter(let present, let powered):
            log.info("bluetooth: " + (present ? (powered ? "adapter ready" : "adapter present, powered off") : "no adapter"))
            guard present else { return }
            let services = matcher.services
            control.async { [self] in
                do {
                    try central.scan(services: services)
                } catch let error as DeviceIOError where !powered && error.cause?.hasPrefix("org.bluez.Error.Busy") == true {
                    // bluetoothd is powering the adapter on by itself (it just started): the powered event comes next.
                    log.info("bluetooth: adapter powering on; scanning once it is ready")
                } catch {
                    log.warning("bluetooth: cannot scan: \(error)")
                }
            }
        case .device(let info):
            let dropped = state.withLock { state -> BLESession? in
                var peer = state.peers[info.address]
                    ?? Peer(info: info, backoff: SessionBackoff(first: timing.initialBackoff, maximum: timing.maximumBackoff))
                let wasConnected = peer.info.connected
                peer.info = info
                peer.removed = false
                state.peers[info.address] = peer
                return wasConnected && !info.connected ? peer.session : nil
            }
            dropped?.deliver(.disconnected)
            consider(info.address)
        case .deviceRemoved(let address):
            // A running session keeps its entry (its thread clears it): a device reported again meanwhile (bluetoothd
            // restarted) must not get a second session, and the backoff must survive.
            let session = state.withLock { state -> BLESession? in
                guard let session = state.peers[address]?.session else {
                    state.peers.removeValue(forKey: address)
                    return nil
                }
                state.peers[address]?.info.connected = false
                state.peers[address]?.removed = true
                return session
            }
            session?.deliver(.disconnected)
        case .value(let address, let service, let characteristic, let bytes):
            // bluetoothd re-enables notifications by itself when a bonded device reconnects, and has confirmed an
            // indication before it tells anyone: a value with no session starts one at once, which takes it first.
            deliver([.value(service: service, characteristic: characteristic, bytes: bytes)], to: address)
        }
    }

    /// Hands values to the device's session, starting one at once if none runs. Delivered under the state lock, so a
    /// session that is ending either gets them before its final drain or is already replaced.
    private func deliver(_ values: [BLESession.Item], to address: EUI48) {
        guard !values.isEmpty else { return }
        func handOver() -> Bool {
            state.withLock { state in
                guard let session = state.peers[address]?.session else { return false }
                values.forEach(session.deliver)
                return true
            }
        }
        if handOver() { return }
        consider(address, immediately: true)
        if !handOver() {
            log.warning("bluetooth: \(address.bluetoothText): \(values.count) value(s) arrived from a device no session can serve "
                + "(not adopted, or claimed by no single profile); not stored")
        }
    }

    /// Starts a session for the device if it is adopted, claimed, idle and its backoff has passed.
    private func consider(_ address: EUI48, immediately: Bool = false) {
        enum Decision { case start(BLESession, DeviceProfile), later(Duration), explain(String), nothing }
        let decision = state.withLock { state -> Decision in
            guard !state.stopping, var peer = state.peers[address], peer.session == nil, peer.info.trusted else { return .nothing }
            let profile: DeviceProfile
            switch matcher.match(peer.info) {
            case .profile(let claimed):
                profile = claimed
            case .none, .ambiguous:
                let why = matcher.explanation(for: peer.info)
                guard peer.explained != why else { return .nothing }
                peer.explained = why
                state.peers[address] = peer
                return .explain(why)
            }
            guard case .ble(let ble) = profile.transport else { return .nothing }
            let wait = ContinuousClock.now.duration(to: peer.notBefore)
            if wait > .zero, !immediately {
                guard !peer.retryScheduled else { return .nothing }
                peer.retryScheduled = true
                state.peers[address] = peer
                return .later(wait)
            }
            let session = BLESession(BLESession.Context(
                central: central, address: address, profile: profile, ble: ble, settings: settings,
                sink: OutboxSink(outbox: outbox, assignment: assignment, onStored: onStored), log: log, now: now,
                quietBeforeClockSet: timing.quietBeforeClockSet))
            peer.session = session
            state.peers[address] = peer
            // Entered under the lock, so a stop() that follows sees this session.
            sessionsDone.enter()
            return .start(session, profile)
        }
        switch decision {
        case .nothing:
            break
        case .explain(let why):
            log.info("bluetooth: trusted device \(address.bluetoothText) is not connected to: \(why)")
        case .later(let wait):
            DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(Int(wait.milliseconds(roundingUp: true)))) { [self] in
                state.withLock { $0.peers[address]?.retryScheduled = false }
                consider(address)
            }
        case .start(let session, let profile):
            totals.withLock { $0.sessions += 1 }
            let thread = Thread { [self] in
                run(session, address: address, profile: profile)
                sessionsDone.leave()
            }
            thread.name = "vitalgate-ble"
            thread.start()
        }
    }

    private func run(_ session: BLESession, address: EUI48, profile: DeviceProfile) {
        let label = "\(address.bluetoothText) (\(profile.id))"
        log.info("bluetooth: \(label): connecting")
        let outcome = session.run()
        totals.withLock {
            $0.readings += outcome.readings
            $0.problems += outcome.problems
        }
        ReadingCounters.daemon.unreadable(outcome.problems)
        // Decode problems carry device bytes, which may be measured values: only their number is logged.
        let summary = "\(outcome.readings) reading(s) stored (\(outcome.newReadings) new), \(outcome.problems) unreadable value(s)"
        var failed = false
        switch outcome.end {
        case .disconnected:
            log.info("bluetooth: \(label): disconnected; \(summary)")
        case .stopped:
            log.info("bluetooth: \(label): session stopped; \(summary)")
        case .failed(let error):
            failed = true
            // A device that is off or out of range is the usual case, not a fault.
            log.log(error.code == ETIMEDOUT || error.isDisconnect ? .info : .warning, "bluetooth: \(label): \(error); \(summary)")
        case .storeFailed(let reason):
            failed = true
            log.error("bluetooth: \(label): the Outbox refused readings: \(reason); \(summary)")
        }
        if failed { totals.withLock { $0.failures += 1 } }
        var leftovers: [BLESession.Item] = []
        let retry = state.withLock { state -> Duration? in
            // Only this session's own entry: never one a later session registered.
            guard var peer = state.peers[address], peer.session === session else { return nil }
            peer.session = nil
            leftovers = session.takeValues()
            if peer.removed {
                state.peers.removeValue(forKey: address)
                return nil
            }
            // A connection that ended normally, or stored new readings, shows the device works.
            var delay = timing.reconnectDelay
            if failed {
                delay = max(delay, peer.backoff.delay(afterFailure: outcome.newReadings > 0))
            } else {
                peer.backoff.reset()
            }
            peer.notBefore = .now + delay
            state.peers[address] = peer
            return state.stopping ? nil : delay
        }
        // Values that arrived after the session's last look at its mailbox: a new session takes them.
        deliver(leftovers, to: address)
        guard let retry else { return }
        // After a normal end too: BlueZ may say nothing more about a device that advertises steadily.
        if failed { log.info("bluetooth: \(label): trying again in \(retry)") }
        DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(Int(retry.milliseconds(roundingUp: true)))) { [self] in
            consider(address)
        }
    }
}
