import Foundation
import VitalModel
import ProfileEngine
import ProfileCatalog
import DeviceSimulator
import Dispatch
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// `vitalgate simulate` (also `vitalgate profile simulate`): plays the device side of a capture on a
/// pseudo-terminal, so VitalGate or any other program can talk to it as to a serial device.
struct SimulateCommand {
    static let usage = """
        Usage: vitalgate simulate PROFILE --capture FILE [options]
               vitalgate profile simulate PROFILE --capture FILE [options]

        Plays the device side of a capture on a pseudo-terminal. The first line of standard output is the
        terminal's path (such as /dev/pts/7), printed at once; open it as you would open a serial port.
        Then `<` lines are sent to the host, `>` lines are awaited from the host and compared, `@wait`
        pauses and `@timeout` stays silent until the profile's timeout has passed. Bluetooth and HID
        captures of a vendor protocol are played as one byte stream; for those profiles each `<` line is
        written only after the host has read the previous one (one line per read, as notifications and
        reports arrive), so the host must open the terminal and read within --timeout. For HID profiles
        the host writes each output report as to Linux hidraw: the report id (0 for unnumbered reports),
        then the report the `>` line shows.

        At the end one line of JSON on standard error sums up the playback: {"outcome": "completed",
        "hung-up", "stopped" or "failed", "fault", "repetitions", "deviceBytes", "hostBytes",
        "unexpectedHostBytes", "garbageInsertions", "garbageBytes", "corruptedLines", "repeatedReplies",
        "hungUp", "hangUpLine"}.

        PROFILE is a shipped profile id (see `vitalgate profile list`) or a profile file. Standard Bluetooth
        profiles (engine gatt-standard) exchange characteristic values, not a byte stream, and cannot be
        played on a terminal.

        Options:
          --capture FILE     the capture to play (required)
          --profiles DIR     the profile tree to look ids up in (default: the shipped DeviceProfiles)
          --linger SECONDS   after the last line, wait up to this long for the host to read what it has
                             not read yet, then close the terminal (default 2)
          --repeat N         play the capture N times in a row on the same terminal (default 1)
          --forever          play the capture again and again until SIGTERM or SIGINT (exit 0); for a
                             capture with `>` lines each repetition waits for the host without a limit
          --timeout SECONDS  how long to wait for each `>` line from the host, and for the host to read
                             a line it has not read yet (default 10)
          --terminal-fd N    play on the pseudo-terminal whose master is the inherited descriptor N
                             (such as umockdev's emulated serial node) instead of a new one; the host sees
                             a hang-up only once every copy of that master is closed
          --fault MODE       misbehave on the device side (faults apply to `<` lines only):
                               garbage     8 random bytes before every Nth line (HID: one whole report)
                               slow        each byte written alone, 8.3 ms apart (1200 baud)
                               disconnect  write half of line N, wait for the host to read it, hang up
                               checksum    flip the lowest bit of the last byte of every Nth line
                             After an altered reply the host may send its request again; it is answered
                             with the recorded reply.
          --fault-every N    the N for garbage and checksum (default 5), the line to hang up in for
                             disconnect (default: the capture's middle `<` line)
          --seed S           the seed of the garbage (default 1); the same seed gives the same bytes

        Example (print what the device sends, as hex; od ends with an I/O error when the terminal
        closes, as it would when a USB adapter is unplugged):
          vitalgate simulate PROFILE --capture FILE | { read -r tty; od -An -tx1 < "$tty"; }

        Exit status: 0 the capture played to the end (or hung up as --fault disconnect asks, or --forever
        was ended by a signal), 1 the host sent something else or was too slow (the message names the
        capture line), or a signal ended a finite playback, 2 usage error or a broken profile or capture.
        """

    /// Runs the command. `announce` receives the terminal's path line; by default it goes straight to
    /// standard output (see ``announceOnStandardOutput(_:)``).
    static func run(_ arguments: [String], announce: (String) -> Void = announceOnStandardOutput) -> CommandResult {
        if arguments.contains("--help") || arguments.contains("-h") { return CommandResult(stdout: usage + "\n") }
        do {
            return try simulate(arguments, announce: announce)
        } catch let error as UsageError {
            return CommandResult(stderr: "vitalgate simulate: \(error)\nSee `vitalgate simulate --help`.\n", exitCode: 2)
        } catch let error as ProfileError {
            return CommandResult(stderr: "vitalgate simulate: \(error)\n", exitCode: 2)
        } catch {
            return CommandResult(stderr: "vitalgate simulate: \(error)\n", exitCode: 1)
        }
    }

    /// Writes the path line to standard output at once, unbuffered.
    ///
    /// Every other command hands its output back in ``CommandResult``, which `main` prints at the end.
    /// This line cannot wait: the caller must read the path and open the terminal *while* the capture
    /// plays, and the playback waits for that caller, so printing it at the end would deadlock both.
    static func announceOnStandardOutput(_ line: String) {
        try? FileHandle.standardOutput.write(contentsOf: Data(line.utf8))
    }

    static func simulate(_ arguments: [String], announce: (String) -> Void) throws -> CommandResult {
        let parsed = try Arguments(arguments, flags: ["forever"],
                                   options: ["capture", "profiles", "linger", "repeat", "timeout", "fault", "fault-every", "seed", "terminal-fd"],
                                   command: "simulate")
        guard parsed.operands.count == 1 else {
            throw UsageError(parsed.operands.isEmpty
                ? "give the profile to simulate: a shipped id (see `vitalgate profile list`) or a profile file"
                : "give one profile, not \(parsed.operands.count) (\(parsed.operands.joined(separator: " ")))")
        }
        guard let capturePath = parsed.value("capture") else {
            throw UsageError("--capture FILE is required: the recorded conversation to play")
        }
        let linger = try seconds(parsed.value("linger"), option: "linger", default: 2, range: 0...3600)
        let timeout = try seconds(parsed.value("timeout"), option: "timeout", default: 10, range: 0.001...86_400)
        var repeatCount = 1
        if let text = parsed.value("repeat") {
            guard !parsed.has("forever") else { throw UsageError("give --repeat N or --forever, not both") }
            guard let count = Int(text), (1...1_000_000).contains(count) else {
                throw UsageError("--repeat needs a whole number from 1 to 1000000, not '\(text)'")
            }
            repeatCount = count
        }
        let terminalFD = try parsed.value("terminal-fd").map { text throws(UsageError) -> Int32 in
            guard let descriptor = Int32(text), descriptor >= 0 else {
                throw UsageError("--terminal-fd needs a file descriptor number (0 or more), not '\(text)'")
            }
            return descriptor
        }

        let profile = try ProfileResolver.resolve(parsed.operands[0], directory: parsed.value("profiles"))
        if profile.engine is GATTStandardEngine {
            throw UsageError("\(profile.id) uses the gatt-standard engine: its captures are Bluetooth characteristic values, "
                             + "which a pseudo-terminal cannot carry. Standard Bluetooth devices are exercised by the Bluetooth VM test "
                             + "(issue #6); `vitalgate profile test \(profile.id)` replays its captures without a device")
        }
        let capture = try Capture.load(file: capturePath)
        let fault = try faultMode(parsed, capture: capture)

        let terminal: PseudoTerminal
        if let terminalFD {
            do {
                terminal = try PseudoTerminal(adoptingMaster: terminalFD)
            } catch {
                throw UsageError("--terminal-fd \(terminalFD): \(error)")
            }
        } else {
            terminal = try PseudoTerminal()
        }
        let player = try CapturePlayer(capture: capture, profile: profile, terminal: terminal,
                                       options: PlaybackOptions(responseTimeout: timeout, repeatCount: repeatCount,
                                                                repeatForever: parsed.has("forever"), fault: fault))
        announce(terminal.slavePath + "\n")
        let signalled = StopOnSignals(player)
        player.start()
        let outcome = player.wait()
        let bySignal = signalled.finish()
        let faultName = parsed.value("fault") ?? "none"
        switch outcome {
        case .success(let report):
            var notes = ""
            if !report.unexpectedHostBytes.isEmpty {
                notes += "vitalgate simulate: note: \(report.hungUp ? "before the hang-up" : "after the last line") the host also sent "
                    + hexString(report.unexpectedHostBytes, separator: " ") + ", which the capture does not show\n"
            }
            // Closing the terminal discards what the host has not read, so give it time to read.
            if !report.hungUp, !terminal.waitUntilDrained(timeout: linger), let unread = terminal.unreadByteCount(), unread > 0 {
                notes += "vitalgate simulate: note: the host left \(unread) byte\(unread == 1 ? "" : "s") unread "
                    + "(open \(terminal.slavePath) sooner, or pass a longer --linger)\n"
            }
            return CommandResult(stderr: notes + summary(report, outcome: report.hungUp ? "hung-up" : "completed", fault: faultName))
        case .failure(let error) where error.kind == .stopped && bySignal:
            let report = player.progress
            if parsed.has("forever") {
                return CommandResult(stderr: summary(report, outcome: "stopped", fault: faultName))
            }
            return CommandResult(stderr: "vitalgate simulate: stopped by a signal at \(error.file):\(error.line ?? 0), before the capture's end\n"
                                 + summary(report, outcome: "stopped", fault: faultName), exitCode: 1)
        case .failure(let error):
            return CommandResult(stderr: "vitalgate simulate: \(error)\n" + summary(player.progress, outcome: "failed", fault: faultName), exitCode: 1)
        case nil:
            return CommandResult(stderr: "vitalgate simulate: the playback did not start\n", exitCode: 1)
        }
    }

    /// The fault mode `--fault`, `--fault-every` and `--seed` ask for.
    static func faultMode(_ parsed: Arguments, capture: Capture) throws(UsageError) -> FaultMode {
        let name = parsed.value("fault")
        var every: Int?
        if let text = parsed.value("fault-every") {
            guard let value = Int(text), (1...1_000_000).contains(value) else {
                throw UsageError("--fault-every needs a whole number from 1 to 1000000, not '\(text)'")
            }
            guard name != nil, name != "slow" else {
                throw UsageError("--fault-every applies to --fault garbage, checksum and disconnect only")
            }
            every = value
        }
        var seed: UInt64 = 1
        if let text = parsed.value("seed") {
            guard let value = UInt64(text) else {
                throw UsageError("--seed needs a whole number from 0 to \(UInt64.max), not '\(text)'")
            }
            guard name == "garbage" else { throw UsageError("--seed applies to --fault garbage only") }
            seed = value
        }
        switch name {
        case nil:
            return .none
        case "garbage":
            return .garbage(everyLines: every ?? 5, bytes: 8, seed: seed)
        case "slow":
            // 10 bits a byte (start, 8 data, stop) at 1200 baud.
            return .slowBytes(perByte: .microseconds(8334))
        case "disconnect":
            let deviceLines = capture.entries.count { if case .fromDevice = $0.line { true } else { false } }
            return .disconnectMidFrame(afterLines: every ?? max(1, (deviceLines + 1) / 2))
        case "checksum":
            return .wrongChecksum(everyLines: every ?? 5)
        case let other?:
            throw UsageError("--fault takes garbage, slow, disconnect or checksum, not '\(other)'")
        }
    }

    /// The one-line JSON summary printed last on standard error: counts only, no measured values.
    static func summary(_ report: PlaybackReport, outcome: String, fault: String) -> String {
        let fields: [(String, String)] = [
            ("outcome", "\"\(outcome)\""),
            ("fault", "\"\(fault)\""),
            ("repetitions", "\(report.repetitions)"),
            ("deviceBytes", "\(report.deviceBytes)"),
            ("hostBytes", "\(report.hostBytes)"),
            ("unexpectedHostBytes", "\(report.unexpectedHostBytes.count)"),
            ("garbageInsertions", "\(report.garbageInsertions)"),
            ("garbageBytes", "\(report.garbageBytes)"),
            ("corruptedLines", "\(report.corruptedLines)"),
            ("repeatedReplies", "\(report.repeatedReplies)"),
            ("hungUp", "\(report.hungUp)"),
            ("hangUpLine", report.hangUpLine.map(String.init) ?? "null"),
        ]
        return "{" + fields.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}\n"
    }

    static func seconds(_ text: String?, option: String, default fallback: Double, range: ClosedRange<Double>) throws(UsageError) -> Duration {
        guard let text else { return .milliseconds(Int64(fallback * 1000)) }
        guard let value = Double(text), value.isFinite, range.contains(value) else {
            throw UsageError("--\(option) needs seconds from \(formatted(range.lowerBound)) to \(formatted(range.upperBound)), not '\(text)'")
        }
        return .milliseconds(Int64((value * 1000).rounded(.up)))
    }

    private static func formatted(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String(value)
    }
}

/// While a playback runs, SIGTERM and SIGINT stop it instead of killing the process, so the summary is
/// still printed (and `--forever` ends with status 0). ``finish()`` restores the earlier dispositions.
private final class StopOnSignals {
    private final class Flag: Sendable {
        let raised = Atomic<Bool>(false)
    }

    private let flag = Flag()
    private var sources: [DispatchSourceSignal] = []
    private var previous: [(Int32, __sighandler_t?)] = []

    init(_ player: CapturePlayer) {
        for number in [SIGTERM, SIGINT] {
            // Dispatch sees the signal only if the default action (ending the process) is off.
            previous.append((number, signal(number, SIG_IGN)))
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            let flag = flag
            source.setEventHandler {
                flag.raised.store(true, ordering: .releasing)
                player.stop()
            }
            source.resume()
            sources.append(source)
        }
    }

    /// Stops listening; returns whether a signal stopped the playback.
    func finish() -> Bool {
        sources.forEach { $0.cancel() }
        sources = []
        for (number, handler) in previous { _ = signal(number, handler) }
        previous = []
        return flag.raised.load(ordering: .acquiring)
    }
}
