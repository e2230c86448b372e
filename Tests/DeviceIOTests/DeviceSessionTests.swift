import Foundation
import Testing
import VitalModel
import ProfileEngine
import ProfileCatalog
import DeviceSimulator
import VitalGateTestKit
@testable import DeviceIO
#if canImport(Glibc)
import Glibc
#endif

/// DeviceSession end to end over pseudo-terminals: real ports, real engines, real captures.
@Suite("device session")
struct DeviceSessionTests {
    /// The engine's own order of events for a capture, fed one device line at a time as the ports
    /// deliver them: for each reading, how many requests the engine had sent before it.
    static func sendsBeforeEachReading(_ capture: Capture, profile: DeviceProfile) -> [Int] {
        var session = profile.engine.makeSession(device: capture.device ?? Replay.defaultDevice(for: profile), profileID: profile.id)
        var sends = 0
        var result: [Int] = []
        func absorb(_ events: [EngineEvent]) {
            for event in events {
                if case .send = event { sends += 1 }
                if case .reading = event { result.append(sends) }
            }
        }
        absorb(session.start(at: capture.receivedAt))
        for entry in capture.entries {
            switch entry.line {
            case .fromDevice(let bytes, _): absorb(session.receive(bytes, channel: nil, at: capture.receivedAt))
            case .timeout: absorb(session.timeout(at: capture.receivedAt))
            case .toDevice, .wait: break
            }
        }
        return result
    }

    static func hostLines(_ capture: Capture) -> [[UInt8]] {
        capture.entries.compactMap { if case .toDevice(let bytes, _) = $0.line { bytes } else { nil } }
    }

    static func deviceLines(_ capture: Capture) -> [[UInt8]] {
        capture.entries.compactMap { if case .fromDevice(let bytes, _) = $0.line { bytes } else { nil } }
    }

    /// Runs one Omron session on a fresh pseudo-terminal whose device side the capture player plays
    /// with hidraw framing (each host report arrives with its report id first).
    static func omronSession(_ capture: Capture, profile: DeviceProfile, sink: RecordingSink, log: BoundaryLog? = nil,
                             fault: FaultMode = .none) async throws -> (SessionOutcome, Result<PlaybackReport, SimulatorError>) {
        let settings = try OmronFixture.settings(profile)
        let terminal = try PseudoTerminal()
        let player = try CapturePlayer(capture: capture, profile: profile, terminal: terminal,
                                       options: PlaybackOptions(responseTimeout: .seconds(10), deadline: .seconds(60), fault: fault))
        let port = try HidrawPort.open(path: terminal.slavePath, settings: settings)
        defer { port.close() }
        #expect(port.skippedFeatureReports == settings.featureReports.count)
        let link: any DeviceLink = log.map { SpyLink(port, log: $0) } ?? port
        player.start()
        // After OFF the monitor says nothing more; a short quiet period still exercises the draining.
        let session = DeviceSession(profile: profile, device: capture.device ?? Replay.defaultDevice(for: profile),
                                    link: link, sink: sink, quietAfterFinish: .milliseconds(200))
        let outcome = await runSession(session)
        // A session that ended early leaves the player waiting for a request: end it. One that finished
        // is not stopped: the player may still be seeing its last reply read.
        if outcome.end != .finished(complete: true) { player.stop() }
        return (outcome, await player.outcome())
    }

    // MARK: Omron HEM-790IT over hidraw framing

    @Test("an Omron HEM-790IT session over the capture player (hidraw framing) stores what Replay reads", arguments: OmronFixture.captureFiles)
    func omronEndToEnd(_ captureFile: String) async throws {
        let profile = try OmronFixture.profile()
        let capture = try Capture.load(file: captureFile)
        let replay = Replay.run(capture, profile: profile)
        try #require(replay.scriptDifferences.isEmpty, "the capture does not replay cleanly: \(replay.scriptDifferences)")
        let sink = RecordingSink()

        let (outcome, played) = try await Self.omronSession(capture, profile: profile, sink: sink)

        #expect(outcome.end == .finished(complete: true))
        #expect(atTime(sink.readings, capture.receivedAt) == atTime(replay.readings, capture.receivedAt))
        let settings = try OmronFixture.settings(profile)
        let hostLines = Self.hostLines(capture)
        #expect(outcome.counters.readings == replay.readings.count)
        #expect(outcome.counters.problems == replay.problems.count)
        // The engine's bytes; the report id byte hidraw adds is framing, not counted.
        #expect(outcome.counters.bytesOut == hostLines.reduce(0) { $0 + $1.count })
        #expect(hostLines.allSatisfy { $0.count == settings.reportSize })
        #expect(outcome.counters.bytesIn == Self.deviceLines(capture).reduce(0) { $0 + $1.count })
        let report = try played.get()
        #expect(report.hostBytes == outcome.counters.bytesOut)
        #expect(report.unexpectedHostBytes.isEmpty)
    }

    @Test("every reading is stored before the request that follows it is written")
    func commitBeforeAcknowledge() async throws {
        let profile = try OmronFixture.profile()
        let capture = try Capture.load(file: try #require(OmronFixture.captureFiles.first { $0.hasSuffix("790it-two-readings.capture") }))
        let expected = Self.sendsBeforeEachReading(capture, profile: profile)
        try #require(expected.count == 2)
        let log = BoundaryLog()
        let sink = RecordingSink(log: log)

        let (outcome, _) = try await Self.omronSession(capture, profile: profile, sink: sink, log: log)
        #expect(outcome.end == .finished(complete: true))

        var writes = 0
        var stored = 0
        for event in log.all {
            switch event {
            case .wrote: writes += 1
            case .stored(let count):
                for index in stored..<(stored + count) {
                    // Exactly the requests before the reading went out before it was stored; the one
                    // that follows it (next record, or END) only after.
                    #expect(writes == expected[index], "reading \(index) was stored after \(writes) writes; the engine sent \(expected[index]) before it")
                }
                stored += count
            case .storeRefused: Issue.record("the sink refused nothing in this test")
            }
        }
        #expect(stored == 2)
        #expect(writes == Self.hostLines(capture).count)
    }

    @Test("a sink that cannot store ends the session, and nothing more is sent to the device")
    func storeFailureStopsTheConversation() async throws {
        let profile = try OmronFixture.profile()
        let capture = try Capture.load(file: try #require(OmronFixture.captureFiles.first { $0.hasSuffix("790it-one-reading.capture") }))
        let expected = Self.sendsBeforeEachReading(capture, profile: profile)
        try #require(expected.count == 1)
        let log = BoundaryLog()
        let sink = RecordingSink(log: log, refuse: true)

        let (outcome, _) = try await Self.omronSession(capture, profile: profile, sink: sink, log: log)

        guard case .storeFailed(let message) = outcome.end else { Issue.record("the session ended \(outcome.end)"); return }
        #expect(message.contains("refused to store"))
        #expect(outcome.counters.readings == 0)
        let events = log.all
        let refusal = try #require(events.firstIndex(of: .storeRefused(count: 1)))
        #expect(events[refusal...].dropFirst().isEmpty, "after the refused store the session wrote \(events[refusal...].dropFirst())")
        // The END that would follow the reading (and switch the monitor off) was never sent.
        #expect(events[..<refusal].count == expected[0])
        #expect(expected[0] < Self.hostLines(capture).count)
    }

    @Test("unplugging in the middle of a record ends the session as disconnected, with no partial reading; a new session then completes")
    func unplugMidRecord() async throws {
        let profile = try OmronFixture.profile()
        let capture = try Capture.load(file: try #require(OmronFixture.captureFiles.first { $0.hasSuffix("790it-one-reading.capture") }))
        let replay = Replay.run(capture, profile: profile)
        try #require(replay.readings.count == 1)
        // The record's answer spans several reports: hang up half-way through the one before the last.
        let completing = try #require(Self.lineCompletingFirstReading(capture, profile: profile))
        try #require(completing >= 1)
        let sink = RecordingSink()

        // Device lines count from 1 there: line `completing` is the report before the completing one.
        let (outcome, played) = try await Self.omronSession(capture, profile: profile, sink: sink,
                                                            fault: .disconnectMidFrame(afterLines: completing))

        guard case .disconnected(let error) = outcome.end else { Issue.record("the session ended \(outcome.end)"); return }
        #expect(error.isDisconnect)
        #expect(try played.get().hungUp)
        #expect(sink.readings.isEmpty)
        #expect(outcome.counters.readings == 0)

        let again = RecordingSink()
        let (second, _) = try await Self.omronSession(capture, profile: profile, sink: again)
        #expect(second.end == .finished(complete: true))
        #expect(atTime(again.readings, capture.receivedAt) == atTime(replay.readings, capture.receivedAt))
    }

    /// The index (among device lines) of the line whose bytes make the engine emit its first reading.
    static func lineCompletingFirstReading(_ capture: Capture, profile: DeviceProfile) -> Int? {
        var session = profile.engine.makeSession(device: capture.device ?? Replay.defaultDevice(for: profile), profileID: profile.id)
        _ = session.start(at: capture.receivedAt)
        for (index, bytes) in deviceLines(capture).enumerated() {
            let events = session.receive(bytes, channel: nil, at: capture.receivedAt)
            if events.contains(where: { if case .reading = $0 { true } else { false } }) { return index }
        }
        return nil
    }

    // MARK: Serial

    @Test("a scripted serial session over the capture player retries after a timeout and stores what Replay reads")
    func serialWithCapturePlayer() async throws {
        let profile = try ScriptedSerialFixture.profile()
        let capture = try Capture.load(file: ScriptedSerialFixture.captureFile)
        let replay = Replay.run(capture, profile: profile)
        try #require(replay.readings.count == 2)
        let terminal = try PseudoTerminal()
        let player = try CapturePlayer(capture: capture, profile: profile, terminal: terminal,
                                       options: PlaybackOptions(responseTimeout: .seconds(10), deadline: .seconds(60)))
        // Open before playing: the open drops whatever was queued before it.
        let port = try SerialPort.open(path: terminal.slavePath, settings: try ScriptedSerialFixture.settings(profile))
        defer { port.close() }
        #expect(port.skippedLineControl == 0)
        player.start()
        let sink = RecordingSink()
        // The capture's pauses are 50 ms: five seconds of quiet means the device has said everything, with room for a stalled machine.
        let session = DeviceSession(profile: profile, device: capture.device ?? Replay.defaultDevice(for: profile), link: port,
                                    sink: sink, quietAfterFinish: .seconds(5))

        let outcome = await runSession(session)
        let playback = try await player.outcome().get()

        // The script ends with the first vitals frame; the second comes after it and is kept too.
        #expect(outcome.end == .finished(complete: true))
        #expect(atTime(sink.readings, capture.receivedAt) == atTime(replay.readings, capture.receivedAt))
        #expect(outcome.counters.readings == 2)
        #expect(outcome.counters.timeouts == 1)
        #expect(outcome.counters.bytesIn == Self.deviceLines(capture).reduce(0) { $0 + $1.count })
        let requests = Self.hostLines(capture)
        #expect(outcome.counters.bytesOut == requests.reduce(0) { $0 + $1.count })
        #expect(playback.hostBytes == outcome.counters.bytesOut)
    }

    @Test("with quietAfterFinish zero the session returns as soon as the script ends")
    func returnAtScriptEnd() async throws {
        let profile = try ScriptedSerialFixture.profile()
        let capture = try Capture.load(file: ScriptedSerialFixture.captureFile)
        let replay = Replay.run(capture, profile: profile)
        let terminal = try PseudoTerminal()
        let player = try CapturePlayer(capture: capture, profile: profile, terminal: terminal,
                                       options: PlaybackOptions(responseTimeout: .seconds(10), deadline: .seconds(60)))
        let port = try SerialPort.open(path: terminal.slavePath, settings: try ScriptedSerialFixture.settings(profile))
        defer { port.close() }
        player.start()
        let sink = RecordingSink()
        let session = DeviceSession(profile: profile, device: capture.device ?? Replay.defaultDevice(for: profile), link: port,
                                    sink: sink, quietAfterFinish: .zero)
        let outcome = await runSession(session)
        _ = await player.outcome()

        #expect(outcome.end == .finished(complete: true))
        // The first vitals frame ends the script; frames decoded in the same read are stored with it,
        // the one after the capture's 50 ms pause is not waited for.
        let stored = atTime(sink.readings, capture.receivedAt)
        // (Whether the frame after the pause is read too depends on scheduling, so only the prefix is checked.)
        #expect(!stored.isEmpty)
        #expect(stored == Array(atTime(replay.readings, capture.receivedAt).prefix(stored.count)))
    }

    @Test("the Omron captures the parametrised session tests run over are there")
    func omronCapturesExist() {
        #expect(OmronFixture.captureFiles.count >= 5, "the parametrised Omron tests would run no case")
    }

    @Test("a Contec CMS50D+ stream over a serial terminal: the start command, then every reading Replay reads",
          arguments: ["titinho-cms50e-live.capture", "resync-garbage.capture"])
    func contecEndToEnd(_ name: String) async throws {
        let profile = try ContecFixture.profile()
        let capture = try ContecFixture.capture(name)
        let replay = Replay.run(capture, profile: profile)
        try #require(replay.scriptDifferences.isEmpty, "the capture does not replay cleanly: \(replay.scriptDifferences)")
        try #require(!replay.readings.isEmpty)
        let terminal = try PseudoTerminal()
        let player = try CapturePlayer(capture: capture, profile: profile, terminal: terminal,
                                       options: PlaybackOptions(responseTimeout: .seconds(10), deadline: .seconds(60)))
        let port = try SerialPort.open(path: terminal.slavePath, settings: try ContecFixture.settings(profile))
        defer { port.close() }
        player.start()
        let sink = RecordingSink()
        let problems = Collector<DecodeError>()
        // The profile streams (`frames.stream`): the script's end does not end the session, the device's
        // silence does, after the capture's keep-alives, so the session ends "stopped answering".
        let session = DeviceSession(profile: profile, device: capture.device ?? Replay.defaultDevice(for: profile), link: port,
                                    sink: sink, onProblem: { problems.append($0) }, quietAfterFinish: .zero)

        let outcome = await runSession(session)
        let playback = try await player.outcome().get()

        #expect(outcome.end == .finished(complete: false))
        #expect(replay.finished == false)
        // The profile keeps at most one reading a second; the capture's waits are longer than that and
        // the packets between them arrive within it, live as in Replay.
        #expect(atTime(sink.readings, capture.receivedAt) == atTime(replay.readings, capture.receivedAt))
        #expect(problems.all.map(\.field) == replay.problems.map(\.field))
        #expect(outcome.counters.bytesIn == Self.deviceLines(capture).reduce(0) { $0 + $1.count })
        #expect(outcome.counters.bytesOut == Self.hostLines(capture).reduce(0) { $0 + $1.count })
        #expect(playback.hostBytes == outcome.counters.bytesOut)
        #expect(playback.unexpectedHostBytes.isEmpty)
    }

    @Test("a streaming device unplugged mid-stream: the session is disconnected, the readings before it are stored, none partial")
    func unplugMidStream() async throws {
        let profile = try ContecFixture.profile()
        let capture = try ContecFixture.capture("titinho-cms50e-live.capture")
        let replay = Replay.run(capture, profile: profile)
        try #require(!replay.readings.isEmpty)
        let terminal = try PseudoTerminal()
        // Hang up half way through the 60th packet.
        let player = try CapturePlayer(capture: capture, profile: profile, terminal: terminal,
                                       options: PlaybackOptions(responseTimeout: .seconds(10), deadline: .seconds(60),
                                                                fault: .disconnectMidFrame(afterLines: 60)))
        let port = try SerialPort.open(path: terminal.slavePath, settings: try ContecFixture.settings(profile))
        defer { port.close() }
        player.start()
        let sink = RecordingSink()
        let outcome = await runSession(DeviceSession(profile: profile, device: capture.device ?? Replay.defaultDevice(for: profile),
                                                     link: port, sink: sink, quietAfterFinish: .zero))
        let playback = try await player.outcome().get()

        #expect(playback.hungUp)
        guard case .disconnected(let error) = outcome.end else { Issue.record("the session ended \(outcome.end)"); return }
        #expect(error.isDisconnect)
        // The first packet gave the reading (one a second at most); what arrived before the cut is stored whole.
        #expect(atTime(sink.readings, capture.receivedAt) == atTime(replay.readings, capture.receivedAt))
        #expect(outcome.counters.bytesIn < Self.deviceLines(capture).reduce(0) { $0 + $1.count })
    }

    @Test("unplugging a serial device in the middle of a frame stores no partial reading; a new session on a new terminal completes")
    func unplugSerialMidFrame() async throws {
        let profile = try ScriptedSerialFixture.profile()
        let settings = try ScriptedSerialFixture.settings(profile)
        let capture = try Capture.load(file: ScriptedSerialFixture.captureFile)
        let completing = try #require(Self.lineCompletingFirstReading(capture, profile: profile))
        let identity = Replay.defaultDevice(for: profile)

        func play(_ fault: FaultMode) async throws -> (SessionOutcome, RecordingSink, Result<PlaybackReport, SimulatorError>) {
            let terminal = try PseudoTerminal()
            let player = try CapturePlayer(capture: capture, profile: profile, terminal: terminal,
                                           options: PlaybackOptions(responseTimeout: .seconds(10), deadline: .seconds(60), fault: fault))
            let port = try SerialPort.open(path: terminal.slavePath, settings: settings)
            defer { port.close() }
            player.start()
            let sink = RecordingSink()
            let outcome = await runSession(DeviceSession(profile: profile, device: identity, link: port, sink: sink,
                                                         quietAfterFinish: .seconds(5)))
            player.stop()
            return (outcome, sink, await player.outcome())
        }

        // Half of the frame that holds the first reading (device lines count from 1 there).
        let (outcome, sink, played) = try await play(.disconnectMidFrame(afterLines: completing + 1))
        guard case .disconnected(let error) = outcome.end else { Issue.record("the session ended \(outcome.end)"); return }
        #expect(error.isDisconnect)
        #expect(try played.get().hungUp)
        #expect(sink.readings.isEmpty)
        #expect(outcome.counters.readings == 0)

        let (again, stored, _) = try await play(.none)
        #expect(again.end == .finished(complete: true))
        #expect(atTime(stored.readings, capture.receivedAt) == atTime(Replay.run(capture, profile: profile).readings, capture.receivedAt))
    }

    /// The Viatom PC-60FW engine (no script: it streams) behind a serial transport, as a USB-serial
    /// oximeter would be.
    static func streamingSerialProfile() throws -> DeviceProfile {
        let file = RepositoryPaths.root.appendingPathComponent("DeviceProfiles/viatom/pc-60fw.json").path
        var profile = try ProfileLoader.load(file: file, expectedID: "viatom/pc-60fw")
        profile.transport = .serial(SerialSettings(baud: 115200))
        return profile
    }

    @Test("a streaming session stores readings as they arrive and ends with stop()")
    func streamingUntilStopped() async throws {
        let profile = try Self.streamingSerialProfile()
        let captureFile = try #require(ProfileCatalog.captures(for: profile).first { $0.hasSuffix("pedasmith-example-data.capture") })
        let capture = try Capture.load(file: captureFile)
        let replay = Replay.run(capture, profile: profile)
        try #require(!replay.readings.isEmpty)
        let terminal = try PseudoTerminal()
        let player = try CapturePlayer(capture: capture, profile: profile, terminal: terminal)
        guard case .serial(let settings) = profile.transport else { return }
        let port = try SerialPort.open(path: terminal.slavePath, settings: settings)
        defer { port.close() }
        player.start()
        let sink = RecordingSink()
        let reported = Collector<DecodeError>()
        let session = DeviceSession(profile: profile, device: Replay.defaultDevice(for: profile), link: port, sink: sink,
                                    onProblem: { reported.append($0) })
        // The session reads on its own thread from now on: nothing it does waits for the concurrency
        // pool, which other tests may keep busy for many seconds.
        let running = startSession(session, limit: .seconds(120))
        _ = try await player.outcome().get()
        // Liveness wait (not a timing check) for the session to take in what was played; then stop it.
        let stored = await onThread("wait-for-readings", limit: .seconds(90)) { () -> Int in
            let end = ContinuousClock.now.advanced(by: .seconds(60))
            while sink.readings.count < replay.readings.count && ContinuousClock.now < end { usleep(2000) }
            return sink.readings.count
        }
        session.stop()
        let outcome = await running.value
        #expect(stored == replay.readings.count, "the session stored \(stored.map(String.init) ?? "?") of \(replay.readings.count) readings before stop()")
        #expect(outcome.end == .stopped)
        #expect(atTime(sink.readings, capture.receivedAt) == atTime(replay.readings, capture.receivedAt))
        #expect(outcome.counters.bytesIn == Self.deviceLines(capture).reduce(0) { $0 + $1.count })
        #expect(outcome.counters.bytesOut == 0)
        #expect(reported.all.map(\.field) == replay.problems.map(\.field))
        #expect(outcome.counters.problems == replay.problems.count)
    }

    @Test("stop() before run() returns .stopped without touching the device")
    func stopBeforeRun() async throws {
        let profile = try ScriptedSerialFixture.profile()
        let terminal = try PseudoTerminal()
        let port = try SerialPort.open(path: terminal.slavePath, settings: try ScriptedSerialFixture.settings(profile))
        defer { port.close() }
        let log = BoundaryLog()
        let session = DeviceSession(profile: profile, device: Replay.defaultDevice(for: profile), link: SpyLink(port, log: log), sink: RecordingSink())
        session.stop()
        let outcome = await runSession(session)
        #expect(outcome.end == .stopped)
        #expect(log.all.isEmpty)
        #expect(outcome.counters == SessionCounters())
    }
}
