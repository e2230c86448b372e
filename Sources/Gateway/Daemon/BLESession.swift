import DeviceIO
import Dispatch
import Foundation
import ProfileCatalog
import ProfileEngine
import Synchronization
import VitalModel

/// One connection to one Bluetooth LE device, on a thread of its own: connect, check the device clock,
/// subscribe to the profile's characteristics, decode what arrives through the profile's engine, store it,
/// and set the device clock once the stored records have come in.
///
/// The order is chosen for the clock: records a monitor kept in its memory carry times from its own clock,
/// so the clock is read first (a Coincident Timestamp for those records), and set only after the download
/// has gone quiet; it is then read again for the readings that follow on the same connection.
///
/// Indications are confirmed to the device by bluetoothd as it forwards them, before VitalGate can commit
/// them: BlueZ's D-Bus API gives a client no say in the confirmation. Each value is committed as soon as it
/// arrives; the window in which a crash loses an acknowledged record is the time between bluetoothd's signal
/// and the commit (README, "Bluetooth").
final class BLESession: Sendable {
    struct Context: Sendable {
        let central: any BLECentral
        let address: EUI48
        let profile: DeviceProfile
        let ble: BLESettings
        let settings: BluetoothSettings
        let sink: OutboxSink
        let log: DaemonLog
        let now: @Sendable () -> HubTimestamp
        /// How long the device must be quiet after the last value before the hub sets its clock.
        let quietBeforeClockSet: Duration
    }

    enum Item: Sendable {
        case value(service: String, characteristic: String, bytes: [UInt8])
        case disconnected
        case stop
    }

    enum End: Sendable {
        /// The device (or the stack) ended the connection.
        case disconnected
        /// The connection could not be made or failed.
        case failed(DeviceIOError)
        /// The Outbox refused readings.
        case storeFailed(String)
        /// The daemon is stopping.
        case stopped
    }

    struct Outcome: Sendable {
        var end: End
        var readings = 0
        var problems = 0
        var newReadings = 0
    }

    let context: Context
    private let mailbox = Mutex<[Item]>([])
    private let arrived = DispatchSemaphore(value: 0)

    init(_ context: Context) {
        self.context = context
    }

    /// Hands an event to the session; called on the stack's event thread, never blocks.
    func deliver(_ item: Item) {
        mailbox.withLock { $0.append(item) }
        arrived.signal()
    }

    func stop() { deliver(.stop) }

    /// Takes the values waiting in the mailbox: bluetoothd confirmed them to the device already, so whoever ends
    /// this session must store them.
    func takeValues() -> [Item] {
        mailbox.withLock { items in
            let values = items.filter { if case .value = $0 { true } else { false } }
            items.removeAll { if case .value = $0 { true } else { false } }
            return values
        }
    }

    /// The next item, or nil when `deadline` passed first.
    private func next(until deadline: ContinuousClock.Instant?) -> Item? {
        while true {
            if let item = mailbox.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) { return item }
            if let deadline {
                let left = ContinuousClock.now.duration(to: deadline)
                if left <= .zero { return nil }
                if arrived.wait(timeout: .now() + .milliseconds(Int(left.milliseconds(roundingUp: true)))) == .timedOut,
                   mailbox.withLock({ $0.isEmpty }) { return nil }
            } else {
                arrived.wait()
            }
        }
    }

    // MARK: Running

    /// Runs the connection to its end; blocks the calling (dedicated) thread.
    func run() -> Outcome {
        var outcome = connectAndServe()
        outcome.newReadings = context.sink.newReadings
        return outcome
    }

    private func connectAndServe() -> Outcome {
        var outcome = Outcome(end: .disconnected)
        let c = context
        do {
            try c.central.connect(c.address, timeout: c.settings.connectTimeout)
        } catch {
            return Outcome(end: .failed(error))
        }
        // A stop that came while connecting ends the session; a disconnect queued before this connection existed
        // (a link that dropped before the session connected again) is stale and dropped.
        let stopped = mailbox.withLock { items -> Bool in
            items.removeAll { if case .disconnected = $0 { true } else { false } }
            return items.contains { if case .stop = $0 { true } else { false } }
        }
        if stopped {
            c.central.disconnect(c.address)
            return Outcome(end: .stopped)
        }
        let tree: [BLECharacteristicInfo]
        do { tree = try c.central.characteristics(of: c.address) } catch {
            c.central.disconnect(c.address)
            return Outcome(end: .failed(error))
        }
        func find(_ uuid: String, service: String? = nil) -> BLECharacteristicInfo? {
            tree.first { $0.uuid == uuid && (service == nil || $0.service == BlueZUUID.normalized(service!)) }
        }
        // Optional characteristics (Intermediate Cuff Pressure) are often missing; one the profile can read must be there.
        let declared = c.ble.characteristics.filter { $0.mode == .notify || $0.mode == .indicate }
        let subscriptions = declared.filter { find(BlueZUUID.normalized($0.uuid), service: $0.service) != nil }
        if subscriptions.isEmpty {
            c.central.disconnect(c.address)
            let wanted = declared.map { "\($0.uuid) in service \($0.service)" }.joined(separator: ", ")
            return Outcome(end: .failed(DeviceIOError(
                operation: "GATT discovery", path: c.address.bluetoothText,
                fix: "the device has none of the characteristics profile \(c.profile.id) subscribes to (\(wanted)): "
                    + "check that the profile fits this model (`vitalgate bluetooth list`)")))
        }

        var clock = ClockState(context: c, currentTime: find(CurrentTime.uuid))
        clock.check()

        let identity = DeviceIdentity(bluetoothAddress: c.address, manufacturer: c.profile.vendor, model: c.profile.model)
        var engine = c.profile.engine.makeSession(device: identity, profileID: c.profile.id)
        var windows = HeartRateWindowing(seconds: c.settings.heartRateWindowSeconds, now: c.now)

        /// Stores readings (commit first); false when the Outbox refused them.
        func store(_ readings: [Reading]) -> Bool {
            guard !readings.isEmpty else { return true }
            do {
                try c.sink.store(readings)
                outcome.readings += readings.count
                return true
            } catch {
                outcome.end = .storeFailed(String(describing: error))
                return false
            }
        }
        /// Handles an engine's events; false once the session must end.
        func handle(_ events: [EngineEvent]) -> Bool {
            var readings: [Reading] = []
            for event in events {
                switch event {
                case .reading(var reading):
                    if reading.deviceTime != nil, reading.clockCheck == nil { reading.clockCheck = clock.lastCheck }
                    readings += windows.add(reading)
                case .problem:
                    outcome.problems += 1
                case .send(let bytes, let channel):
                    // Whatever the engine asks for comes after what it decoded so far is durable.
                    guard store(readings) else { return false }
                    readings = []
                    guard let channel, let target = find(channel) else {
                        // The engine would wait for an answer that cannot come: end with an error that names it.
                        outcome.end = .failed(DeviceIOError(
                            operation: "WriteValue", path: c.address.bluetoothText,
                            fix: "profile \(c.profile.id) writes to characteristic \(channel ?? "(none)"), which this device does not have: "
                                + "check that the profile fits this model"))
                        return false
                    }
                    do {
                        try c.central.write(c.address, service: target.service, characteristic: target.uuid, value: bytes,
                                            withResponse: target.flags.contains("write"), timeout: .seconds(20))
                    } catch {
                        outcome.end = .failed(error)
                        return false
                    }
                    if c.ble.writeDelayMilliseconds > 0 { Thread.sleep(forTimeInterval: Double(c.ble.writeDelayMilliseconds) / 1000) }
                case .finished:
                    break
                }
            }
            return store(readings)
        }

        guard handle(engine.start(at: c.now())) else { c.central.disconnect(c.address); return outcome }
        for subscription in subscriptions {
            guard let target = find(BlueZUUID.normalized(subscription.uuid), service: subscription.service) else { continue }
            do {
                try c.central.subscribe(c.address, service: target.service, characteristic: target.uuid, timeout: .seconds(20))
            } catch {
                c.central.disconnect(c.address)
                return Outcome(end: .failed(error), readings: outcome.readings, problems: outcome.problems)
            }
        }
        // Glucose meters (and others with a Record Access Control Point) send stored records only when asked.
        if let racp = find(RACP.uuid), racp.flags.contains("write"), subscriptions.contains(where: { BlueZUUID.normalized($0.uuid) == RACP.uuid }) {
            do {
                try c.central.write(c.address, service: racp.service, characteristic: racp.uuid, value: RACP.reportAllRecords(),
                                    withResponse: true, timeout: .seconds(20))
            } catch {
                c.log.warning("bluetooth: \(c.address.bluetoothText): asking for stored records failed: \(error)")
            }
        }

        var lastValue = ContinuousClock.now
        var valuesSeen = false
        loop: while true {
            var deadline = windows.nextDeadline
            // The clock is set once the stored records are in: after a quiet spell following values, or, from a device
            // that sent none, after a longer wait (it may be slow to start sending what it keeps).
            let quietEnds = lastValue + (valuesSeen ? c.quietBeforeClockSet : c.quietBeforeClockSet * 4)
            if clock.wantsSet { deadline = deadline.map { min($0, quietEnds) } ?? quietEnds }
            if let wait = engine.timeoutMilliseconds {
                let engineDeadline = lastValue + .milliseconds(max(0, wait))
                deadline = deadline.map { min($0, engineDeadline) } ?? engineDeadline
            }
            guard let item = next(until: deadline) else {
                if let wait = engine.timeoutMilliseconds, ContinuousClock.now >= lastValue + .milliseconds(max(0, wait)) {
                    guard handle(engine.timeout(at: c.now())) else { break loop }
                }
                guard store(windows.closeDue()) else { break loop }
                if clock.wantsSet, ContinuousClock.now >= quietEnds { clock.set() }
                continue
            }
            switch item {
            case .value(_, let characteristic, let bytes):
                lastValue = .now
                valuesSeen = true
                if characteristic == RACP.uuid {
                    // The control point's answer ends the download; the records themselves came on 2A18.
                    continue
                }
                guard handle(engine.receive(bytes, channel: characteristic, at: c.now())) else { break loop }
            case .disconnected:
                outcome.end = .disconnected
                break loop
            case .stop:
                outcome.end = .stopped
                break loop
            }
        }
        // Values that came with or after the end were confirmed to the device by bluetoothd: decoded and stored too.
        if case .storeFailed = outcome.end {} else {
            for case .value(_, let characteristic, let bytes) in takeValues() where characteristic != RACP.uuid {
                guard handle(engine.receive(bytes, channel: characteristic, at: c.now())) else { break }
            }
        }
        // A window cut short by the end of the connection is stored with what it has.
        if case .storeFailed = outcome.end {} else { _ = store(windows.flush()) }
        if case .disconnected = outcome.end {} else { c.central.disconnect(c.address) }
        return outcome
    }
}

/// The device clock as one connection sees it: read at connection (a ``DeviceClockCheck`` for the readings
/// that carry the device's time), set once the stored records are in when the profile allows it, read again.
struct ClockState {
    let context: BLESession.Context
    let currentTime: BLECharacteristicInfo?
    private(set) var lastCheck: DeviceClockCheck?
    private var setDone = false

    init(context: BLESession.Context, currentTime: BLECharacteristicInfo?) {
        self.context = context
        self.currentTime = currentTime
    }

    /// The clock is off by more than this before the hub sets it; a second or two is the transfer itself.
    static let tolerance: Int64 = 2_000

    /// Whether the profile lets the hub set the clock, and it still has to.
    var wantsSet: Bool {
        guard !setDone, context.profile.time.deviceClock else { return false }
        switch context.profile.time.set {
        case .currentTime:
            guard currentTime?.flags.contains("write") == true else { return false }
        case .dateTime:
            guard context.ble.characteristics.contains(where: { BlueZUUID.normalized($0.uuid) == DateTimeCharacteristic.uuid && $0.mode == .write }) else { return false }
            // Without a readable clock there is nothing to compare with: set it.
            return true
        case .none, .vendorCommand:
            return false
        }
        guard let lag = lastCheck?.deviceLagMilliseconds else { return true }
        return abs(lag) > Self.tolerance
    }

    /// Reads Current Time, when the device has it, as the clock check for the readings that follow.
    mutating func check() {
        guard context.profile.time.deviceClock, let currentTime, currentTime.flags.contains("read") else { return }
        let c = context
        do {
            let bytes = try c.central.read(c.address, service: currentTime.service, characteristic: currentTime.uuid, timeout: .seconds(20))
            let hubTime = c.now()
            let value = try CurrentTime(decoding: bytes)
            lastCheck = DeviceClockCheck(hubTime: hubTime, deviceTime: value.time)
            if let lag = lastCheck?.deviceLagMilliseconds, abs(lag) > Self.tolerance {
                c.log.info("bluetooth: \(c.address.bluetoothText): the device clock is \(Self.describe(lag)) the hub's")
            }
        } catch {
            c.log.warning("bluetooth: \(c.address.bluetoothText): reading the device clock failed: \(error)")
        }
    }

    /// Sets the device clock to the hub's local time and reads it back.
    mutating func set() {
        setDone = true
        let c = context
        let local = c.now().localTime
        let target: (service: String, uuid: String, value: [UInt8]?)
        switch c.profile.time.set {
        case .currentTime:
            guard let currentTime else { return }
            target = (currentTime.service, currentTime.uuid, CurrentTime.encode(local))
        case .dateTime:
            guard let declared = c.ble.characteristics.first(where: { BlueZUUID.normalized($0.uuid) == DateTimeCharacteristic.uuid }) else { return }
            target = (BlueZUUID.normalized(declared.service), DateTimeCharacteristic.uuid, DateTimeCharacteristic.encode(local))
        case .none, .vendorCommand:
            return
        }
        guard let value = target.value else { return }
        do {
            try c.central.write(c.address, service: target.service, characteristic: target.uuid, value: value, withResponse: true,
                                timeout: .seconds(20))
            // Until the read-back says otherwise, the clock shows what was written.
            lastCheck = DeviceClockCheck(hubTime: c.now(), deviceTime: local)
            c.log.info("bluetooth: \(c.address.bluetoothText): set the device clock to the hub's time")
        } catch {
            // Some cuffs refuse the write without authenticated pairing (ATT 0x80): the readings keep their clock check.
            c.log.warning("bluetooth: \(c.address.bluetoothText): setting the device clock failed: \(error)")
            return
        }
        check()
    }

    static func describe(_ lagMilliseconds: Int64) -> String {
        let seconds = abs(lagMilliseconds) / 1000
        let text = seconds >= 86_400 ? "\(seconds / 86_400) day(s)" : seconds >= 3600 ? "\(seconds / 3600) hour(s)"
            : seconds >= 60 ? "\(seconds / 60) minute(s)" : "\(seconds) second(s)"
        return text + (lagMilliseconds > 0 ? " behind" : " ahead of")
    }
}
