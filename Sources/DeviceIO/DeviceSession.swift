import Synchronization
import VitalModel
import ProfileEngine
import ProfileCatalog

/// Where a session puts readings.
///
/// ``store(_:)`` returns only after the readings are durable (the Outbox committed them). A throw means
/// "not stored": the session then sends nothing more to the device (no acknowledgement, no
/// clear-memory, which could make the device forget readings nobody kept) and ends with
/// ``SessionEnd/storeFailed(_:)``.
public protocol ReadingSink: Sendable {
    func store(_ readings: [Reading]) throws -> Void
}

/// What a session moved and met. Bytes are counted as the engine sees them: hidraw report ids and
/// padding are framing and not counted.
public struct SessionCounters: Sendable, Hashable {
    /// Bytes from the device, `readings` stored (committed by the sink), decode `problems`, and engine
    /// `timeouts` (waits for an answer that ran out).
    public var bytesIn = 0, bytesOut = 0, readings = 0, problems = 0, timeouts = 0

    public init(bytesIn: Int = 0, bytesOut: Int = 0, readings: Int = 0, problems: Int = 0, timeouts: Int = 0) {
        self.bytesIn = bytesIn
        self.bytesOut = bytesOut
        self.readings = readings
        self.problems = problems
        self.timeouts = timeouts
    }
}

/// Why a session ended.
public enum SessionEnd: Sendable, Hashable {
    /// The engine's script ended; `complete` is false when it gave up on something.
    case finished(complete: Bool)
    /// The device was unplugged or hung up; what was stored before stays stored.
    case disconnected(DeviceIOError)
    /// The sink threw (its error's description); nothing was sent to the device after it.
    case storeFailed(String)
    /// A port error that is not a disconnect (a write that timed out, …).
    case failed(DeviceIOError)
    /// ``DeviceSession/stop()`` was called.
    case stopped
}

/// How a session ended and what it did until then.
public struct SessionOutcome: Sendable, Hashable {
    public var end: SessionEnd
    public var counters: SessionCounters

    public init(end: SessionEnd, counters: SessionCounters) {
        self.end = end
        self.counters = counters
    }
}

/// Drives one ``EngineSession`` (from the profile's engine) over one ``DeviceLink``.
///
/// Events are handled in the order the engine gives them. Readings are handed to the sink before the
/// next request is written and before ``run()`` returns: commit first, then acknowledge, so a device
/// told to forget its memory has given nothing that is not durable. A frame cut by unplugging is never
/// completed, so no half reading is ever stored.
///
/// ```swift
/// let link = try DeviceLinks.open(path: node, transport: profile.transport)
/// defer { link.close() }
/// let session = DeviceSession(profile: profile, device: identity, link: link, sink: outbox)
/// let outcome = session.run()   // on a dedicated thread
/// ```
public final class DeviceSession: Sendable {
    /// The profile whose engine runs the conversation.
    public let profile: DeviceProfile
    /// The identity every reading of this session carries.
    public let device: DeviceIdentity
    /// The open device node; owned (and closed) by the caller.
    public let link: any DeviceLink
    let sink: any ReadingSink
    let now: @Sendable () -> HubTimestamp
    let onProblem: @Sendable (DecodeError) -> Void
    private let stopRequested = Atomic<Bool>(false)

    public init(profile: DeviceProfile, device: DeviceIdentity, link: any DeviceLink, sink: any ReadingSink,
                now: @escaping @Sendable () -> HubTimestamp = { HubTimestamp.now() },
                onProblem: @escaping @Sendable (DecodeError) -> Void = { _ in }) {
        self.profile = profile
        self.device = device
        self.link = link
        self.sink = sink
        self.now = now
        self.onProblem = onProblem
    }

    /// Makes ``run()`` return ``SessionEnd/stopped`` soon; thread-safe. Nothing more is written to the
    /// device once it is seen.
    public func stop() {
        stopRequested.store(true, ordering: .sequentiallyConsistent)
        link.interrupt()
    }

    private var isStopped: Bool { stopRequested.load(ordering: .sequentiallyConsistent) }

    /// Runs until the script finishes, the device disconnects, storing fails or ``stop()``. Blocks: call
    /// it on a dedicated thread, once per session. Does not close the link (the caller owns it).
    public func run() -> SessionOutcome {
        var engine = profile.engine.makeSession(device: device, profileID: profile.id)
        var counters = SessionCounters()
        guard !isStopped else { return SessionOutcome(end: .stopped, counters: counters) }
        if let end = handle(engine.start(at: now()), counters: &counters) {
            return SessionOutcome(end: end, counters: counters)
        }
        while true {
            guard !isStopped else { return SessionOutcome(end: .stopped, counters: counters) }
            let timeout = engine.timeoutMilliseconds.map { Duration.milliseconds(max(0, $0)) }
            let input: LinkInput
            do throws(DeviceIOError) {
                input = try link.read(timeout: timeout)
            } catch {
                return SessionOutcome(end: error.isDisconnect ? .disconnected(error) : .failed(error), counters: counters)
            }
            let events: [EngineEvent]
            switch input {
            case .bytes(let bytes):
                counters.bytesIn += bytes.count
                events = engine.receive(bytes, channel: nil, at: now())
            case .timedOut:
                counters.timeouts += 1
                events = engine.timeout(at: now())
            case .interrupted:
                // Either stop() (seen at the top of the loop) or a stray interrupt: read again.
                continue
            }
            if let end = handle(events, counters: &counters) {
                return SessionOutcome(end: end, counters: counters)
            }
        }
    }

    /// Handles one batch of engine events in order; returns how the session ends, or nil to go on.
    /// Readings are stored before any request that follows them and at the end of the batch.
    private func handle(_ events: [EngineEvent], counters: inout SessionCounters) -> SessionEnd? {
        var pending: [Reading] = []
        var finished: Bool?
        func commit() -> SessionEnd? {
            guard !pending.isEmpty else { return nil }
            do {
                try sink.store(pending)
            } catch {
                return .storeFailed(String(describing: error))
            }
            counters.readings += pending.count
            pending = []
            return nil
        }
        for event in events {
            switch event {
            case .reading(let reading):
                pending.append(reading)
            case .problem(let problem):
                counters.problems += 1
                onProblem(problem)
            case .send(let bytes, _):
                if let end = commit() { return end }
                guard !isStopped else { return .stopped }
                do throws(DeviceIOError) {
                    try link.write(bytes)
                } catch {
                    return error.isDisconnect ? .disconnected(error) : .failed(error)
                }
                counters.bytesOut += bytes.count
            case .finished(let complete):
                // The rest of the batch is still handled: readings decoded alongside are not dropped.
                finished = finished ?? complete
            }
        }
        if let end = commit() { return end }
        return finished.map { .finished(complete: $0) }
    }
}
