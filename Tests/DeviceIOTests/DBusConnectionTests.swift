import Foundation
import Synchronization
import Testing
import VitalGateTestKit
@testable import DeviceIO

/// The libdbus layer on a private bus: values survive a round trip through a real dbus-daemon, bad
/// values are refused before libdbus sees them, replies, errors and timeouts reach blocked callers.
@Suite("D-Bus connection")
struct DBusConnectionTests {
    /// Every kind of value BlueZ uses, nested the way BlueZ nests them.
    static let everything: [DBusValue] = [
        .string("héllo"), .objectPath("/org/bluez/hci0/dev_C4_F3_12_53_F2_C9"), .bool(true), .bool(false),
        .byte(0xFF), .int16(-79), .uint16(0x004C), .int32(-2), .uint32(123_456), .int64(-1 << 40), .uint64(1 << 63),
        .double(36.6), .signature("a{sv}"),
        .bytes([0, 1, 0x7F, 0x80, 0xFF]), .bytes([]), .strings(["1810", "180D"]), .array("o", [.objectPath("/a"), .objectPath("/b")]),
        .dictionary(["UUIDs": .strings(["00001810-0000-1000-8000-00805f9b34fb"]), "Transport": .string("le"),
                     "DuplicateData": .bool(false), "RSSI": .int16(-60)]),
        .array("{qv}", [.dictEntry(.uint16(0x0131), .variant(.bytes([1, 2, 3])))]),
        .array("{sa{sv}}", [.dictEntry(.string("org.bluez.Device1"), .dictionary(["Paired": .bool(true)]))]),
        .array("{oa{sa{sv}}}", [.dictEntry(.objectPath("/org/bluez/hci0"),
                                           .array("{sa{sv}}", [.dictEntry(.string("org.bluez.Adapter1"), .dictionary(["Powered": .bool(true)]))]))]),
        .structure([.string("a"), .uint32(1)]), .variant(.variant(.string("nested"))),
    ]

    @Test("every BlueZ value type goes through the bus daemon and back unchanged")
    func roundTrip() async throws {
        let echoed = try await onDedicatedThread { () throws -> [DBusValue] in
            let mock = try BlueZMock.start(lifetime: .seconds(120))
            defer { mock.stop() }
            let connection = try DBusConnection(address: mock.address)
            defer { connection.close() }
            connection.export("/test/echo") { message in
                guard let reply = try? message.methodReturn() else { return false }
                try? reply.append(message.arguments())
                connection.send(reply)
                return true
            }
            connection.start(onMessage: { _ in false }, onDisconnect: {})
            return try connection.call(destination: connection.uniqueName, path: "/test/echo", interface: "org.vitalgate.Test",
                                       member: "Echo", arguments: Self.everything, timeout: .seconds(20))
        }
        #expect(echoed == Self.everything)
    }

    @Test("values libdbus would abort on are refused with an InvalidArgs error", arguments: [
        ([DBusValue.objectPath("not/a/path")], "not a valid object path"),
        ([DBusValue.string("nul\u{0}inside")], "NUL"),
        ([DBusValue.array("s", [.uint32(1)])], "holds a 'u'"),
        ([DBusValue.dictEntry(.string("k"), .string("v"))], "single complete"),
        ([DBusValue.structure([])], "single complete"),
        ([DBusValue.variant(.dictEntry(.string("k"), .string("v")))], "variant"),
        ([DBusValue.signature("a{")], "not a valid signature"),
        ([DBusValue.unixFD(3)], "file descriptors"),
    ])
    func refusesInvalidValues(values: [DBusValue], expected: String) throws {
        let message = try DBusMessage.methodCall(destination: "org.bluez", path: "/org/bluez", interface: "org.bluez.Test", member: "M")
        do {
            try message.append(values)
            Issue.record("appending \(values) succeeded")
        } catch {
            #expect(error.name == DBusCallError.invalidArgsName)
            #expect(error.message.contains(expected), "\(error)")
        }
    }

    @Test("invalid names and paths in a call are refused without reaching libdbus", arguments: [
        ("org.bluez", "/org/bluez/hci0/", "org.bluez.Adapter1", "StartDiscovery"),
        ("org.bluez", "/org/bluez", "org..bluez", "StartDiscovery"),
        ("org.bluez", "/org/bluez", "org.bluez.Adapter1", "Start-Discovery"),
        ("-bad", "/org/bluez", "org.bluez.Adapter1", "StartDiscovery"),
    ])
    func refusesInvalidNames(destination: String, path: String, interface: String, member: String) {
        #expect(throws: DBusCallError.self) {
            try DBusMessage.methodCall(destination: destination, path: path, interface: interface, member: member)
        }
    }

    @Test("an error reply reaches the caller with its D-Bus name and text; a silent peer times out; unknown methods fail")
    func errorsAndTimeouts() async throws {
        let outcomes = try await onDedicatedThread { () throws -> [DBusCallError] in
            let mock = try BlueZMock.start(lifetime: .seconds(120))
            defer { mock.stop() }
            let connection = try DBusConnection(address: mock.address)
            defer { connection.close() }
            connection.export("/test/failing") { message in
                if message.member == "Fail", let reply = try? message.errorReply(name: "org.bluez.Error.Failed", message: "le-connection-abort-by-local") {
                    connection.send(reply)
                }
                return true  // "Silent" is taken and never answered
            }
            connection.start(onMessage: { _ in false }, onDisconnect: {})
            var errors: [DBusCallError] = []
            // Only the unanswered call is meant to time out; the others get a generous liveness bound.
            for (path, member) in [("/test/failing", "Fail"), ("/test/failing", "Silent"), ("/nobody/here", "Anything")] {
                do throws(DBusCallError) {
                    _ = try connection.call(destination: connection.uniqueName, path: path, interface: "org.vitalgate.Test",
                                            member: member, timeout: member == "Silent" ? .milliseconds(500) : .seconds(30))
                } catch {
                    errors.append(error)
                }
            }
            return errors
        }
        try #require(outcomes.count == 3)
        #expect(outcomes[0].name == "org.bluez.Error.Failed")
        #expect(outcomes[0].message == "le-connection-abort-by-local")
        #expect(outcomes[0].member == "org.vitalgate.Test.Fail")
        #expect(outcomes[1].isTimeout)
        #expect(outcomes[2].name == "org.freedesktop.DBus.Error.UnknownMethod")
    }

    @Test("a blocking call from the connection's own thread fails at once instead of waiting for itself")
    func refusesCallsFromItsOwnThread() async throws {
        let error = try await onDedicatedThread { () throws -> DBusCallError? in
            let mock = try BlueZMock.start(lifetime: .seconds(120))
            defer { mock.stop() }
            let connection = try DBusConnection(address: mock.address)
            defer { connection.close() }
            let seen = Mutex<DBusCallError?>(nil)
            let done = DispatchSemaphore(value: 0)
            connection.start(onMessage: { _ in false }, onDisconnect: {})
            connection.perform { _ in
                do throws(DBusCallError) {
                    _ = try connection.call(destination: "org.bluez", path: "/", interface: "org.freedesktop.DBus.ObjectManager",
                                            member: "GetManagedObjects", timeout: .seconds(5))
                } catch {
                    seen.withLock { $0 = error }
                }
                done.signal()
            }
            _ = done.wait(timeout: .now() + 30)
            return seen.withLock { $0 }
        }
        #expect(error?.name == DBusCallError.invalidArgsName)
        #expect(error?.message.contains("own thread") == true)
    }

    @Test("a caller still returns with a timeout when the connection's thread is held up by a blocking handler")
    func stuckThread() async throws {
        let error = try await onDedicatedThread { () throws -> DBusCallError? in
            let mock = try BlueZMock.start(lifetime: .seconds(120))
            defer { mock.stop() }
            let connection = try DBusConnection(address: mock.address)
            defer { connection.close() }
            connection.start(onMessage: { _ in false }, onDisconnect: {})
            let release = DispatchSemaphore(value: 0)
            connection.perform { _ in _ = release.wait(timeout: .now() + 60) }  // a handler that blocks
            defer { release.signal() }
            do throws(DBusCallError) {
                _ = try connection.call(destination: "org.bluez", path: "/", interface: "org.freedesktop.DBus.ObjectManager",
                                        member: "GetManagedObjects", timeout: .milliseconds(300))
                return nil
            } catch {
                return error
            }
        }
        #expect(error?.isTimeout == true)
        #expect(error?.message.contains("the D-Bus thread did not answer") == true, "\(String(describing: error))")
    }

    @Test("when the bus goes away, a waiting caller fails and the disconnect handler runs once")
    func busLoss() async throws {
        let (error, disconnects) = try await onDedicatedThread { () throws -> (DBusCallError?, Int) in
            let mock = try BlueZMock.start(lifetime: .seconds(120))
            let connection = try DBusConnection(address: mock.address)
            defer { connection.close() }
            let disconnects = Mutex(0)
            let lost = DispatchSemaphore(value: 0)
            connection.export("/test/silent") { _ in true }
            connection.start(onMessage: { _ in false }, onDisconnect: {
                disconnects.withLock { $0 += 1 }
                lost.signal()
            })
            let failure = Mutex<DBusCallError?>(nil)
            let returned = DispatchSemaphore(value: 0)
            connection.callAsync(destination: connection.uniqueName, path: "/test/silent", interface: "org.vitalgate.Test",
                                 member: "Wait", timeout: .seconds(60)) { result in
                if case .failure(let error) = result { failure.withLock { $0 = error } }
                returned.signal()
            }
            mock.stop()
            _ = lost.wait(timeout: .now() + 30)
            _ = returned.wait(timeout: .now() + 30)
            return (failure.withLock { $0 }, disconnects.withLock { $0 })
        }
        #expect(error != nil && error?.isTimeout == false)
        #expect(disconnects == 1)
    }
}
