import Foundation
import Synchronization
import Testing
import VitalModel
import VitalGateTestKit
@testable import DeviceIO
#if canImport(Glibc)
import Glibc
#endif

/// BlueZCentral against python3-dbusmock's bluez5 template on a private bus: the model, events, device
/// methods, GATT and error mapping as BlueZ's D-Bus API presents them. (No kernel, no radio: the
/// Bluetooth VM covers those.)
@Suite("BlueZ central")
struct BlueZCentralTests {
    typealias Bed = BlueZTestBed
    let a = Bed.deviceA
    let b = Bed.deviceB

    @Test("start reports the adapter, then every device BlueZ already knows, with their properties")
    func startReportsKnownDevices() async throws {
        let events = try await onDedicatedThread { () throws -> [BLEEvent] in
            let bed = try Bed.start(setup: """
                add_device('C4:F3:12:53:F2:C9', 'A&D_UA-651BLE_0C', uuids=['1810', '6E400001-B5A3-F393-E0A9-E50E24DCCA9E'],
                           manufacturer={0x0131: [1, 2, 3]}, rssi=-60)
                set_props(add_device('00:09:1F:80:11:22', 'HRM'), DEVICE, {'Paired': dbus.Boolean(True), 'Trusted': dbus.Boolean(True)})
                """)
            defer { bed.stop() }
            return bed.log.all
        }
        try #require(events.count == 3, "\(events)")
        #expect(events[0] == .adapter(present: true, powered: true))
        // Sorted by object path: dev_00_09… before dev_C4_F3….
        guard case .device(let hrm) = events[1], case .device(let cuff) = events[2] else {
            Issue.record("expected two device events, got \(events)")
            return
        }
        #expect(hrm.address == b && hrm.paired && hrm.bonded && hrm.trusted && !hrm.connected)
        #expect(cuff.address == a)
        #expect(cuff.name == "A&D_UA-651BLE_0C")
        #expect(cuff.serviceUUIDs == ["1810", "6E400001-B5A3-F393-E0A9-E50E24DCCA9E"])
        #expect(cuff.manufacturerData == [0x0131: [1, 2, 3]])
        #expect(cuff.rssi == -60)
        #expect(cuff.addressType == .public && !cuff.paired && !cuff.trusted && !cuff.servicesResolved)
    }

    @Test("no adapter at start is reported as absent; one plugged in later is reported with its devices")
    func adapterAppearsLater() async throws {
        let (events, scanError) = try await onDedicatedThread { () throws -> ([BLEEvent], DeviceIOError?) in
            let bed = try Bed.start(adapter: false)
            defer { bed.stop() }
            let scanError = failure { try bed.central.scan(services: ["1810"]) }
            try bed.mock.run("add_adapter('hci0'); add_device('C4:F3:12:53:F2:C9', 'cuff')")
            bed.log.wait { $0.contains { if case .device(let info) = $0 { info.address == Bed.deviceA } else { false } } }
            try bed.mock.run("mock().RemoveAdapterWithDevices('hci0', dbus_interface=BLUEZ_MOCK)")
            bed.log.wait { $0.last == .adapter(present: false, powered: false) }
            return (bed.log.all, scanError)
        }
        #expect(events.first == .adapter(present: false, powered: false))
        #expect(events.contains(.adapter(present: true, powered: true)))
        #expect(scanError?.fix.contains("no Bluetooth adapter") == true)
        // Removal: the device first, then the adapter.
        #expect(Array(events.suffix(2)) == [BLEEvent.deviceRemoved(a), .adapter(present: false, powered: false)])
    }

    @Test("a device BlueZ finds later arrives as an event, a property change as another, its removal as deviceRemoved")
    func deviceEvents() async throws {
        let events = try await onDedicatedThread { () throws -> [BLEEvent] in
            let bed = try Bed.start()
            defer { bed.stop() }
            try bed.mock.run("add_device('C4:F3:12:53:F2:C9', 'A&D_UA-651BLE_0C', uuids=['1810'], rssi=-70)")
            bed.log.wait { _ in bed.log.device(Bed.deviceA)?.rssi == -70 }
            // A property VitalGate does not report (Icon) changes nothing; RSSI does.
            try bed.mock.run("set_props('\(Bed.path(Bed.deviceA))', DEVICE, {'Icon': 'health'})")
            try bed.mock.run("set_props('\(Bed.path(Bed.deviceA))', DEVICE, {'RSSI': dbus.Int16(-50)})")
            bed.log.wait { _ in bed.log.device(Bed.deviceA)?.rssi == -50 }
            try bed.mock.run("remove_object('\(Bed.path(Bed.deviceA))', [DEVICE])")
            bed.log.wait { $0.last == .deviceRemoved(Bed.deviceA) }
            return bed.log.all
        }
        let rssis = events.compactMap { event -> Int?? in
            if case .device(let info) = event, info.address == a { return .some(info.rssi) }
            return nil
        }
        // AddDevice (template RSSI -79), the update to -70 with the UUIDs, then -50: no event for Icon.
        #expect(rssis == [-79, -70, -50])
        #expect(events.last == .deviceRemoved(a))
    }

    @Test("scan powers the adapter on, sets an LE filter for the services and starts discovery; an empty list stops it")
    func scanSetsFilter() async throws {
        let (filters, calls, events) = try await onDedicatedThread { () throws -> (String, String, [BLEEvent]) in
            let bed = try Bed.start(setup: "set_props('/org/bluez/hci0', 'org.bluez.Adapter1', {'Powered': dbus.Boolean(False)})")
            defer { bed.stop() }
            try bed.central.scan(services: ["1810", "180d", "6e400001-b5a3-f393-e0a9-e50e24dcca9e"])
            try bed.central.scan(services: ["1810"])
            try bed.central.scan(services: [])
            let filters = try bed.mock.run("result = calls('/org/bluez/hci0', 'SetDiscoveryFilter')")
            let calls = try bed.mock.run("""
                result = [len(calls('/org/bluez/hci0', m)) for m in ('StartDiscovery', 'StopDiscovery')]
                """)
            return (filters, calls, bed.log.all)
        }
        #expect(filters == """
            [[{"DuplicateData":false,"Transport":"le","UUIDs":["00001810-0000-1000-8000-00805f9b34fb","0000180d-0000-1000-8000-00805f9b34fb",\
            "6e400001-b5a3-f393-e0a9-e50e24dcca9e"]}],[{"DuplicateData":false,"Transport":"le","UUIDs":["00001810-0000-1000-8000-00805f9b34fb"]}]]
            """)
        // The mock's StartDiscovery does not refuse a second start; BlueZ answers InProgress, which scan accepts.
        #expect(calls == "[2,1]")
        #expect(Array(events.prefix(2)) == [BLEEvent.adapter(present: true, powered: false), .adapter(present: true, powered: true)])
    }

    @Test("scan refuses a service that is not a UUID before asking BlueZ")
    func scanRefusesBadUUID() async throws {
        let error = try await onDedicatedThread { () throws -> DeviceIOError? in
            let bed = try Bed.start()
            defer { bed.stop() }
            return failure { try bed.central.scan(services: ["18１0"]) }
        }
        #expect(error?.fix.contains("not a Bluetooth UUID") == true)
    }

    @Test("connect, pair, trust and remove go to BlueZ and come back as device events")
    func deviceLifecycle() async throws {
        let (events, removeCalls) = try await onDedicatedThread { () throws -> ([BLEEvent], String) in
            let bed = try Bed.start(setup: Bed.connectableDevice())
            defer { bed.stop() }
            try bed.central.connect(Bed.deviceA, timeout: .seconds(20))
            try bed.central.pair(Bed.deviceA, timeout: .seconds(20))
            try bed.central.pair(Bed.deviceA, timeout: .seconds(20))  // AlreadyExists: paired, not an error
            try bed.central.setTrusted(Bed.deviceA, true)
            bed.log.wait { _ in bed.log.device(Bed.deviceA)?.trusted == true }
            bed.central.disconnect(Bed.deviceA)
            bed.log.wait { _ in bed.log.device(Bed.deviceA)?.connected == false }
            try bed.central.remove(Bed.deviceA)
            bed.log.wait { $0.last == .deviceRemoved(Bed.deviceA) }
            return (bed.log.all, try bed.mock.run("result = calls('/org/bluez/hci0', 'RemoveDevice')"))
        }
        let states = events.compactMap { event -> BLEDeviceInfo? in
            if case .device(let info) = event, info.address == a { return info }
            return nil
        }
        #expect(states.contains { $0.connected && $0.servicesResolved })
        #expect(states.contains { $0.paired && $0.bonded })
        #expect(states.last?.trusted == true && states.last?.connected == false)
        #expect(events.last == .deviceRemoved(a))
        #expect(removeCalls == "[[\"\(Bed.path(a))\"]]")
    }

    @Test("connect returns only once GATT discovery has finished (ServicesResolved), not when the link is up")
    func connectWaitsForServicesResolved() async throws {
        let outcome = try await onDedicatedThread { () throws -> (resolvedBeforeReturn: Bool, error: DeviceIOError?) in
            let bed = try Bed.start(setup: """
                device = add_device('C4:F3:12:53:F2:C9', 'cuff')
                set_method(device, DEVICE, 'Connect', '', '', "self.UpdateProperties('org.bluez.Device1', {'Connected': dbus.Boolean(True)})")
                """)
            defer { bed.stop() }
            let returned = Mutex<(Bool, DeviceIOError?)?>(nil)
            let sawResolved = Mutex(false)
            Thread {
                let error = failure { try bed.central.connect(Bed.deviceA, timeout: .seconds(60)) }
                returned.withLock { $0 = (error == nil && sawResolved.withLock { $0 }, error) }
            }.start()
            // The link is up (the event proves the central saw it) and connect is still waiting.
            bed.log.wait { _ in bed.log.device(Bed.deviceA)?.connected == true }
            let earlyReturn = returned.withLock { $0 } != nil
            sawResolved.withLock { $0 = true }
            try bed.mock.run("set_props('\(Bed.path(Bed.deviceA))', DEVICE, {'ServicesResolved': dbus.Boolean(True)})")
            let deadline = ContinuousClock.now + .seconds(30)
            while returned.withLock({ $0 }) == nil && ContinuousClock.now < deadline { usleep(5_000) }
            let result = returned.withLock { $0 }
            return (!earlyReturn && result?.0 == true, result?.1)
        }
        #expect(outcome.error == nil)
        #expect(outcome.resolvedBeforeReturn)
    }

    @Test("connect times out when GATT discovery never finishes, and drops the half-open link")
    func connectTimesOut() async throws {
        let (error, disconnects) = try await onDedicatedThread { () throws -> (DeviceIOError?, String) in
            let bed = try Bed.start(setup: """
                device = add_device('C4:F3:12:53:F2:C9', 'cuff')
                set_method(device, DEVICE, 'Connect', '', '', "self.UpdateProperties('org.bluez.Device1', {'Connected': dbus.Boolean(True)})")
                set_method(device, DEVICE, 'Disconnect', '', '', "self.UpdateProperties('org.bluez.Device1', {'Connected': dbus.Boolean(False)})")
                """)
            defer { bed.stop() }
            let error = failure { try bed.central.connect(Bed.deviceA, timeout: .milliseconds(500)) }
            bed.log.wait { _ in bed.log.device(Bed.deviceA)?.connected == false }
            return (error, try bed.mock.run("result = len(calls('\(Bed.path(Bed.deviceA))', 'Disconnect'))"))
        }
        #expect(error?.code == ETIMEDOUT)
        #expect(error?.isDisconnect == true)
        #expect(error?.operation == "Connect")
        #expect(error?.path == "C4:F3:12:53:F2:C9")
        #expect(disconnects == "1")
    }

    @Test("the GATT tree, reads, writes with and without response, and notifications as value events")
    func gatt() async throws {
        struct Outcome: Sendable {
            var characteristics: [BLECharacteristicInfo]
            var read: [UInt8]
            var writes: String
            var values: [BLEEvent]
            var startNotify: String
        }
        let outcome = try await onDedicatedThread { () throws -> Outcome in
            let bed = try Bed.start(setup: Bed.connectableDevice())
            defer { bed.stop() }
            try bed.central.connect(Bed.deviceA, timeout: .seconds(20))
            let characteristics = try bed.central.characteristics(of: Bed.deviceA)
            let read = try bed.central.read(Bed.deviceA, service: "1810", characteristic: "2a08", timeout: .seconds(20))
            try bed.central.write(Bed.deviceA, service: "1810", characteristic: "2A08", value: [0xE9, 0x07], withResponse: true, timeout: .seconds(20))
            try bed.central.write(Bed.deviceA, service: "00001810-0000-1000-8000-00805f9b34fb", characteristic: "2A08", value: [],
                                  withResponse: false, timeout: .seconds(20))
            try bed.central.subscribe(Bed.deviceA, service: "1810", characteristic: "2A35", timeout: .seconds(20))
            let device = Bed.path(Bed.deviceA)
            // A Value change on a characteristic nobody subscribed to (as after a read) is not a notification.
            try bed.mock.run("notify('\(device)/service0010/char0017', [9, 9])")
            try bed.mock.run("notify('\(device)/service0010/char0011', [0x1E, 0x7A, 0x00])")
            try bed.mock.run("notify('\(device)/service0010/char0011', [0x1E, 0x7B, 0x00])")
            bed.log.wait { $0.filter { if case .value = $0 { true } else { false } }.count >= 2 }
            let values = bed.log.all.filter { if case .value = $0 { true } else { false } }
            return Outcome(characteristics: characteristics, read: read,
                           writes: try bed.mock.run("result = calls('\(device)/service0010/char0014', 'WriteValue')"),
                           values: values,
                           startNotify: try bed.mock.run("result = len(calls('\(device)/service0010/char0011', 'StartNotify'))"))
        }
        #expect(outcome.characteristics == [
            BLECharacteristicInfo(service: "1810", uuid: "2A35", flags: ["indicate"]),
            BLECharacteristicInfo(service: "1810", uuid: "2A08", flags: ["read", "write"]),
            BLECharacteristicInfo(service: "1810", uuid: "2A49", flags: ["read"]),
        ])
        #expect(outcome.read == [0xE8, 0x07, 11, 22, 9, 30, 0])
        #expect(outcome.writes == #"[[[233,7],{"type":"request"}],[[],{"type":"command"}]]"#)
        #expect(outcome.startNotify == "1")
        #expect(outcome.values == [
            .value(a, service: "1810", characteristic: "2A35", bytes: [0x1E, 0x7A, 0x00]),
            .value(a, service: "1810", characteristic: "2A35", bytes: [0x1E, 0x7B, 0x00]),
        ])
    }

    @Test("GATT calls on a device that is not connected or lacks the characteristic fail without asking BlueZ")
    func gattPreconditions() async throws {
        let errors = try await onDedicatedThread { () throws -> [DeviceIOError] in
            let bed = try Bed.start(setup: Bed.connectableDevice())
            defer { bed.stop() }
            var errors: [DeviceIOError?] = []
            errors.append(failure { _ = try bed.central.characteristics(of: Bed.deviceA) })
            try bed.central.connect(Bed.deviceA, timeout: .seconds(20))
            errors.append(failure { _ = try bed.central.read(Bed.deviceA, service: "1810", characteristic: "2A36", timeout: .seconds(5)) })
            errors.append(failure { _ = try bed.central.read(Bed.deviceB, service: "1810", characteristic: "2A35", timeout: .seconds(5)) })
            errors.append(failure { _ = try bed.central.read(Bed.deviceA, service: "1810", characteristic: "not-a-uuid", timeout: .seconds(5)) })
            return errors.compactMap { $0 }
        }
        try #require(errors.count == 4)
        #expect(errors[0].isDisconnect && errors[0].fix.contains("not connected"))
        #expect(errors[1].fix.contains("no characteristic 2A36 in service 1810") && !errors[1].isDisconnect)
        #expect(errors[2].path == "00:09:1F:80:11:22" && errors[2].fix.contains("scan for it"))
        #expect(errors[3].fix.contains("not a Bluetooth UUID"))
    }

    /// BlueZ errors as bluetoothd sends them, each raised by the mock from the method named.
    static let errorCases: [(method: String, name: String, text: String, disconnect: Bool, fix: String)] = [
        ("Connect", "org.bluez.Error.Failed", "le-connection-abort-by-local", true, "wake the device"),
        ("Connect", "org.bluez.Error.InProgress", "In Progress", false, "under way"),
        ("Connect", "org.bluez.Error.NotReady", "Resource Not Ready", false, "rfkill unblock bluetooth"),
        ("Pair", "org.bluez.Error.AuthenticationFailed", "Authentication Failed", false, "pairing mode"),
        ("Pair", "org.bluez.Error.ConnectionAttemptFailed", "Page Timeout", true, "wake the device"),
        ("Pair", "org.bluez.Error.DoesNotExist", "Does Not Exist", true, "scan for it again"),
        ("ReadValue", "org.bluez.Error.NotPermitted", "Read not permitted", false, "pair it"),
        ("ReadValue", "org.bluez.Error.Failed", "Not connected", true, "disconnected"),
        ("ReadValue", "org.bluez.Error.NotSupported", "Operation is not supported", false, "profile"),
    ]

    @Test("BlueZ errors become DeviceIOErrors with the D-Bus name and text as cause, a fix, and isDisconnect when the device went away",
          arguments: errorCases.indices)
    func errorMapping(index: Int) async throws {
        let expected = Self.errorCases[index]
        let error = try await onDedicatedThread { () throws -> DeviceIOError? in
            let object = expected.method == "ReadValue" ? "'\(Bed.path(Bed.deviceA))/service0010/char0014', CHARACTERISTIC" : "device, DEVICE"
            let signature = expected.method == "ReadValue" ? ("a{sv}", "ay") : ("", "")
            let bed = try Bed.start(setup: Bed.connectableDevice() + """

                set_method(\(object), '\(expected.method)', '\(signature.0)', '\(signature.1)',
                           "raise dbus.exceptions.DBusException('\(expected.text)', name='\(expected.name)')")
                """)
            defer { bed.stop() }
            return failure {
                switch expected.method {
                case "Connect": try bed.central.connect(Bed.deviceA, timeout: .seconds(20))
                case "Pair": try bed.central.pair(Bed.deviceA, timeout: .seconds(20))
                default:
                    try bed.central.connect(Bed.deviceA, timeout: .seconds(20))
                    _ = try bed.central.read(Bed.deviceA, service: "1810", characteristic: "2A08", timeout: .seconds(20))
                }
            }
        }
        let caught = try #require(error, "\(expected.method) did not fail")
        #expect(caught.cause == "\(expected.name): \(expected.text)")
        #expect(caught.isDisconnect == expected.disconnect, "\(caught)")
        #expect(caught.fix.contains(expected.fix), "\(caught)")
        #expect(caught.path == "C4:F3:12:53:F2:C9")
        #expect(caught.description.contains(expected.name))
    }

    @Test("a GATT read BlueZ does not answer in time fails with ETIMEDOUT, and the central keeps working")
    func readTimesOut() async throws {
        let (error, later) = try await onDedicatedThread { () throws -> (DeviceIOError?, [UInt8]) in
            let bed = try Bed.start(setup: Bed.connectableDevice() + """

                set_method('\(Bed.path(Bed.deviceA))/service0010/char0017', CHARACTERISTIC, 'ReadValue', 'a{sv}', 'ay',
                           "import time; time.sleep(2); ret = [1]")
                """)
            defer { bed.stop() }
            try bed.central.connect(Bed.deviceA, timeout: .seconds(20))
            let error = failure { _ = try bed.central.read(Bed.deviceA, service: "1810", characteristic: "2A49", timeout: .milliseconds(300)) }
            let later = try bed.central.read(Bed.deviceA, service: "1810", characteristic: "2A08", timeout: .seconds(20))
            return (error, later)
        }
        #expect(error?.code == ETIMEDOUT)
        #expect(error?.isDisconnect == true)
        #expect(error?.cause?.hasPrefix("org.freedesktop.DBus.Error.Timeout") == true)
        #expect(later == [0xE8, 0x07, 11, 22, 9, 30, 0])
    }

    @Test("when the bus goes away the devices are reported removed, the adapter absent, and calls fail as disconnects")
    func busLost() async throws {
        let (events, error) = try await onDedicatedThread { () throws -> ([BLEEvent], DeviceIOError?) in
            let bed = try Bed.start(setup: "add_device('C4:F3:12:53:F2:C9', 'cuff')")
            defer { bed.stop() }
            bed.mock.stop()
            bed.log.wait { $0.last == .adapter(present: false, powered: false) }
            let error = failure { try bed.central.connect(Bed.deviceA, timeout: .seconds(5)) }
            return (bed.log.all, error)
        }
        #expect(Array(events.suffix(2)) == [BLEEvent.deviceRemoved(a), .adapter(present: false, powered: false)])
        #expect(error?.isDisconnect == true)
    }

    @Test("when bluetoothd restarts, its objects are reported gone, then reloaded, and the agent registers again")
    func bluetoothdRestarts() async throws {
        let (events, registered) = try await onDedicatedThread { () throws -> ([BLEEvent], String) in
            let bed = try Bed.start(setup: "add_device('C4:F3:12:53:F2:C9', 'cuff')")
            defer { bed.stop() }
            try bed.mock.restartBlueZ()
            bed.log.wait { $0.last == .adapter(present: false, powered: false) }
            // The new bluetoothd has the agent registered again before anything else is asked of it.
            let deadline = ContinuousClock.now + .seconds(30)
            var registered = "[]"
            while ContinuousClock.now < deadline {
                registered = try bed.mock.run("result = [calls('/org/bluez', m) for m in ('RegisterAgent', 'RequestDefaultAgent')]")
                if registered != "[[],[]]" && !registered.contains("[]") { break }
                usleep(20_000)
            }
            try bed.mock.run("add_adapter('hci0'); add_device('C4:F3:12:53:F2:C9', 'cuff')")
            bed.log.wait { $0.filter { $0 == .adapter(present: true, powered: true) }.count == 2 && bed.log.device(Bed.deviceA) != nil
                && $0.last.map { if case .device = $0 { true } else { false } } == true }
            return (bed.log.all, registered)
        }
        let kinds = events.map { event -> String in
            switch event {
            case .adapter(let present, _): present ? "adapter" : "no adapter"
            case .device(let info): "device \(BlueZCentral.text(info.address))"
            case .deviceRemoved(let address): "removed \(BlueZCentral.text(address))"
            case .value: "value"
            }
        }
        #expect(kinds == ["adapter", "device C4:F3:12:53:F2:C9", "removed C4:F3:12:53:F2:C9", "no adapter", "adapter",
                          "device C4:F3:12:53:F2:C9"])
        #expect(registered == #"[[["/org/vitalgate/agent","NoInputNoOutput"]],[["/org/vitalgate/agent"]]]"#)
    }

    @Test("calls before start fail with a fix; start twice is refused; stop twice is harmless")
    func lifecycle() async throws {
        let (before, twice) = try await onDedicatedThread { () throws -> (DeviceIOError?, DeviceIOError?) in
            let mock = try BlueZMock.start(lifetime: .seconds(120))
            defer { mock.stop() }
            let central = BlueZCentral(busAddress: mock.address)
            let before = failure { try central.scan(services: ["1810"]) }
            let policy = BLEPairingPolicy(capability: .noInputNoOutput, mayPair: { _ in false })
            try central.start(pairing: policy) { _ in }
            let twice = failure { try central.start(pairing: policy) { _ in } }
            central.stop()
            central.stop()
            return (before, twice)
        }
        #expect(before?.fix.contains("start the BlueZ central first") == true)
        #expect(twice?.fix.contains("already started") == true)
    }

    @Test("start fails with a fix when bluetoothd (org.bluez) is not on the bus")
    func noBluetoothd() async throws {
        let error = try await onDedicatedThread { () throws -> DeviceIOError? in
            let mock = try BlueZMock.start(lifetime: .seconds(120))
            defer { mock.stop() }
            kill(mock.mockPID, SIGTERM)
            try mock.run("""
                import time
                daemon = bus.get_object('org.freedesktop.DBus', '/org/freedesktop/DBus', introspect=False)
                deadline = time.monotonic() + 30
                while daemon.NameHasOwner('org.bluez', dbus_interface='org.freedesktop.DBus') and time.monotonic() < deadline:
                    time.sleep(0.02)
                """)
            let central = BlueZCentral(busAddress: mock.address)
            defer { central.stop() }
            return failure { try central.start(pairing: BLEPairingPolicy(capability: .noInputNoOutput, mayPair: { _ in false })) { _ in } }
        }
        #expect(error?.fix.contains("bluetoothd is not running") == true, "\(String(describing: error))")
        // No bus activation is asked for (a hub without an adapter has no bluetoothd to start): the bus answers at once
        // that nobody owns the name, instead of ServiceUnknown after trying to start it.
        #expect(error?.cause?.hasPrefix("org.freedesktop.DBus.Error.NameHasNoOwner") == true, "\(String(describing: error?.cause))")
    }

    @Test("waiting for bluetoothd: start succeeds without it, scan says it is missing, and when it appears its objects are reported, the agent registers and scanning works")
    func bluetoothdAppearsLater() async throws {
        let (scanError, before, events, registered, started) = try await onDedicatedThread {
            () throws -> (DeviceIOError?, [BLEEvent], [BLEEvent], String, String) in
            let mock = try BlueZMock.start(lifetime: .seconds(120))
            defer { mock.stop() }
            try mock.restartBlueZ(restart: false)
            let central = BlueZCentral(busAddress: mock.address, waitForBluetoothd: true)
            defer { central.stop() }
            let log = EventLog()
            try central.start(pairing: BLEPairingPolicy(capability: .noInputNoOutput, mayPair: { _ in false })) { log.append($0) }
            #expect(!central.bluetoothdPresent)
            let scanError = failure { try central.scan(services: ["1810"]) }
            let before = log.all
            // bluetoothd starts (systemd starts it when an adapter is plugged in), with the adapter and a known device.
            try mock.restartBlueZ(restart: true)
            try mock.run("add_adapter('hci0'); add_device('C4:F3:12:53:F2:C9', 'cuff')")
            // The adapter may be added before or after the central's snapshot: either way it is reported once.
            log.wait { $0.contains(.adapter(present: true, powered: true)) && log.device(Bed.deviceA) != nil }
            let deadline = ContinuousClock.now + .seconds(30)
            var registered = "[]"
            while ContinuousClock.now < deadline {
                registered = try mock.run("result = calls('/org/bluez', 'RegisterAgent')")
                if registered != "[]" { break }
                usleep(20_000)
            }
            try central.scan(services: ["1810"])
            let started = try mock.run("result = len(calls('/org/bluez/hci0', 'StartDiscovery'))")
            return (scanError, before, log.all, registered, started)
        }
        #expect(scanError?.fix.contains("bluetoothd is not running") == true, "\(String(describing: scanError))")
        #expect(scanError?.fix.contains("scanning starts when it does") == true)
        #expect(events.contains(.adapter(present: true, powered: true)), "\(events)")
        // While bluetoothd was absent nothing was reported: no adapter "gone" that was never there.
        #expect(before.isEmpty, "\(before)")
        #expect(events.contains { if case .device(let info) = $0 { info.address == a } else { false } }, "\(events)")
        #expect(registered == #"[["/org/vitalgate/agent","NoInputNoOutput"]]"#)
        #expect(started == "1")
    }

    @Test("an unreachable bus address fails start with a fix naming the bus")
    func noBus() async throws {
        let error = try await onDedicatedThread { () -> DeviceIOError? in
            let central = BlueZCentral(busAddress: "unix:path=/nonexistent/vitalgate-test-bus")
            return failure { try central.start(pairing: BLEPairingPolicy(capability: .noInputNoOutput, mayPair: { _ in false })) { _ in } }
        }
        #expect(error?.path == "D-Bus bus unix:path=/nonexistent/vitalgate-test-bus")
        #expect(error?.fix.contains("DBUS_SYSTEM_BUS_ADDRESS") == true, "\(String(describing: error))")
    }
}
