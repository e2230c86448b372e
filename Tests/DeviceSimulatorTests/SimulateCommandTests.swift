import Foundation
import Testing
import ProfileCatalog
import VitalGateTestKit
@testable import DeviceSimulator
#if canImport(Glibc)
import Glibc
#endif

/// `vitalgate simulate` as a script uses it: a separate process whose first output line is the
/// terminal to open.
@Suite("vitalgate simulate (the built binary)")
struct SimulateCommandTests {
    struct Finished: Sendable {
        var status: Int32
        var stderr: String
    }

    /// Starts the binary with `arguments`.
    func launch(_ arguments: [String]) throws -> (Process, stdout: Pipe, stderr: Pipe) {
        let binary = vitalgateBinary()
        try #require(FileManager.default.isExecutableFile(atPath: binary.path), "build the vitalgate product first (swift build)")
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        return (process, out, err)
    }

    /// Waits (on its own thread) for the process to end; terminates it after `limit` so no test hangs.
    func finish(_ process: Process, stderr: Pipe, limit: Duration = .seconds(30)) async -> Finished {
        let handle = stderr.fileHandleForReading
        return await DedicatedThread.run(name: "wait for vitalgate") {
            let end = ContinuousClock.now.advanced(by: limit)
            while process.isRunning && ContinuousClock.now < end { usleep(10_000) }
            if process.isRunning { process.terminate() }
            process.waitUntilExit()
            return Finished(status: process.terminationStatus, stderr: String(decoding: handle.readDataToEndOfFile(), as: UTF8.self))
        }
    }

    /// The first line of `pipe`, read byte by byte so nothing after it is consumed.
    static func firstLine(of pipe: Pipe, within milliseconds: Int32 = 10_000) throws -> String {
        let descriptor = pipe.fileHandleForReading.fileDescriptor
        var line: [UInt8] = []
        while true {
            var descriptors = [pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)]
            guard poll(&descriptors, 1, milliseconds) > 0 else { throw HostFailure("no path line within \(milliseconds) ms; got \(line)") }
            var byte: UInt8 = 0
            guard Glibc.read(descriptor, &byte, 1) == 1 else { throw HostFailure("standard output ended before a path line") }
            if byte == 0x0A { return String(decoding: line, as: UTF8.self) }
            line.append(byte)
        }
    }

    @Test("prints the terminal's path first, then plays the capture to the host that opens it")
    func playsToAHost() async throws {
        let capture = try Capture.load(file: PlaybackCase.scriptedCapture)
        let (process, out, err) = try launch(["simulate", PlaybackCase.scriptedProfile, "--capture", PlaybackCase.scriptedCapture,
                                              "--linger", "5", "--timeout", "30"])
        let stdout = out
        let host = await DedicatedThread.run(name: "simulate host") { () -> Result<(String, [UInt8]), HostFailure> in
            do {
                let path = try Self.firstLine(of: stdout)
                let port = try HostPort(path: path)
                var reader = HostReader(port)
                var received: [UInt8] = []
                // A host that follows the capture: send each `>` line, read each `<` line's worth.
                for entry in capture.entries {
                    switch entry.line {
                    case .toDevice(let bytes, _): try port.write(bytes)
                    case .fromDevice(let bytes, _): received += try reader.take(bytes.count, within: 30_000)
                    case .wait, .timeout: break
                    }
                }
                return .success((path, received))
            } catch let failure as HostFailure { return .failure(failure) } catch { return .failure(HostFailure("\(error)")) }
        }
        let finished = await finish(process, stderr: err)
        let (path, received) = try host.get()
        let deviceBytes = capture.entries.flatMap { entry -> [UInt8] in
            if case .fromDevice(let bytes, _) = entry.line { bytes } else { [] }
        }
        #expect(path.hasPrefix("/dev/pts/"))
        #expect(received == deviceBytes)
        #expect(finished.status == 0)
        // Nothing but the summary: no notes, no errors.
        let summary = try Self.summary(finished.stderr)
        #expect(finished.stderr.split(separator: "\n").count == 1)
        #expect(summary["outcome"] as? String == "completed")
        #expect(summary["fault"] as? String == "none")
        #expect(summary["repetitions"] as? Int == 1)
        #expect(summary["deviceBytes"] as? Int == deviceBytes.count)
        #expect(summary["hungUp"] as? Bool == false)
    }

    /// The JSON summary, the last line of standard error.
    static func summary(_ stderr: String) throws -> [String: Any] {
        let last = try #require(stderr.split(separator: "\n").last, "no summary line on standard error")
        let object = try JSONSerialization.jsonObject(with: Data(last.utf8))
        return try #require(object as? [String: Any], "the summary is not a JSON object: \(last)")
    }

    @Test("a host sending the wrong request makes it exit 1 naming the capture line")
    func mismatchExitsOne() async throws {
        let capture = try Capture.load(file: PlaybackCase.scriptedCapture)
        let line = try #require(capture.entries.first { if case .toDevice = $0.line { true } else { false } }?.lineNumber)
        let (process, out, err) = try launch(["simulate", PlaybackCase.scriptedProfile, "--capture", PlaybackCase.scriptedCapture, "--timeout", "5"])
        let stdout = out
        let host = await DedicatedThread.run(name: "simulate host") { () -> Result<HostPort, HostFailure> in
            do {
                let port = try HostPort(path: try Self.firstLine(of: stdout))
                try port.write(Array("VG-TESX".utf8))
                return .success(port)
            } catch let failure as HostFailure { return .failure(failure) } catch { return .failure(HostFailure("\(error)")) }
        }
        let finished = await finish(process, stderr: err)
        _ = try host.get()
        #expect(finished.status == 1)
        #expect(finished.stderr.hasPrefix("vitalgate simulate: \(PlaybackCase.scriptedCapture):\(line): the host sent 56 47 2D 54 45 53 58"))
        #expect(try Self.summary(finished.stderr)["outcome"] as? String == "failed")
    }

    @Test("usage mistakes exit 2 with a message", arguments: [
        ([] as [String], "give the profile to simulate"),
        ([PlaybackCase.scriptedProfile], "--capture FILE is required"),
        ([PlaybackCase.scriptedProfile, "--capture", PlaybackCase.scriptedCapture, "--repeat", "0"], "--repeat needs a whole number"),
        ([PlaybackCase.scriptedProfile, "--capture", PlaybackCase.scriptedCapture, "--linger", "-1"], "--linger needs seconds"),
        ([PlaybackCase.scriptedProfile, "--capture", PlaybackCase.scriptedCapture, "--bogus"], "unknown option --bogus"),
        (["bluetooth-sig/blood-pressure", "--capture", PlaybackCase.scriptedCapture], "Bluetooth VM test (issue #6)"),
        ([PlaybackCase.scriptedProfile, "--capture", PlaybackCase.scriptedCapture, "--fault", "bogus"], "--fault takes garbage, slow, disconnect or checksum"),
        ([PlaybackCase.scriptedProfile, "--capture", PlaybackCase.scriptedCapture, "--fault-every", "3"], "--fault-every applies to"),
        ([PlaybackCase.scriptedProfile, "--capture", PlaybackCase.scriptedCapture, "--fault", "slow", "--fault-every", "3"], "--fault-every applies to"),
        ([PlaybackCase.scriptedProfile, "--capture", PlaybackCase.scriptedCapture, "--fault", "checksum", "--fault-every", "0"], "--fault-every needs a whole number"),
        ([PlaybackCase.scriptedProfile, "--capture", PlaybackCase.scriptedCapture, "--fault", "checksum", "--seed", "3"], "--seed applies to --fault garbage only"),
        ([PlaybackCase.scriptedProfile, "--capture", PlaybackCase.scriptedCapture, "--repeat", "2", "--forever"], "not both"),
        ([PlaybackCase.scriptedProfile, "--capture", PlaybackCase.scriptedCapture, "--terminal-fd", "x"], "--terminal-fd needs a file descriptor"),
        ([PlaybackCase.scriptedProfile, "--capture", PlaybackCase.scriptedCapture, "--terminal-fd", "999"], "--terminal-fd 999: adopting descriptor 999 failed"),
    ])
    func usage(_ arguments: [String], message: String) async throws {
        for prefix in [["simulate"], ["profile", "simulate"]] {
            let (process, _, err) = try launch(prefix + arguments)
            let finished = await finish(process, stderr: err)
            #expect(finished.status == 2, "\(prefix + arguments)")
            #expect(finished.stderr.contains(message), "\(finished.stderr)")
        }
    }
}
