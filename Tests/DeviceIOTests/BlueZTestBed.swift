import Foundation
import Synchronization
import Testing
import VitalModel
import VitalGateTestKit
@testable import DeviceIO

/// Events as a central delivered them, for tests to wait on.
final class EventLog: Sendable {
    private let events = Mutex<[BLEEvent]>([])

    func append(_ event: BLEEvent) {
        events.withLock { $0.append(event) }
    }

    var all: [BLEEvent] { events.withLock { $0 } }

    /// Waits until `predicate` holds for the events so far; false if it did not within `limit` (a liveness
    /// bound, not a measurement).
    @discardableResult
    func wait(within limit: Duration = .seconds(30), until predicate: ([BLEEvent]) -> Bool) -> Bool {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if predicate(all) { return true }
            usleep(5_000)
        }
        return predicate(all)
    }

    /// The latest `.device` event for `address`.
    func device(_ address: EUI48) -> BLEDeviceInfo? {
        all.reversed().lazy.compactMap { event -> BLEDeviceInfo? in
            if case .device(let info) = event, info.address == address { return info }
            return nil
        }.first
    }
}

/// A dbusmock BlueZ with one adapter (`hci0`) and a started ``BlueZCentral`` on the same private bus.
/// Blocking: use it on a dedicated thread.
struct BlueZTestBed {
    let mock: BlueZMock
    let central: BlueZCentral
    let log: EventLog

    static let deviceA = EUI48("C4:F3:12:53:F2:C9")!
    static let deviceB = EUI48("00:09:1F:80:11:22")!

    /// `/org/bluez/hci0/dev_C4_F3_12_53_F2_C9`.
    static func path(_ address: EUI48) -> String {
        "/org/bluez/hci0/dev_" + hexString(address.bytes, separator: "_")
    }

    /// Starts the mock, runs `setup` (Python, before the central starts), then starts the central.
    static func start(adapter: Bool = true, setup: String = "", policy: BLEPairingPolicy = .init(capability: .noInputNoOutput, mayPair: { _ in false }),
                      requestDefaultAgent: Bool = true) throws -> BlueZTestBed {
        let mock = try BlueZMock.start(lifetime: .seconds(300))
        do {
            if adapter { try mock.run("add_adapter('hci0')") }
            if !setup.isEmpty { try mock.run(setup) }
            let central = BlueZCentral(busAddress: mock.address, requestDefaultAgent: requestDefaultAgent)
            let log = EventLog()
            try central.start(pairing: policy) { log.append($0) }
            return BlueZTestBed(mock: mock, central: central, log: log)
        } catch {
            mock.stop()
            throw error
        }
    }

    func stop() {
        central.stop()
        mock.stop()
    }

    /// A device whose Connect brings the link up and finishes GATT discovery at once, with a Blood
    /// Pressure service: 2A35 (indicate), 2A08 (read, write) and 2A49 (read).
    static func connectableDevice(_ address: EUI48 = deviceA, name: String = "A&D_UA-651BLE_0C") -> String {
        """
            device = add_device('\(BlueZCentral.text(address))', '\(name)', uuids=['1810'])
            set_method(device, DEVICE, 'Connect', '', '', "self.UpdateProperties('org.bluez.Device1', {'Connected': dbus.Boolean(True), 'ServicesResolved': dbus.Boolean(True)})")
            set_method(device, DEVICE, 'Disconnect', '', '', "self.UpdateProperties('org.bluez.Device1', {'Connected': dbus.Boolean(False), 'ServicesResolved': dbus.Boolean(False)})")
            service = add_service(device, 0x10, '1810')
            add_characteristic(service, 0x11, '2A35', ['indicate'])
            add_characteristic(service, 0x14, '2A08', ['read', 'write'], value=[0xE8, 0x07, 11, 22, 9, 30, 0])
            add_characteristic(service, 0x17, '2A49', ['read'], value=[0x00, 0x00])
            result = device
            """
    }
}

/// The DeviceIOError `body` threw, or nil (any other error is recorded as an issue).
func failure(_ body: () throws -> Void) -> DeviceIOError? {
    do {
        try body()
        return nil
    } catch let error as DeviceIOError {
        return error
    } catch {
        Issue.record("expected a DeviceIOError, got \(error)")
        return nil
    }
}
