import Foundation
import VitalModel
import ProfileEngine
import ProfileCatalog
import DeviceSimulator

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
        reports arrive), so the host must open the terminal and read within --timeout.

        PROFILE is a shipped profile id (see `vitalgate profile list`) or a profile file. Standard Bluetooth
        profiles (engine gatt-standard) exchange characteristic values, not a byte stream, and cannot be
        played on a terminal.

        Options:
          --capture FILE     the capture to play (required)
          --profiles DIR     the profile tree to look ids up in (default: the shipped DeviceProfiles)
          --linger SECONDS   after the last line, wait up to this long for the host to read what it has
                             not read yet, then close the terminal (default 2)
          --repeat N         play the capture N times in a row on the same terminal (default 1)
          --timeout SECONDS  how long to wait for each `>` line from the host, and for the host to read
                             a line it has not read yet (default 10)

        Example (print what the device sends, as hex; od ends with an I/O error when the terminal
        closes, as it would when a USB adapter is unplugged):
          vitalgate simulate PROFILE --capture FILE | { read -r tty; od -An -tx1 < "$tty"; }

        Exit status: 0 the capture played to the end, 1 the host sent something else or was too slow
        (the message names the capture line), 2 usage error or a broken profile or capture.
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
        let parsed = try Arguments(arguments, flags: [], options: ["capture", "profiles", "linger", "repeat", "timeout"], command: "simulate")
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
            guard let count = Int(text), (1...1_000_000).contains(count) else {
                throw UsageError("--repeat needs a whole number from 1 to 1000000, not '\(text)'")
            }
            repeatCount = count
        }

        let profile = try ProfileResolver.resolve(parsed.operands[0], directory: parsed.value("profiles"))
        if profile.engine is GATTStandardEngine {
            throw UsageError("\(profile.id) uses the gatt-standard engine: its captures are Bluetooth characteristic values, "
                             + "which a pseudo-terminal cannot carry. Standard Bluetooth devices are exercised by the Bluetooth VM test "
                             + "(issue #6); `vitalgate profile test \(profile.id)` replays its captures without a device")
        }
        let capture = try Capture.load(file: capturePath)

        let terminal = try PseudoTerminal()
        let player = try CapturePlayer(capture: capture, profile: profile, terminal: terminal,
                                       options: PlaybackOptions(responseTimeout: timeout, repeatCount: repeatCount))
        announce(terminal.slavePath + "\n")
        player.start()
        switch player.wait() {
        case .success(let report):
            var notes = ""
            if !report.unexpectedHostBytes.isEmpty {
                notes += "vitalgate simulate: note: after the last line the host also sent "
                    + hexString(report.unexpectedHostBytes, separator: " ") + ", which the capture does not show\n"
            }
            // Closing the terminal discards what the host has not read, so give it time to read.
            if !terminal.waitUntilDrained(timeout: linger), let unread = terminal.unreadByteCount(), unread > 0 {
                notes += "vitalgate simulate: note: the host left \(unread) byte\(unread == 1 ? "" : "s") unread "
                    + "(open \(terminal.slavePath) sooner, or pass a longer --linger)\n"
            }
            return CommandResult(stderr: notes)
        case .failure(let error):
            return CommandResult(stderr: "vitalgate simulate: \(error)\n", exitCode: 1)
        case nil:
            return CommandResult(stderr: "vitalgate simulate: the playback did not start\n", exitCode: 1)
        }
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
