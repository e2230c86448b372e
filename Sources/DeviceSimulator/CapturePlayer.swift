import Foundation
import Dispatch
import Synchronization
import VitalModel
import ProfileEngine
import ProfileCatalog
#if canImport(Glibc)
import Glibc
#endif

/// Plays the device side of a ``Capture`` on a ``PseudoTerminal``, so the host side can be exercised
/// like a real serial device: `<` lines are written to the host, `>` lines are awaited and compared,
/// `@wait` pauses, `@timeout` stays silent long enough for the host's timer to fire.
///
/// Bluetooth channels (`< 2A35: …`) are ignored: the bytes are played as one stream, which is how a
/// vendor protocol over a Nordic-UART-style link or a HID report stream reads once reassembled.
///
/// All blocking I/O happens on a ``DedicatedThread``, never on the Swift concurrency pool, and every
/// wait is a `poll` with a time limit under one overall deadline, so a silent or misbehaving host can
/// never hang the player. Failures are ``SimulatorError`` values naming the capture line.
///
/// ```swift
/// let terminal = try PseudoTerminal()
/// let player = try CapturePlayer(capture: capture, profile: profile, terminal: terminal)
/// player.start()
/// // … the host opens terminal.slavePath …
/// let outcome = player.wait()   // or `await player.outcome()`
/// ```
public final class CapturePlayer: Sendable {
    public let capture: Capture
    public let terminal: PseudoTerminal
    public let options: PlaybackOptions
    /// Milliseconds of silence for each `@timeout` line, by line number.
    let silences: [Int: Int]
    /// The pacing in force: the options' choice, or the profile transport's.
    public let pacing: Pacing
    /// A pipe whose read end is in every poll: ``stop()`` writes to it to end the playback at once.
    private let wakeRead: Int32
    private let wakeWrite: Int32
    private let state = Mutex(State())
    private let done = DispatchGroup()

    private struct State {
        var started = false
        var outcome: Result<PlaybackReport, SimulatorError>?
        var waiters: [CheckedContinuation<Result<PlaybackReport, SimulatorError>, Never>] = []
    }

    /// Prepares a playback. `profile` gives the engine whose timeouts `@timeout` lines must outlast;
    /// without one, ``PlaybackOptions/defaultTimeoutSilence`` is used. A ``PlaybackOptions/repeatCount``
    /// below 1 plays once.
    public init(capture: Capture, profile: DeviceProfile?, terminal: PseudoTerminal,
                options: PlaybackOptions = PlaybackOptions()) throws(SimulatorError) {
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else {
            throw .system("pipe", errno, fix: "the process may be out of file descriptors (ulimit -n)")
        }
        for end in ends {
            // Not inherited by programs the host spawns; stop() must never block.
            _ = fcntl(end, F_SETFD, FD_CLOEXEC)
            _ = fcntl(end, F_SETFL, fcntl(end, F_GETFL) | O_NONBLOCK)
        }
        self.capture = capture
        self.terminal = terminal
        self.options = options
        self.wakeRead = ends[0]
        self.wakeWrite = ends[1]
        self.silences = Self.timeoutSilences(capture, profile: profile, fallback: Self.milliseconds(options.defaultTimeoutSilence))
        self.pacing = options.pacing ?? Self.pacing(for: profile?.transport)
    }

    deinit {
        _ = Glibc.close(wakeRead)
        _ = Glibc.close(wakeWrite)
    }

    // MARK: Control

    /// Starts playing on a dedicated thread; later calls do nothing.
    public func start() {
        let first = state.withLock { state in
            defer { state.started = true }
            return !state.started
        }
        guard first else { return }
        done.enter()
        // The thread holds the player until the playback ends, so the terminal stays open meanwhile.
        DedicatedThread.start(name: "vitalgate-simulator") { [self] in
            let outcome = play()
            let waiters = state.withLock { state in
                state.outcome = outcome
                defer { state.waiters = [] }
                return state.waiters
            }
            for waiter in waiters { waiter.resume(returning: outcome) }
            done.leave()
        }
    }

    /// Ends the playback as soon as possible; it finishes with a ``SimulatorError/Kind/stopped`` error
    /// (unless it had already finished).
    public func stop() {
        let byte: UInt8 = 1
        _ = withUnsafePointer(to: byte) { Glibc.write(wakeWrite, $0, 1) }
    }

    /// Whether the playback has ended.
    public var isFinished: Bool { state.withLock { $0.outcome != nil } }

    /// Blocks the calling thread until the playback ends or `timeout` passes; nil if it has not ended
    /// (or was never started). For command-line tools and dedicated threads, not for async code.
    public func wait(timeout: Duration? = nil) -> Result<PlaybackReport, SimulatorError>? {
        if let timeout {
            _ = done.wait(timeout: .now() + .milliseconds(Self.milliseconds(timeout)))
        } else {
            done.wait()
        }
        return state.withLock { $0.outcome }
    }

    /// Starts the playback if needed and suspends until it ends.
    public func outcome() async -> Result<PlaybackReport, SimulatorError> {
        start()
        return await withCheckedContinuation { continuation in
            let ready = state.withLock { state -> Result<PlaybackReport, SimulatorError>? in
                if let outcome = state.outcome { return outcome }
                state.waiters.append(continuation)
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }

    // MARK: Playing

    private var clock: ContinuousClock { ContinuousClock() }

    /// The playback itself, on the dedicated thread. Fault modes that end a session early (hang-up,
    /// going silent) will branch here.
    func play() -> Result<PlaybackReport, SimulatorError> {
        let deadline = clock.now.advanced(by: options.deadline ?? automaticDeadline())
        var report = PlaybackReport()
        // Host bytes read but not yet matched: the host may send the next request before we look for it.
        var pending: [UInt8] = []
        do {
            for _ in 0..<max(1, options.repeatCount) {
                for entry in capture.entries {
                    switch entry.line {
                    case .fromDevice(let bytes, _):
                        // An empty line is nothing to read; waiting for its read would time out.
                        let paced = pacing == .oneLinePerRead && !bytes.isEmpty
                        // Reads of earlier lines must not count as reads of this one.
                        if paced { _ = terminal.hostHasRead() }
                        for chunk in chunks(for: bytes) {
                            try writeDevice(chunk, line: entry.lineNumber, deadline: deadline)
                        }
                        if paced { try awaitRead(line: entry.lineNumber, deadline: deadline) }
                        report.deviceBytes += bytes.count
                    case .toDevice(let bytes, _):
                        try awaitHost(bytes, line: entry.lineNumber, pending: &pending, deadline: deadline)
                        report.hostBytes += bytes.count
                    case .wait(let milliseconds):
                        try pause(milliseconds, line: entry.lineNumber, deadline: deadline)
                    case .timeout:
                        try pause(silences[entry.lineNumber] ?? Self.milliseconds(options.defaultTimeoutSilence),
                                  line: entry.lineNumber, deadline: deadline)
                    }
                }
                report.repetitions += 1
            }
            try readAvailable(into: &pending, line: nil)
            report.unexpectedHostBytes = pending
            return .success(report)
        } catch {
            return .failure(error)
        }
    }

    /// What a `<` line becomes on the wire: the fault-mode extension point for device bytes.
    func chunks(for bytes: [UInt8]) -> [[UInt8]] {
        switch options.fault {
        case .none: [bytes]
        }
    }

    /// Writes one chunk, waiting (with a limit) while the host's input queue is full.
    private func writeDevice(_ bytes: [UInt8], line: Int, deadline: ContinuousClock.Instant) throws(SimulatorError) {
        let end = min(clock.now.advanced(by: options.responseTimeout), deadline)
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.write(terminal.masterDescriptor, $0.baseAddress, $0.count) }
            if written > 0 {
                offset += written
                continue
            }
            let code = errno
            if written < 0 && code != EAGAIN && code != EINTR {
                throw located(.system("write to the pseudo-terminal", code, fix: "the terminal was closed; restart the simulator"), line)
            }
            if try pollMaster(Int16(POLLOUT), until: end, line: line) == 0 {
                throw expired(deadline, line: line, SimulatorError(
                    kind: .timeout, file: capture.file, line: line,
                    problem: "the host did not read: \(bytes.count - offset) of \(bytes.count) bytes of this `<` line are still unwritten after \(Self.describe(options.responseTimeout))",
                    fix: "open \(terminal.slavePath) and read from it while the capture plays"))
            }
        }
    }

    /// Waits until the host has read what was written (``Pacing/oneLinePerRead``): a read of the slave
    /// was observed and its input queue is empty.
    ///
    /// Written bytes reach the slave's queue through a kernel work queue, so an empty queue alone may
    /// mean "not arrived yet"; the read events (inotify) tell the two apart. Where they are not
    /// available, the queue must be seen non-empty and then empty, or stay empty for 20 ms.
    private func awaitRead(line: Int, deadline: ContinuousClock.Instant) throws(SimulatorError) {
        let end = min(clock.now.advanced(by: options.responseTimeout), deadline)
        let arrival = clock.now.advanced(by: .milliseconds(20))
        var arrived = false
        while true {
            let now = clock.now
            let read = terminal.hostHasRead()
            let unread = terminal.unreadByteCount() ?? 0
            if unread > 0 {
                arrived = true
            } else if read || (!terminal.observesReads && (arrived || now >= arrival)) {
                return
            }
            if now >= end {
                throw expired(deadline, line: line, SimulatorError(
                    kind: .timeout, file: capture.file, line: line,
                    problem: "the host did not read this `<` line within \(Self.describe(options.responseTimeout)) (lines are played one per read for this profile's transport)",
                    fix: "open \(terminal.slavePath) and read from it while the capture plays"))
            }
            try pollMaster(nil, until: min(now.advanced(by: .milliseconds(2)), end), line: line)
        }
    }

    /// The fault-mode extension point for host lines: waits for the host to send `expected` and compares.
    private func awaitHost(_ expected: [UInt8], line: Int, pending: inout [UInt8], deadline: ContinuousClock.Instant) throws(SimulatorError) {
        let end = min(clock.now.advanced(by: options.responseTimeout), deadline)
        while true {
            let common = min(pending.count, expected.count)
            if let differ = (0..<common).first(where: { pending[$0] != expected[$0] }) {
                // Let the rest of the host's message arrive, so the error shows all of it.
                let settle = min(clock.now.advanced(by: .milliseconds(100)), deadline)
                while pending.count < expected.count + 16, try pollMaster(Int16(POLLIN), until: settle, line: line) != 0 {
                    try readAvailable(into: &pending, line: line)
                }
                throw SimulatorError(
                    kind: .mismatch, file: capture.file, line: line, expected: expected, received: pending,
                    problem: "the host sent \(hexPreview(pending)) where the capture shows \(hexPreview(expected)) (first difference at byte \(differ))",
                    fix: "the host's request differs from the recorded one: check the profile's script, or the capture line")
            }
            if pending.count >= expected.count {
                pending.removeFirst(expected.count)
                return
            }
            if try pollMaster(Int16(POLLIN), until: end, line: line) == 0 {
                throw expired(deadline, line: line, SimulatorError(
                    kind: .timeout, file: capture.file, line: line, expected: expected, received: pending,
                    problem: "waited \(Self.describe(options.responseTimeout)) for the host to send \(hexPreview(expected)); received \(pending.isEmpty ? "nothing" : hexPreview(pending))",
                    fix: "check that the host opened \(terminal.slavePath) and sends this request at this point"))
            }
            try readAvailable(into: &pending, line: line)
        }
    }

    /// Stays silent; host bytes arriving meanwhile wait in the kernel for the next `>` line.
    private func pause(_ milliseconds: Int, line: Int, deadline: ContinuousClock.Instant) throws(SimulatorError) {
        let wanted = clock.now.advanced(by: .milliseconds(milliseconds))
        try pollMaster(nil, until: min(wanted, deadline), line: line)
        if wanted > deadline {
            throw expired(deadline, line: line, SimulatorError(kind: .deadline, problem: "", fix: ""))
        }
    }

    /// Reads whatever the host has sent, without blocking.
    private func readAvailable(into buffer: inout [UInt8], line: Int?) throws(SimulatorError) {
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(terminal.masterDescriptor, $0.baseAddress, $0.count) }
            if count > 0 {
                buffer += chunk[0..<count]
                continue
            }
            let code = errno
            if count < 0 && code == EINTR { continue }
            if count == 0 || code == EAGAIN { return }
            throw located(.system("read from the pseudo-terminal", code, fix: "the terminal was closed; restart the simulator"), line)
        }
    }

    /// Polls the master for `events` (nil: only the stop pipe) until `end`. Returns the master's
    /// `revents`, 0 when `end` came first; throws when stopped.
    @discardableResult
    private func pollMaster(_ events: Int16?, until end: ContinuousClock.Instant, line: Int) throws(SimulatorError) -> Int16 {
        while true {
            let now = clock.now
            var descriptors = [pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)]
            if let events { descriptors.append(pollfd(fd: terminal.masterDescriptor, events: events, revents: 0)) }
            let wait = now >= end ? 0 : Self.milliseconds(end - now, roundingUp: true)
            let result = poll(&descriptors, nfds_t(descriptors.count), Int32(clamping: wait))
            if result < 0 {
                let code = errno
                if code == EINTR { continue }
                throw located(.system("poll", code, fix: "report this as a bug"), line)
            }
            if descriptors[0].revents != 0 {
                throw SimulatorError(kind: .stopped, file: capture.file, line: line, problem: "the playback was stopped", fix: "")
            }
            if events != nil, descriptors[1].revents != 0 {
                let revents = descriptors[1].revents
                if revents & Int16(POLLNVAL | POLLERR) != 0 && revents & Int16(POLLIN | POLLOUT) == 0 {
                    throw located(SimulatorError(kind: .system, problem: "the pseudo-terminal reported an error (poll events 0x\(String(UInt16(bitPattern: revents), radix: 16)))",
                                                 fix: "the terminal was closed; restart the simulator"), line)
                }
                return revents
            }
            if clock.now >= end { return 0 }
        }
    }

    private func located(_ error: SimulatorError, _ line: Int?) -> SimulatorError {
        var error = error
        error.file = capture.file
        error.line = line
        return error
    }

    /// `error`, or a deadline error when the overall deadline is what ran out.
    private func expired(_ deadline: ContinuousClock.Instant, line: Int, _ error: SimulatorError) -> SimulatorError {
        guard clock.now >= deadline else { return error }
        let limit = options.deadline ?? automaticDeadline()
        return SimulatorError(kind: .deadline, file: capture.file, line: line, expected: error.expected, received: error.received,
                              problem: "the playback's overall deadline (\(Self.describe(limit))) passed while playing this line",
                              fix: "give the playback a longer deadline, or check why the host is slow")
    }

    // MARK: Timing

    /// Message transports deliver one line per read; streams do not.
    static func pacing(for transport: Transport?) -> Pacing {
        switch transport {
        case .ble, .hidraw: .oneLinePerRead
        case .serial, .rfcomm, nil: .stream
        }
    }

    /// The capture's own waits and silences plus a response timeout per line, for every repetition.
    func automaticDeadline() -> Duration {
        let response = Double(Self.milliseconds(options.responseTimeout))
        var perRound = 0.0
        for entry in capture.entries {
            switch entry.line {
            case .fromDevice, .toDevice: perRound += response
            case .wait(let milliseconds): perRound += Double(milliseconds)
            case .timeout: perRound += Double(silences[entry.lineNumber] ?? Self.milliseconds(options.defaultTimeoutSilence))
            }
        }
        // At most 30 days: a deadline must exist, not be clever.
        let total = min(perRound * Double(max(1, options.repeatCount)) + 5000, 30 * 86_400_000)
        return .milliseconds(Int64(total))
    }

    /// Each `@timeout` line's silence: the timeout the profile's engine is waiting with at that point of
    /// the capture (found by replaying the capture into a session, as ``Replay`` does) plus a margin, so
    /// the host's timer fires before the device speaks again.
    static func timeoutSilences(_ capture: Capture, profile: DeviceProfile?, fallback: Int) -> [Int: Int] {
        var silences: [Int: Int] = [:]
        guard let profile else {
            for entry in capture.entries where entry.line == .timeout { silences[entry.lineNumber] = fallback }
            return silences
        }
        var session = profile.engine.makeSession(device: capture.device ?? Replay.defaultDevice(for: profile), profileID: profile.id)
        var time = capture.receivedAt
        _ = session.start(at: time)
        for entry in capture.entries {
            switch entry.line {
            case .fromDevice(let bytes, let channel):
                _ = session.receive(bytes, channel: channel, at: time)
            case .toDevice:
                break
            case .wait(let milliseconds):
                time.instant = time.instant.addingTimeInterval(Double(milliseconds) / 1000)
            case .timeout:
                if let milliseconds = session.timeoutMilliseconds {
                    silences[entry.lineNumber] = milliseconds + max(100, milliseconds / 4)
                    time.instant = time.instant.addingTimeInterval(Double(milliseconds) / 1000)
                } else {
                    silences[entry.lineNumber] = fallback
                }
                _ = session.timeout(at: time)
            }
        }
        return silences
    }

    static func milliseconds(_ duration: Duration, roundingUp: Bool = false) -> Int {
        let (seconds, attoseconds) = duration.components
        guard seconds >= 0 else { return 0 }
        let (whole, overflow) = seconds.multipliedReportingOverflow(by: 1000)
        if overflow || whole > Int64(Int32.max) { return Int(Int32.max) }
        let fraction = attoseconds / 1_000_000_000_000_000
        let rest = roundingUp && attoseconds % 1_000_000_000_000_000 != 0 ? 1 : 0
        return Int(whole + fraction) + rest
    }

    static func describe(_ duration: Duration) -> String {
        let milliseconds = milliseconds(duration)
        return milliseconds % 1000 == 0 ? "\(milliseconds / 1000) s" : "\(milliseconds) ms"
    }
}
