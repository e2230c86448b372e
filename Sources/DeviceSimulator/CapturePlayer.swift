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
/// For HID profiles (`transport.hidraw`) the host writes output reports as it would to Linux hidraw:
/// the report id (0 for unnumbered reports) and then the report, `reportSize + 1` bytes. The player
/// expects that byte before each `>` line, which holds the report alone. `<` lines are written as they
/// are; the host cuts the stream into `reportSize`-byte input reports.
///
/// ``PlaybackOptions/fault`` makes the device misbehave (``FaultMode``); the report counts what was
/// injected.
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
    /// For HID profiles: the byte the host puts before each output report, and the report size.
    let hidReports: (id: UInt8, size: Int)?
    /// A pipe whose read end is in every poll: ``stop()`` writes to it to end the playback at once.
    private let wakeRead: Int32
    private let wakeWrite: Int32
    private let state = Mutex(State())
    private let done = DispatchGroup()
    private let ending = OnceValue<Result<PlaybackReport, SimulatorError>>()

    private struct State {
        var started = false
        var progress = PlaybackReport()
    }

    /// Prepares a playback. `profile` gives the engine whose timeouts `@timeout` lines must outlast;
    /// without one, ``PlaybackOptions/defaultTimeoutSilence`` is used. A ``PlaybackOptions/repeatCount``
    /// below 1 plays once. Throws an ``SimulatorError/Kind/invalidOptions`` error for a fault mode that
    /// cannot be played (an interval below 1, say).
    public init(capture: Capture, profile: DeviceProfile?, terminal: PseudoTerminal,
                options: PlaybackOptions = PlaybackOptions()) throws(SimulatorError) {
        if let problem = options.fault.problem {
            throw SimulatorError(kind: .invalidOptions, problem: problem, fix: "choose a fault mode as FaultMode documents it")
        }
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
        if case .hidraw(let settings) = profile?.transport {
            self.hidReports = (UInt8(truncatingIfNeeded: settings.reportID ?? 0), max(1, settings.reportSize))
        } else {
            self.hidReports = nil
        }
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
            ending.set(play())
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
    public var isFinished: Bool { ending.current != nil }

    /// The report so far, updated after every capture line: what a playback stopped or failed midway
    /// had done (``wait(timeout:)`` and ``outcome()`` give only the error then).
    public var progress: PlaybackReport { state.withLock { $0.progress } }

    func publish(_ report: PlaybackReport) {
        state.withLock { $0.progress = report }
    }

    /// Blocks the calling thread until the playback ends or `timeout` passes; nil if it has not ended
    /// (or was never started). For command-line tools and dedicated threads, not for async code.
    public func wait(timeout: Duration? = nil) -> Result<PlaybackReport, SimulatorError>? {
        if let timeout {
            _ = done.wait(timeout: .now() + .milliseconds(Self.milliseconds(timeout)))
        } else {
            done.wait()
        }
        return ending.current
    }

    /// Starts the playback if needed and suspends until it ends.
    public func outcome() async -> Result<PlaybackReport, SimulatorError> {
        start()
        return await ending.value
    }

    // MARK: Terminal I/O (the playback itself is in CapturePlayer+Playing.swift)

    var clock: ContinuousClock { ContinuousClock() }

    /// The end of a wait for the host: the response timeout from now, or only the overall deadline when
    /// the wait is `patient` (see ``PlaybackOptions/repeatForever``).
    func waitEnd(patient: Bool, deadline: ContinuousClock.Instant) -> ContinuousClock.Instant {
        patient ? deadline : min(clock.now.advanced(by: options.responseTimeout), deadline)
    }

    /// Writes one chunk, waiting (with a limit) while the host's input queue is full.
    func writeDevice(_ bytes: [UInt8], line: Int, deadline: ContinuousClock.Instant) throws(SimulatorError) {
        let end = waitEnd(patient: options.repeatForever, deadline: deadline)
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
    func awaitRead(line: Int, deadline: ContinuousClock.Instant) throws(SimulatorError) {
        let end = waitEnd(patient: options.repeatForever, deadline: deadline)
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

    /// Waits until the host has taken everything written, or `end`; returns whether it did.
    ///
    /// Written bytes reach the slave's queue through a kernel work queue, late on a busy machine, so an
    /// empty queue alone may mean "not arrived yet". Where reads are observed (inotify) and the caller
    /// reset them before writing (`expectRead`), a read must have been seen and the queue stay empty for
    /// 20 ms; otherwise the queue must stay empty for 100 ms.
    func awaitDrained(line: Int, until end: ContinuousClock.Instant, expectRead: Bool) throws(SimulatorError) -> Bool {
        let byReads = expectRead && terminal.observesReads
        var readSeen = false
        var emptySince: ContinuousClock.Instant?
        while true {
            let now = clock.now
            if byReads && terminal.hostHasRead() { readSeen = true }
            if terminal.unreadByteCount() ?? 0 == 0 {
                let since = emptySince ?? now
                if byReads ? readSeen && now - since >= .milliseconds(20) : now - since >= .milliseconds(100) { return true }
                emptySince = since
            } else {
                emptySince = nil
            }
            if now >= end { return false }
            try pollMaster(nil, until: min(now.advanced(by: .milliseconds(5)), end), line: line)
        }
    }

    /// Stays silent for `duration`; host bytes arriving meanwhile wait in the kernel for the next `>` line.
    func pause(_ duration: Duration, line: Int, deadline: ContinuousClock.Instant) throws(SimulatorError) {
        let wanted = clock.now.advanced(by: duration)
        try pollMaster(nil, until: min(wanted, deadline), line: line)
        if wanted > deadline {
            throw expired(deadline, line: line, SimulatorError(kind: .deadline, problem: "", fix: ""))
        }
    }

    /// Reads whatever the host has sent, without blocking.
    func readAvailable(into buffer: inout [UInt8], line: Int?) throws(SimulatorError) {
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
    func pollMaster(_ events: Int16?, until end: ContinuousClock.Instant, line: Int) throws(SimulatorError) -> Int16 {
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

    func located(_ error: SimulatorError, _ line: Int?) -> SimulatorError {
        var error = error
        error.file = capture.file
        error.line = line
        return error
    }

    /// `error`, or a deadline error when the overall deadline is what ran out.
    func expired(_ deadline: ContinuousClock.Instant, line: Int, _ error: SimulatorError) -> SimulatorError {
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

    /// The capture's own waits and silences plus a response timeout per line, for every repetition;
    /// slowed bytes add their pauses, and faults that make the host ask again double the per-line part.
    func automaticDeadline() -> Duration {
        let response = Double(Self.milliseconds(options.responseTimeout))
        var exchanged = 0.0
        var silent = 0.0
        var deviceBytes = 0
        for entry in capture.entries {
            switch entry.line {
            case .fromDevice(let bytes, _):
                exchanged += response
                deviceBytes += bytes.count
            case .toDevice: exchanged += response
            case .wait(let milliseconds): silent += Double(milliseconds)
            case .timeout: silent += Double(silences[entry.lineNumber] ?? Self.milliseconds(options.defaultTimeoutSilence))
            }
        }
        var perRound = silent + (options.fault.altersReplies ? 2 * exchanged : exchanged)
        if case .slowBytes(let pause) = options.fault {
            perRound += Double(Self.milliseconds(pause * max(1, deviceBytes), roundingUp: true)) + Double(deviceBytes)
        }
        // At most 30 days: a deadline must exist, not be clever.
        let total = min(perRound * Double(max(1, options.repeatCount)) + 5000 + Double(Self.milliseconds(Self.lateRequestWindow)),
                        30 * 86_400_000)
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

    /// Milliseconds for poll(2), between 0 and `Int32.max`.
    static func milliseconds(_ duration: Duration, roundingUp: Bool = false) -> Int {
        Int(min(max(0, duration.milliseconds(roundingUp: roundingUp)), Int64(Int32.max)))
    }

    static func describe(_ duration: Duration) -> String {
        let milliseconds = milliseconds(duration)
        return milliseconds % 1000 == 0 ? "\(milliseconds / 1000) s" : "\(milliseconds) ms"
    }
}
