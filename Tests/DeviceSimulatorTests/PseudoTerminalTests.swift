import Foundation
import Testing
import ProfileCatalog
@testable import DeviceSimulator
#if canImport(Glibc)
import Glibc
#endif

/// The pseudo-terminal itself: a transparent, raw byte pipe in both directions.
@Suite("pseudo-terminal")
struct PseudoTerminalTests {
    /// Every byte value, including those a cooked terminal would eat or translate (CR, LF, XON, XOFF,
    /// ^C, ^D, DEL).
    static let everyByte = (0...255).map { UInt8($0) }

    @Test("all 256 byte values pass unchanged both ways, without the host configuring the port")
    func transparent() async throws {
        let hex = Self.everyByte.map { String(format: "%02X", $0) }.joined(separator: " ")
        let reversed = Self.everyByte.reversed().map { String(format: "%02X", $0) }.joined(separator: " ")
        let capture = try Capture.parse("< \(hex)\n> \(reversed)\n", file: "every-byte.capture")
        let terminal = try PseudoTerminal()
        let player = try CapturePlayer(capture: capture, profile: nil, terminal: terminal,
                                       options: PlaybackOptions(responseTimeout: .seconds(30)))
        // As the simulator left it: the point is that the simulator made the slave raw.
        let port = try HostPort(path: terminal.slavePath, configureRaw: false)
        player.start()
        let received = try await DedicatedThread.run(name: "host") { () -> Result<[UInt8], HostFailure> in
            do {
                var reader = HostReader(port)
                let bytes = try reader.take(256, within: 30_000)
                try port.write(Self.everyByte.reversed())
                return .success(bytes)
            } catch let failure as HostFailure { return .failure(failure) } catch { return .failure(HostFailure("\(error)")) }
        }.get()
        #expect(received == Self.everyByte)
        let report = try await player.outcome().get()
        #expect(report.hostBytes == 256)
        #expect(report.deviceBytes == 256)
    }

    @Test("bytes played before the host opens the port wait for it, and the drain check sees them read")
    func bytesWaitForTheHost() async throws {
        let capture = try Capture.parse("< 0D 0A 11 13\n< 7F\n", file: "early.capture")
        let terminal = try PseudoTerminal()
        let player = try CapturePlayer(capture: capture, profile: nil, terminal: terminal)
        _ = try await player.outcome().get()
        // Written bytes reach the slave's queue through a kernel work queue: allow them a moment.
        let end = ContinuousClock.now.advanced(by: .seconds(2))
        while terminal.unreadByteCount() != 5 && ContinuousClock.now < end { usleep(1000) }
        #expect(terminal.unreadByteCount() == 5)
        #expect(!terminal.waitUntilDrained(timeout: .milliseconds(400)))
        let port = try HostPort(path: terminal.slavePath)
        var reader = HostReader(port)
        let bytes = try reader.take(5, within: 30_000)
        #expect(bytes == [0x0D, 0x0A, 0x11, 0x13, 0x7F])
        #expect(terminal.waitUntilDrained(timeout: .seconds(2)))
        #expect(terminal.unreadByteCount() == 0)
    }

    @Test("each terminal gets its own slave path, and closing it hangs up the host")
    func lifecycle() throws {
        var first: PseudoTerminal? = try PseudoTerminal()
        let second = try PseudoTerminal()
        let path = try #require(first?.slavePath)
        #expect(path.hasPrefix("/dev/pts/"))
        #expect(path != second.slavePath)
        let port = try HostPort(path: path)
        first = nil
        // After the hang-up a read returns at once with nothing (EOF or EIO), instead of blocking.
        let started = ContinuousClock.now
        #expect(try port.read(waitingUpTo: 60_000).isEmpty)
        // A liveness bound, not a measurement: a read that blocked would wait the full 60 s.
        #expect(ContinuousClock.now - started < .seconds(45))
    }

    @Test("an adopted master: the simulator plays behind a pseudo-terminal someone else opened")
    func adopted() async throws {
        var master: Int32 = -1
        var slave: Int32 = -1
        try #require(openpty(&master, &slave, nil, nil, nil) == 0, "openpty failed: errno \(errno)")
        _ = fcntl(master, F_SETFD, FD_CLOEXEC)
        _ = fcntl(slave, F_SETFD, FD_CLOEXEC)
        defer { _ = Glibc.close(slave) }
        let path = String(cString: ttyname(slave))
        let terminal = try PseudoTerminal(adoptingMaster: master)
        #expect(terminal.slavePath == path)
        #expect(terminal.masterDescriptor == master)
        #expect(fcntl(master, F_GETFL) & O_NONBLOCK != 0)

        let capture = try Capture.parse("< 01 02 03\n> 0A 0B\n< 04\n", file: "adopted.capture")
        let player = try CapturePlayer(capture: capture, profile: nil, terminal: terminal,
                                       options: PlaybackOptions(responseTimeout: .seconds(5)))
        let port = try HostPort(path: path)
        player.start()
        let received = try await DedicatedThread.run(name: "host") { () -> Result<[UInt8], HostFailure> in
            do {
                var reader = HostReader(port)
                var bytes = try reader.take(3, within: 30_000)
                try port.write([0x0A, 0x0B])
                bytes += try reader.take(1, within: 30_000)
                return .success(bytes)
            } catch let failure as HostFailure { return .failure(failure) } catch { return .failure(HostFailure("\(error)")) }
        }.get()
        #expect(received == [0x01, 0x02, 0x03, 0x04])
        #expect(try await player.outcome().get().hostBytes == 2)

        // Closing the adopted master is the hang-up the host sees.
        terminal.hangUp()
        terminal.hangUp()
        #expect(terminal.isHungUp)
        #expect(try port.read(waitingUpTo: 10_000).isEmpty)
        #expect(port.sawHangUp)
    }

    @Test("a descriptor that is not a pseudo-terminal master is refused and left to its owner")
    func adoptingSomethingElse() throws {
        var ends: [Int32] = [-1, -1]
        try #require(pipe(&ends) == 0)
        defer { ends.forEach { _ = Glibc.close($0) } }
        #expect(throws: SimulatorError.self) { _ = try PseudoTerminal(adoptingMaster: ends[0]) }
        #expect(fcntl(ends[0], F_GETFD) >= 0, "the refused descriptor was closed")
        do {
            _ = try PseudoTerminal(adoptingMaster: -1)
            Issue.record("a negative descriptor was adopted")
        } catch {
            #expect(error.kind == .system)
            #expect(error.description.contains("adopting descriptor -1"))
        }
    }
}
