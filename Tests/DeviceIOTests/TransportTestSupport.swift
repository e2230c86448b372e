import Foundation
import Synchronization
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

/// A test-side failure with a message, for work done on dedicated threads.
struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Runs blocking `body` on a thread of its own and suspends until it returns, or until `limit` passes
/// (nil then). The limit is a liveness bound that keeps a broken port from hanging the test run, not a
/// measurement.
func onThread<T: Sendable>(_ name: String, limit: Duration = .seconds(60), _ body: @escaping @Sendable () -> T) async -> T? {
    await withCheckedContinuation { (continuation: CheckedContinuation<T?, Never>) in
        let once = ResumeOnce(continuation)
        DedicatedThread.start(name: name) { once.resume(body()) }
        let (seconds, attoseconds) = limit.components
        DispatchQueue.global().asyncAfter(deadline: .now() + .seconds(Int(seconds)) + .nanoseconds(Int(attoseconds / 1_000_000_000))) {
            once.resume(nil)
        }
    }
}

/// A continuation that the first of several racing callers resumes.
final class ResumeOnce<T: Sendable>: Sendable {
    private let continuation: Mutex<CheckedContinuation<T?, Never>?>
    init(_ continuation: CheckedContinuation<T?, Never>) { self.continuation = Mutex(continuation) }
    func resume(_ value: T?) {
        let pending = continuation.withLock { stored in
            defer { stored = nil }
            return stored
        }
        pending?.resume(returning: value)
    }
}

// MARK: The device side of a pseudo-terminal

/// Writes all of `bytes` to a pseudo-terminal master (non-blocking), waiting while it is full.
func writeMaster(_ master: Int32, _ bytes: [UInt8]) throws(TestFailure) {
    var offset = 0
    let end = ContinuousClock.now.advanced(by: .seconds(10))
    while offset < bytes.count {
        let written = bytes[offset...].withUnsafeBytes { Glibc.write(master, $0.baseAddress, $0.count) }
        if written > 0 { offset += written; continue }
        guard written < 0, errno == EAGAIN || errno == EINTR, ContinuousClock.now < end else {
            throw TestFailure("writing to the master failed after \(offset) of \(bytes.count) bytes: errno \(errno)")
        }
        var descriptors = [pollfd(fd: master, events: Int16(POLLOUT), revents: 0)]
        _ = poll(&descriptors, 1, 50)
    }
}

/// Reads from a pseudo-terminal master in exact amounts, keeping what arrived beyond them.
struct MasterReader {
    let master: Int32
    var pending: [UInt8] = []

    init(_ master: Int32) { self.master = master }

    /// Exactly `count` bytes, or a failure naming what did arrive.
    mutating func take(_ count: Int, within limit: Duration = .seconds(10)) throws(TestFailure) -> [UInt8] {
        let clock = ContinuousClock()
        let end = clock.now.advanced(by: limit)
        while pending.count < count {
            guard clock.now < end else {
                throw TestFailure("expected \(count) bytes from the host, got \(pending.count): \(hexString(pending, separator: " "))")
            }
            var descriptors = [pollfd(fd: master, events: Int16(POLLIN), revents: 0)]
            _ = poll(&descriptors, 1, 50)
            var chunk = [UInt8](repeating: 0, count: 4096)
            let read = chunk.withUnsafeMutableBytes { Glibc.read(master, $0.baseAddress, $0.count) }
            if read > 0 { pending += chunk[0..<read] }
        }
        defer { pending.removeFirst(count) }
        return Array(pending.prefix(count))
    }
}

// MARK: Sessions

/// What happened at the device boundary, in order: readings handed to the sink and bytes written.
enum BoundaryEvent: Sendable, Hashable {
    case stored(count: Int)
    case storeRefused(count: Int)
    case wrote([UInt8])
}

/// A shared, ordered log of ``BoundaryEvent``s.
final class BoundaryLog: Sendable {
    private let events = Mutex<[BoundaryEvent]>([])
    func append(_ event: BoundaryEvent) { events.withLock { $0.append(event) } }
    var all: [BoundaryEvent] { events.withLock { $0 } }
}

/// Values collected from callbacks on other threads, in order.
final class Collector<Element: Sendable>: Sendable {
    private let items = Mutex<[Element]>([])
    func append(_ item: Element) { items.withLock { $0.append(item) } }
    var all: [Element] { items.withLock { $0 } }
}

/// A sink that keeps readings in memory and logs each store; `refuse` makes every store throw.
final class RecordingSink: ReadingSink {
    struct Refused: Error, CustomStringConvertible {
        var description: String { "the test sink refused to store (simulated disk full)" }
    }

    let log: BoundaryLog
    let refuse: Bool
    private let stored = Mutex<[Reading]>([])

    init(log: BoundaryLog = BoundaryLog(), refuse: Bool = false) {
        self.log = log
        self.refuse = refuse
    }

    var readings: [Reading] { stored.withLock { $0 } }

    func store(_ readings: [Reading]) throws {
        if refuse {
            log.append(.storeRefused(count: readings.count))
            throw Refused()
        }
        stored.withLock { $0 += readings }
        log.append(.stored(count: readings.count))
    }
}

/// A link that logs every successful write to a ``BoundaryLog`` and passes everything to the real port.
final class SpyLink: DeviceLink {
    let inner: any DeviceLink
    let log: BoundaryLog

    init(_ inner: any DeviceLink, log: BoundaryLog) {
        self.inner = inner
        self.log = log
    }

    var path: String { inner.path }
    func read(timeout: Duration?) throws(DeviceIOError) -> LinkInput { try inner.read(timeout: timeout) }
    func write(_ bytes: [UInt8]) throws(DeviceIOError) {
        try inner.write(bytes)
        log.append(.wrote(bytes))
    }
    func interrupt() { inner.interrupt() }
    func close() { inner.close() }
}

/// Starts a session on a dedicated thread at once; past `limit` it is stopped, which the caller sees as
/// `.stopped`. It runs even while other tests keep the concurrency pool busy, so a test may wait on it
/// from a thread.
func startSession(_ session: DeviceSession, limit: Duration = .seconds(60)) -> OnceValue<SessionOutcome> {
    let run = DedicatedThread.launch(name: "device-session") { session.run() }
    let (seconds, _) = limit.components
    DispatchQueue.global().asyncAfter(deadline: .now() + .seconds(Int(seconds))) {
        // A session that already ended is left alone: its link may be in use by the next one.
        if run.current == nil { session.stop() }
    }
    return run
}

/// Runs a session on a dedicated thread until it ends; past `limit` it is stopped (`.stopped`).
func runSession(_ session: DeviceSession, limit: Duration = .seconds(60)) async -> SessionOutcome {
    await startSession(session, limit: limit).value
}

/// Readings with the hub's receive time set to `time`: live and replayed sessions run on different
/// clocks, everything else must agree.
func atTime(_ readings: [Reading], _ time: HubTimestamp) -> [Reading] {
    readings.map { reading in
        var copy = reading
        copy.receivedAt = time
        return copy
    }
}

/// The Omron HEM-790IT profile and its captures, as shipped.
enum OmronFixture {
    static let profileFile = RepositoryPaths.root.appendingPathComponent("DeviceProfiles/omron/hem-790it.json").path

    static func profile() throws -> DeviceProfile {
        try ProfileLoader.load(file: profileFile, expectedID: "omron/hem-790it")
    }

    static var captureFiles: [String] {
        guard let profile = try? profile() else { return [] }
        return ProfileCatalog.captures(for: profile)
    }

    static func settings(_ profile: DeviceProfile) throws -> HIDSettings {
        guard case .hidraw(let settings) = profile.transport else { throw TestFailure("the Omron profile is not a hidraw profile") }
        return settings
    }
}

/// The Contec CMS50D+ profile (USB-serial pulse oximeter: a start command, then a stream), as shipped.
enum ContecFixture {
    static let profileFile = RepositoryPaths.root.appendingPathComponent("DeviceProfiles/contec/cms50d-plus.json").path

    static func profile() throws -> DeviceProfile {
        try ProfileLoader.load(file: profileFile, expectedID: "contec/cms50d-plus")
    }

    static func capture(_ name: String) throws -> Capture {
        let profile = try profile()
        guard let file = ProfileCatalog.captures(for: profile).first(where: { $0.hasSuffix("/" + name) }) else {
            throw TestFailure("no capture \(name) beside \(profileFile)")
        }
        return try Capture.load(file: file)
    }

    static func settings(_ profile: DeviceProfile) throws -> SerialSettings {
        guard case .serial(let settings) = profile.transport else { throw TestFailure("the Contec profile is not a serial profile") }
        return settings
    }
}

/// The serial pseudo-terminal fixture: PC-60FW frames behind an invented request, with a retry.
enum ScriptedSerialFixture {
    static let profileFile = RepositoryPaths.fixture("profiles").path + "/simulator-test/pc-60fw-scripted.json"
    static let captureFile = RepositoryPaths.fixture("profiles").path + "/simulator-test/pc-60fw-scripted/retry-then-vitals.capture"

    static func profile() throws -> DeviceProfile {
        try ProfileLoader.load(file: profileFile, expectedID: "simulator-test/pc-60fw-scripted")
    }

    static func settings(_ profile: DeviceProfile) throws -> SerialSettings {
        guard case .serial(let settings) = profile.transport else { throw TestFailure("the fixture is not a serial profile") }
        return settings
    }
}
