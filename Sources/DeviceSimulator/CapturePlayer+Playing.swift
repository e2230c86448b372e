import VitalModel
import ProfileCatalog
#if canImport(Glibc)
import Glibc
#endif

/// The playback itself, on the player's dedicated thread: capture lines in order, with the options'
/// faults (``FaultMode``) applied to device lines.
extension CapturePlayer {
    /// A run of `>` lines and the `<` lines that answer them: what a host may ask for again.
    struct Exchange {
        /// The host's bytes as they arrive (with the report id for HID profiles).
        var request: [UInt8] = []
        /// The request's bytes as the capture shows them (what ``PlaybackReport/hostBytes`` counts).
        var requestLineBytes = 0
        /// The reply's `<` lines as recorded, with their capture line numbers.
        var reply: [(bytes: [UInt8], line: Int)] = []
        /// Whether a fault altered the reply on the wire.
        var altered = false

        /// Whether the host may ask for this reply again (see ``FaultMode``).
        var mayBeAskedAgain: Bool { altered && !request.isEmpty && !reply.isEmpty }
    }

    /// The playback's moving parts.
    struct Run {
        var report = PlaybackReport()
        /// Host bytes read but not yet matched: the host may send the next request before we look for it.
        var pending: [UInt8] = []
        /// Device lines played so far, counted from 1 over all repetitions (the fault intervals count these).
        var deviceLines = 0
        var generator: SeededGenerator
        var exchange = Exchange()
    }

    /// How long the player waits after the last line for a repeated request, when the last reply was
    /// altered (at most the response timeout).
    static let lateRequestWindow = Duration.seconds(3)

    func play() -> Result<PlaybackReport, SimulatorError> {
        let limit: Duration? = options.deadline ?? (options.repeatForever ? nil : automaticDeadline())
        // Forever without a deadline: a century stands in for "no limit".
        let deadline = clock.now.advanced(by: limit ?? .seconds(100 * 365 * 86_400))
        var seed: UInt64 = 0
        if case .garbage(_, _, let value) = options.fault { seed = value }
        var run = Run(generator: SeededGenerator(seed: seed))
        do {
            var round = 0
            while options.repeatForever || round < max(1, options.repeatCount) {
                var firstRequest = true
                for entry in capture.entries {
                    switch entry.line {
                    case .fromDevice(let bytes, _):
                        if try playDeviceLine(bytes, line: entry.lineNumber, run: &run, deadline: deadline) {
                            publish(run.report)
                            return .success(run.report)
                        }
                    case .toDevice(let bytes, _):
                        // A new request begins after a reply; until then `>` lines add to the current one.
                        let startsRequest = !run.exchange.reply.isEmpty || run.exchange.request.isEmpty
                        let earlier = startsRequest && run.exchange.mayBeAskedAgain ? run.exchange : nil
                        // In forever mode the next session's host may come at any time.
                        let patient = options.repeatForever && firstRequest
                        try awaitHost(bytes, line: entry.lineNumber, run: &run, askedAgain: earlier, patient: patient, deadline: deadline)
                        if startsRequest { run.exchange = Exchange() }
                        run.exchange.request += wire(bytes)
                        run.exchange.requestLineBytes += bytes.count
                        firstRequest = false
                    case .wait(let milliseconds):
                        try pause(.milliseconds(milliseconds), line: entry.lineNumber, deadline: deadline)
                    case .timeout:
                        try pause(.milliseconds(silences[entry.lineNumber] ?? Self.milliseconds(options.defaultTimeoutSilence)),
                                  line: entry.lineNumber, deadline: deadline)
                    }
                    publish(run.report)
                }
                run.report.repetitions += 1
                round += 1
                publish(run.report)
            }
            try awaitLateRequest(run: &run, deadline: deadline)
            try readAvailable(into: &run.pending, line: nil)
            run.report.unexpectedHostBytes = run.pending
            publish(run.report)
            return .success(run.report)
        } catch {
            publish(run.report)
            return .failure(error)
        }
    }

    /// A `>` line as the host writes it: HID output reports carry the report id first.
    func wire(_ line: [UInt8]) -> [UInt8] {
        guard let hidReports else { return line }
        return [hidReports.id] + line
    }

    // MARK: Device lines

    /// Plays one `<` line with the options' fault; returns true when the player hung up in it.
    private func playDeviceLine(_ bytes: [UInt8], line: Int, run: inout Run, deadline: ContinuousClock.Instant) throws(SimulatorError) -> Bool {
        run.deviceLines += 1
        let number = run.deviceLines
        // Part of the current exchange's reply (or, before any `>` line, of a reply nobody asked for).
        run.exchange.reply.append((bytes, line))
        var wireBytes = bytes
        switch options.fault {
        case .none, .slowBytes:
            break
        case .garbage(let every, let count, _):
            if number % every == 0 {
                var size = count
                // Whole input reports: a HID device never delivers part of one.
                if let hidReports { size = (count + hidReports.size - 1) / hidReports.size * hidReports.size }
                let noise = run.generator.bytes(size)
                try emit(noise, line: line, deadline: deadline)
                run.report.garbageInsertions += 1
                run.report.garbageBytes += noise.count
                run.exchange.altered = true
            }
        case .wrongChecksum(let every):
            if number % every == 0, let last = wireBytes.indices.last {
                wireBytes[last] ^= 0x01
                run.report.corruptedLines += 1
                run.exchange.altered = true
            }
        case .disconnectMidFrame(let after):
            if number == after {
                try hangUp(partOf: bytes, line: line, run: &run, deadline: deadline)
                return true
            }
        }
        try emit(wireBytes, line: line, deadline: deadline)
        run.report.deviceBytes += bytes.count
        return false
    }

    /// Writes one unit (a line or a burst of garbage) as the pacing and the slow-bytes fault say.
    private func emit(_ bytes: [UInt8], line: Int, deadline: ContinuousClock.Instant) throws(SimulatorError) {
        // An empty line is nothing to read; waiting for its read would time out.
        let paced = pacing == .oneLinePerRead && !bytes.isEmpty
        // Reads of earlier lines must not count as reads of this one.
        if paced { _ = terminal.hostHasRead() }
        if case .slowBytes(let perByte) = options.fault {
            for byte in bytes {
                try pause(perByte, line: line, deadline: deadline)
                try writeDevice([byte], line: line, deadline: deadline)
            }
        } else {
            try writeDevice(bytes, line: line, deadline: deadline)
        }
        if paced { try awaitRead(line: line, deadline: deadline) }
    }

    /// Writes the first half of `bytes`, waits (up to the response timeout) for the host to take it,
    /// and hangs up. A host that does not read is hung up on all the same.
    private func hangUp(partOf bytes: [UInt8], line: Int, run: inout Run, deadline: ContinuousClock.Instant) throws(SimulatorError) {
        let half = Array(bytes.prefix(bytes.count / 2))
        // Closing the master discards what the host has not read: wait for a read of these bytes.
        _ = terminal.hostHasRead()
        try writeDevice(half, line: line, deadline: deadline)
        _ = try awaitDrained(line: line, until: waitEnd(patient: false, deadline: deadline), expectRead: !half.isEmpty)
        // Whatever the host did not send before the hang-up is left unread, and reported.
        try readAvailable(into: &run.pending, line: line)
        terminal.hangUp()
        run.report.deviceBytes += half.count
        run.report.hungUp = true
        run.report.hangUpLine = line
        run.report.bytesBeforeHangUp = half.count
        run.report.unexpectedHostBytes = run.pending
    }

    // MARK: Host lines

    /// Waits for the host to send `line` and compares. `askedAgain` is the previous exchange when the
    /// host may repeat its request (see ``FaultMode``): that request is answered with the recorded reply
    /// and the wait goes on. A `patient` wait has only the overall deadline.
    private func awaitHost(_ line: [UInt8], line lineNumber: Int, run: inout Run, askedAgain: Exchange?, patient: Bool,
                           deadline: ContinuousClock.Instant) throws(SimulatorError) {
        let expected = wire(line)
        var end = waitEnd(patient: patient, deadline: deadline)
        while true {
            if let differ = Self.firstDifference(run.pending, expected) {
                if let earlier = askedAgain, Self.firstDifference(run.pending, earlier.request) == nil {
                    if run.pending.count >= earlier.request.count {
                        run.pending.removeFirst(earlier.request.count)
                        run.report.hostBytes += earlier.requestLineBytes
                        try answerAgain(earlier, run: &run, deadline: deadline)
                        end = waitEnd(patient: patient, deadline: deadline)
                        continue
                    }
                    // Possibly the repeated request, not complete yet: read on.
                } else {
                    try settle(&run.pending, expecting: expected.count, line: lineNumber, deadline: deadline)
                    let shown = hidReports.map { "\(hexPreview(expected)) (report id \(hexString([$0.id], separator: "")), then the capture's report)" }
                        ?? hexPreview(expected)
                    let repeated = askedAgain == nil ? "" : "; nor is it the previous request asked again"
                    throw SimulatorError(
                        kind: .mismatch, file: capture.file, line: lineNumber, expected: expected, received: run.pending,
                        problem: "the host sent \(hexPreview(run.pending)) where the capture shows \(shown) (first difference at byte \(differ))\(repeated)",
                        fix: "the host's request differs from the recorded one: check the profile's script, or the capture line")
                }
            } else if run.pending.count >= expected.count {
                run.pending.removeFirst(expected.count)
                run.report.hostBytes += line.count
                return
            }
            if try pollMaster(Int16(POLLIN), until: end, line: lineNumber) == 0 {
                throw expired(deadline, line: lineNumber, SimulatorError(
                    kind: .timeout, file: capture.file, line: lineNumber, expected: expected, received: run.pending,
                    problem: "waited \(Self.describe(options.responseTimeout)) for the host to send \(hexPreview(expected)); received \(run.pending.isEmpty ? "nothing" : hexPreview(run.pending))",
                    fix: "check that the host opened \(terminal.slavePath) and sends this request at this point"))
            }
            try readAvailable(into: &run.pending, line: lineNumber)
        }
    }

    /// Lets the rest of a wrong message arrive, so the error shows all of it.
    private func settle(_ pending: inout [UInt8], expecting count: Int, line: Int, deadline: ContinuousClock.Instant) throws(SimulatorError) {
        let settle = min(clock.now.advanced(by: .milliseconds(100)), deadline)
        while pending.count < count + 16, try pollMaster(Int16(POLLIN), until: settle, line: line) != 0 {
            try readAvailable(into: &pending, line: line)
        }
    }

    /// Plays an exchange's reply again, as recorded.
    private func answerAgain(_ exchange: Exchange, run: inout Run, deadline: ContinuousClock.Instant) throws(SimulatorError) {
        for (bytes, line) in exchange.reply {
            try emit(bytes, line: line, deadline: deadline)
            run.report.deviceBytes += bytes.count
        }
        run.report.repeatedReplies += 1
    }

    /// After the last line: when the last reply was altered, the host may still ask for it again.
    private func awaitLateRequest(run: inout Run, deadline: ContinuousClock.Instant) throws(SimulatorError) {
        let exchange = run.exchange
        guard exchange.mayBeAskedAgain else { return }
        let line = exchange.reply.last?.line ?? 0
        var end = min(clock.now.advanced(by: min(Self.lateRequestWindow, options.responseTimeout)), deadline)
        while true {
            try readAvailable(into: &run.pending, line: line)
            // Anything else is left for the report's unexpected host bytes.
            guard Self.firstDifference(run.pending, exchange.request) == nil else { return }
            if run.pending.count >= exchange.request.count {
                run.pending.removeFirst(exchange.request.count)
                run.report.hostBytes += exchange.requestLineBytes
                try answerAgain(exchange, run: &run, deadline: deadline)
                end = min(clock.now.advanced(by: min(Self.lateRequestWindow, options.responseTimeout)), deadline)
                continue
            }
            if try pollMaster(Int16(POLLIN), until: end, line: line) == 0 { return }
        }
    }

    /// The first index where `received` and `expected` differ, over their common length; nil when one
    /// is a prefix of the other.
    static func firstDifference(_ received: [UInt8], _ expected: [UInt8]) -> Int? {
        (0..<min(received.count, expected.count)).first { received[$0] != expected[$0] }
    }
}
