import Foundation
import Testing
import VitalModel
import ProfileEngine
import ProfileCatalog
import VitalGateTestKit
@testable import DeviceSimulator

/// The simulator against a real engine session: what a device driver gets over the pseudo-terminal must
/// be what `Replay` gets from the same capture.
@Suite("capture player")
struct CapturePlayerTests {
    @Test("a live engine session over the pseudo-terminal reads what Replay reads", arguments: PlaybackCase.all)
    func liveEqualsReplay(_ playback: PlaybackCase) async throws {
        let profile = try ProfileLoader.load(file: playback.profileFile, expectedID: ProfileCatalog.expectedID(for: playback.profileFile))
        let capture = try Capture.load(file: playback.captureFile)
        let replay = Replay.run(capture, profile: profile)
        try #require(replay.scriptDifferences.isEmpty, "the capture does not replay cleanly: \(replay.scriptDifferences)")

        let terminal = try PseudoTerminal()
        let player = try CapturePlayer(capture: capture, profile: profile, terminal: terminal,
                                       options: PlaybackOptions(responseTimeout: .seconds(5), deadline: .seconds(60)))
        let port = try HostPort(path: terminal.slavePath)
        player.start()
        let live = try await DedicatedThread.run(name: "host") {
            driveEngine(profile: profile, capture: capture, port: port, player: player)
        }.get()
        let outcome = try await player.outcome().get()

        #expect(atTime(live.readings, capture.receivedAt) == atTime(replay.readings, capture.receivedAt))
        #expect(live.problems.map(\.field) == replay.problems.map(\.field))
        let hostLines = capture.entries.compactMap { entry -> [UInt8]? in
            if case .toDevice(let bytes, _) = entry.line { bytes } else { nil }
        }
        #expect(live.sends == hostLines)
        #expect(outcome.hostBytes == hostLines.reduce(0) { $0 + $1.count })
        #expect(outcome.unexpectedHostBytes.isEmpty)
    }

    @Test("the fixture's replay holds what its source states, so the live comparison compares readings")
    func fixtureIsNotEmpty() throws {
        let profile = try ProfileLoader.load(file: PlaybackCase.scriptedProfile)
        let capture = try Capture.load(file: PlaybackCase.scriptedCapture)
        let replay = Replay.run(capture, profile: profile)
        let expected = try ExpectedReadings.load(file: ProfileCatalog.expectedFile(for: PlaybackCase.scriptedCapture))
        #expect(replay.readings.count == 2)
        #expect(expected.differences(from: replay) == [])
        #expect(replay.scriptDifferences == [])
    }

    /// Plays the fixture while the host sends `requests` instead of the recorded ones.
    func playAgainst(_ requests: [[UInt8]], responseTimeout: Duration = .seconds(3)) async throws -> (Capture, Result<PlaybackReport, SimulatorError>) {
        let profile = try ProfileLoader.load(file: PlaybackCase.scriptedProfile)
        let capture = try Capture.load(file: PlaybackCase.scriptedCapture)
        let terminal = try PseudoTerminal()
        let player = try CapturePlayer(capture: capture, profile: profile, terminal: terminal,
                                       options: PlaybackOptions(responseTimeout: responseTimeout, deadline: .seconds(20)))
        let port = try HostPort(path: terminal.slavePath)
        // The requests are queued before the player starts, so its response timeout never includes the
        // time a thread took to start.
        try await DedicatedThread.run(name: "host") { () -> Result<Void, HostFailure> in
            do {
                for request in requests { try port.write(request) }
                return .success(())
            } catch let failure as HostFailure { return .failure(failure) } catch { return .failure(HostFailure("\(error)")) }
        }.get()
        player.start()
        return (capture, await player.outcome())
    }

    static let request: [UInt8] = Array("VG-TEST".utf8)
    static let wrong: [UInt8] = Array("VG-TESX".utf8)

    @Test("a wrong request is reported with the capture line it differs from", arguments: [0, 1])
    func mismatch(wrongAt index: Int) async throws {
        let requests = index == 0 ? [Self.wrong] : [Self.request, Self.wrong]
        let (capture, outcome) = try await playAgainst(requests)
        let hostLines = capture.entries.filter { if case .toDevice = $0.line { true } else { false } }
        guard case .failure(let error) = outcome else { Issue.record("the playback accepted a wrong request: \(outcome)"); return }
        #expect(error.kind == .mismatch)
        #expect(error.line == hostLines[index].lineNumber)
        #expect(error.file == capture.file)
        #expect(error.expected == Self.request)
        #expect(error.received == Self.wrong)
        #expect(error.description.contains("\(capture.file):\(hostLines[index].lineNumber): the host sent 56 47 2D 54 45 53 58"))
    }

    @Test("a host that sends nothing gets a timeout naming the awaited line, not a hang")
    func silentHost() async throws {
        let started = ContinuousClock.now
        let (capture, outcome) = try await playAgainst([], responseTimeout: .milliseconds(300))
        guard case .failure(let error) = outcome else { Issue.record("the playback succeeded without a host: \(outcome)"); return }
        let first = capture.entries.first { if case .toDevice = $0.line { true } else { false } }
        #expect(error.kind == .timeout)
        #expect(error.line == first?.lineNumber)
        #expect(error.received.isEmpty)
        // Not a timing measurement: without the response timeout the playback would run into its 20 s
        // deadline, which the error kind above already tells apart.
        _ = started
    }

    @Test("half a request is reported as what arrived")
    func partialRequest() async throws {
        let (_, outcome) = try await playAgainst([Array(Self.request.prefix(3))], responseTimeout: .milliseconds(300))
        guard case .failure(let error) = outcome else { Issue.record("a partial request was accepted: \(outcome)"); return }
        #expect(error.kind == .timeout)
        #expect(error.received == Array(Self.request.prefix(3)))
        #expect(error.description.contains("received 56 47 2D"))
    }

    @Test("@timeout stays silent longer than the engine waits at that point")
    func timeoutSilence() throws {
        let profile = try ProfileLoader.load(file: PlaybackCase.scriptedProfile)
        let capture = try Capture.load(file: PlaybackCase.scriptedCapture)
        let engine = try #require(profile.engine as? FramesEngine)
        guard case .exchange(let exchange) = try #require(engine.spec.script.first) else { Issue.record("no exchange"); return }
        let silences = CapturePlayer.timeoutSilences(capture, profile: profile, fallback: 2000)
        let line = try #require(capture.entries.first { $0.line == .timeout }?.lineNumber)
        let silence = try #require(silences[line])
        #expect(silence > exchange.timeoutMilliseconds)
        #expect(silence < exchange.timeoutMilliseconds + 1000)
        // Without a profile there is no engine timeout to outlast: the fallback applies.
        #expect(CapturePlayer.timeoutSilences(capture, profile: nil, fallback: 1234)[line] == 1234)
    }

    @Test("stop() ends a playback at once")
    func stop() async throws {
        let capture = try Capture.parse("< 01\n@wait 60000\n< 02\n", file: "wait.capture")
        let terminal = try PseudoTerminal()
        let player = try CapturePlayer(capture: capture, profile: nil, terminal: terminal)
        player.start()
        player.stop()
        let outcome = await Self.outcome(of: player)
        guard case .failure(let error)? = outcome else { Issue.record("a stopped playback did not fail as stopped: \(String(describing: outcome))"); return }
        #expect(error.kind == .stopped)
    }

    /// The playback's outcome, or nil if it has not ended within 45 s: a liveness bound, not a
    /// measurement (the captures below wait 60 s unless ended early). It is waited for on a thread of its
    /// own, so time other tests keep the concurrency pool busy does not count.
    static func outcome(of player: CapturePlayer) async -> Result<PlaybackReport, SimulatorError>? {
        await DedicatedThread.run(name: "wait for the player") { player.wait(timeout: .seconds(45)) }
    }

    @Test("the overall deadline ends a long capture with an error naming the line")
    func deadline() async throws {
        let capture = try Capture.parse("< 01\n@wait 60000\n< 02\n", file: "wait.capture")
        let terminal = try PseudoTerminal()
        let player = try CapturePlayer(capture: capture, profile: nil, terminal: terminal,
                                       options: PlaybackOptions(deadline: .milliseconds(200)))
        player.start()
        let outcome = await Self.outcome(of: player)
        guard case .failure(let error)? = outcome else { Issue.record("the deadline did not apply: \(String(describing: outcome))"); return }
        #expect(error.kind == .deadline)
        #expect(error.line == 2)
    }

    @Test("--repeat plays the capture again on the same terminal")
    func repeats() async throws {
        let capture = try Capture.parse("< AA 55\n> 01\n< 02\n", file: "repeat.capture")
        let terminal = try PseudoTerminal()
        let player = try CapturePlayer(capture: capture, profile: nil, terminal: terminal,
                                       options: PlaybackOptions(responseTimeout: .seconds(3), repeatCount: 3))
        let port = try HostPort(path: terminal.slavePath)
        player.start()
        let received = try await DedicatedThread.run(name: "host") { () -> Result<[UInt8], HostFailure> in
            do {
                var reader = HostReader(port)
                var all: [UInt8] = []
                for _ in 0..<3 {
                    all += try reader.take(2, within: 30_000)
                    try port.write([0x01])
                    all += try reader.take(1, within: 30_000)
                }
                return .success(all)
            } catch let failure as HostFailure { return .failure(failure) } catch { return .failure(HostFailure("\(error)")) }
        }.get()
        #expect(received == [0xAA, 0x55, 0x02, 0xAA, 0x55, 0x02, 0xAA, 0x55, 0x02])
        let report = try await player.outcome().get()
        #expect(report.repetitions == 3)
        #expect(report.deviceBytes == 9)
        #expect(report.hostBytes == 3)
    }

    @Test("host bytes after the last line are reported, not ignored")
    func trailingHostBytes() async throws {
        let capture = try Capture.parse("> 01\n< 02\n", file: "trailing.capture")
        let terminal = try PseudoTerminal()
        let player = try CapturePlayer(capture: capture, profile: nil, terminal: terminal)
        let port = try HostPort(path: terminal.slavePath)
        // Both requests arrive before the player looks: the second must be kept, not swallowed.
        try port.write([0x01, 0x7E])
        let report = try await player.outcome().get()
        #expect(report.unexpectedHostBytes == [0x7E])
    }

    @Test("one line per read: a host reading notification by notification gets each line alone")
    func oneLinePerRead() async throws {
        let capture = try Capture.parse("< 01 02\n< 03\n< 04 05 06\n", file: "paced.capture")
        let terminal = try PseudoTerminal()
        let player = try CapturePlayer(capture: capture, profile: nil, terminal: terminal,
                                       options: PlaybackOptions(responseTimeout: .seconds(30), pacing: .oneLinePerRead))
        let port = try HostPort(path: terminal.slavePath)
        player.start()
        let reads = try await port.reads(3, within: 30)
        #expect(reads == [[0x01, 0x02], [0x03], [0x04, 0x05, 0x06]])
        _ = try await player.outcome().get()
    }

    @Test("a paced line nobody reads ends in a timeout naming it")
    func pacedLineUnread() async throws {
        let capture = try Capture.parse("# nobody reads\n< 01 02\n< 03\n", file: "unread.capture")
        let terminal = try PseudoTerminal()
        let player = try CapturePlayer(capture: capture, profile: nil, terminal: terminal,
                                       options: PlaybackOptions(responseTimeout: .milliseconds(200), pacing: .oneLinePerRead))
        guard case .failure(let error) = await player.outcome() else { Issue.record("an unread paced line was accepted"); return }
        #expect(error.kind == .timeout)
        #expect(error.line == 2)
    }

    @Test("message transports are paced one line per read, streams are not")
    func pacingFollowsTheTransport() throws {
        #expect(CapturePlayer.pacing(for: .ble(BLESettings(characteristics: []))) == .oneLinePerRead)
        #expect(CapturePlayer.pacing(for: .hidraw(HIDSettings(reportSize: 8))) == .oneLinePerRead)
        #expect(CapturePlayer.pacing(for: .serial(SerialSettings(baud: 9600))) == .stream)
        #expect(CapturePlayer.pacing(for: .rfcomm(RFCOMMSettings(channel: 1))) == .stream)
        #expect(CapturePlayer.pacing(for: nil) == .stream)
    }
}
