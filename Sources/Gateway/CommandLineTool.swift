/// What a command printed and how it ended; `vitalgate`'s main writes it out. Tests run commands in
/// process and read it.
public struct CommandResult: Sendable, Equatable {
    public var stdout: String
    public var stderr: String
    public var exitCode: Int32

    public init(stdout: String = "", stderr: String = "", exitCode: Int32 = 0) {
        self.stdout = stdout
        self.stderr = stderr
        self.exitCode = exitCode
    }
}

/// VitalGate's release version.
public enum VitalGateVersion {
    public static let current = "0.1.0"
}

/// The `vitalgate` command line: dispatches to its commands.
public enum CommandLineTool {
    static let usage = """
        Usage: vitalgate COMMAND [options]

        Commands:
          decode     decode device bytes into readings or FHIR (vendor kit)
          profile    lint, test, list and simulate device profiles (vendor kit)
          simulate   play the device side of a capture on a pseudo-terminal
          devices    list the USB serial and hidraw devices and the profile each would get
          bluetooth  scan for, list, pair (adopt) and forget Bluetooth LE devices
          status     what the hub is doing: devices, each member's last reading, visit, queue, problems
          readings   list stored readings; --unassigned: those held, with the reason
          assign     give a held reading to a citizen (audited)
          visit      start or end a health worker's visit (--patient or --qr)
          queue      show the upload queue and the dead letters
          dead-letters  retry or discard a reading the server refused
          ingest     hand decoded readings to the running daemon
          config     check the daemon's configuration file and the secret files it names; find its schema
          version    print versions of VitalGate and the libraries it uses

        `vitalgate COMMAND --help` describes a command.
        """

    /// Runs `arguments` (without the program name). `input` yields standard-input lines on demand.
    public static func run(_ arguments: [String], input: () -> String? = { readLine() }) -> CommandResult {
        guard let command = arguments.first else { return CommandResult(stderr: usage + "\n", exitCode: 2) }
        let rest = Array(arguments.dropFirst())
        switch command {
        case "decode": return DecodeCommand.run(rest, input: input)
        case "profile": return ProfileCommand.run(rest, input: input)
        case "simulate": return SimulateCommand.run(rest)
        case "devices": return DevicesCommand.run(rest)
        case "bluetooth": return BluetoothCommand.run(rest)
        case "status": return StatusCommand.run(rest)
        case "readings": return ReadingsCommand.run(rest)
        case "assign": return AssignCommand.run(rest)
        case "visit": return VisitCommand.run(rest, input: input)
        case "queue": return QueueCommand.run(rest)
        case "dead-letters": return DeadLettersCommand.run(rest, input: input)
        case "ingest": return IngestCommand.run(rest, input: input)
        case "config": return ConfigCommand.run(rest)
        case "version", "--version": return VersionCommand.run()
        case "help", "--help", "-h": return CommandResult(stdout: usage + "\n")
        default: return CommandResult(stderr: "vitalgate: unknown command '\(command)'\n\n" + usage + "\n", exitCode: 2)
        }
    }
}
