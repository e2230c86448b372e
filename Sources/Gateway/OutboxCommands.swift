import Foundation
import Outbox
import VitalModel

/// Finds the Outbox a command works on: `--state-dir DIR`, else the state directory of `--config FILE`
/// (default `/etc/vitalgate/config.json`).
enum OutboxLocation {
    static let options: Set<String> = ["config", "state-dir"]
    static let help = """
          --config FILE       the daemon's configuration (default /etc/vitalgate/config.json)
          --state-dir DIR     the state directory holding outbox.db, instead of --config
        """

    static let defaultConfiguration = "/etc/vitalgate/config.json"

    /// The Outbox, its path, and the configuration read to find it (nil with `--state-dir`).
    static func open(_ arguments: Arguments) throws(UsageError) -> (Outbox, path: String, configuration: DaemonConfiguration?) {
        let directory: String
        var configuration: DaemonConfiguration?
        if let stateDirectory = arguments.value("state-dir") {
            directory = stateDirectory
        } else {
            let file = arguments.value("config") ?? defaultConfiguration
            do { configuration = try DaemonConfiguration.load(file) } catch {
                throw UsageError("\(error)")
            }
            directory = configuration?.stateDirectory ?? ""
        }
        let path = DaemonConfiguration.outboxPath(in: directory)
        var options = OutboxOptions()
        options.role = .operator
        do { return (try Outbox(path: path, options: options), path, configuration) } catch {
            throw UsageError("\(error) Or give the daemon's --config or --state-dir")
        }
    }
}

/// `vitalgate queue`: what waits to be uploaded, what is in flight, and the dead letters with the server's reason.
enum QueueCommand {
    static let usage = """
        Usage: vitalgate queue [--json] [--config FILE | --state-dir DIR]

        Shows the Outbox: readings pending upload, in flight, delivered, held as unassigned, and the dead
        letters (readings the server refused) with the server's reason. `vitalgate dead-letters` acts on them.

        Options:
          --json              print one JSON object instead of text
        \(OutboxLocation.help)
        """

    static func run(_ rawArguments: [String]) -> CommandResult {
        if rawArguments.contains("--help") { return CommandResult(stdout: usage + "\n") }
        do {
            let arguments = try Arguments(rawArguments, flags: ["json"], options: OutboxLocation.options, command: "queue")
            guard arguments.operands.isEmpty else { throw UsageError("`vitalgate queue` takes no operands") }
            let (outbox, path, _) = try OutboxLocation.open(arguments)
            let summary = try outbox.summary()
            let pending = try outbox.readings(in: .pending, limit: 20)
            return CommandResult(stdout: arguments.has("json")
                                 ? json(summary, pending: pending, path: path).prettyPrinted() + "\n"
                                 : text(summary, pending: pending, path: path))
        } catch let error as UsageError {
            return CommandResult(stderr: "vitalgate queue: \(error)\n", exitCode: 2)
        } catch {
            return CommandResult(stderr: "vitalgate queue: \(error)\n", exitCode: 1)
        }
    }

    static func stamp(_ date: Date?) -> String {
        guard let date else { return "-" }
        return LocalDateTime(date, utcOffsetSeconds: TimeZone.current.secondsFromGMT(for: date)).iso8601(includeMilliseconds: false)
    }

    static func text(_ summary: QueueSummary, pending: [StoredReading], path: String) -> String {
        func count(_ state: ReadingState) -> Int { summary.counts[state] ?? 0 }
        var lines = ["Outbox \(path)"]
        lines.append("  pending       \(count(.pending))" + (summary.oldestPendingStoredAt.map { "  (oldest stored \(stamp($0)))" } ?? ""))
        lines.append("  in flight     \(count(.inFlight))")
        lines.append("  delivered     \(count(.delivered))" + (summary.lastDeliveryAt.map { "  (last \(stamp($0)))" } ?? ""))
        lines.append("  unassigned    \(count(.unassigned))" + (count(.unassigned) > 0 ? "  (held until assigned; never uploaded)" : ""))
        lines.append("  dead letters  \(count(.dead))")
        lines.append("  discarded     \(count(.discarded))")
        lines.append("  quarantined   \(summary.quarantined)" + (summary.quarantined > 0 ? "  (corrupt rows set aside at start)" : ""))
        let waiting = pending.filter { $0.lastError != nil }
        if !waiting.isEmpty {
            lines.append("")
            lines.append("Waiting for a retry:")
            for reading in waiting {
                lines.append("  r\(reading.id.rawValue)  attempt \(reading.attempts)  next \(stamp(reading.nextAttemptAt))  \(reading.lastError ?? "")")
            }
        }
        if !summary.deadLetters.isEmpty {
            lines.append("")
            lines.append("Dead letters (`vitalgate dead-letters retry|discard ID`):")
            for letter in summary.deadLetters {
                let status = letter.httpStatus.map { "HTTP \($0)" } ?? "not sent"
                lines.append("  r\(letter.readingID.rawValue)  \(status)  \(stamp(letter.at))  \(letter.reason)")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static func json(_ summary: QueueSummary, pending: [StoredReading], path: String) -> JSONValue {
        var counts: [(String, JSONValue)] = []
        for state in ReadingState.allCases { counts.append((state.rawValue, .int(summary.counts[state] ?? 0))) }
        return [
            "outbox": .string(path),
            "counts": .object(counts),
            "quarantined": .int(summary.quarantined),
            "oldestPendingStoredAt": summary.oldestPendingStoredAt.map { .string(ISO8601DateFormatter().string(from: $0)) } ?? .null,
            "lastDeliveryAt": summary.lastDeliveryAt.map { .string(ISO8601DateFormatter().string(from: $0)) } ?? .null,
            "retrying": .array(pending.filter { $0.lastError != nil }.map { reading in
                ["id": .int(reading.id.rawValue), "attempts": .int(reading.attempts),
                 "nextAttemptAt": reading.nextAttemptAt.map { .string(ISO8601DateFormatter().string(from: $0)) } ?? .null,
                 "lastError": .string(reading.lastError ?? "")]
            }),
            "deadLetters": .array(summary.deadLetters.map { letter in
                ["id": .int(letter.readingID.rawValue), "httpStatus": letter.httpStatus.map { .int($0) } ?? .null,
                 "reason": .string(letter.reason), "at": .string(ISO8601DateFormatter().string(from: letter.at)),
                 "outcome": letter.outcome.map(JSONValue.string) ?? .null]
            }),
        ]
    }
}

/// `vitalgate dead-letters retry|discard ID`: send a refused reading again (after fixing the cause on the
/// server), or give it up for good, which asks for confirmation and is written to the audit trail.
enum DeadLettersCommand {
    static let usage = """
        Usage: vitalgate dead-letters retry ID|all [--config FILE | --state-dir DIR]
               vitalgate dead-letters discard ID [--yes] [--config FILE | --state-dir DIR]

        retry     puts the reading back in the queue (fix what the server complained about first);
                  `all` puts back every dead letter, for a cause fixed once for all (a server setting)
        discard   gives the reading up: it is never uploaded. Asks for confirmation unless --yes;
                  the audit trail records who discarded it.
        ID is the reading's local id as `vitalgate queue` shows it (r17 or 17).

        Options:
          --yes               do not ask before discarding
        \(OutboxLocation.help)
        """

    /// `actor` is who the audit trail names; the login name by default.
    static func run(_ rawArguments: [String], input: () -> String?, actor: String = operatorName()) -> CommandResult {
        if rawArguments.contains("--help") { return CommandResult(stdout: usage + "\n") }
        do {
            let arguments = try Arguments(rawArguments, flags: ["yes"], options: OutboxLocation.options, command: "dead-letters")
            guard arguments.operands.count == 2, ["retry", "discard"].contains(arguments.operands[0]) else {
                throw UsageError("give `retry ID` or `discard ID`\n\n" + usage)
            }
            let text = arguments.operands[1]
            if text == "all", arguments.operands[0] == "retry" {
                let (outbox, _, _) = try OutboxLocation.open(arguments)
                let count = try outbox.retryAllDeadLetters(actor: actor)
                return CommandResult(stdout: "\(count) dead letter(s) back in the queue\n")
            }
            guard let number = Int64(text.hasPrefix("r") ? String(text.dropFirst()) : text), number > 0 else {
                throw UsageError("\(text) is not a reading id; `vitalgate queue` lists them (e.g. r17)")
            }
            let id = OutboxReadingID(rawValue: number)
            let (outbox, _, _) = try OutboxLocation.open(arguments)
            // The Outbox refuses anything but a dead letter with a message naming its state; a stored reading this
            // version cannot decode is still a dead letter that can be retried.
            if arguments.operands[0] == "retry" {
                try outbox.retryDeadLetter(id, actor: actor)
                return CommandResult(stdout: "r\(number) is back in the queue; the daemon sends it with the next batch\n")
            }
            if !arguments.has("yes") {
                FileHandle.standardError.write(Data("Discard r\(number)? It will never be uploaded to the citizen's record. Type 'discard' to confirm: ".utf8))
                guard input()?.trimmingCharacters(in: .whitespaces) == "discard" else {
                    return CommandResult(stderr: "not discarded\n", exitCode: 1)
                }
            }
            try outbox.discardDeadLetter(id, actor: actor)
            return CommandResult(stdout: "r\(number) discarded by \(actor); the audit trail records it\n")
        } catch let error as UsageError {
            return CommandResult(stderr: "vitalgate dead-letters: \(error)\n", exitCode: 2)
        } catch {
            return CommandResult(stderr: "vitalgate dead-letters: \(error)\n", exitCode: 1)
        }
    }

    /// Who is acting, for the audit trail: the login name, else the user id.
    static func operatorName() -> String {
        let environment = ProcessInfo.processInfo.environment
        return environment["SUDO_USER"] ?? environment["USER"] ?? "uid \(getuid())"
    }
}
