import Assignment
import DeviceIO
import DeviceSimulator
import Foundation
import Outbox
import ProfileCatalog
import Synchronization
import Testing
import VitalGateTestKit
import VitalModel
@testable import Gateway

/// The Bluetooth Classic device manager with its connector replaced by pseudo-terminals that the capture
/// player drives with real device bytes, and its pauses recorded instead of waited: real sessions, a real
/// Outbox, no radio and no waiting.
@Suite("Bluetooth Classic device manager")
struct ClassicDeviceManagerTests {
    static let address = EUI48("00:00:5E:00:53:01")!
    static let otherAddress = EUI48("00:00:5E:00:53:02")!
    static let subject = PatientIdentifier(system: "urn:example:citizen", value: "test")

    /// A shipped or fixture profile, and the same one as a Bluetooth Classic (rfcomm) profile: SPP devices
    /// speak the protocols their USB-serial siblings do.
    static func profiles(_ file: String, id: String) throws -> (serial: DeviceProfile, rfcomm: DeviceProfile) {
        let serial = try ProfileLoader.load(file: file, expectedID: id)
        var rfcomm = serial
        rfcomm.transport = .rfcomm(RFCOMMSettings(channel: 1))
        return (serial, rfcomm)
    }

    /// The scripted PC-60FW fixture: its script finishes, as a download that gave everything does.
    static func finishingProfiles() throws -> (serial: DeviceProfile, rfcomm: DeviceProfile, capture: Capture) {
        let file = RepositoryPaths.fixture("profiles").path + "/simulator-test/pc-60fw-scripted.json"
        let (serial, rfcomm) = try profiles(file, id: "simulator-test/pc-60fw-scripted")
        let capture = try Capture.load(file: RepositoryPaths.fixture("profiles").path
            + "/simulator-test/pc-60fw-scripted/retry-then-vitals.capture")
        return (serial, rfcomm, capture)
    }

    /// The Contec CMS50D+ profile and a real CMS50E stream.
    static func streamingProfiles() throws -> (serial: DeviceProfile, rfcomm: DeviceProfile, capture: Capture) {
        let file = RepositoryPaths.root.appendingPathComponent("DeviceProfiles/contec/cms50d-plus.json").path
        let (serial, rfcomm) = try profiles(file, id: "contec/cms50d-plus")
        let captureFile = try #require(ProfileCatalog.captures(for: serial).first { $0.hasSuffix("/titinho-cms50e-live.capture") })
        return (serial, rfcomm, try Capture.load(file: captureFile))
    }

    static func outbox() throws -> Outbox {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vitalgate-classic-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return try Outbox(path: directory.appendingPathComponent("outbox.db").path)
    }

    static func manager(_ devices: [(address: EUI48, profile: DeviceProfile)], outbox: Outbox, connector: ScriptedConnector,
                        pauses: PauseLog) -> ClassicDeviceManager {
        ClassicDeviceManager(devices: devices, outbox: outbox, assignment: AssignmentRules(household: .single(subject)), log: DaemonLog(), onStored: {},
                             connector: { address, profile, cancellation throws(DeviceIOError) in
                                 try connector.connect(address: address, profile: profile, cancellation: cancellation)
                             },
                             pause: { delay, cancellation in pauses.pause(delay, cancellation) })
    }

    /// Waits (without blocking a thread) until `condition` holds; the limit is a liveness bound.
    static func eventually(within limit: Duration = .seconds(60), _ condition: () -> Bool) async -> Bool {
        let end = ContinuousClock.now.advanced(by: limit)
        while !condition() {
            if ContinuousClock.now >= end { return false }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return true
    }

    // MARK: Tests

    @Test("a finished download: its readings are stored under the device's Bluetooth address, and the next connection waits the full minute")
    func finishedDownload() async throws {
        let (serial, rfcomm, capture) = try Self.finishingProfiles()
        let replay = Replay.run(capture, profile: serial)
        try #require(!replay.readings.isEmpty)
        guard case .serial(let settings) = serial.transport else { throw TestFailure("the fixture is not a serial profile") }
        let outbox = try Self.outbox()
        let connector = ScriptedConnector([.play(capture, profile: serial, settings: settings, fault: .none)])
        let pauses = PauseLog()
        let manager = Self.manager([(Self.address, rfcomm)], outbox: outbox, connector: connector, pauses: pauses)
        defer { connector.stopPlayers() }

        try manager.start()
        // The second connection is the one after the pause; it waits for the stop.
        let reconnected = await Self.eventually { connector.calls >= 2 }
        let stopped = manager.stop(waitingUpTo: .seconds(30))

        #expect(reconnected)
        #expect(stopped)
        #expect(pauses.delays == [.seconds(60)])
        #expect(connector.addresses.allSatisfy { $0 == Self.address })
        let stored = try outbox.readings(in: .pending, limit: 100)
        // With the session ending at the script's end, the frame after the capture's pause may or may not be read.
        #expect(!stored.isEmpty)
        #expect(stored.map(\.reading.values) == Array(replay.readings.map(\.values).prefix(stored.count)))
        #expect(stored.allSatisfy { $0.reading.device == DeviceIdentity(bluetoothAddress: Self.address) })
        #expect(stored.allSatisfy { $0.subject == Self.subject })
        let totals = manager.currentTotals
        #expect(totals.connections == 1)
        #expect(totals.sessions == 1)
        #expect(totals.readings == stored.count)
        #expect(totals.failedConnections == 0)
    }

    @Test("the shipped CMS50EW (rfcomm) profile through the manager: what Replay reads is stored, the device's silence ends the session")
    func shippedRFCOMMProfile() async throws {
        let file = RepositoryPaths.root.appendingPathComponent("DeviceProfiles/contec/cms50ew.json").path
        let profile = try ProfileLoader.load(file: file, expectedID: "contec/cms50ew")
        guard case .rfcomm(let settings) = profile.transport else { throw TestFailure("the CMS50EW profile is not an rfcomm profile") }
        #expect(settings.channel == 1)
        let captureFile = try #require(ProfileCatalog.captures(for: profile).first { $0.hasSuffix("/headrotor-cms50dplus-same-protocol.capture") })
        let capture = try Capture.load(file: captureFile)
        let replay = Replay.run(capture, profile: profile)
        try #require(replay.scriptDifferences.isEmpty && replay.readings.count == 1)
        let outbox = try Self.outbox()
        // The pseudo-terminal stands in for the RFCOMM socket: a byte stream at the rate the profile's line had.
        let connector = ScriptedConnector([.play(capture, profile: profile, settings: SerialSettings(baud: 115200), fault: .none)])
        let pauses = PauseLog()
        let manager = Self.manager([(Self.address, profile)], outbox: outbox, connector: connector, pauses: pauses)
        defer { connector.stopPlayers() }

        try manager.start()
        // The stream ends after 5 s of silence (the profile's silenceMs): then a pause and a second connect.
        let reconnected = await Self.eventually { connector.calls >= 2 }
        #expect(manager.stop(waitingUpTo: .seconds(30)))

        #expect(reconnected)
        // Ended "stopped answering" after storing a new reading: the backoff starts at 1 s.
        #expect(pauses.delays == [.seconds(1)])
        let stored = try outbox.readings(in: .pending, limit: 10)
        #expect(stored.map(\.reading.values) == replay.readings.map(\.values))
        #expect(stored.map(\.reading.device.bluetoothAddress) == [Self.address])
    }

    @Test("failed connections back off 1 s, 2 s, 4 s… up to 1 min")
    func backoffAfterFailures() async throws {
        let (_, rfcomm, _) = try Self.finishingProfiles()
        let connector = ScriptedConnector(Array(repeating: .fail(EHOSTDOWN), count: 8))
        let pauses = PauseLog()
        let manager = Self.manager([(Self.address, rfcomm)], outbox: try Self.outbox(), connector: connector, pauses: pauses)

        try manager.start()
        let reached = await Self.eventually { connector.calls >= 9 }
        #expect(manager.stop(waitingUpTo: .seconds(30)))

        #expect(reached)
        #expect(pauses.delays == [1, 2, 4, 8, 16, 32, 60, 60].map { Duration.seconds($0) })
        #expect(manager.currentTotals.failedConnections == 8)
        #expect(manager.currentTotals.sessions == 0)
    }

    @Test("a session that stored new readings starts the backoff again, even though it ended in a disconnect")
    func resetAfterNewReadings() async throws {
        let (serial, rfcomm, capture) = try Self.streamingProfiles()
        guard case .serial(let settings) = serial.transport else { throw TestFailure("the Contec profile is not a serial profile") }
        let outbox = try Self.outbox()
        // Hang up half-way through the 60th packet: the readings before it are stored, the session ends disconnected.
        let connector = ScriptedConnector([.fail(ETIMEDOUT), .fail(EHOSTDOWN),
                                           .play(capture, profile: serial, settings: settings, fault: .disconnectMidFrame(afterLines: 60)),
                                           .fail(ETIMEDOUT)])
        let pauses = PauseLog()
        let manager = Self.manager([(Self.address, rfcomm)], outbox: outbox, connector: connector, pauses: pauses)
        defer { connector.stopPlayers() }

        try manager.start()
        let reached = await Self.eventually { connector.calls >= 5 }
        #expect(manager.stop(waitingUpTo: .seconds(30)))

        #expect(reached)
        #expect(pauses.delays == [1, 2, 1, 2].map { Duration.seconds($0) })
        let stored = try outbox.readings(in: .pending, limit: 100)
        #expect(!stored.isEmpty)
        #expect(stored.allSatisfy { $0.reading.device.bluetoothAddress == Self.address && $0.reading.device.usb == nil })
        #expect(manager.currentTotals.sessions == 1)
        #expect(manager.currentTotals.failedConnections == 3)
    }

    @Test("stop while connecting ends the connect and joins the thread; nothing more is attempted")
    func stopWhileConnecting() async throws {
        let (_, rfcomm, _) = try Self.finishingProfiles()
        let connector = ScriptedConnector([])  // the first connect hangs until cancelled
        let pauses = PauseLog()
        let manager = Self.manager([(Self.address, rfcomm)], outbox: try Self.outbox(), connector: connector, pauses: pauses)

        try manager.start()
        #expect(await Self.eventually { connector.waiting == 1 })
        #expect(manager.stop(waitingUpTo: .seconds(30)))

        #expect(connector.calls == 1)
        #expect(connector.cancelledWhileWaiting == 1)
        #expect(pauses.delays.isEmpty)
        #expect(manager.currentTotals.failedConnections == 0)
        // Stopping twice, or starting after the stop, does nothing.
        #expect(manager.stop(waitingUpTo: .seconds(1)))
        try manager.start()
        #expect(connector.calls == 1)
    }

    @Test("stop during the pause between connections ends the pause")
    func stopDuringPause() async throws {
        let (_, rfcomm, _) = try Self.finishingProfiles()
        let connector = ScriptedConnector([.fail(ECONNREFUSED)])
        let pauses = PauseLog(blockAfter: 1)
        let manager = Self.manager([(Self.address, rfcomm)], outbox: try Self.outbox(), connector: connector, pauses: pauses)

        try manager.start()
        #expect(await Self.eventually { pauses.waiting == 1 })
        #expect(manager.stop(waitingUpTo: .seconds(30)))

        #expect(pauses.delays == [.seconds(1)])
        #expect(pauses.cancelledWhileWaiting == 1)
        #expect(connector.calls == 1)
    }

    @Test("stop while a session streams: the session stops, no pause follows")
    func stopWhileStreaming() async throws {
        let (_, rfcomm, _) = try Self.streamingProfiles()
        let outbox = try Self.outbox()
        // A device that never falls silent (a real CMS50D+ packet, MarkMLl's "Nominal operation"): only the
        // stop can end its session.
        let connector = ScriptedConnector([.stream([0x01, 0xE0, 0x85, 0xD5, 0x9A, 0xBD, 0xE3, 0xFF, 0xFF])])
        let pauses = PauseLog()
        let manager = Self.manager([(Self.address, rfcomm)], outbox: outbox, connector: connector, pauses: pauses)

        try manager.start()
        #expect(await Self.eventually { ((try? outbox.readings(in: .pending, limit: 10).count) ?? 0) >= 1 })
        #expect(manager.stop(waitingUpTo: .seconds(30)))

        #expect(pauses.delays.isEmpty)
        #expect(connector.calls == 1)
        #expect(manager.currentTotals.sessions == 1)
        #expect(manager.currentTotals.readings >= 1)
    }

    @Test("a device whose profile is not rfcomm is not used, and an address listed twice is connected once")
    func unusableDevices() async throws {
        let (serial, rfcomm, _) = try Self.finishingProfiles()
        let connector = ScriptedConnector([])
        let manager = Self.manager([(Self.address, serial), (Self.otherAddress, rfcomm), (Self.otherAddress, rfcomm)],
                                   outbox: try Self.outbox(), connector: connector, pauses: PauseLog())

        try manager.start()
        #expect(await Self.eventually { connector.waiting == 1 })
        #expect(manager.stop(waitingUpTo: .seconds(30)))
        #expect(connector.addresses == [Self.otherAddress])
    }

    @Test("the daemon's connector reaches RFCOMM: on this kernel it fails with the RFCOMM link's error for the profile's channel")
    func daemonConnector() throws {
        let (_, rfcomm, _) = try Self.finishingProfiles()
        let cancellation = try LinkCancellation()
        cancellation.cancel()
        let error = try #require(throws: DeviceIOError.self) {
            try ClassicDeviceManager.rfcommConnector(Self.address, rfcomm, cancellation)
        }
        #expect(error.path == "rfcomm:00:00:5E:00:53:01:ch1")
        #expect(error.code == ECANCELED)
    }

    @Test("the backoff doubles from 1 s to 1 min and starts again after progress")
    func backoffSequence() {
        var backoff = SessionBackoff()
        let delays = (0..<9).map { _ in backoff.delay(afterFailure: false) }
        #expect(delays == [1, 2, 4, 8, 16, 32, 60, 60, 60].map { Duration.seconds($0) })
        #expect(backoff.delay(afterFailure: true) == .seconds(1))
        #expect(backoff.delay(afterFailure: false) == .seconds(2))
        backoff.reset()
        #expect(backoff.failures == 0)
        #expect(backoff.delay(afterFailure: false) == .seconds(1))
    }
}

// MARK: Test doubles

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Answers the manager's connects from a script: a failure with an errno, or a pseudo-terminal on which
/// the capture player plays a capture's device side. Past the script a connect hangs, like a device that
/// does not answer, until the manager cancels it.
final class ScriptedConnector: Sendable {
    enum Step: Sendable {
        case fail(Int32)
        case play(Capture, profile: DeviceProfile, settings: SerialSettings, fault: FaultMode)
        /// A link that sends these bytes on every read until it is interrupted or closed.
        case stream([UInt8])
    }

    private let steps: Mutex<[Step]>
    private let players = Mutex<[CapturePlayer]>([])
    private let called = Mutex<[EUI48]>([])
    private let waits = Atomic<Int>(0)
    private let cancels = Atomic<Int>(0)

    init(_ steps: [Step]) { self.steps = Mutex(steps) }

    var calls: Int { called.withLock { $0.count } }
    var addresses: [EUI48] { called.withLock { $0 } }
    /// Connects that hung past the script.
    var waiting: Int { waits.load(ordering: .sequentiallyConsistent) }
    /// Hanging connects that the manager's cancellation ended.
    var cancelledWhileWaiting: Int { cancels.load(ordering: .sequentiallyConsistent) }

    func connect(address: EUI48, profile: DeviceProfile, cancellation: LinkCancellation) throws(DeviceIOError) -> any DeviceLink {
        called.withLock { $0.append(address) }
        let path = RfcommLink.path(address: address, channel: 1)
        guard let step = steps.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) else {
            waits.add(1, ordering: .sequentiallyConsistent)
            // A liveness bound, not a measurement: the manager cancels long before.
            if cancellation.wait(timeout: .seconds(120)) { cancels.add(1, ordering: .sequentiallyConsistent) }
            throw DeviceIOError(operation: "connect", path: path, code: ECANCELED, fix: "cancelled by the test")
        }
        switch step {
        case .fail(let code):
            throw DeviceIOError(operation: "connect", path: path, code: code, fix: "scripted by the test")
        case .stream(let bytes):
            return EndlessLink(path: path, bytes: bytes)
        case .play(let capture, let profile, let settings, let fault):
            do {
                let terminal = try PseudoTerminal()
                let player = try CapturePlayer(capture: capture, profile: profile, terminal: terminal,
                                               options: PlaybackOptions(responseTimeout: .seconds(10), deadline: .seconds(60), fault: fault))
                // Open before playing: the open drops whatever was queued before it.
                let port = try SerialPort.open(path: terminal.slavePath, settings: settings)
                player.start()
                players.withLock { $0.append(player) }
                return port
            } catch let error as DeviceIOError {
                throw error
            } catch {
                throw DeviceIOError(operation: "simulate", path: path, fix: "the test's simulator failed: \(error)")
            }
        }
    }

    func stopPlayers() { players.withLock { $0.forEach { $0.stop() } } }
}

/// A device that never stops sending: every read gives the same bytes (after a millisecond, so the session
/// does not spin), until an interrupt or close. Writes (keep-alives) are taken.
final class EndlessLink: DeviceLink {
    let path: String
    let bytes: [UInt8]
    private let state = Mutex((interrupted: false, closed: false))

    init(path: String, bytes: [UInt8]) {
        self.path = path
        self.bytes = bytes
    }

    func read(timeout: Duration?) throws(DeviceIOError) -> LinkInput {
        let (interrupted, closed) = state.withLock { state in
            defer { state.interrupted = false }
            return (state.interrupted, state.closed)
        }
        if closed { throw DeviceIOError(operation: "read", path: path, fix: "the port was closed; open it again") }
        if interrupted { return .interrupted }
        usleep(1000)
        return .bytes(bytes)
    }

    func write(_ bytes: [UInt8]) throws(DeviceIOError) {}
    func interrupt() { state.withLock { $0.interrupted = true } }
    func close() { state.withLock { $0.closed = true } }
}

/// Records the manager's pauses instead of waiting them; from the `blockAfter`th on, waits for the
/// cancellation as the daemon's pause does.
final class PauseLog: Sendable {
    private let recorded = Mutex<[Duration]>([])
    private let blockAfter: Int?
    private let waits = Atomic<Int>(0)
    private let cancels = Atomic<Int>(0)

    init(blockAfter: Int? = nil) { self.blockAfter = blockAfter }

    var delays: [Duration] { recorded.withLock { $0 } }
    var waiting: Int { waits.load(ordering: .sequentiallyConsistent) }
    var cancelledWhileWaiting: Int { cancels.load(ordering: .sequentiallyConsistent) }

    func pause(_ delay: Duration, _ cancellation: LinkCancellation) {
        let count = recorded.withLock { $0.append(delay); return $0.count }
        guard let blockAfter, count >= blockAfter else { return }
        waits.add(1, ordering: .sequentiallyConsistent)
        if cancellation.wait(timeout: .seconds(120)) { cancels.add(1, ordering: .sequentiallyConsistent) }
    }
}
