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
    /// The engine's script ended (`complete` is false when it gave up on something) and, after a
    /// complete one, the device went quiet or away.
    case finished(complete: Bool)
    /// The device was unplugged or hung up before the script ended; what was stored before stays stored.
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
    /// How long the device must stay quiet after the engine's script ended before ``run()`` returns
    /// ``SessionEnd/finished(complete:)``; `.zero` returns as soon as the script ends.
    public let quietAfterFinish: Duration
    let sink: any ReadingSink
    let now: @Sendable () -> HubTimestamp
    let onProblem: @Sendable (DecodeError) -> Void
    private let stopRequested = Atomic<Bool>(false)

    /// - Parameter quietAfterFinish: a script that only starts a stream (a pulse oximeter's start
    ///   command) ends while the device goes on sending; its readings keep being stored until the device
    ///   has been quiet this long, or hangs up. The default outlasts devices that send once a second.
    public init(profile: DeviceProfile, device: DeviceIdentity, link: any DeviceLink, sink: any ReadingSink,
                now: @escaping @Sendable () -> HubTimestamp = { HubTimestamp.now() },
                onProblem: @escaping @Sendable (DecodeError) -> Void = { _ in },
                quietAfterFinish: Duration = .seconds(5)) {
        self.profile = profile
        self.device = device
        self.link = link
        self.sink = sink
        self.now = now
        self.onProblem = onProblem
        self.quietAfterFinish = quietAfterFinish
    }

    /// Makes ``run()`` return ``SessionEnd/stopped`` soon; thread-safe. Nothing more is written to the
    /// device once it is seen.
    public func stop() {
        stopRequested.store(true, ordering: .sequentiallyConsistent)
        link.interrupt()
    }

    private var isStopped: Bool { stopRequested.load(ordering: .sequentiallyConsistent) }

    /// What one batch of engine events leads to.
    private enum Step {
        case goOn
        case scriptEnded(complete: Bool)
        case end(SessionEnd)
    }

    /// Runs until the script finishes, the device disconnects, storing fails or ``stop()``. Blocks: call
    /// it on a dedicated thread, once per session. Does not close the link (the caller owns it).
    ///
    /// A script that gave up (`complete: false`) ends the session at once. One that completed is
    /// followed by the device's own end: once it has been quiet for ``quietAfterFinish``, hangs up or is
    /// unplugged, the session returns `.finished(complete: true)` with everything it sent stored.
    public func run() -> SessionOutcome {
        var engine = profile.engine.makeSession(device: device, profileID: profile.id)
        var counters = SessionCounters()
        /// Set once the script completed: the session only drains the device's stream.
        var draining = false
        func outcome(_ end: SessionEnd) -> SessionOutcome { SessionOutcome(end: end, counters: counters) }
        func after(_ step: Step) -> SessionOutcome? {
            switch step {
            case .goOn: return nil
            case .end(let end): return outcome(end)
            case .scriptEnded(let complete):
                if draining { return nil }
                guard complete, quietAfterFinish > .zero else { return outcome(.finished(complete: complete)) }
                draining = true
                return nil
            }
        }

        guard !isStopped else { return outcome(.stopped) }
        if let done = after(handle(engine.start(at: now()), counters: &counters)) { return done }
        while true {
            guard !isStopped else { return outcome(.stopped) }
            let timeout = draining ? quietAfterFinish : engine.timeoutMilliseconds.map { Duration.milliseconds(max(0, $0)) }
            let input: LinkInput
            do throws(DeviceIOError) {
                input = try link.read(timeout: timeout)
            } catch {
                if draining && error.isDisconnect { return outcome(.finished(complete: true)) }
                return outcome(error.isDisconnect ? .disconnected(error) : .failed(error))
            }
            let events: [EngineEvent]
            switch input {
            case .bytes(let bytes):
                counters.bytesIn += bytes.count
                events = engine.receive(bytes, channel: nil, at: now())
            case .timedOut:
                if draining { return outcome(.finished(complete: true)) }
                counters.timeouts += 1
                events = engine.timeout(at: now())
            case .interrupted:
                // Either stop() (seen at the top of the loop) or a stray interrupt: read again.
                continue
            }
            if let done = after(handle(events, counters: &counters)) { return done }
        }
    }

    /// Handles one batch of engine events in order. Readings are stored before any request that follows
    /// them and at the end of the batch.
    private func handle(_ events: [EngineEvent], counters: inout SessionCounters) -> Step {
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
                if let end = commit() { return .end(end) }
                guard !isStopped else { return .end(.stopped) }
                do throws(DeviceIOError) {
                    try link.write(bytes)
                } catch {
                    return .end(error.isDisconnect ? .disconnected(error) : .failed(error))
                }
                counters.bytesOut += bytes.count
            case .finished(let complete):
                // The rest of the batch is still handled: readings decoded alongside are not dropped.
                finished = finished ?? complete
            }
        }
        if let end = commit() { return .end(end) }
        return finished.map { .scriptEnded(complete: $0) } ?? .goOn
    }
}
