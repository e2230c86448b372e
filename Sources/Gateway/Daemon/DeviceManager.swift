import Assignment
import DeviceIO
import Dispatch
import Foundation
import Outbox
import ProfileCatalog
import ProfileEngine
import Synchronization
import VitalModel

/// Finds USB serial and hidraw devices through udev, opens those a profile claims, and runs one
/// ``DeviceSession`` per device on a thread of its own, storing every reading in the Outbox before the
/// device hears anything more (ARCHITECTURE §2, §7.1).
///
/// What happens after a session ends depends on why:
/// - the engine's script finished (a monitor downloaded its memory and switched itself off): nothing until
///   the device is attached again;
/// - the device was unplugged: nothing until udev reports it again, then a fresh session;
/// - the device stopped answering (a serial cable stays attached while the device behind it is off), the
///   port could not be opened or failed, or the Outbox refused the readings (disk full): the session is
///   tried again while the device stays attached, after 1 s, 2 s, 4 s… up to 1 min. Nothing unstored was
///   acknowledged, so the device still holds what it had.
///
/// Log lines name the node, the USB ids and the profile, never a reading's value or its citizen.
final class DeviceManager: Sendable {
    private let matcher: DeviceMatcher
    private let outbox: Outbox
    private let assignment: AssignmentRules
    private let onStored: @Sendable () -> Void
    private let log: DaemonLog
    private let discovery: UdevDiscovery
    /// Stands in for the serial number of a USB device that has none (see ``identity(of:profile:)``).
    private let hubAddress: EUI48?
    /// Profiles the operator allows to open a generic USB-serial bridge claimed by its chip's ids alone.
    private let bridgeProfiles: Set<String>
    private let state = Mutex(State())
    private let sessionsDone = DispatchGroup()

    private struct State {
        var devices: [String: Slot] = [:]
        var stopping = false
        var nextGeneration = 0
    }

    /// One attached device, by syspath.
    private struct Slot {
        var device: AttachedDevice
        var profile: DeviceProfile
        /// Changes whenever the device is attached again, so a retry scheduled for an earlier attachment
        /// does nothing.
        var generation: Int
        var session: DeviceSession?
        var running = false
        var backoff = SessionBackoff()
    }

    /// Counters for logs and tests.
    struct Totals: Sendable, Hashable {
        var sessions = 0
        var readings = 0
        var problems = 0
    }
    private let totals = Mutex(Totals())

    init(profiles: [DeviceProfile], outbox: Outbox, assignment: AssignmentRules, hubAddress: EUI48?,
         bridgeProfiles: Set<String> = [], log: DaemonLog,
         onStored: @escaping @Sendable () -> Void, discovery: UdevDiscovery = UdevDiscovery()) {
        self.hubAddress = hubAddress
        self.bridgeProfiles = bridgeProfiles
        self.matcher = DeviceMatcher(profiles: profiles)
        self.outbox = outbox
        self.assignment = assignment
        self.onStored = onStored
        self.log = log
        self.discovery = discovery
    }

    /// Starts the hotplug monitor first and enumerates second, so a device plugged in between is not missed;
    /// a device seen twice is handled once (by syspath).
    func start() throws(DeviceIOError) {
        try discovery.startMonitoring({ [self] event in handle(event) }, onFailure: { [log] error in
            log.error("devices: the udev monitor stopped: \(error); devices plugged in or out from now on are not seen "
                + "until vitalgated restarts")
        })
        let present: [AttachedDevice]
        do { present = try discovery.enumerate() } catch {
            stop(waitingUpTo: .seconds(3))
            throw error
        }
        for device in present { handle(.added(device)) }
        let claimed = state.withLock { $0.devices.count }
        log.info("devices: watching USB serial and hidraw devices; \(present.count) present, \(claimed) claimed by a profile")
    }

    /// Stops discovery and every session, waiting up to `limit` for them to return.
    func stop(waitingUpTo limit: Duration) {
        discovery.stop()
        let sessions = state.withLock { state -> [DeviceSession] in
            state.stopping = true
            return state.devices.values.compactMap(\.session)
        }
        sessions.forEach { $0.stop() }
        if sessionsDone.wait(timeout: .now() + limit.dispatchInterval) == .timedOut {
            log.warning("devices: a session did not stop within \(limit); its port is closed when the process exits")
        }
    }

    var currentTotals: Totals { totals.withLock { $0 } }

    // MARK: Events

    func handle(_ event: DeviceEvent) {
        switch event {
        case .added(let device):
            attach(device)
        case .removed(let device):
            let removed = state.withLock { state -> Slot? in state.devices.removeValue(forKey: device.syspath) }
            guard let removed else { return }
            if let session = removed.session {
                log.info("devices: \(Self.describe(device)) was removed; its session stops")
                session.stop()
            } else {
                log.info("devices: \(Self.describe(device)) was removed")
            }
        }
    }

    private func attach(_ device: AttachedDevice) {
        let profile: DeviceProfile
        switch matcher.match(device) {
        case .profile(let found):
            profile = found
        case .none:
            return  // Never open a node no profile claims (it may be a modem, a console, a keyboard).
        case .ambiguous(let ids):
            log.warning("devices: \(Self.describe(device)) is claimed by several profiles (\(ids.joined(separator: ", "))); "
                + "it is not opened. Fix: make one profile's match more specific (interface, manufacturer or product string)")
            return
        }
        if Self.isBridgeOnlyClaim(device, by: profile), !bridgeProfiles.contains(profile.id) {
            // CP210x, PL2303, FTDI and CH340 chips sit in Zigbee sticks, GPS receivers and boards too: their ids
            // say nothing about what is behind them, and opening one disturbs whatever it is.
            log.info("devices: \(Self.describe(device)) is a USB-serial bridge that \(profile.id) claims by the chip's ids alone; "
                + "it is not opened. Fix: if this is that device, add \"\(profile.id)\" to devices.serialBridges")
            return
        }
        let generation = state.withLock { state -> Int? in
            guard !state.stopping else { return nil }
            if let existing = state.devices[device.syspath], existing.device.node == device.node,
               existing.profile.id == profile.id {
                // A `change` event, or the enumeration repeating a hotplug event: the device is known.
                return nil
            }
            state.devices[device.syspath]?.session?.stop()
            state.nextGeneration += 1
            state.devices[device.syspath] = Slot(device: device, profile: profile, generation: state.nextGeneration)
            return state.nextGeneration
        }
        guard let generation else { return }
        log.info("devices: \(Self.describe(device)) matched \(profile.id)")
        startSession(syspath: device.syspath, generation: generation)
    }

    // MARK: Sessions

    private func startSession(syspath: String, generation: Int) {
        sessionsDone.enter()
        let thread = Thread { [self] in
            defer { sessionsDone.leave() }
            runSession(syspath: syspath, generation: generation)
        }
        thread.name = "vitalgate-session"
        thread.start()
    }

    /// Opens the port, runs the session, and decides what comes next. Runs on the session's own thread.
    private func runSession(syspath: String, generation: Int) {
        guard let slot = state.withLock({ state -> Slot? in
            guard !state.stopping, let slot = state.devices[syspath], slot.generation == generation, !slot.running else { return nil }
            state.devices[syspath]?.running = true
            return slot
        }) else { return }
        let device = slot.device, profile = slot.profile
        let label = Self.describe(device)

        let link: any DeviceLink
        do {
            link = try DeviceLinks.open(path: device.node, transport: profile.transport)
        } catch {
            if [ENOENT, ENODEV, ENXIO].contains(error.code), !FileManager.default.fileExists(atPath: syspath) {
                // Unplugged before it could be opened; udev's removal (or a new add) follows.
                log.info("devices: \(label) is gone")
                finish(syspath: syspath, generation: generation, retry: false)
            } else {
                log.error("devices: \(label): \(error)")
                finish(syspath: syspath, generation: generation, retry: true)
            }
            return
        }
        let sink = OutboxSink(outbox: outbox, assignment: assignment, onStored: onStored)
        let session = DeviceSession(profile: profile, device: identity(of: device, profile: profile), link: link, sink: sink,
                                    // Streaming profiles say so (`frames.stream`) and their engine keeps the session
                                    // open; a finished script here is the device's own end (Omron: END, OFF).
                                    quietAfterFinish: .zero)
        let registered = state.withLock { state -> Bool in
            guard !state.stopping, state.devices[syspath]?.generation == generation else { return false }
            state.devices[syspath]?.session = session
            return true
        }
        guard registered else {
            link.close()
            finish(syspath: syspath, generation: generation, retry: false)
            return
        }
        totals.withLock { $0.sessions += 1 }
        log.info("devices: \(label): session started (\(profile.transport.name), \(profile.engine.name))")
        let outcome = session.run()
        link.close()
        totals.withLock {
            $0.readings += outcome.counters.readings
            $0.problems += outcome.counters.problems
        }
        ReadingCounters.daemon.unreadable(outcome.counters.problems)
        let summary = outcome.counters.logSummary
        // New rows, not readings the device re-sent: a device that fails at the same point after re-sending
        // its old records must still back off.
        let progressed = sink.newReadings > 0
        switch outcome.end {
        case .finished(complete: true):
            log.info("devices: \(label): session finished; \(summary). The next session starts when the device is attached again")
            finish(syspath: syspath, generation: generation, retry: false)
        case .finished(complete: false):
            // A serial cable stays attached while the device behind it is switched off: ask again later.
            log.info("devices: \(label): the device stopped answering; \(summary)")
            finish(syspath: syspath, generation: generation, retry: true, progressed: progressed)
        case .disconnected:
            // Usually udev's removal follows and cancels the retry; a device that only hung up is asked again.
            log.info("devices: \(label): disconnected; \(summary)")
            finish(syspath: syspath, generation: generation, retry: true, progressed: progressed)
        case .stopped:
            log.info("devices: \(label): session stopped; \(summary)")
            finish(syspath: syspath, generation: generation, retry: false)
        case .storeFailed(let reason):
            log.error("devices: \(label): the Outbox refused readings, so the device was not acknowledged: \(reason); \(summary)")
            finish(syspath: syspath, generation: generation, retry: true, progressed: progressed)
        case .failed(let error):
            log.error("devices: \(label): \(error); \(summary)")
            finish(syspath: syspath, generation: generation, retry: true, progressed: progressed)
        }
    }

    /// Marks the session over and, for failures, schedules the next attempt while the device stays attached.
    /// A session that stored readings starts the backoff afresh: the device was working.
    private func finish(syspath: String, generation: Int, retry: Bool, progressed: Bool = false) {
        let delay = state.withLock { state -> Int? in
            guard state.devices[syspath]?.generation == generation else { return nil }
            state.devices[syspath]?.running = false
            state.devices[syspath]?.session = nil
            guard retry, !state.stopping else {
                state.devices[syspath]?.backoff.reset()
                return nil
            }
            let delay = state.devices[syspath]?.backoff.delay(afterFailure: progressed)
            return delay.map { Int(clamping: $0.components.seconds) }
        }
        guard let delay else { return }
        log.info("devices: trying \(syspath.split(separator: "/").last.map(String.init) ?? syspath) again in \(delay) s")
        DispatchQueue.global().asyncAfter(deadline: .now() + .seconds(delay)) { [self] in
            startSession(syspath: syspath, generation: generation)
        }
    }

    /// Who readings from `device` come from. The server recognises a re-sent reading by its device's identity,
    /// so it must stay the same across sessions. A USB device without a serial number (the Omron HEM-790IT
    /// has none) is identified as "this model on this hub": its ids plus the hub's MAC address. Not the USB
    /// port, because a monitor re-plugged into another port re-sends its whole memory and must not create
    /// copies. Two identical such devices on one hub share the identity; a reading of one that collides with
    /// a different reading of the other at the same device time is still kept (the Outbox then identifies it
    /// by its receive time).
    ///
    /// A USB-serial bridge claimed by its chip's ids is the cable, not the device: its serial number (often
    /// the factory's "0001") is no device identity either, so it is kept only to tell two cables on this
    /// hub apart, scoped to the hub the same way.
    func identity(of device: AttachedDevice, profile: DeviceProfile) -> DeviceIdentity {
        var identity = device.identity
        guard let usb = identity.usb, let hubAddress else { return identity }
        let hub = "hub-" + hubAddress.compactHex
        if usb.serial?.isEmpty ?? true {
            identity.usb = USBIdentity(vendorID: usb.vendorID, productID: usb.productID, serial: hub)
        } else if let serial = usb.serial, Self.isBridgeOnlyClaim(device, by: profile) {
            identity.usb = USBIdentity(vendorID: usb.vendorID, productID: usb.productID, serial: hub + "-" + serial)
        }
        return identity
    }

    /// A serial node whose profile claims it by USB ids alone, naming neither manufacturer nor product
    /// string: what udev sees is a generic bridge chip, not the device behind it.
    static func isBridgeOnlyClaim(_ device: AttachedDevice, by profile: DeviceProfile) -> Bool {
        guard device.subsystem == .tty, case .serial = profile.transport else { return false }
        // Only the entries this node satisfies count: a profile may name strings in one entry and not in another.
        let claims = DeviceMatcher.satisfiedEntries(of: profile, for: device)
        return !claims.isEmpty && claims.allSatisfy { $0.manufacturer == nil && $0.product == nil }
    }

    /// The attached devices a profile claims, for `vitalgate status`: node, profile, whether a session runs.
    var live: [JSONValue] {
        state.withLock { state in
            state.devices.values.sorted { $0.device.node < $1.device.node }.map { slot in
                ["transport": "usb", "device": .string(Self.describe(slot.device)), "profile": .string(slot.profile.id),
                 "session": .bool(slot.running)]
            }
        }
    }

    /// `/dev/ttyUSB0 (USB 10C4:EA60 at pci-0000:00:14.0-usb-0:2:1.0)`: enough to find the device, nothing personal.
    static func describe(_ device: AttachedDevice) -> String {
        var text = device.node
        if let vendor = device.vendorID, let product = device.productID {
            text += " (USB " + hex4(vendor) + ":" + hex4(product)
            if let port = device.portPath { text += " at " + port }
            text += ")"
        }
        return text
    }

    private static func hex4(_ value: UInt16) -> String {
        let digits = String(value, radix: 16, uppercase: true)
        return String(repeating: "0", count: 4 - digits.count) + digits
    }
}

/// Stores a session's readings in the Outbox with the citizen the assignment rules give each (household
/// member, open visit, or nobody: held unassigned), then wakes the uplink. `store` returns only after the
/// commit (synchronous=FULL), which is what lets a session acknowledge. One per session: it counts the readings
/// that were new to the Outbox.
final class OutboxSink: ReadingSink {
    let outbox: Outbox
    let assignment: AssignmentRules
    let onStored: @Sendable () -> Void
    /// The metrics file's counts of decoded, stored and refused readings.
    let counters: ReadingCounters
    private let stored = Atomic<Int>(0)

    init(outbox: Outbox, assignment: AssignmentRules, counters: ReadingCounters = .daemon, onStored: @escaping @Sendable () -> Void) {
        self.outbox = outbox
        self.assignment = assignment
        self.counters = counters
        self.onStored = onStored
    }

    /// Readings this session added to the Outbox (not the ones it already held).
    var newReadings: Int { stored.load(ordering: .relaxed) }

    func store(_ readings: [Reading]) throws {
        guard !readings.isEmpty else { return }
        let outcomes = try counters.storing(readings.count, from: .device) {
            try outbox.ingest(try assignment.incoming(readings, outbox: outbox))
        }
        let new = outcomes.filter { if case .stored = $0 { true } else { false } }.count
        stored.add(new, ordering: .relaxed)
        onStored()
    }
}

extension AssignmentRules {
    /// `readings` with the citizen each belongs to, under the visit open in `outbox` now. While a visit is open that
    /// this version cannot read back, they may be its citizen's or anyone's: all are stored and held.
    func incoming(_ readings: [Reading], outbox: Outbox) throws(OutboxError) -> [IncomingReading] {
        let visit: OpenVisit?
        do {
            visit = try outbox.openVisit().map { OpenVisit(id: $0.id, patient: $0.patient, startedAt: $0.startedAt) }
        } catch {
            guard case .unreadableVisit = error else { throw error }
            let held = Attribution.unassigned("a visit is open that this VitalGate version cannot read back. Fix: end it with "
                + "the version that started it, then assign this reading with `vitalgate assign`")
            return readings.map { IncomingReading(reading: $0, subject: nil, attribution: held) }
        }
        return readings.map { reading in
            let (subject, attribution) = attribute(reading, visit: visit)
            return IncomingReading(reading: reading, subject: subject, attribution: attribution)
        }
    }
}

extension SessionCounters {
    /// What a session did, for the journal. Decode problems carry device bytes, which may be measured values: only
    /// their number is logged.
    var logSummary: String {
        "\(readings) reading(s) stored, \(problems) unreadable frame(s), \(timeouts) timeout(s)"
    }
}
