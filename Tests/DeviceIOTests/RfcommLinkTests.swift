import Foundation
import Testing
import VitalModel
import ProfileCatalog
@testable import DeviceIO
#if canImport(Glibc)
import Glibc
#endif

/// The Bluetooth Classic link: its errors on this machine (whose kernel has no Bluetooth), its checks before
/// any socket, cancellation, and its stream semantics over a stand-in socket.
@Suite("RFCOMM link")
struct RfcommLinkTests {
    static let address = EUI48("00:00:5E:00:53:01")!  // RFC 7042 documentation address
    static let path = "rfcomm:00:00:5E:00:53:01:ch1"

    /// Whether this kernel can make RFCOMM sockets at all, and the errno when it cannot.
    static func kernelRFCOMM() -> Int32 {
        let descriptor = socket(31 /* AF_BLUETOOTH */, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 3 /* BTPROTO_RFCOMM */)
        if descriptor >= 0 {
            _ = Glibc.close(descriptor)
            return 0
        }
        return errno
    }

    @Test("the path names the address as bluetoothctl writes it, and the channel")
    func pathFormat() {
        #expect(RfcommLink.path(address: EUI48("c4-f3-12-53-f2-c9")!, channel: 3) == "rfcomm:C4:F3:12:53:F2:C9:ch3")
    }

    @Test("on a kernel without Bluetooth, connecting says so, names the device and how to fix it")
    func kernelWithoutBluetooth() throws {
        let probe = Self.kernelRFCOMM()
        let error = try #require(throws: DeviceIOError.self) {
            try RfcommLink.connect(address: Self.address, channel: 1, timeout: .seconds(3))
        }
        #expect(error.path == Self.path)
        #expect(!error.isDisconnect)
        if probe == EAFNOSUPPORT {
            // This build machine: no AF_BLUETOOTH in the kernel.
            #expect(error.operation == "socket")
            #expect(error.code == EAFNOSUPPORT)
            #expect(error.fix.contains("AF_BLUETOOTH"))
            #expect(error.fix.contains("modprobe bluetooth"))
            #expect(error.description.hasPrefix("rfcomm:00:00:5E:00:53:01:ch1: socket failed: "))
            #expect(error.description.contains("(errno \(EAFNOSUPPORT)). Fix: this kernel has no Bluetooth sockets"))
        } else {
            // A kernel with Bluetooth: the documentation address answers nobody, so the connect itself fails.
            #expect(error.code != 0, "\(error)")
            #expect(!error.fix.isEmpty)
        }
    }

    @Test("a channel outside 1 to 30 is refused before any socket is made, pointing at sdptool and bluetoothctl",
          arguments: [0, 31, -1, 255])
    func channelOutOfRange(_ channel: Int) throws {
        let error = try #require(throws: DeviceIOError.self) {
            try RfcommLink.connect(address: Self.address, channel: channel, timeout: .seconds(3))
        }
        #expect(error.operation == "connect")
        #expect(error.code == 0)
        #expect(error.path == "rfcomm:00:00:5E:00:53:01:ch\(channel)")
        #expect(error.fix.hasPrefix("\(channel) is not an RFCOMM channel (they are 1 to 30)"))
        #expect(error.fix.contains("sdptool browse 00:00:5E:00:53:01"))
        #expect(error.fix.contains("bluetoothctl info 00:00:5E:00:53:01"))
    }

    @Test("the valid channels are 1 to 30 and each passes the check")
    func channelRange() throws {
        #expect(RfcommLink.channels == 1...30)
        for channel in [1, 30] {
            let error = try #require(throws: DeviceIOError.self) {
                try RfcommLink.connect(address: Self.address, channel: channel, timeout: .milliseconds(200))
            }
            // Past the channel check: the socket (or, with Bluetooth, the connect) is what fails.
            #expect(!error.fix.contains("is not an RFCOMM channel"))
        }
    }

    @Test("a zero timeout is refused")
    func zeroTimeout() throws {
        let error = try #require(throws: DeviceIOError.self) {
            try RfcommLink.connect(address: Self.address, channel: 1, timeout: .zero)
        }
        #expect(error.fix.contains("timeout above zero"))
    }

    @Test("a connect after cancellation fails at once with ECANCELED")
    func cancelledConnect() throws {
        let cancellation = try LinkCancellation()
        cancellation.cancel()
        let error = try #require(throws: DeviceIOError.self) {
            try RfcommLink.connect(address: Self.address, channel: 1, timeout: .seconds(30), cancellation: cancellation)
        }
        #expect(error.code == ECANCELED)
        #expect(error.path == Self.path)
        #expect(error.fix.contains("VitalGate is stopping"))
    }

    @Test("connect errors each say what to do")
    func connectFixes() {
        func fix(_ code: Int32) -> String { RfcommLink.connectFix(code, address: Self.address, channel: 4, timeout: .seconds(30)) }
        #expect(fix(ECONNREFUSED).contains("no serial service on channel 4"))
        #expect(fix(ECONNREFUSED).contains("sdptool browse 00:00:5E:00:53:01"))
        #expect(fix(ETIMEDOUT).contains("switched off or out of range"))
        #expect(fix(EHOSTDOWN).contains("bluetoothctl pair 00:00:5E:00:53:01"))
        #expect(fix(EHOSTUNREACH).contains("rfkill unblock bluetooth"))
        #expect(fix(EACCES).contains("bluetooth group"))
        #expect(fix(EPERM).contains("AF_BLUETOOTH"))
        #expect(RfcommLink.socketFix(EPROTONOSUPPORT).contains("modprobe rfcomm"))
        #expect(RfcommLink.socketFix(EACCES).contains("RestrictAddressFamilies"))
        #expect(RfcommLink.socketFix(EPERM).contains("bluetooth group"))
    }

    // MARK: DeviceLinks

    @Test("DeviceLinks refuses to open an rfcomm profile as a node, pointing at its connect; BLE is still refused")
    func deviceLinksRefusals() throws {
        let rfcomm = try #require(throws: DeviceIOError.self) {
            try DeviceLinks.open(path: "/dev/rfcomm0", transport: .rfcomm(RFCOMMSettings(channel: 1)))
        }
        #expect(rfcomm.fix.contains("DeviceLinks.connect(address:transport:timeout:cancellation:)"))
        let ble = try #require(throws: DeviceIOError.self) {
            try DeviceLinks.open(path: "/dev/null", transport: .ble(BLESettings(characteristics: [])))
        }
        #expect(ble.fix.contains("Bluetooth LE"))
        let serial = try #require(throws: DeviceIOError.self) {
            try DeviceLinks.connect(address: Self.address, transport: .serial(SerialSettings(baud: 9600)), timeout: .seconds(1))
        }
        #expect(serial.fix.contains("transport is serial, not rfcomm"))
    }

    @Test("DeviceLinks.connect uses the profile's channel")
    func deviceLinksChannel() throws {
        let error = try #require(throws: DeviceIOError.self) {
            try DeviceLinks.connect(address: Self.address, transport: .rfcomm(RFCOMMSettings(channel: 7)), timeout: .milliseconds(200))
        }
        #expect(error.path == "rfcomm:00:00:5E:00:53:01:ch7")
    }

    // MARK: Cancellation

    @Test("a cancellation wakes a waiting thread and stays cancelled")
    func cancellationWakes() async throws {
        let cancellation = try LinkCancellation()
        #expect(cancellation.wait(timeout: .milliseconds(20)) == false)
        #expect(!cancellation.isCancelled)
        let waited = Task { await onThread("wait-for-cancel") { cancellation.wait(timeout: nil) } }
        cancellation.cancel()
        #expect(await waited.value == true)
        cancellation.cancel()
        #expect(cancellation.wait(timeout: .seconds(60)) == true)
        #expect(cancellation.wait(timeout: nil) == true)
    }

    // MARK: Stream semantics over a stand-in socket

    /// An ``RfcommLink`` over one end of a Unix stream socket pair; the other end plays the device.
    static func linkOverSocketPair() throws -> (RfcommLink, device: Int32) {
        var ends: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &ends) == 0 else {
            throw TestFailure("socketpair failed: errno \(errno)")
        }
        _ = fcntl(ends[0], F_SETFL, fcntl(ends[0], F_GETFL) | O_NONBLOCK)
        let node = try NodeDescriptor(path: path, descriptor: ends[0], kind: .socket)
        return (RfcommLink(path: path, address: address, channel: 1, node: node), ends[1])
    }

    @Test("bytes pass both ways; a quiet device times out; an interrupt wakes a read")
    func streamBothWays() async throws {
        let (link, device) = try Self.linkOverSocketPair()
        defer { link.close(); _ = Glibc.close(device) }
        let request: [UInt8] = [0x7D, 0x81, 0xA1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80]
        try link.write(request)
        var received = [UInt8](repeating: 0, count: 64)
        let count = received.withUnsafeMutableBytes { Glibc.read(device, $0.baseAddress, $0.count) }
        #expect(Array(received.prefix(max(0, count))) == request)

        let packet: [UInt8] = [0x01, 0xE0, 0x85, 0xD5, 0x9A, 0xBD, 0xE3, 0xFF, 0xFF]
        _ = packet.withUnsafeBytes { Glibc.write(device, $0.baseAddress, $0.count) }
        #expect(try link.read(timeout: .seconds(10)) == .bytes(packet))
        #expect(try link.read(timeout: .milliseconds(20)) == .timedOut)
        link.interrupt()
        #expect(try link.read(timeout: .seconds(10)) == .interrupted)
    }

    @Test("the device hanging up ends a read as a disconnect")
    func hangUpOnRead() throws {
        let (link, device) = try Self.linkOverSocketPair()
        defer { link.close() }
        _ = Glibc.close(device)
        let error = try #require(throws: DeviceIOError.self) { try link.read(timeout: .seconds(10)) }
        #expect(error.isDisconnect)
        #expect(error.path == Self.path)
    }

    @Test("writing to a device that hung up is a disconnect (EPIPE), not a SIGPIPE that kills the process")
    func hangUpOnWrite() throws {
        let (link, device) = try Self.linkOverSocketPair()
        defer { link.close() }
        _ = Glibc.close(device)
        let error = try #require(throws: DeviceIOError.self) { try link.write([0x7D, 0x81, 0xAF]) }
        #expect(error.isDisconnect)
        #expect(error.code == EPIPE)
        #expect(error.operation == "write")
    }

    @Test("on a socket, reset, not connected, broken pipe and a dropped radio link are disconnects; on a node they are not all")
    func disconnectCodes() throws {
        let (link, device) = try Self.linkOverSocketPair()
        defer { link.close(); _ = Glibc.close(device) }
        for code in [ECONNRESET, ENOTCONN, EPIPE, ETIMEDOUT, EHOSTDOWN, ECONNABORTED] {
            #expect(link.node.isDisconnect(code), "errno \(code)")
        }
        #expect(!link.node.isDisconnect(EAGAIN))
        #expect(!link.node.isDisconnect(EINTR))
        let null = try NodeDescriptor(path: "/dev/null", descriptor: Glibc.open("/dev/null", O_RDWR | O_CLOEXEC))
        defer { null.close() }
        #expect(null.isDisconnect(EIO))
        #expect(!null.isDisconnect(ECONNRESET))
    }

    @Test("reads and writes after close fail clearly")
    func afterClose() throws {
        let (link, device) = try Self.linkOverSocketPair()
        defer { _ = Glibc.close(device) }
        link.close()
        link.close()
        let error = try #require(throws: DeviceIOError.self) { try link.read(timeout: .zero) }
        #expect(error.fix.contains("closed"))
        #expect(throws: DeviceIOError.self) { try link.write([1]) }
    }
}
