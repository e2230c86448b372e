import Foundation
import Synchronization
import Testing
import VitalModel
import VitalGateTestKit
@testable import DeviceIO

/// The pairing agent as bluetoothd meets it: registered with its capability, and answering Agent1 calls
/// (made here by a second bus client, as bluetoothd would) from the pairing policy.
@Suite("BlueZ agent")
struct BlueZAgentTests {
    typealias Bed = BlueZTestBed

    /// What the policy was asked to display, in order.
    final class Displayed: Sendable {
        let shown = Mutex<[String]>([])
        func add(_ address: EUI48, _ passkey: UInt32) { shown.withLock { $0.append("\(BlueZCentral.text(address)) \(passkey)") } }
        var all: [String] { shown.withLock { $0 } }
    }

    static func policy(_ capability: BLEPairingPolicy.Capability, _ displayed: Displayed) -> BLEPairingPolicy {
        BLEPairingPolicy(capability: capability, mayPair: { $0 == Bed.deviceA },
                         passkey: { $0 == Bed.deviceA ? 123_456 : nil },
                         display: { displayed.add($0, $1) })
    }

    @Test("the agent registers with the policy's capability, and asks to be the default agent only when told to")
    func registration() async throws {
        let (asDefault, asClient) = try await onDedicatedThread { () throws -> ([String], [String]) in
            var results: [[String]] = []
            for requestDefault in [true, false] {
                let bed = try Bed.start(policy: Self.policy(requestDefault ? .noInputNoOutput : .keyboardDisplay, Displayed()),
                                        requestDefaultAgent: requestDefault)
                defer { bed.stop() }
                results.append([try bed.mock.run("result = calls('/org/bluez', 'RegisterAgent')"),
                                try bed.mock.run("result = calls('/org/bluez', 'RequestDefaultAgent')")])
                bed.central.stop()
                results[results.count - 1].append(try bed.mock.run("result = calls('/org/bluez', 'UnregisterAgent')"))
            }
            return (results[0], results[1])
        }
        #expect(asDefault == [#"[["/org/vitalgate/agent","NoInputNoOutput"]]"#, #"[["/org/vitalgate/agent"]]"#, #"[["/org/vitalgate/agent"]]"#])
        #expect(asClient == [#"[["/org/vitalgate/agent","KeyboardDisplay"]]"#, "[]", #"[["/org/vitalgate/agent"]]"#])
    }

    @Test("Agent1 calls are answered from the policy: allowed device accepted, others and unknown devices rejected")
    func answers() async throws {
        let (answers, displayed) = try await onDedicatedThread { () throws -> ([String: String], [String]) in
            let displayed = Displayed()
            let bed = try Bed.start(setup: "add_device('C4:F3:12:53:F2:C9', 'cuff'); add_device('00:09:1F:80:11:22', 'other')",
                                    policy: Self.policy(.keyboardDisplay, displayed))
            defer { bed.stop() }
            guard let name = bed.central.busName else { throw TestFailure("the started central has no bus name") }
            let a = "dbus.ObjectPath('\(Bed.path(Bed.deviceA))')"
            let b = "dbus.ObjectPath('\(Bed.path(Bed.deviceB))')"
            let unknown = "dbus.ObjectPath('/org/bluez/hci0/dev_11_22_33_44_55_66')"
            let calls: [(String, String)] = [
                ("confirm A", "'RequestConfirmation', \(a), dbus.UInt32(111111)"),
                ("confirm B", "'RequestConfirmation', \(b), dbus.UInt32(222222)"),
                ("confirm unknown", "'RequestConfirmation', \(unknown), dbus.UInt32(333333)"),
                ("authorize A", "'RequestAuthorization', \(a)"),
                ("authorize B", "'RequestAuthorization', \(b)"),
                ("service A", "'AuthorizeService', \(a), '00001810-0000-1000-8000-00805f9b34fb'"),
                ("service B", "'AuthorizeService', \(b), '00001810-0000-1000-8000-00805f9b34fb'"),
                ("passkey A", "'RequestPasskey', \(a)"),
                ("passkey B", "'RequestPasskey', \(b)"),
                ("display 0", "'DisplayPasskey', \(a), dbus.UInt32(654321), dbus.UInt16(0)"),
                ("display 3", "'DisplayPasskey', \(a), dbus.UInt32(654321), dbus.UInt16(3)"),
                ("pin A", "'RequestPinCode', \(a)"),
                ("show pin A", "'DisplayPinCode', \(a), '0042'"),
                ("release", "'Release'"),
                ("cancel", "'Cancel'"),
                ("wrong signature", "'RequestPasskey', 'not a path'"),
            ]
            var answers: [String: String] = [:]
            for (label, arguments) in calls {
                answers[label] = try bed.mock.run("result = agent_call('\(name)', '/org/vitalgate/agent', \(arguments))")
            }
            return (answers, displayed.all)
        }
        let rejected = #"{"error":"org.bluez.Error.Rejected","#
        #expect(answers["confirm A"] == #"{"reply":null}"#)
        #expect(answers["confirm B"]?.hasPrefix(rejected) == true)
        #expect(answers["confirm unknown"] == #"{"error":"org.bluez.Error.Rejected","message":"unknown device"}"#)
        #expect(answers["authorize A"] == #"{"reply":null}"#)
        #expect(answers["authorize B"]?.hasPrefix(rejected) == true)
        #expect(answers["service A"] == #"{"reply":null}"#)
        #expect(answers["service B"]?.hasPrefix(rejected) == true)
        #expect(answers["passkey A"] == #"{"reply":123456}"#)
        #expect(answers["passkey B"]?.hasPrefix(rejected) == true)
        #expect(answers["display 0"] == #"{"reply":null}"#)
        #expect(answers["display 3"] == #"{"reply":null}"#)
        #expect(answers["pin A"]?.hasPrefix(rejected) == true)
        #expect(answers["show pin A"] == #"{"reply":null}"#)
        #expect(answers["release"] == #"{"reply":null}"#)
        #expect(answers["cancel"] == #"{"reply":null}"#)
        #expect(answers["wrong signature"]?.contains("org.freedesktop.DBus.Error.UnknownMethod") == true)
        // An allowed confirmation shows its number (numeric comparison); DisplayPasskey once, not per key typed; the PIN.
        #expect(displayed == ["C4:F3:12:53:F2:C9 111111", "C4:F3:12:53:F2:C9 654321", "C4:F3:12:53:F2:C9 42"])
    }

    @Test("a passkey request waiting for a person does not hold up the D-Bus thread; the reply follows when it is typed")
    func blockingPasskey() async throws {
        let (reply, sawDeviceMeanwhile) = try await onDedicatedThread { () throws -> (String, Bool) in
            let entered = DispatchSemaphore(value: 0)
            let typed = DispatchSemaphore(value: 0)
            let policy = BLEPairingPolicy(capability: .keyboardDisplay, mayPair: { _ in true }, passkey: { _ in
                entered.signal()
                _ = typed.wait(timeout: .now() + 60)
                return 4_321
            })
            let bed = try Bed.start(setup: "add_device('C4:F3:12:53:F2:C9', 'cuff')", policy: policy)
            defer { bed.stop() }
            guard let name = bed.central.busName else { throw TestFailure("the started central has no bus name") }
            let output = Mutex<String?>(nil)
            let finished = DispatchSemaphore(value: 0)
            // dbus-send, an independent client, plays bluetoothd asking for the passkey.
            Thread {
                let result = try? ProcessRunner.run("/usr/bin/dbus-send", [
                    "--bus=\(bed.mock.address)", "--print-reply", "--reply-timeout=60000", "--dest=\(name)",
                    "/org/vitalgate/agent", "org.bluez.Agent1.RequestPasskey", "objpath:\(Bed.path(Bed.deviceA))",
                ], timeout: .seconds(90))
                output.withLock { $0 = result.map { String(decoding: $0.standardOutput, as: UTF8.self) + $0.standardError } }
                finished.signal()
            }.start()
            _ = entered.wait(timeout: .now() + 30)
            // While the person "types", BlueZ's signals still reach the central.
            try bed.mock.run("add_device('00:09:1F:80:11:22', 'other')")
            let sawDevice = bed.log.wait { _ in bed.log.device(Bed.deviceB) != nil }
            typed.signal()
            _ = finished.wait(timeout: .now() + 60)
            return (output.withLock { $0 } ?? "", sawDevice)
        }
        #expect(sawDeviceMeanwhile)
        #expect(reply.contains("uint32 4321"), "\(reply)")
    }
}
