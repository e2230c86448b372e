import Foundation
import Testing
import VitalModel
import ProfileEngine
import ProfileCatalog
import VitalGateTestKit
@testable import DeviceSimulator
#if canImport(Glibc)
import Glibc
#endif

/// Each fault mode against a real engine session over the pseudo-terminal: the host must keep exactly
/// the readings the faults leave intact, and count a problem for what they break.
@Suite("simulator fault modes")
struct FaultModeTests {
    static let shipped = RepositoryPaths.root.appendingPathComponent("DeviceProfiles").path
    /// AA 55 frames with a CRC-8, streamed (a Nordic UART link reassembled).
    static let oximeter = shipped + "/viatom/pc-60fw.json"
    /// One frame per line: 5 waveform frames, a reading (line 6), 12 more frames, a reading (line 19).
    static let oneFramePerLine = shipped + "/viatom/pc-60fw/pedasmith-example-data.capture"
    /// The same stream cut into 20-byte notifications: frames straddle lines.
    static let twentyByteLines = shipped + "/viatom/pc-60fw/pedasmith-20-byte-notifications.capture"
    /// Request and response over 8-byte HID reports, answers checked by an XOR checksum.
    static let cuff = shipped + "/omron/hem-790it.json"
    static let twoReadings = shipped + "/omron/hem-790it/790it-two-readings.capture"
    static var cuffCaptures: [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: shipped + "/omron/hem-790it"))?
            .filter { $0.hasSuffix(".capture") }.sorted().map { shipped + "/omron/hem-790it/" + $0 } ?? []
    }

    struct Played {
        var profile: DeviceProfile
        var capture: Capture
        var clean: Replay
        var live: LiveSession
        var report: PlaybackReport
    }

    /// Plays `captureFile` with `fault` to an engine session of `profileFile` and replays it cleanly.
    func play(_ profileFile: String, _ captureFile: String, fault: FaultMode, pacing: Pacing? = nil,
              profile adjust: (inout DeviceProfile) -> Void = { _ in }) async throws -> Played {
        var profile = try ProfileLoader.load(file: profileFile, expectedID: ProfileCatalog.expectedID(for: profileFile))
        adjust(&profile)
        let capture = try Capture.load(file: captureFile)
        let clean = Replay.run(capture, profile: profile)
        try #require(clean.scriptDifferences.isEmpty, "the capture does not replay cleanly: \(clean.scriptDifferences)")
        let terminal = try PseudoTerminal()
        let player = try CapturePlayer(capture: capture, profile: profile, terminal: terminal,
                                       options: PlaybackOptions(responseTimeout: .seconds(5), deadline: .seconds(90), pacing: pacing, fault: fault))
        let port = try HostPort(path: terminal.slavePath)
        player.start()
        let session = profile
        let live = try await DedicatedThread.run(name: "host") {
            driveEngine(profile: session, capture: capture, port: port, player: player, limit: .seconds(60))
        }.get()
        let report = try await player.outcome().get()
        return Played(profile: profile, capture: capture, clean: clean, live: live, report: report)
    }

    /// `capture` with only the device lines `keep` accepts (numbered from 1), replayed: the oracle for
    /// what a host can decode from the lines a fault left intact.
    static func replay(_ capture: Capture, profile: DeviceProfile, keepingDeviceLines keep: (Int) -> Bool) -> Replay {
        var number = 0
        var kept = capture
        kept.entries = capture.entries.filter { entry in
            guard case .fromDevice = entry.line else { return true }
            number += 1
            return keep(number)
        }
        return Replay.run(kept, profile: profile)
    }

    static func deviceLines(_ capture: Capture) -> [(bytes: [UInt8], line: Int)] {
        capture.entries.compactMap { entry in
            if case .fromDevice(let bytes, _) = entry.line { (bytes, entry.lineNumber) } else { nil }
        }
    }

    // MARK: Garbage

    @Test("the cuff captures the parametrised fault tests run over are there")

    func cuffCapturesExist() {

        #expect(Self.cuffCaptures.count >= 5, "the parametrised cuff tests would run no case")

    }


    @Test("garbage between frames: the same readings as a clean replay, and each burst a counted problem", arguments: [1, 42, 2024] as [UInt64])
    func garbage(seed: UInt64) async throws {
        let played = try await play(Self.oximeter, Self.oneFramePerLine, fault: .garbage(everyLines: 3, bytes: 7, seed: seed), pacing: .stream)
        let lines = Self.deviceLines(played.capture).count
        #expect(played.clean.readings.count == 2)
        #expect(atTime(played.live.readings, played.capture.receivedAt) == atTime(played.clean.readings, played.capture.receivedAt))
        #expect(played.report.garbageInsertions == lines / 3)
        #expect(played.report.garbageBytes == 7 * (lines / 3))
        // Every burst ends before a valid frame, which makes the engine report the bytes it skipped.
        #expect(played.live.problems.count >= played.clean.problems.count + played.report.garbageInsertions)
    }

    @Test("garbage is the seed's: the same seed puts the same bytes on the wire, another seed others")
    func garbageIsDeterministic() async throws {
        func wire(seed: UInt64) async throws -> [UInt8] {
            let capture = try Capture.parse("< 01 02\n< 03 04\n< 05 06\n", file: "noise.capture")
            let terminal = try PseudoTerminal()
            let player = try CapturePlayer(capture: capture, profile: nil, terminal: terminal,
                                           options: PlaybackOptions(responseTimeout: .seconds(5), fault: .garbage(everyLines: 2, bytes: 5, seed: seed)))
            let port = try HostPort(path: terminal.slavePath)
            player.start()
            let bytes = try await DedicatedThread.run(name: "host") { () -> Result<[UInt8], HostFailure> in
                do {
                    var reader = HostReader(port)
                    return .success(try reader.take(11, within: 30_000))
                } catch let failure as HostFailure { return .failure(failure) } catch { return .failure(HostFailure("\(error)")) }
            }.get()
            let report = try await player.outcome().get()
            #expect(report.garbageInsertions == 1)
            #expect(report.garbageBytes == 5)
            #expect(report.deviceBytes == 6)
            return bytes
        }
        let first = try await wire(seed: 7)
        let again = try await wire(seed: 7)
        let other = try await wire(seed: 8)
        // The burst goes before the second line, between the recorded lines.
        #expect(Array(first[0..<2]) == [0x01, 0x02])
        #expect(Array(first[7...]) == [0x03, 0x04, 0x05, 0x06])
        #expect(first == again)
        #expect(Array(other[0..<2]) == [0x01, 0x02] && Array(other[7...]) == [0x03, 0x04, 0x05, 0x06])
        #expect(Array(first[2..<7]) != Array(other[2..<7]))
    }

    @Test("garbage for a HID profile is whole reports")
    func garbageInWholeReports() async throws {
        let profile = try ProfileLoader.load(file: Self.cuff, expectedID: "omron/hem-790it")
        let capture = try Capture.parse("< 02 4F 4B 00 00 00 00 00\n", file: "report.capture")
        let terminal = try PseudoTerminal()
        let player = try CapturePlayer(capture: capture, profile: profile, terminal: terminal,
                                       options: PlaybackOptions(responseTimeout: .seconds(30), fault: .garbage(everyLines: 1, bytes: 3, seed: 1)))
        let port = try HostPort(path: terminal.slavePath)
        player.start()
        let reads = try await port.reads(2, within: 30)
        let report = try await player.outcome().get()
        // HID lines are paced one per read: the noise is a read (a report) of its own.
        #expect(reads.map(\.count) == [8, 8])
        #expect(reads.last == [0x02, 0x4F, 0x4B, 0x00, 0x00, 0x00, 0x00, 0x00])
        #expect(report.garbageBytes == 8)
    }

    // MARK: Slow bytes

    @Test("slow bytes: frames arrive in pieces and decode to the same readings",
          arguments: [FaultModeTests.oneFramePerLine, FaultModeTests.twentyByteLines])
    func slow(capture: String) async throws {
        let played = try await play(Self.oximeter, capture, fault: .slowBytes(perByte: .microseconds(500)), pacing: .stream)
        #expect(atTime(played.live.readings, played.capture.receivedAt) == atTime(played.clean.readings, played.capture.receivedAt))
        #expect(played.live.problems.map(\.field) == played.clean.problems.map(\.field))
        #expect(played.report.deviceBytes == Self.deviceLines(played.capture).reduce(0) { $0 + $1.bytes.count })
    }

    @Test("slow bytes over HID: the request/response session downloads the same readings")
    func slowCuff() async throws {
        let played = try await play(Self.cuff, Self.twoReadings, fault: .slowBytes(perByte: .microseconds(200)))
        #expect(played.clean.readings.count == 2)
        #expect(atTime(played.live.readings, played.capture.receivedAt) == atTime(played.clean.readings, played.capture.receivedAt))
        #expect(played.live.problems.isEmpty)
    }

    // MARK: Wrong checksums

    @Test("a wrong checksum drops exactly the corrupted frames, counted, and the rest decode")
    func wrongChecksumOneFramePerLine() async throws {
        let played = try await play(Self.oximeter, Self.oneFramePerLine, fault: .wrongChecksum(everyLines: 6), pacing: .stream)
        let intact = Self.replay(played.capture, profile: played.profile) { $0 % 6 != 0 }
        // Line 6 carries the first reading, line 19 the second: one is lost, one stays.
        #expect(played.clean.readings.count == 2)
        #expect(intact.readings.count == 1)
        #expect(atTime(played.live.readings, played.capture.receivedAt) == atTime(intact.readings, played.capture.receivedAt))
        #expect(played.report.corruptedLines == 3)
        let checksumProblems = played.live.problems.filter { $0.field == "checksum" }
        #expect(checksumProblems.count == played.report.corruptedLines)
    }

    @Test("a wrong checksum in frames that straddle lines: never a reading with a wrong value, always a problem")
    func wrongChecksumStraddling() async throws {
        let played = try await play(Self.oximeter, Self.twentyByteLines, fault: .wrongChecksum(everyLines: 3), pacing: .stream)
        let clean = atTime(played.clean.readings, played.capture.receivedAt)
        for reading in atTime(played.live.readings, played.capture.receivedAt) {
            #expect(clean.contains(reading), "a reading the clean replay does not have: the corruption got through")
        }
        #expect(played.report.corruptedLines == Self.deviceLines(played.capture).count / 3)
        #expect(played.live.problems.count >= played.clean.problems.count + 1)
    }

    /// Intervals of at least 3 lines: an Omron answer spans up to 3 reports, and its XOR checksum cannot
    /// see the same bit flipped in two of its bytes (the flips cancel), so two corruptions in one answer
    /// would test the checksum, not the host.
    @Test("HID request/response with wrong checksums: the host asks again, gets the recorded answer, and downloads the same readings",
          arguments: FaultModeTests.cuffCaptures, [3, 4])
    func wrongChecksumCuff(capture: String, every: Int) async throws {
        let played = try await play(Self.cuff, capture, fault: .wrongChecksum(everyLines: every))
        #expect(atTime(played.live.readings, played.capture.receivedAt) == atTime(played.clean.readings, played.capture.receivedAt))
        #expect(played.report.corruptedLines == Self.deviceLines(played.capture).filter { !$0.bytes.isEmpty }.count / every)
        // Every problem beyond the clean replay's is a checksum the host caught, and each made it ask again.
        let added = played.live.problems.filter { $0.field == "checksum" }
        #expect(played.live.problems.count == played.clean.problems.count + added.count)
        #expect(added.count == played.report.repeatedReplies)
        #expect(played.report.unexpectedHostBytes.isEmpty)
    }

    @Test("a corrupted HID answer is asked for again at least once in a download")
    func cuffAsksAgain() async throws {
        let played = try await play(Self.cuff, Self.twoReadings, fault: .wrongChecksum(everyLines: 3))
        #expect(played.report.repeatedReplies > 0)
        #expect(played.live.sends.count > played.capture.entries.filter { if case .toDevice = $0.line { true } else { false } }.count)
    }

    // MARK: Hang-up

    @Test("a hang-up mid-frame: the host sees it, keeps the readings it completed, and makes no partial one",
          arguments: [6, 7, 19])
    func disconnect(afterLines: Int) async throws {
        let played = try await play(Self.oximeter, Self.oneFramePerLine, fault: .disconnectMidFrame(afterLines: afterLines), pacing: .stream)
        let lines = Self.deviceLines(played.capture)
        let before = Self.replay(played.capture, profile: played.profile) { $0 < afterLines }
        let live = atTime(played.live.readings, played.capture.receivedAt)
        #expect(played.live.hungUp)
        #expect(played.report.hungUp)
        #expect(played.report.hangUpLine == lines[afterLines - 1].line)
        #expect(played.report.bytesBeforeHangUp == lines[afterLines - 1].bytes.count / 2)
        #expect(played.report.deviceBytes == lines.prefix(afterLines - 1).reduce(0) { $0 + $1.bytes.count } + played.report.bytesBeforeHangUp)
        #expect(live == atTime(before.readings, played.capture.receivedAt))
        #expect(live == Array(atTime(played.clean.readings, played.capture.receivedAt).prefix(live.count)))
        #expect(played.report.repetitions == 0)
    }

    @Test("a hang-up in the middle of a HID answer: the first record is kept, the cut one is not")
    func disconnectCuff() async throws {
        let capture = try Capture.load(file: Self.twoReadings)
        let lines = Self.deviceLines(capture)
        // The second report of the last record's three-report answer (then END's OK and OFF follow).
        let cut = lines.count - 3
        let played = try await play(Self.cuff, Self.twoReadings, fault: .disconnectMidFrame(afterLines: cut))
        let clean = atTime(played.clean.readings, played.capture.receivedAt)
        #expect(played.live.hungUp)
        #expect(played.report.hangUpLine == lines[cut - 1].line)
        #expect(clean.count == 2)
        #expect(atTime(played.live.readings, played.capture.receivedAt) == [clean[0]])
    }

    // MARK: HID framing

    @Test("HID hosts write the report id first; a numbered report's id is expected too", arguments: [nil, 5] as [Int?])
    func hidReportID(reportID: Int?) async throws {
        let played = try await play(Self.cuff, Self.twoReadings, fault: .none) { profile in
            profile.transport = .hidraw(HIDSettings(reportSize: 8, reportID: reportID, featureReports: [[0x74, 0xBC]]))
        }
        let hostLines = played.capture.entries.compactMap { entry -> [UInt8]? in
            if case .toDevice(let bytes, _) = entry.line { bytes } else { nil }
        }
        #expect(atTime(played.live.readings, played.capture.receivedAt) == atTime(played.clean.readings, played.capture.receivedAt))
        #expect(played.live.sends == hostLines)
        // The report id is framing, not part of what the capture shows.
        #expect(played.report.hostBytes == hostLines.reduce(0) { $0 + $1.count })
    }

    @Test("a HID host that leaves out the report id gets a mismatch that says what was expected")
    func hidWithoutReportID() async throws {
        let profile = try ProfileLoader.load(file: Self.cuff, expectedID: "omron/hem-790it")
        let capture = try Capture.load(file: Self.twoReadings)
        let first = try #require(capture.entries.first { if case .toDevice = $0.line { true } else { false } })
        guard case .toDevice(let report, _) = first.line else { return }
        let terminal = try PseudoTerminal()
        let player = try CapturePlayer(capture: capture, profile: profile, terminal: terminal,
                                       options: PlaybackOptions(responseTimeout: .seconds(3)))
        let port = try HostPort(path: terminal.slavePath)
        player.start()
        try port.write(report)
        guard case .failure(let error) = await player.outcome() else { Issue.record("an output report without its id was accepted"); return }
        #expect(error.kind == .mismatch)
        #expect(error.line == first.lineNumber)
        #expect(error.expected == [0x00] + report)
        #expect(error.description.contains("(report id 00, then the capture's report)"))
    }

    // MARK: Options

    @Test("fault modes that cannot be played are refused with the reason", arguments: [
        FaultMode.garbage(everyLines: 0, bytes: 4, seed: 1), .garbage(everyLines: 2, bytes: 0, seed: 1),
        .disconnectMidFrame(afterLines: 0), .wrongChecksum(everyLines: -1), .slowBytes(perByte: .seconds(-1)),
    ])
    func invalidFaults(fault: FaultMode) throws {
        let capture = try Capture.parse("< 01\n", file: "one.capture")
        let terminal = try PseudoTerminal()
        #expect(throws: SimulatorError.self) {
            _ = try CapturePlayer(capture: capture, profile: nil, terminal: terminal, options: PlaybackOptions(fault: fault))
        }
        do {
            _ = try CapturePlayer(capture: capture, profile: nil, terminal: terminal, options: PlaybackOptions(fault: fault))
        } catch {
            #expect(error.kind == .invalidOptions)
        }
    }

    @Test("forever: a request/response capture waits for each session's host, however late")
    func foreverWaitsForTheNextHost() async throws {
        let capture = try Capture.parse("> 01\n< 02\n", file: "session.capture")
        let terminal = try PseudoTerminal()
        let player = try CapturePlayer(capture: capture, profile: nil, terminal: terminal,
                                       options: PlaybackOptions(responseTimeout: .milliseconds(200), repeatForever: true))
        let port = try HostPort(path: terminal.slavePath)
        player.start()
        let received = try await DedicatedThread.run(name: "host") { () -> Result<[UInt8], HostFailure> in
            do {
                var reader = HostReader(port)
                var all: [UInt8] = []
                for _ in 0..<3 {
                    // Longer than the response timeout: a new session may start whenever its host likes.
                    _ = poll(nil, 0, 400)
                    try port.write([0x01])
                    all += try reader.take(1, within: 30_000)
                }
                return .success(all)
            } catch let failure as HostFailure { return .failure(failure) } catch { return .failure(HostFailure("\(error)")) }
        }.get()
        #expect(received == [0x02, 0x02, 0x02])
        #expect(!player.isFinished)
        player.stop()
        guard case .failure(let error) = await player.outcome() else { Issue.record("a forever playback ended by itself"); return }
        #expect(error.kind == .stopped)
        #expect(player.progress.repetitions == 3)
        #expect(player.progress.hostBytes == 3)
    }
}
