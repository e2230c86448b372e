import Assignment
import DeviceIO
import Dispatch
import Foundation
import Outbox
import ProfileCatalog
import ProfileEngine
import Synchronization
import Testing
import VitalGateTestKit
import VitalModel
@testable import Gateway

/// A Bluetooth stack in memory: what BlueZ would report and answer, scripted per test. Events are delivered on
/// a serial queue of their own, in order, as BlueZ's D-Bus thread delivers them. The real stack is exercised by
/// the BlueZ tests (dbusmock) and the VM test (kernel, bluetoothd, Bumble peripherals).
final class FakeCentral: BLECentral {
    struct Script: Sendable {
        var tree: [BLECharacteristicInfo] = []
        /// Values sent on subscription to each characteristic, in order.
        var onSubscribe: [String: [[UInt8]]] = [:]
        /// What a read of a characteristic gives.
        var reads: [String: [UInt8]] = [:]
        /// Connection attempts that fail before one succeeds.
        var failingConnects = 0
        /// Disconnect right after the values subscribed to were sent.
        var disconnectAfterValues = false
    }

    struct Log: Sendable {
        var connects: [EUI48] = []
        var connectTimes: [ContinuousClock.Instant] = []
        var writes: [(EUI48, String, [UInt8])] = []
        var subscriptions: [String] = []
        var scans: [[String]] = []
        var policy: BLEPairingPolicy?
        /// Errors the next scans throw, in order (each attempt is still logged in `scans`).
        var scanFailures: [DeviceIOError] = []
    }

    let script: Mutex<[EUI48: Script]>
    let log = Mutex(Log())
    private let handler = Mutex<(@Sendable (BLEEvent) -> Void)?>(nil)
    private let devices = Mutex<[EUI48: BLEDeviceInfo]>([:])
    private let queue = DispatchQueue(label: "fake-bluez-events")

    init(_ script: [EUI48: Script]) { self.script = Mutex(script) }

    func emit(_ event: BLEEvent) {
        let handler = handler.withLock { $0 }
        queue.async { handler?(event) }
    }

    /// BlueZ reports a device (it advertised, or is known from an earlier pairing).
    func advertise(_ info: BLEDeviceInfo) {
        devices.withLock { $0[info.address] = info }
        emit(.device(info))
    }

    func disconnectFromDevice(_ address: EUI48) {
        guard var info = devices.withLock({ $0[address] }) else { return }
        info.connected = false
        info.servicesResolved = false
        devices.withLock { $0[address] = info }
        emit(.device(info))
    }

    func start(pairing: BLEPairingPolicy, events: @escaping @Sendable (BLEEvent) -> Void) throws(DeviceIOError) {
        handler.withLock { $0 = events }
        log.withLock { $0.policy = pairing }
        emit(.adapter(present: true, powered: true))
    }

    func stop() { handler.withLock { $0 = nil } }

    func scan(services: [String]) throws(DeviceIOError) {
        let failure = log.withLock { log -> DeviceIOError? in
            log.scans.append(services)
            return log.scanFailures.isEmpty ? nil : log.scanFailures.removeFirst()
        }
        if let failure { throw failure }
    }

    func connect(_ address: EUI48, timeout: Duration) throws(DeviceIOError) {
        log.withLock {
            $0.connects.append(address)
            $0.connectTimes.append(.now)
        }
        let fail = script.withLock { script -> Bool in
            guard let left = script[address]?.failingConnects, left > 0 else { return false }
            script[address]?.failingConnects = left - 1
            return true
        }
        if fail {
            throw DeviceIOError(operation: "Connect", path: address.description, fix: "bring the device closer")
        }
        guard var info = devices.withLock({ $0[address] }) else {
            throw DeviceIOError(operation: "Connect", path: address.description, fix: "unknown device", isDisconnect: true)
        }
        info.connected = true
        info.servicesResolved = true
        devices.withLock { $0[address] = info }
        emit(.device(info))
    }

    func disconnect(_ address: EUI48) { disconnectFromDevice(address) }
    func pair(_ address: EUI48, timeout: Duration) throws(DeviceIOError) {}
    func setTrusted(_ address: EUI48, _ trusted: Bool) throws(DeviceIOError) {}
    func remove(_ address: EUI48) throws(DeviceIOError) {}

    func characteristics(of address: EUI48) throws(DeviceIOError) -> [BLECharacteristicInfo] {
        script.withLock { $0[address]?.tree ?? [] }
    }

    func read(_ address: EUI48, service: String, characteristic: String, timeout: Duration) throws(DeviceIOError) -> [UInt8] {
        guard let bytes = script.withLock({ $0[address]?.reads[characteristic] }) else {
            throw DeviceIOError(operation: "ReadValue", path: address.description, fix: "not readable")
        }
        return bytes
    }

    func write(_ address: EUI48, service: String, characteristic: String, value: [UInt8], withResponse: Bool,
               timeout: Duration) throws(DeviceIOError) {
        log.withLock { $0.writes.append((address, characteristic, value)) }
        // A Current Time write sets the clock the next read gives.
        if characteristic == CurrentTime.uuid { script.withLock { $0[address]?.reads[characteristic] = value } }
    }

    func subscribe(_ address: EUI48, service: String, characteristic: String, timeout: Duration) throws(DeviceIOError) {
        log.withLock { $0.subscriptions.append(characteristic) }
        let (values, disconnect) = script.withLock { ($0[address]?.onSubscribe[characteristic] ?? [], $0[address]?.disconnectAfterValues ?? false) }
        for value in values { emit(.value(address, service: service, characteristic: characteristic, bytes: value)) }
        if disconnect, !values.isEmpty { disconnectFromDevice(address) }
    }
}

@Suite("Bluetooth LE sessions in the daemon")
struct BluetoothManagerTests {
    static let catalog = ProfileCatalog.load(directory: RepositoryPaths.root.appendingPathComponent("DeviceProfiles").path)
    static let cuff = EUI48("C4:F3:12:53:F2:C9")!
    static let owner = PatientIdentifier(system: IdentifierSystems.vietnam.citizenID, value: "001085012345")

    /// Two Blood Pressure Measurement indications from real cuffs (derdilla/blood-pressure-monitor-fl; the
    /// blood-pressure profile's capture, SOURCES.md there): 124/86 pulse 51 with four status bits, and a failed
    /// measurement with every value NaN.
    static let bpm: [[UInt8]] = [
        [0x16, 0x7C, 0x00, 0x56, 0x00, 0x61, 0x00, 0xE8, 0x07, 0x06, 0x0F, 0x11, 0x11, 0x1B, 0x33, 0x00, 0x27, 0x00],
        [0x16, 0xFF, 0x07, 0xFF, 0x07, 0xFF, 0x07, 0xE8, 0x07, 0x06, 0x17, 0x0E, 0x23, 0x0A, 0xFF, 0x07, 0x00, 0x00],
    ]
    static let bpsTree = [
        BLECharacteristicInfo(service: "1810", uuid: "2A35", flags: ["indicate"]),
        BLECharacteristicInfo(service: "1810", uuid: "2A49", flags: ["read"]),
        BLECharacteristicInfo(service: "1805", uuid: "2A2B", flags: ["read", "write", "notify"]),
    ]

    struct Harness {
        let central: FakeCentral
        let manager: BluetoothManager
        let outbox: Outbox

        func waitFor(_ what: String, _ condition: () throws -> Bool) throws {
            // A liveness bound, not a timing assertion: the work takes milliseconds.
            let deadline = ContinuousClock.now + .seconds(60)
            while try !condition() {
                guard ContinuousClock.now < deadline else { Issue.record("timed out waiting for \(what)"); return }
                Thread.sleep(forTimeInterval: 0.01)
            }
        }

        func stored() throws -> [StoredReading] {
            try outbox.readings(in: .pending, limit: 100) + outbox.readings(in: .unassigned, limit: 100)
        }
    }

    func harness(_ script: [EUI48: FakeCentral.Script], windowSeconds: Int = 0, log: DaemonLog = DaemonLog(),
                 timing: BluetoothManager.Timing = .init(reconnectDelay: .milliseconds(50), initialBackoff: .milliseconds(20),
                                                        maximumBackoff: .milliseconds(200), quietBeforeClockSet: .milliseconds(100))) throws -> Harness {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("vitalgate-ble-\(UUID().uuidString).db").path
        let outbox = try Outbox(path: path)
        let central = FakeCentral(script)
        var settings = BluetoothSettings()
        settings.heartRateWindowSeconds = windowSeconds
        let manager = BluetoothManager(central: central, profiles: Self.catalog.profiles, settings: settings, outbox: outbox,
                                       assignment: AssignmentRules(household: .single(Self.owner)), log: log, onStored: {}, timing: timing)
        try manager.start()
        return Harness(central: central, manager: manager, outbox: outbox)
    }

    static func cuffInfo(trusted: Bool = true, name: String = "BP cuff") -> BLEDeviceInfo {
        BLEDeviceInfo(address: cuff, name: name, serviceUUIDs: ["1810", "1805"], paired: true, bonded: true, trusted: trusted)
    }

    @Test("a trusted cuff's stored records are stored for the owner, with the device clock checked")
    func storedRecords() throws {
        // The cuff's clock is on 2021-03-04 10:00:00 (a reset clock): far behind the hub's.
        let wrongClock = CurrentTime.encode(LocalDateTime(year: 2021, month: 3, day: 4, hour: 10, minute: 0, second: 0, millisecond: 0)!)!
        let h = try harness([Self.cuff: .init(tree: Self.bpsTree, onSubscribe: ["2A35": Self.bpm], reads: ["2A2B": wrongClock])])
        defer { h.manager.stop(waitingUpTo: .seconds(5)) }
        h.central.advertise(Self.cuffInfo())
        try h.waitFor("two readings") { try h.stored().count == 2 }
        let stored = try h.stored()
        #expect(stored.allSatisfy { $0.subject == Self.owner && $0.state == .pending })
        let measured = try #require(stored.first { $0.reading.value(.systolic) != nil && $0.reading.status.isEmpty })
        #expect(measured.reading.device.bluetoothAddress == Self.cuff)
        #expect(measured.reading.source.profileID == "bluetooth-sig/blood-pressure")
        // Each record carries the clock check made before the download: the device was 2021-03-04 10:00.
        let check = try #require(measured.reading.clockCheck)
        #expect(check.deviceTime?.year == 2021)
        #expect((check.deviceLagMilliseconds ?? 0) > 86_400_000)
        // Once the download was quiet, the hub set the clock to its own time (2A2B write), and no earlier.
        try h.waitFor("the clock write") { h.central.log.withLock { !$0.writes.isEmpty } }
        let write = try #require(h.central.log.withLock { $0.writes.first })
        #expect(write.1 == "2A2B")
        let written = try CurrentTime(decoding: write.2)
        let hubNow = HubTimestamp.now().localTime
        #expect(abs((written.time?.millisecondsSince1970 ?? 0) - hubNow.millisecondsSince1970) < 60_000)
        #expect(h.central.log.withLock { $0.subscriptions } == ["2A35"])
    }

    @Test("an adapter bluetoothd is still powering on (Busy) is scanned once powered, without a warning; another scan failure is a warning")
    func adapterPoweringOn() throws {
        let log = DaemonLog()
        let h = try harness([:], log: log)
        defer { h.manager.stop(waitingUpTo: .seconds(5)) }
        // At start: one scan for the adapter event, one from start itself.
        try h.waitFor("the scans at start") { h.central.log.withLock { $0.scans.count } == 2 }
        let busy = DeviceIOError(operation: "Set", path: "hci0", fix: "unexpected error from BlueZ", cause: "org.bluez.Error.Busy: Operation already in progress")
        let failed = DeviceIOError(operation: "StartDiscovery", path: "hci0", fix: "unexpected error from BlueZ", cause: "org.bluez.Error.Failed: No discovery started")
        h.central.log.withLock { $0.scanFailures = [busy, failed] }
        h.central.emit(.adapter(present: true, powered: false))
        try h.waitFor("the scan of the unpowered adapter") { h.central.log.withLock { $0.scans.count } == 3 }
        h.central.emit(.adapter(present: true, powered: true))
        try h.waitFor("the scan once powered") { h.central.log.withLock { $0.scans.count } == 4 }
        try h.waitFor("the warning about the second failure") { log.recentProblems.contains { $0.message.contains("cannot scan") } }
        let problems = log.recentProblems.map(\.message)
        #expect(problems.count == 1, "\(problems)")
        #expect(problems.first?.contains("No discovery started") == true, "\(problems)")
    }

    @Test("a device nobody adopted is never connected to, even when a profile claims it")
    func untrusted() throws {
        let h = try harness([Self.cuff: .init(tree: Self.bpsTree, onSubscribe: ["2A35": Self.bpm])])
        defer { h.manager.stop(waitingUpTo: .seconds(5)) }
        h.central.advertise(Self.cuffInfo(trusted: false))
        // An adopted device advertising after it proves the events were handled in order.
        let other = EUI48("C4:F3:12:00:00:01")!
        h.central.script.withLock { $0[other] = .init(tree: Self.bpsTree, onSubscribe: ["2A35": [Self.bpm[0]]]) }
        h.central.advertise(BLEDeviceInfo(address: other, name: "BP", serviceUUIDs: ["1810"], paired: true, trusted: true))
        try h.waitFor("the adopted device's reading") { try h.stored().count == 1 }
        #expect(h.central.log.withLock { $0.connects } == [other])
        #expect(try h.stored().allSatisfy { $0.reading.device.bluetoothAddress == other })
        // The agent confirms pairing only for adopted, claimed devices.
        let policy = try #require(h.central.log.withLock { $0.policy })
        #expect(policy.mayPair(other))
        #expect(!policy.mayPair(Self.cuff))
        #expect(!policy.mayPair(EUI48("00:11:22:33:44:55")!))
    }

    @Test("a trusted device no profile claims is not connected to")
    func unclaimed() throws {
        let h = try harness([:])
        defer { h.manager.stop(waitingUpTo: .seconds(5)) }
        let thing = EUI48("00:11:22:33:44:55")!
        h.central.advertise(BLEDeviceInfo(address: thing, name: "Speaker", serviceUUIDs: ["110B"], trusted: true))
        h.central.advertise(Self.cuffInfo())
        try h.waitFor("the cuff's connection") { h.central.log.withLock { !$0.connects.isEmpty } }
        #expect(h.central.log.withLock { $0.connects } == [Self.cuff])
    }

    @Test("a user id in the measurement holds the reading as unassigned")
    func userSlot() throws {
        // Beurer BM85 (derdilla tests, the profile's capture): a user byte follows the pulse.
        let record: [UInt8] = [0x56, 0x6A, 0x00, 0x47, 0x00, 0x00, 0x00, 0xEA, 0x07, 0x08, 0x0B, 0x12, 0x1F, 0x00, 0x00, 0x3F, 0x00, 0x00, 0x00]
        let beurer = EUI48("A4:C1:38:00:00:02")!
        let h = try harness([beurer: .init(tree: [BLECharacteristicInfo(service: "1810", uuid: "2A35", flags: ["indicate"])],
                                           onSubscribe: ["2A35": [record]])])
        defer { h.manager.stop(waitingUpTo: .seconds(5)) }
        h.central.advertise(BLEDeviceInfo(address: beurer, name: "BM85", serviceUUIDs: ["1810"], trusted: true))
        try h.waitFor("the reading") { try h.stored().count == 1 }
        let stored = try #require(try h.stored().first)
        #expect(stored.reading.userSlot != nil)
        #expect(stored.subject == nil)
        #expect(stored.state == .unassigned)
        #expect(stored.reading.source.profileID == "beurer/bm85")
    }

    @Test("a failed connection is tried again with backoff, and a disconnect ends the session")
    func retryAndReconnect() throws {
        // Backoff steps above the reconnect delay, so the doubling shows in the gaps between attempts.
        let h = try harness([Self.cuff: .init(tree: Self.bpsTree, onSubscribe: ["2A35": [Self.bpm[0]]], failingConnects: 2,
                                              disconnectAfterValues: true)],
                            timing: .init(reconnectDelay: .milliseconds(10), initialBackoff: .milliseconds(200),
                                          maximumBackoff: .seconds(5), quietBeforeClockSet: .milliseconds(100)))
        defer { h.manager.stop(waitingUpTo: .seconds(5)) }
        h.central.advertise(Self.cuffInfo())
        // Two failures, each retried by the hub itself (no new advertisement), then the download.
        try h.waitFor("the reading after two failed connects") { try h.stored().count == 1 }
        #expect(h.central.log.withLock { $0.connects.count } == 3)
        // Lower bounds only (a slow machine makes gaps longer, never shorter): 200 ms after the first failure, 400 ms
        // after the second.
        let times = h.central.log.withLock { $0.connectTimes }
        #expect(times[0].duration(to: times[1]) >= .milliseconds(200))
        #expect(times[1].duration(to: times[2]) >= .milliseconds(400))
        try h.waitFor("the session's end") { h.manager.currentTotals.sessions == 3 && h.manager.currentTotals.readings == 1 }
        // The cuff comes back with the same record: a new session, and the Outbox keeps one row.
        // The hub connects again by itself after a normal end (BlueZ may say nothing more about the device).
        try h.waitFor("a fourth connection") { h.central.log.withLock { $0.connects.count } >= 4 }
        try h.waitFor("the second download") { h.manager.currentTotals.readings >= 2 }
        #expect(try h.stored().count == 1)
        #expect(h.manager.currentTotals.failures == 2)
    }

    @Test("a device without a characteristic its profile subscribes to fails with a clear error, not a session")
    func missingCharacteristic() throws {
        let h = try harness([Self.cuff: .init(tree: [BLECharacteristicInfo(service: "1810", uuid: "2A49", flags: ["read"])])])
        defer { h.manager.stop(waitingUpTo: .seconds(5)) }
        h.central.advertise(Self.cuffInfo())
        try h.waitFor("the failure") { h.manager.currentTotals.failures >= 1 }
        #expect(h.central.log.withLock { $0.subscriptions }.isEmpty)
        #expect(try h.stored().isEmpty)
    }

    @Test("a heart-rate strap's notifications become one windowed reading, not one reading each")
    func heartRateWindows() throws {
        // Polar H7 notifications (Stack Overflow 25456359, the heart-rate profile's capture): 77 and 78 bpm with R-R.
        let strap = EUI48("00:22:D0:00:00:07")!
        let values: [[UInt8]] = [[0x16, 0x4D, 0x16, 0x03], [0x16, 0x4E, 0x1B, 0x03, 0x12, 0x03], [0x16, 0x4D, 0x16, 0x03]]
        let h = try harness([strap: .init(tree: [BLECharacteristicInfo(service: "180D", uuid: "2A37", flags: ["notify"])],
                                          onSubscribe: ["2A37": values], disconnectAfterValues: true)], windowSeconds: 60)
        defer { h.manager.stop(waitingUpTo: .seconds(5)) }
        h.central.advertise(BLEDeviceInfo(address: strap, name: "Polar H7", serviceUUIDs: ["180D"], trusted: true))
        try h.waitFor("the session's end") { h.manager.currentTotals.sessions == 1 && h.manager.currentTotals.readings > 0 }
        try h.waitFor("the stored window") { try h.stored().count == 1 }
        let reading = try #require(try h.stored().first).reading
        let window = try #require(reading.window)
        #expect(window.sampleCount == 3)
        #expect(window.minimum.value == .number(DecimalValue(mantissa: 77, exponent: 0)))
        #expect(window.maximum.value == .number(DecimalValue(mantissa: 78, exponent: 0)))
        #expect(reading.kind == .heartRate)
    }

    @Test("an indication bluetoothd forwards before the hub asked again (a bonded cuff reconnecting) is stored, not dropped")
    func valueBeforeSession() throws {
        // No values on subscription: the only record is the one bluetoothd already confirmed to the cuff.
        let h = try harness([Self.cuff: .init(tree: Self.bpsTree)])
        defer { h.manager.stop(waitingUpTo: .seconds(5)) }
        var info = Self.cuffInfo()
        h.central.advertise(info)
        try h.waitFor("the first session") { h.manager.currentTotals.sessions == 1 }
        h.central.disconnectFromDevice(Self.cuff)
        info.connected = true
        h.central.emit(.device(info))
        h.central.emit(.value(Self.cuff, service: "1810", characteristic: "2A35", bytes: Self.bpm[0]))
        try h.waitFor("the record") { try h.stored().count == 1 }
        let reading = try #require(try h.stored().first).reading
        #expect(reading.kind == .bloodPressure, "\(reading)")
        #expect(reading.device.bluetoothAddress == Self.cuff)
    }
}
