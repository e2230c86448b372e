import Foundation
import Testing
import VitalModel
import ProfileEngine
import ProfileCatalog
import VitalGateTestKit
import Synchronization
@testable import DeviceSimulator
#if canImport(Glibc)
import Glibc
#endif

/// A test-side failure with a message; the host driver runs on its own thread and reports through these.
struct HostFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The host end of the pseudo-terminal, opened the way a serial driver opens `/dev/ttyUSB0`.
final class HostPort: Sendable {
    let descriptor: Int32
    /// Set when a read saw the simulator hang up: POLLHUP, EOF or EIO.
    private let hangUp = Atomic<Bool>(false)

    /// Whether the simulator has hung up (seen by a read).
    var sawHangUp: Bool { hangUp.load(ordering: .acquiring) }

    /// `configureRaw` applies `cfmakeraw` as a driver would; without it the port is used exactly as the
    /// simulator left it.
    init(path: String, configureRaw: Bool = true) throws {
        let descriptor = Glibc.open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC)
        guard descriptor >= 0 else { throw HostFailure("cannot open \(path): errno \(errno)") }
        if configureRaw {
            var settings = termios()
            guard tcgetattr(descriptor, &settings) == 0 else { _ = Glibc.close(descriptor); throw HostFailure("tcgetattr: errno \(errno)") }
            cfmakeraw(&settings)
            guard tcsetattr(descriptor, TCSANOW, &settings) == 0 else { _ = Glibc.close(descriptor); throw HostFailure("tcsetattr: errno \(errno)") }
        }
        self.descriptor = descriptor
    }

    deinit { _ = Glibc.close(descriptor) }

    func write(_ bytes: [UInt8]) throws {
        var offset = 0
        let end = ContinuousClock.now.advanced(by: .seconds(5))
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
            if written > 0 { offset += written; continue }
            guard written < 0, errno == EAGAIN || errno == EINTR, ContinuousClock.now < end else {
                throw HostFailure("write to the simulator failed after \(offset) of \(bytes.count) bytes: errno \(errno)")
            }
            var descriptors = [pollfd(fd: descriptor, events: Int16(POLLOUT), revents: 0)]
            _ = poll(&descriptors, 1, 50)
        }
    }

    /// Reads on a dedicated thread until `count` non-empty reads arrived or `seconds` passed; each read is
    /// one element, so paced lines can be told apart.
    func reads(_ count: Int, within seconds: Int) async throws -> [[UInt8]] {
        try await DedicatedThread.run(name: "host") { () -> Result<[[UInt8]], HostFailure> in
            do {
                var reads: [[UInt8]] = []
                let end = ContinuousClock.now.advanced(by: .seconds(seconds))
                while reads.count < count, ContinuousClock.now < end {
                    let chunk = try self.read(waitingUpTo: 100)
                    if !chunk.isEmpty { reads.append(chunk) }
                }
                return .success(reads)
            } catch let failure as HostFailure { return .failure(failure) } catch { return .failure(HostFailure("\(error)")) }
        }.get()
    }

    /// One read of what has arrived within `milliseconds`; empty if nothing. One `read` call, like one
    /// notification callback, so a paced player's lines arrive one per call.
    func read(waitingUpTo milliseconds: Int) throws -> [UInt8] {
        var descriptors = [pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)]
        let ready = poll(&descriptors, 1, Int32(clamping: max(0, milliseconds)))
        if ready < 0 && errno == EINTR { return [] }
        guard ready >= 0 else { throw HostFailure("poll failed: errno \(errno)") }
        guard ready > 0 else { return [] }
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
            if count > 0 { return Array(chunk[0..<count]) }
            let code = errno
            if count < 0 && code == EINTR { continue }
            if count < 0 && code == EAGAIN {
                // Nothing to read although poll said ready: a hang-up when poll said so.
                if descriptors[0].revents & Int16(POLLHUP) != 0 { hangUp.store(true, ordering: .releasing) }
                return []
            }
            // EOF or EIO: the simulator closed the terminal (a hang-up).
            if count == 0 || code == EIO {
                hangUp.store(true, ordering: .releasing)
                return []
            }
            throw HostFailure("read failed: errno \(code)")
        }
    }
}

/// Reads a stream from a ``HostPort`` in exact amounts, keeping what arrived beyond them.
struct HostReader {
    let port: HostPort
    var pending: [UInt8] = []

    init(_ port: HostPort) { self.port = port }

    /// Exactly `count` bytes, or a failure naming what did arrive.
    mutating func take(_ count: Int, within milliseconds: Int) throws -> [UInt8] {
        let end = ContinuousClock.now.advanced(by: .milliseconds(milliseconds))
        while pending.count < count {
            let now = ContinuousClock.now
            guard now < end else { throw HostFailure("expected \(count) bytes, got \(pending.count): \(hexString(pending, separator: " "))") }
            pending += try port.read(waitingUpTo: CapturePlayer.milliseconds(end - now, roundingUp: true))
        }
        defer { pending.removeFirst(count) }
        return Array(pending.prefix(count))
    }
}

/// What a live engine session did over the pseudo-terminal.
struct LiveSession: Sendable {
    var readings: [Reading] = []
    var problems: [DecodeError] = []
    /// The reports or requests the engine sent, as the engine made them (without a HID report id).
    var sends: [[UInt8]] = []
    /// Whether the simulator hung up during the session.
    var hungUp = false
}

/// Drives a real `EngineSession` of `profile` over `port`, as a transport would: sends go to the
/// device (for HID profiles as to Linux hidraw: the report id, 0 for unnumbered reports, then the report),
/// arriving bytes (cut into reports for HID profiles) go to `receive`, and `timeout` is called when the
/// session's timeout passes without input. Ends when the player has finished and nothing is left in
/// flight, when the simulator hangs up (as a transport ends when its device is unplugged), or after
/// `limit`.
func driveEngine(profile: DeviceProfile, capture: Capture, port: HostPort, player: CapturePlayer,
                 limit: Duration = .seconds(30)) -> Result<LiveSession, HostFailure> {
    let clock = ContinuousClock()
    let started = clock.now
    var session = profile.engine.makeSession(device: capture.device ?? Replay.defaultDevice(for: profile), profileID: profile.id)
    var live = LiveSession()
    var lastEvent = clock.now
    var reportBuffer: [UInt8] = []
    let reportSize: Int? = if case .hidraw(let settings) = profile.transport { settings.reportSize } else { nil }
    let reportID: [UInt8] = if case .hidraw(let settings) = profile.transport { [UInt8(truncatingIfNeeded: settings.reportID ?? 0)] } else { [] }
    // A Bluetooth capture names the characteristic the stream arrives on; pass it on as a transport would.
    let channels = Set(capture.entries.compactMap { entry -> String? in
        if case .fromDevice(_, let channel) = entry.line { return channel } else { return nil }
    })
    let channel = channels.count == 1 ? channels.first : nil

    func time() -> HubTimestamp {
        var stamp = capture.receivedAt
        stamp.instant = stamp.instant.addingTimeInterval(Double(CapturePlayer.milliseconds(clock.now - started)) / 1000)
        return stamp
    }
    func absorb(_ events: [EngineEvent]) throws {
        for event in events {
            switch event {
            case .send(let bytes, _):
                try port.write(reportID + bytes)
                live.sends.append(bytes)
                lastEvent = clock.now
            case .reading(let reading): live.readings.append(reading)
            case .problem(let problem): live.problems.append(problem)
            case .finished: break
            }
        }
    }
    var received = 0
    func deliver(_ bytes: [UInt8]) throws {
        lastEvent = clock.now
        received += bytes.count
        guard let reportSize else { return try absorb(session.receive(bytes, channel: channel, at: time())) }
        reportBuffer += bytes
        while reportBuffer.count >= reportSize {
            let report = Array(reportBuffer.prefix(reportSize))
            reportBuffer.removeFirst(reportSize)
            try absorb(session.receive(report, channel: channel, at: time()))
        }
    }

    do {
        try absorb(session.start(at: time()))
        while true {
            guard clock.now - started < limit else {
                return .failure(HostFailure("the session did not end within \(limit); \(live.readings.count) readings so far"))
            }
            let waiting = session.timeoutMilliseconds
            let sinceEvent = CapturePlayer.milliseconds(clock.now - lastEvent)
            let bytes = try port.read(waitingUpTo: waiting.map { max(0, $0 - sinceEvent) } ?? 50)
            if !bytes.isEmpty {
                try deliver(bytes)
                continue
            }
            if port.sawHangUp {
                live.hungUp = true
                break
            }
            if let waiting, CapturePlayer.milliseconds(clock.now - lastEvent) >= waiting {
                lastEvent = clock.now
                try absorb(session.timeout(at: time()))
                continue
            }
            if waiting == nil, player.isFinished {
                // The player's end reaches the host later, by as much as a loaded machine stretches it:
                // wait (within `limit`) until the host has seen the hang-up, or every byte written.
                if case .success(let report)? = player.wait(timeout: .zero),
                   report.hungUp || received < report.deviceBytes + report.garbageBytes { continue }
                break
            }
        }
        return .success(live)
    } catch let failure as HostFailure {
        return .failure(failure)
    } catch {
        return .failure(HostFailure("\(error)"))
    }
}

/// A reading with the hub's receive time set to `time`: live and replayed sessions run on different
/// clocks, everything else must agree.
func atTime(_ readings: [Reading], _ time: HubTimestamp) -> [Reading] {
    readings.map { reading in
        var copy = reading
        copy.receivedAt = time
        return copy
    }
}

/// A capture file beside a profile, for parameterised tests.
struct PlaybackCase: Sendable, CustomTestStringConvertible {
    let profileFile: String
    let captureFile: String

    var testDescription: String {
        ProfileCatalog.expectedID(for: profileFile) + " " + URL(fileURLWithPath: captureFile).lastPathComponent
    }

    static let fixtureProfiles = RepositoryPaths.fixture("profiles").path
    static let scriptedProfile = fixtureProfiles + "/simulator-test/pc-60fw-scripted.json"
    static let scriptedCapture = fixtureProfiles + "/simulator-test/pc-60fw-scripted/retry-then-vitals.capture"

    /// Every capture of the test fixtures and of each shipped byte-stream profile (frames or vendor
    /// engines) that loads; gatt-standard profiles exchange characteristic values and are not played.
    static var all: [PlaybackCase] {
        var cases: [PlaybackCase] = []
        for root in [fixtureProfiles, RepositoryPaths.root.appendingPathComponent("DeviceProfiles").path] {
            for profile in ProfileCatalog.load(directory: root).profiles where !(profile.engine is GATTStandardEngine) {
                cases += ProfileCatalog.captures(for: profile).map { PlaybackCase(profileFile: profile.file, captureFile: $0) }
            }
        }
        return cases
    }
}

/// The built `vitalgate` executable beside the test bundle (or in `.build/debug`).
func vitalgateBinary() -> URL {
    let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("vitalgate")
    return FileManager.default.isExecutableFile(atPath: beside.path) ? beside : RepositoryPaths.root.appendingPathComponent(".build/debug/vitalgate")
}
