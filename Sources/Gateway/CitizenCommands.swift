import Foundation
import Outbox
import VitalModel

/// Sends a control request to the running daemon, or answers it on the Outbox when no daemon runs (or when
/// `--config`/`--state-dir` point at one explicitly).
enum ControlRoute {
    static let defaultSocket = "/run/vitalgate/control.sock"
    static let options: Set<String> = OutboxLocation.options.union(["socket"])
    static let help = """
          --socket PATH       the daemon's control socket (default \(defaultSocket), then control.socket of
                              /etc/vitalgate/config.json when this user may read it)
        \(OutboxLocation.help)
                              (without a running daemon, or with --config/--state-dir, the command reads and
                              writes the Outbox itself)
        """

    static func send(_ request: JSONValue, _ arguments: Arguments) throws -> JSONValue {
        let explicitSocket = arguments.value("socket")
        if explicitSocket != nil || (arguments.value("config") == nil && arguments.value("state-dir") == nil) {
            var sockets = [explicitSocket ?? defaultSocket]
            // A daemon outside systemd listens where its configuration says (by default in its state directory);
            // whoever may read the configuration (root) finds it there too.
            if explicitSocket == nil, let configured = try? DaemonConfiguration.load(OutboxLocation.defaultConfiguration).controlSocket,
               configured != defaultSocket {
                sockets.append(configured)
            }
            for path in sockets {
                do { return try ControlClient.request(path: path, request, timeout: .seconds(15)) } catch {
                    switch error {
                    case .notRunning where explicitSocket == nil, .staleSocket where explicitSocket == nil: continue   // no daemon there
                    default: throw error
                    }
                }
            }
        }
        // No daemon answers (or the command names its Outbox): answer here.
        let (outbox, _, configuration) = try OutboxLocation.open(arguments)
        let context = ControlContext(outbox: outbox, configuration: configuration, live: nil, actor: DeadLettersCommand.operatorName())
        return ControlCommands.handle(request, context)
    }

    /// Runs `request` and renders its reply as JSON or with `text`.
    static func run(_ command: String, _ request: JSONValue, _ arguments: Arguments, text: (JSONValue) -> String) -> CommandResult {
        do {
            let reply = try send(request, arguments)
            if case .bool(false)? = reply["ok"] {
                let message = if case .string(let text)? = reply["error"] { text } else { "the daemon refused the request" }
                return CommandResult(stdout: arguments.has("json") ? reply.prettyPrinted() + "\n" : "",
                                     stderr: "vitalgate \(command): \(message)\n", exitCode: 1)
            }
            return CommandResult(stdout: arguments.has("json") ? reply.prettyPrinted() + "\n" : text(reply))
        } catch let error as UsageError {
            return CommandResult(stderr: "vitalgate \(command): \(error)\n", exitCode: 2)
        } catch {
            return CommandResult(stderr: "vitalgate \(command): \(error)\n", exitCode: 1)
        }
    }

    static func string(_ json: JSONValue?) -> String {
        switch json {
        case .string(let text)?: text
        case .number(let text)?: text
        case .bool(let flag)?: flag ? "yes" : "no"
        default: "-"
        }
    }
}

/// `vitalgate status`: devices and sessions, each member's last reading, the queue, the last upload, problems.
enum StatusCommand {
    static let usage = """
        Usage: vitalgate status [--json] [--socket PATH | --config FILE | --state-dir DIR]

        What the hub is doing: the daemon and its devices, each household member's last reading, the open visit,
        the upload queue, the last upload and the problems that need someone (dead letters, unassigned readings).

        Options:
          --json              print one JSON object instead of text
        \(ControlRoute.help)
        """

    static func run(_ rawArguments: [String]) -> CommandResult {
        if rawArguments.contains("--help") { return CommandResult(stdout: usage + "\n") }
        do {
            let arguments = try Arguments(rawArguments, flags: ["json"], options: ControlRoute.options, command: "status")
            guard arguments.operands.isEmpty else { throw UsageError("`vitalgate status` takes no operands") }
            return ControlRoute.run("status", ["command": "status"], arguments, text: text)
        } catch {
            return CommandResult(stderr: "vitalgate status: \(error)\n", exitCode: 2)
        }
    }

    static func text(_ reply: JSONValue) -> String {
        let s = ControlRoute.string
        var lines: [String] = ["VitalGate \(s(reply["version"]))"]
        if let daemon = reply["daemon"], daemon != .null {
            lines.append("Daemon: running since \(s(daemon["startedAt"])) (pid \(s(daemon["pid"])))")
            if case .array(let sessions)? = daemon["sessions"] {
                lines.append(sessions.isEmpty ? "Devices: none attached" : "Devices:")
                for session in sessions {
                    let profile = session["profile"].map { " " + s($0) } ?? ""
                    lines.append("  \(s(session["transport"]))\(profile)  \(s(session["device"]))"
                        + (session["session"] == .bool(true) ? "  (session running)" : ""))
                }
            }
            if case .array(let problems)? = daemon["recentProblems"], !problems.isEmpty {
                lines.append("Recent problems:")
                for problem in problems { lines.append("  \(s(problem["at"]))  \(s(problem["message"]))") }
            }
        } else {
            lines.append("Daemon: not reachable; read from the Outbox \(s(reply["outbox"]))")
        }
        if let visit = reply["visit"], visit != .null {
            lines.append("Visit \(s(visit["id"])) open since \(s(visit["startedAt"])) for \(s(visit["patient"]))")
        }
        lines.append("Members:")
        if case .array(let members)? = reply["members"], !members.isEmpty {
            for member in members {
                guard case .array(let last)? = member["last"], !last.isEmpty else {
                    lines.append("  \(s(member["label"]))  \(s(member["patient"]))  no reading yet")
                    continue
                }
                lines.append("  \(s(member["label"]))  \(s(member["patient"]))")
                for reading in last {
                    let when = s(reading["measuredAt"]) != "-" ? s(reading["measuredAt"])
                        : s(reading["deviceTime"]) != "-" ? "device time " + s(reading["deviceTime"]) + " (unchecked)"
                        : s(reading["receivedAt"]) + " (received)"
                    lines.append("    \(s(reading["kind"]))  \(s(reading["values"]))  at \(when)  r\(s(reading["id"])) \(s(reading["state"]))")
                }
            }
        } else {
            lines.append("  no household configured (readings without a visit are held unassigned)")
        }
        if case .array(let others)? = reply["others"], !others.isEmpty {
            lines.append("Others (visits, assignments):")
            for other in others { lines.append("  \(s(other["patient"]))  last r\(s(other["last"]?["id"])) \(s(other["last"]?["kind"])) (\(s(other["last"]?["state"])))") }
        }
        let queue = reply["queue"]
        lines.append("Queue: \(s(queue?["pending"])) pending, \(s(queue?["in-flight"])) in flight, \(s(queue?["delivered"])) delivered, "
            + "\(s(queue?["unassigned"])) unassigned, \(s(queue?["dead"])) dead letters, \(s(reply["quarantined"])) quarantined")
        lines.append("Oldest unsent: \(s(reply["oldestUnsentStoredAt"]))   Last upload: \(s(reply["lastUploadAt"]))")
        if s(queue?["unassigned"]) != "0" && s(queue?["unassigned"]) != "-" {
            lines.append("Needs attention: unassigned readings are held; `vitalgate readings --unassigned`, then `vitalgate assign ID --patient …`")
        }
        if case .array(let letters)? = reply["deadLetters"], !letters.isEmpty {
            lines.append("Dead letters (`vitalgate queue` for all):")
            for letter in letters { lines.append("  r\(s(letter["id"]))  HTTP \(s(letter["httpStatus"]))  \(s(letter["reason"]))") }
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

/// `vitalgate readings`: the newest readings, or those held unassigned with the reason.
enum ReadingsCommand {
    static let usage = """
        Usage: vitalgate readings [--unassigned | --state STATE] [--limit N] [--json] [--socket PATH | --config FILE | --state-dir DIR]

        Lists stored readings, newest first: id, state, kind, values, when measured, device, user slot, whose and by
        which rule. --unassigned lists those held because no rule could say whose they are, with the reason;
        `vitalgate assign ID --patient …` gives one to a citizen.

        Options:
          --unassigned        only readings held unassigned (oldest first)
          --state STATE       only readings in STATE: \(ReadingState.allCases.map(\.rawValue).joined(separator: ", "))
          --limit N           at most N readings (default 20)
          --json              print one JSON object instead of text
        \(ControlRoute.help)
        """

    static func run(_ rawArguments: [String]) -> CommandResult {
        if rawArguments.contains("--help") { return CommandResult(stdout: usage + "\n") }
        do {
            let arguments = try Arguments(rawArguments, flags: ["json", "unassigned"], options: ControlRoute.options.union(["state", "limit"]),
                                          command: "readings")
            guard arguments.operands.isEmpty else { throw UsageError("`vitalgate readings` takes no operands") }
            var request: [(String, JSONValue)] = [("command", "readings")]
            if arguments.has("unassigned") { request.append(("state", "unassigned")) }
            if let state = arguments.value("state") {
                guard !arguments.has("unassigned") else { throw UsageError("give --unassigned or --state, not both") }
                request.append(("state", .string(state)))
            }
            if let text = arguments.value("limit") {
                guard let limit = Int(text), limit > 0 else { throw UsageError("--limit takes a positive number") }
                request.append(("limit", .int(limit)))
            }
            return ControlRoute.run("readings", .object(request), arguments, text: text)
        } catch {
            return CommandResult(stderr: "vitalgate readings: \(error)\n", exitCode: 2)
        }
    }

    static func text(_ reply: JSONValue) -> String {
        let s = ControlRoute.string
        guard case .array(let readings)? = reply["readings"], !readings.isEmpty else { return "no readings\n" }
        var lines: [String] = []
        for reading in readings {
            let when = s(reading["measuredAt"]) != "-" ? s(reading["measuredAt"]) : "device time \(s(reading["deviceTime"])) (unchecked)"
            let slot = reading["userSlot"].map { $0 == .null ? "" : "  user slot \(s($0))" } ?? ""
            lines.append("r\(s(reading["id"]))  \(s(reading["state"]))  \(s(reading["kind"]))  \(s(reading["values"]))")
            lines.append("    measured \(when), received \(s(reading["receivedAt"]))  \(s(reading["profile"])) \(s(reading["device"]))\(slot)")
            if reading["patient"] != .null { lines.append("    for \(s(reading["patient"])) by rule \(s(reading["rule"]))\(reading["visit"] == .null ? "" : " (visit \(s(reading["visit"])))")") }
            if reading["reason"] != .null { lines.append("    held: \(s(reading["reason"]))") }
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

/// `vitalgate assign ID --patient …`: gives a held reading to a citizen; the audit trail records who did.
enum AssignCommand {
    static let usage = """
        Usage: vitalgate assign ID (--patient CITIZEN | --member LABEL) [--json] [--socket PATH | --config FILE | --state-dir DIR]

        Gives a reading held unassigned (`vitalgate readings --unassigned`) to a citizen, who then receives it with
        the next upload. Only unassigned readings can be assigned: readings already attributed or uploaded are never
        moved. The audit trail records who assigned it.

        CITIZEN is cccd:<12 digits>, bhxh:<10 digits> or SYSTEM|VALUE; LABEL a household member's label.
        """

    static func run(_ rawArguments: [String]) -> CommandResult {
        if rawArguments.contains("--help") { return CommandResult(stdout: usage + "\n") }
        do {
            let arguments = try Arguments(rawArguments, flags: ["json"], options: ControlRoute.options.union(["patient", "member"]),
                                          command: "assign")
            guard arguments.operands.count == 1, let number = Int64(arguments.operands[0].hasPrefix("r") ? String(arguments.operands[0].dropFirst()) : arguments.operands[0]),
                  number > 0 else { throw UsageError("give one reading id, as `vitalgate readings --unassigned` shows it (r17 or 17)") }
            var request: [(String, JSONValue)] = [("command", "assign"), ("id", .int(number))]
            switch (arguments.value("patient"), arguments.value("member")) {
            case (let patient?, nil): request.append(("patient", .string(patient)))
            case (nil, let member?): request.append(("member", .string(member)))
            default: throw UsageError("give --patient CITIZEN or --member LABEL")
            }
            return ControlRoute.run("assign", .object(request), arguments) { reply in
                "r\(ControlRoute.string(reply["id"])) assigned to \(ControlRoute.string(reply["patient"])); it goes with the next upload\n"
            }
        } catch {
            return CommandResult(stderr: "vitalgate assign: \(error)\n", exitCode: 2)
        }
    }
}

/// `vitalgate visit start|end|show`: a community health worker's visit to a citizen.
enum VisitCommand {
    static let usage = """
        Usage: vitalgate visit start (--patient CITIZEN | --qr PAYLOAD | --qr -) [--performer SYSTEM|VALUE] [--json] [...]
               vitalgate visit end [--json] [...]
               vitalgate visit [show] [--json] [...]

        start   opens a visit: until it ends, readings the kit's devices take go to this citizen, with the health
                worker (healthWorker in the configuration, or --performer) as performer. Records a device
                downloads from before the visit started are never given to the citizen: they are held.
        end     closes the open visit.
        show    the open visit and the last ones.

        CITIZEN is cccd:<12 digits>, bhxh:<10 digits> or SYSTEM|VALUE. --qr takes the text a scanner reads from
        the QR code on the back of the citizen ID card; `--qr -` reads it from standard input (scan into the
        terminal), which keeps it out of the shell history.

        Options:
        \(ControlRoute.help)
        """

    static func run(_ rawArguments: [String], input: () -> String?) -> CommandResult {
        if rawArguments.contains("--help") { return CommandResult(stdout: usage + "\n") }
        do {
            let arguments = try Arguments(rawArguments, flags: ["json"], options: ControlRoute.options.union(["patient", "qr", "performer"]),
                                          command: "visit")
            switch arguments.operands.first ?? "show" {
            case "start":
                var request: [(String, JSONValue)] = [("command", "visit-start")]
                switch (arguments.value("patient"), arguments.value("qr")) {
                case (let patient?, nil): request.append(("patient", .string(patient)))
                case (nil, "-"?):
                    FileHandle.standardError.write(Data("Scan the QR code on the back of the citizen ID card: ".utf8))
                    guard let line = input() else { throw UsageError("no QR payload on standard input") }
                    request.append(("qr", .string(line)))
                case (nil, let payload?):
                    // The card's name, address and ID are now in the shell history and, while this runs, in /proc.
                    FileHandle.standardError.write(Data(("vitalgate visit: the QR payload on the command line stays in the shell "
                        + "history (the card holder's name, address and ID); next time scan with `--qr -`\n").utf8))
                    request.append(("qr", .string(payload)))
                default: throw UsageError("give --patient CITIZEN or --qr PAYLOAD (or --qr - to scan)")
                }
                if let performer = arguments.value("performer") { request.append(("performer", .string(performer))) }
                return ControlRoute.run("visit", .object(request), arguments) { reply in
                    "Visit \(ControlRoute.string(reply["visit"]?["id"])) started for \(ControlRoute.string(reply["visit"]?["patient"]))"
                        + " at \(ControlRoute.string(reply["visit"]?["startedAt"])); readings the kit takes from now go to this citizen.\n"
                        + "End it with `vitalgate visit end`.\n"
                }
            case "end":
                return ControlRoute.run("visit", ["command": "visit-end"], arguments) { reply in
                    "Visit \(ControlRoute.string(reply["visit"]?["id"])) ended at \(ControlRoute.string(reply["visit"]?["endedAt"])).\n"
                }
            case "show":
                return ControlRoute.run("visit", ["command": "visit-show"], arguments) { reply in
                    var lines: [String] = []
                    if let open = reply["open"], open != .null {
                        lines.append("Open: visit \(ControlRoute.string(open["id"])) for \(ControlRoute.string(open["patient"])) since \(ControlRoute.string(open["startedAt"])) (by \(ControlRoute.string(open["startedBy"])))")
                    } else {
                        lines.append("No visit is open.")
                    }
                    if case .array(let recent)? = reply["recent"] {
                        for visit in recent where visit["endedAt"] != .null {
                            lines.append("  visit \(ControlRoute.string(visit["id"]))  \(ControlRoute.string(visit["patient"]))  \(ControlRoute.string(visit["startedAt"])) – \(ControlRoute.string(visit["endedAt"]))")
                        }
                    }
                    return lines.joined(separator: "\n") + "\n"
                }
            default:
                throw UsageError("unknown visit command \"\(arguments.operands[0])\"; start, end or show")
            }
        } catch {
            return CommandResult(stderr: "vitalgate visit: \(error)\n", exitCode: 2)
        }
    }
}
