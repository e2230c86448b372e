import Foundation
import Testing
import ProfileCatalog
import VitalGateTestKit
@testable import DeviceSimulator
#if canImport(Glibc)
import Glibc
#endif

/// `vitalgate simulate --fault …`, `--forever` and `--terminal-fd` as separate processes, the way a test
/// harness or the demo runs them.
@Suite("vitalgate simulate faults and adopted terminals (the built binary)")
struct SimulateCommandFaultTests {
    static let profile = FaultModeTests.oximeter
    static let capture = FaultModeTests.oneFramePerLine

    static func deviceLines() throws -> [(bytes: [UInt8], line: Int)] {
        FaultModeTests.deviceLines(try Capture.load(file: capture))
    }

    /// Reads from the terminal at `path` until `count` bytes arrived or the simulator hung up.
    static func readHost(_ stdout: Pipe, count: Int, untilHangUp: Bool = false) async -> Result<(path: String, bytes: [UInt8], hungUp: Bool), HostFailure> {
        await DedicatedThread.run(name: "simulate host") { () -> Result<(path: String, bytes: [UInt8], hungUp: Bool), HostFailure> in
            do {
                let path = try SimulateCommandTests.firstLine(of: stdout)
                let port = try HostPort(path: path)
                var bytes: [UInt8] = []
                let end = ContinuousClock.now.advanced(by: .seconds(20))
                while ContinuousClock.now < end, !port.sawHangUp, untilHangUp || bytes.count < count {
                    bytes += try port.read(waitingUpTo: 100)
                }
                return .success((path, bytes, port.sawHangUp))
            } catch let failure as HostFailure { return .failure(failure) } catch { return .failure(HostFailure("\(error)")) }
        }
    }

    @Test("--fault checksum flips the last byte of every Nth line on the wire and counts it")
    func checksum() async throws {
        let lines = try Self.deviceLines()
        let commands = SimulateCommandTests()
        let (process, out, err) = try commands.launch(["simulate", Self.profile, "--capture", Self.capture, "--fault", "checksum",
                                                       "--fault-every", "6", "--timeout", "30", "--linger", "5"])
        let host = await Self.readHost(out, count: lines.reduce(0) { $0 + $1.bytes.count })
        let finished = await commands.finish(process, stderr: err)
        let received = try host.get().bytes
        var expected: [UInt8] = []
        for (index, line) in lines.enumerated() {
            var bytes = line.bytes
            if (index + 1) % 6 == 0 { bytes[bytes.count - 1] ^= 0x01 }
            expected += bytes
        }
        #expect(received == expected)
        #expect(finished.status == 0)
        let summary = try SimulateCommandTests.summary(finished.stderr)
        #expect(summary["outcome"] as? String == "completed")
        #expect(summary["fault"] as? String == "checksum")
        #expect(summary["corruptedLines"] as? Int == lines.count / 6)
    }

    @Test("--fault garbage puts the seed's noise before every Nth line and nothing else changes")
    func garbage() async throws {
        let lines = try Self.deviceLines()
        let commands = SimulateCommandTests()
        let bursts = lines.count / 5
        let total = lines.reduce(0) { $0 + $1.bytes.count } + 8 * bursts
        let (process, out, err) = try commands.launch(["simulate", Self.profile, "--capture", Self.capture, "--fault", "garbage",
                                                       "--fault-every", "5", "--seed", "99", "--timeout", "30", "--linger", "5"])
        let host = await Self.readHost(out, count: total)
        let finished = await commands.finish(process, stderr: err)
        var received = try host.get().bytes
        #expect(received.count == total)
        // Take the 8-byte bursts out where they must be: before lines 5, 10, 15.
        var offset = 0
        var recorded: [UInt8] = []
        for (index, line) in lines.enumerated() where received.count >= offset + line.bytes.count {
            if (index + 1) % 5 == 0 { received.removeSubrange(offset..<min(offset + 8, received.count)) }
            recorded += line.bytes
            offset += line.bytes.count
        }
        #expect(received == recorded)
        #expect(finished.status == 0)
        let summary = try SimulateCommandTests.summary(finished.stderr)
        #expect(summary["garbageInsertions"] as? Int == bursts)
        #expect(summary["garbageBytes"] as? Int == 8 * bursts)
    }

    @Test("--fault disconnect writes half of line N, hangs up once the host read it, and exits 0 saying so")
    func disconnect() async throws {
        let lines = try Self.deviceLines()
        let commands = SimulateCommandTests()
        let (process, out, err) = try commands.launch(["simulate", Self.profile, "--capture", Self.capture, "--fault", "disconnect",
                                                       "--fault-every", "19", "--timeout", "30"])
        let host = await Self.readHost(out, count: 0, untilHangUp: true)
        let finished = await commands.finish(process, stderr: err)
        let (_, received, hungUp) = try host.get()
        let whole = lines.prefix(18).flatMap(\.bytes)
        #expect(received == whole + lines[18].bytes.prefix(lines[18].bytes.count / 2))
        #expect(hungUp)
        #expect(finished.status == 0)
        let summary = try SimulateCommandTests.summary(finished.stderr)
        #expect(summary["outcome"] as? String == "hung-up")
        #expect(summary["hungUp"] as? Bool == true)
        #expect(summary["hangUpLine"] as? Int == lines[18].line)
    }

    @Test("--forever replays until SIGTERM, then exits 0 with the summary")
    func forever() async throws {
        let lines = try Self.deviceLines()
        let round = lines.reduce(0) { $0 + $1.bytes.count }
        let commands = SimulateCommandTests()
        let (process, out, err) = try commands.launch(["simulate", Self.profile, "--capture", Self.capture, "--forever"])
        let host = await Self.readHost(out, count: 3 * round)
        // Foundation's terminate() sends SIGTERM to this process's id.
        process.terminate()
        let finished = await commands.finish(process, stderr: err)
        let received = try host.get().bytes
        #expect(received.count >= 3 * round)
        #expect(Array(received.prefix(3 * round)) == Array(repeating: lines.flatMap(\.bytes), count: 3).flatMap { $0 })
        #expect(finished.status == 0)
        let summary = try SimulateCommandTests.summary(finished.stderr)
        #expect(summary["outcome"] as? String == "stopped")
        #expect((summary["repetitions"] as? Int ?? 0) >= 2)
    }

    @Test("--terminal-fd plays on an inherited pseudo-terminal master and names its slave")
    func terminalDescriptor() async throws {
        var master: Int32 = -1
        var slave: Int32 = -1
        try #require(openpty(&master, &slave, nil, nil, nil) == 0, "openpty failed: errno \(errno)")
        // Other tests spawn processes too: none of them may inherit these.
        _ = fcntl(master, F_SETFD, FD_CLOEXEC)
        _ = fcntl(slave, F_SETFD, FD_CLOEXEC)
        let path = String(cString: ttyname(slave))
        let lines = try Self.deviceLines()
        let expected = lines.flatMap(\.bytes)
        let child = try Spawned(["simulate", Self.profile, "--capture", Self.capture, "--terminal-fd", "5", "--timeout", "30", "--linger", "5"],
                                passing: master, as: 5)
        // The child has its own copy; with ours closed, its hang-up reaches the host.
        _ = Glibc.close(master)
        let host = await DedicatedThread.run(name: "adopted host") { () -> Result<(String, [UInt8], Bool), HostFailure> in
            do {
                let announced = try child.firstLine()
                let port = try HostPort(path: path)
                var reader = HostReader(port)
                let bytes = try reader.take(expected.count, within: 10_000)
                // After the last line and the linger, the simulator closes the terminal.
                let end = ContinuousClock.now.advanced(by: .seconds(20))
                while !port.sawHangUp, ContinuousClock.now < end { _ = try port.read(waitingUpTo: 100) }
                return .success((announced, bytes, port.sawHangUp))
            } catch let failure as HostFailure { return .failure(failure) } catch { return .failure(HostFailure("\(error)")) }
        }
        let finished = await child.finish()
        _ = Glibc.close(slave)
        let (announced, received, hungUp) = try host.get()
        #expect(announced == path)
        #expect(received == expected)
        #expect(hungUp)
        #expect(finished.status == 0, "\(finished.stderr)")
        #expect(try SimulateCommandTests.summary(finished.stderr)["outcome"] as? String == "completed")
    }
}

/// The built `vitalgate` started with posix_spawn, so that it inherits a chosen descriptor (Foundation's
/// Process passes only the standard three). Stopped by its PID if it outlives its limit.
final class Spawned: Sendable {
    let pid: pid_t
    let stdout: Int32
    let stderr: Int32

    init(_ arguments: [String], passing descriptor: Int32, as target: Int32) throws {
        let binary = vitalgateBinary().path
        try #require(FileManager.default.isExecutableFile(atPath: binary), "build the vitalgate product first (swift build)")
        var out: [Int32] = [-1, -1]
        var err: [Int32] = [-1, -1]
        guard pipe(&out) == 0, pipe(&err) == 0 else { throw HostFailure("pipe failed: errno \(errno)") }
        for end in out + err { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, out[1], 1)
        posix_spawn_file_actions_adddup2(&actions, err[1], 2)
        // dup2 clears close-on-exec on the copy: the child inherits exactly this one.
        posix_spawn_file_actions_adddup2(&actions, descriptor, target)
        let argv: [UnsafeMutablePointer<CChar>?] = ([binary] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, binary, &actions, nil, argv, environ)
        _ = Glibc.close(out[1])
        _ = Glibc.close(err[1])
        guard result == 0 else {
            _ = Glibc.close(out[0])
            _ = Glibc.close(err[0])
            throw HostFailure("posix_spawn \(binary) failed: \(result)")
        }
        self.pid = pid
        self.stdout = out[0]
        self.stderr = err[0]
    }

    deinit {
        _ = Glibc.close(stdout)
        _ = Glibc.close(stderr)
    }

    /// The first line of standard output, read byte by byte.
    func firstLine(within milliseconds: Int32 = 10_000) throws -> String {
        var line: [UInt8] = []
        while true {
            var descriptors = [pollfd(fd: stdout, events: Int16(POLLIN), revents: 0)]
            guard poll(&descriptors, 1, milliseconds) > 0 else { throw HostFailure("no path line within \(milliseconds) ms; got \(line)") }
            var byte: UInt8 = 0
            guard Glibc.read(stdout, &byte, 1) == 1 else { throw HostFailure("standard output ended before a path line") }
            if byte == 0x0A { return String(decoding: line, as: UTF8.self) }
            line.append(byte)
        }
    }

    /// Waits (on its own thread) for the exit; kills the process by its PID after `limit`.
    func finish(limit: Duration = .seconds(30)) async -> SimulateCommandTests.Finished {
        await DedicatedThread.run(name: "wait for vitalgate") {
            let end = ContinuousClock.now.advanced(by: limit)
            var status: Int32 = 0
            var exited = false
            while !exited {
                let result = waitpid(self.pid, &status, WNOHANG)
                if result == self.pid { exited = true; break }
                if result < 0 && errno != EINTR { break }
                if ContinuousClock.now >= end {
                    _ = kill(self.pid, SIGKILL)
                    _ = waitpid(self.pid, &status, 0)
                    exited = true
                    status = -1
                    break
                }
                usleep(10_000)
            }
            var text: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 4096)
            while true {
                let count = chunk.withUnsafeMutableBytes { Glibc.read(self.stderr, $0.baseAddress, $0.count) }
                if count > 0 { text += chunk[0..<count] } else if count < 0 && errno == EINTR { continue } else { break }
            }
            // Exited normally: the status is in bits 8-15 (WEXITSTATUS); anything else reads as -1.
            let code: Int32 = status >= 0 && status & 0x7F == 0 ? (status >> 8) & 0xFF : -1
            return SimulateCommandTests.Finished(status: code, stderr: String(decoding: text, as: UTF8.self))
        }
    }
}
