import Foundation
import Synchronization
import Testing
import VitalGateTestKit
@testable import Gateway
#if canImport(Glibc)
import Glibc
#endif

/// `vitalgate bluetooth` against python3-dbusmock's bluez5 template on a private bus.
@Suite("vitalgate bluetooth")
struct BluetoothCommandTests {
    static let profiles = RepositoryPaths.root.appendingPathComponent("DeviceProfiles").path
    static let cuff = "C4:F3:12:53:F2:C9"
    static let cuffPath = "/org/bluez/hci0/dev_C4_F3_12_53_F2_C9"
    static let strap = "00:09:1F:80:11:22"
    static let strapPath = "/org/bluez/hci0/dev_00_09_1F_80_11_22"

    /// Lines the command showed while running.
    final class Shown: Sendable {
        let lines = Mutex<[String]>([])
        func add(_ line: String) { lines.withLock { $0.append(line) } }
        var text: String { lines.withLock { $0.joined() } }
    }

    /// Starts the mock with an adapter and `setup`, runs `body`, stops the mock.
    static func withMock<T: Sendable>(adapter: Bool = true, _ setup: String, _ body: @escaping @Sendable (BlueZMock) throws -> T) async throws -> T {
        try await onDedicatedThread {
            let mock = try BlueZMock.start(lifetime: .seconds(300))
            defer { mock.stop() }
            if adapter { try mock.run("add_adapter('hci0')") }
            if !setup.isEmpty { try mock.run(setup) }
            return try body(mock)
        }
    }

    static func run(_ arguments: [String], _ mock: BlueZMock, input: @escaping @Sendable () -> String? = { nil },
                    shown: Shown = Shown()) -> CommandResult {
        BluetoothCommand.run(arguments + (["pair", "scan", "list"].contains(arguments.first ?? "") ? ["--profiles", profiles] : []),
                             busAddress: mock.address, input: input, emit: { shown.add($0) })
    }

    static let knownDevices = """
        set_props(add_device('\(cuff)', 'A&D_UA-651BLE_0C', uuids=['1810']), DEVICE, {'Paired': dbus.Boolean(True), 'Trusted': dbus.Boolean(True)})
        add_device('11:22:33:44:55:66', 'Thermo', uuids=['180F'])
        """

    @Test("list shows every device BlueZ knows with its state and the profile that claims it, or why none does")
    func list() async throws {
        let (text, json) = try await Self.withMock(Self.knownDevices) { mock in
            (Self.run(["list"], mock), Self.run(["list", "--json"], mock))
        }
        #expect(text.exitCode == 0, "\(text.stderr)")
        #expect(text.stdout == """
            11:22:33:44:55:66  "Thermo"  rssi -79
              services: 180F
              profile:  none, not adopted: no profile claims a device advertising services 180F
            C4:F3:12:53:F2:C9  "A&D_UA-651BLE_0C"  rssi -79
              services: 1810
              state:    paired, bonded, trusted
              profile:  and/ua-651ble (A&D Medical UA-651BLE), pairing just-works

            """)
        #expect(json.exitCode == 0)
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]])
        #expect(parsed.map { $0["address"] as? String } == ["11:22:33:44:55:66", Self.cuff])
        #expect(parsed[1]["profile"] as? String == "and/ua-651ble")
        #expect(parsed[1]["trusted"] as? Bool == true)
        #expect(parsed[0]["match"] as? String == "none")
    }

    @Test("scan asks BlueZ for the services the profiles claim and lists the devices heard meanwhile")
    func scan() async throws {
        // The mock "hears" the cuff as discovery starts, so nothing depends on how long the scan lasts.
        let setup = """
            set_method('/org/bluez/hci0', 'org.bluez.Adapter1', 'StartDiscovery', '', '', '''
            path = objects['/'].AddDevice('hci0', '\(Self.cuff)', 'A&D_UA-651BLE_0C')
            objects[path].UpdateProperties('org.bluez.Device1', {'UUIDs': dbus.Array(['00001810-0000-1000-8000-00805f9b34fb'], signature='s'), 'RSSI': dbus.Int16(-58)})
            ''')
            add_device('11:22:33:44:55:66', 'Cached', uuids=['1810'])
            """
        let (result, filter, stops) = try await Self.withMock(setup) { mock in
            let result = Self.run(["scan", "--seconds", "0.2", "--json"], mock)
            return (result, try mock.run("result = calls('/org/bluez/hci0', 'SetDiscoveryFilter')[0][0]"),
                    try mock.run("result = len(calls('/org/bluez/hci0', 'StopDiscovery'))"))
        }
        #expect(result.exitCode == 0, "\(result.stderr)")
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]])
        // The cached device BlueZ already knew is not listed: it was not heard during the scan.
        #expect(parsed.map { $0["address"] as? String } == [Self.cuff])
        #expect(parsed.first?["rssi"] as? Int == -58)
        #expect(parsed.first?["profile"] as? String == "and/ua-651ble")
        #expect(filter.contains(#""Transport":"le""#) && filter.contains("00001810-0000-1000-8000-00805f9b34fb")
                && filter.contains("0000180d-0000-1000-8000-00805f9b34fb"), "\(filter)")
        #expect(stops == "1")
    }

    @Test("pair pairs a just-works device, trusts it and says which profile the daemon will use")
    func pairJustWorks() async throws {
        let (result, shown, state) = try await Self.withMock("add_device('\(Self.cuff)', 'A&D_UA-651BLE_0C', uuids=['1810'])") { mock in
            let shown = Shown()
            let result = Self.run(["pair", Self.cuff], mock, shown: shown)
            return (result, shown.text, try mock.run("""
                props = obj('\(Self.cuffPath)').GetAll(DEVICE, dbus_interface=PROPERTIES)
                result = [bool(props['Paired']), bool(props['Trusted'])]
                """))
        }
        #expect(result.exitCode == 0, "\(result.stderr)")
        #expect(result.stdout == """
            C4:F3:12:53:F2:C9: paired
            C4:F3:12:53:F2:C9: trusted; vitalgated reads it with profile and/ua-651ble (A&D Medical UA-651BLE)

            """)
        #expect(shown.contains("hold the Start button until the display shows \"Pair\""))
        #expect(state == "[true,true]")
    }

    @Test("pair only trusts a device whose profile needs no pairing")
    func pairNone() async throws {
        let (result, pairs, trusted) = try await Self.withMock("add_device('\(Self.strap)', 'HRM-Pro', uuids=['180D'])") { mock in
            let result = Self.run(["pair", Self.strap], mock)
            return (result, try mock.run("result = len(calls('\(Self.strapPath)', 'Pair'))"),
                    try mock.run("result = bool(obj('\(Self.strapPath)').Get(DEVICE, 'Trusted', dbus_interface=PROPERTIES))"))
        }
        #expect(result.exitCode == 0, "\(result.stderr)")
        #expect(result.stdout.hasPrefix("00:09:1F:80:11:22: profile bluetooth-sig/heart-rate needs no pairing\n"))
        #expect(pairs == "0")
        #expect(trusted == "true")
    }

    @Test("pair refuses a device no single profile claims, and changes nothing")
    func pairUnclaimed() async throws {
        let (result, trusted) = try await Self.withMock("add_device('11:22:33:44:55:66', 'Thermo', uuids=['180F'])") { mock in
            (Self.run(["pair", "11:22:33:44:55:66"], mock),
             try mock.run("result = bool(obj('/org/bluez/hci0/dev_11_22_33_44_55_66').Get(DEVICE, 'Trusted', dbus_interface=PROPERTIES))"))
        }
        #expect(result.exitCode == 1)
        #expect(result.stderr.contains("single profile claims") && result.stderr.contains("services 180F"), "\(result.stderr)")
        #expect(trusted == "false")
    }

    @Test("pair --passkey-stdin: while BlueZ pairs, the agent asks for the device's passkey and shows the hub's")
    func pairWithPasskey() async throws {
        let flag = FileManager.default.temporaryDirectory.appendingPathComponent("vitalgate-pair-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: flag) }
        // The mock's Pair waits (bounded) until the test has played bluetoothd's agent calls.
        let setup = """
            add_device('\(Self.cuff)', 'A&D_UA-651BLE_0C', uuids=['1810'])
            set_method('\(Self.cuffPath)', DEVICE, 'Pair', '', '', '''
            import os, time
            deadline = time.monotonic() + 60
            while not os.path.exists('\(flag)') and time.monotonic() < deadline:
                time.sleep(0.02)
            objects['/'].PairDevice('hci0', '\(Self.cuff)', 0)
            ''')
            """
        struct Outcome: Sendable {
            var result: CommandResult
            var passkeyReply: String
            var displayReply: String
            var shown: String
        }
        let outcome = try await Self.withMock(setup) { mock in
            let shown = Shown()
            let finished = DispatchSemaphore(value: 0)
            let result = Mutex<CommandResult?>(nil)
            Thread {
                result.withLock { $0 = Self.run(["pair", Self.cuff, "--passkey-stdin"], mock, input: { "012345\n" }, shown: shown) }
                finished.signal()
            }.start()
            // Pairing has begun once the hint is shown; the command's bus connection is the one in this process.
            let deadline = ContinuousClock.now + .seconds(30)
            while !shown.text.contains("Pairing ") && ContinuousClock.now < deadline { usleep(10_000) }
            let name = try mock.run("result = names_of_pid(\(getpid()))[0]").trimmingCharacters(in: CharacterSet(charactersIn: "\""))
            let passkey = try mock.run("result = agent_call('\(name)', '/org/vitalgate/agent', 'RequestPasskey', dbus.ObjectPath('\(Self.cuffPath)'))")
            let display = try mock.run("""
                result = agent_call('\(name)', '/org/vitalgate/agent', 'DisplayPasskey', dbus.ObjectPath('\(Self.cuffPath)'),
                                    dbus.UInt32(4321), dbus.UInt16(0))
                """)
            _ = FileManager.default.createFile(atPath: flag, contents: nil)
            _ = finished.wait(timeout: .now() + 60)
            return Outcome(result: result.withLock { $0 } ?? CommandResult(stderr: "the command did not finish", exitCode: -1),
                           passkeyReply: passkey, displayReply: display, shown: shown.text)
        }
        #expect(outcome.passkeyReply == #"{"reply":12345}"#)
        #expect(outcome.displayReply == #"{"reply":null}"#)
        #expect(outcome.shown.contains("Type the passkey C4:F3:12:53:F2:C9 shows, then press Enter: "))
        #expect(outcome.shown.contains("Passkey for C4:F3:12:53:F2:C9: 004321"))
        #expect(outcome.result.exitCode == 0, "\(outcome.result.stderr)")
        #expect(outcome.result.stdout.contains("C4:F3:12:53:F2:C9: paired\n"))
    }

    @Test("forget removes the device from BlueZ; an address BlueZ does not know fails with a fix")
    func forget() async throws {
        let (forgot, unknown, removed) = try await Self.withMock("add_device('\(Self.cuff)', 'A&D_UA-651BLE_0C')") { mock in
            (Self.run(["forget", Self.cuff], mock), Self.run(["forget", "11:22:33:44:55:66"], mock),
             try mock.run("result = calls('/org/bluez/hci0', 'RemoveDevice')"))
        }
        #expect(forgot.exitCode == 0, "\(forgot.stderr)")
        #expect(forgot.stdout == "forgot C4:F3:12:53:F2:C9: BlueZ removed it and its keys\n")
        #expect(removed == "[[\"\(Self.cuffPath)\"]]")
        #expect(unknown.exitCode == 1)
        #expect(unknown.stderr.contains("11:22:33:44:55:66") && unknown.stderr.contains("BlueZ does not know this device"))
    }

    @Test("usage mistakes exit 2 with the reason", arguments: [
        ([], "Usage: vitalgate bluetooth scan"),
        (["pair"], "takes one ADDRESS"),
        (["pair", "C4:F3:12:53:F2"], "not a Bluetooth address"),
        (["forget", "a", "b"], "takes one ADDRESS"),
        (["scan", "--seconds", "0"], "--seconds needs seconds"),
        (["list", "extra"], "takes no operands"),
        (["connect", "C4:F3:12:53:F2:C9"], "unknown bluetooth command 'connect'"),
        (["list", "--passkey-stdin"], "unknown option --passkey-stdin"),
    ])
    func usage(arguments: [String], expected: String) {
        let result = BluetoothCommand.run(arguments, busAddress: "unix:path=/nonexistent", emit: { _ in })
        #expect(result.exitCode == 2)
        #expect(result.stderr.contains(expected), "\(result.stderr)")
    }

    @Test("without an adapter, list fails with a fix")
    func noAdapter() async throws {
        let result = try await Self.withMock(adapter: false, "") { mock in Self.run(["list"], mock) }
        #expect(result.exitCode == 1)
        #expect(result.stderr.contains("no Bluetooth adapter is present"))
    }

    @Test("the vitalgate executable finds the bus through DBUS_SYSTEM_BUS_ADDRESS")
    func executableUsesSystemBusVariable() async throws {
        let output = try await Self.withMock(Self.knownDevices) { mock in
            let executable = RepositoryPaths.root.appendingPathComponent(".build/debug/vitalgate").path
            guard FileManager.default.isExecutableFile(atPath: executable) else {
                throw TestProcessError("\(executable) is missing. Fix: swift build --build-tests")
            }
            return try ProcessRunner.run("/usr/bin/env", ["DBUS_SYSTEM_BUS_ADDRESS=\(mock.address)", executable,
                                                          "bluetooth", "list", "--json", "--profiles", Self.profiles])
        }
        #expect(output.status == 0, "\(output.standardError)")
        #expect(String(decoding: output.standardOutput, as: UTF8.self).contains("\"profile\": \"and/ua-651ble\""))
    }
}
