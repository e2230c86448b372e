import Assignment
import Foundation
import Outbox
import VitalModel

/// What the control commands work on. The daemon answers them over its control socket; without a running daemon
/// the CLI answers them itself on the Outbox, so both give the same replies.
struct ControlContext {
    let outbox: Outbox
    /// The daemon's configuration: household labels, the health worker, identifier systems. Nil: none readable.
    let configuration: DaemonConfiguration?
    /// The running daemon's own state (uptime, sessions, recent problems); nil when the CLI answers itself.
    let live: (@Sendable () -> JSONValue)?
    /// Who asks: the audit trail's actor.
    let actor: String

    var identifierSystems: IdentifierSystems { configuration?.identifierSystems ?? .vietnam }
}

/// The control commands as JSON requests and replies: `{"command": "status"}` → `{"ok": true, …}` or
/// `{"ok": false, "error": "… Fix: …"}`. Replies may hold identifiers and values (they go to an operator's
/// terminal, never to a log).
enum ControlCommands {
    static func handle(_ request: JSONValue, _ context: ControlContext) -> JSONValue {
        guard case .string(let command)? = request["command"] else { return failure("the request has no \"command\"") }
        do {
            switch command {
            case "status": return try status(context)
            case "readings": return try readings(request, context)
            case "assign": return try assign(request, context)
            case "visit-start": return try startVisit(request, context)
            case "visit-end": return ["ok": true, "visit": visitJSON(try context.outbox.endVisit(actor: context.actor), context)]
            case "visit-show": return try showVisits(context)
            default: return failure("unknown command \"\(command)\"; known: status, readings, assign, visit-start, visit-end, visit-show")
            }
        } catch {
            return failure("\(error)")
        }
    }

    /// Member `name` of a request as a whole number: nil when absent or null; a refusal naming it when it is there
    /// as anything else (a string, a fraction), so that a wrong request is never read as a different one.
    static func integer(_ request: JSONValue, _ name: String) throws -> Int64? {
        switch request[name] {
        case nil, .null?: return nil
        case .number(let text)?: if let value = Int64(text) { return value }
        default: break
        }
        throw Refusal("\"\(name)\" must be a whole number")
    }

    /// Member `name` of a request as a string: nil when absent or null; a refusal naming it when of another type.
    static func string(_ request: JSONValue, _ name: String) throws -> String? {
        switch request[name] {
        case nil, .null?: return nil
        case .string(let text)?: return text
        default: throw Refusal("\"\(name)\" must be a string")
        }
    }

    /// Refuses a request that gives more than one of `names`, which exclude each other.
    static func atMostOne(of names: [String], in request: JSONValue) throws {
        let given = names.filter { name in request[name].map { $0 != .null } ?? false }
        guard given.count <= 1 else {
            throw Refusal("give only one of " + given.map { "\"\($0)\"" }.joined(separator: ", "))
        }
    }

    static func failure(_ message: String) -> JSONValue { ["ok": false, "error": .string(message)] }

    struct Refusal: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    // MARK: Commands

    static func status(_ context: ControlContext) throws -> JSONValue {
        let summary = try context.outbox.summary()
        var counts: [(String, JSONValue)] = []
        for state in ReadingState.allCases { counts.append((state.rawValue, .int(summary.counts[state] ?? 0))) }
        let latest = try context.outbox.latestBySubject()
        var members: [JSONValue] = []
        let household = context.configuration?.household ?? Household()
        for member in household.members {
            let last = latest.filter { $0.subject == member.patient }
            members.append(["label": .string(member.label), "patient": .string(masked(member.patient, context.identifierSystems)),
                            "last": .array(last.map { readingJSON($0, context) })])
        }
        // Citizens outside the household (visits, operators' assignments), by their newest reading of each kind.
        let others = latest.filter { stored in !household.members.contains { $0.patient == stored.subject } }
        return [
            "ok": true,
            "version": .string(VitalGateVersion.current),
            "daemon": context.live?() ?? .null,
            "outbox": .string(context.outbox.path),
            "queue": .object(counts),
            "quarantined": .int(summary.quarantined),
            "oldestUnsentStoredAt": summary.oldestPendingStoredAt.map(timestamp) ?? .null,
            "lastUploadAt": summary.lastDeliveryAt.map(timestamp) ?? .null,
            "deadLetters": .array(summary.deadLetters.prefix(5).map { letter in
                ["id": .int(letter.readingID.rawValue), "httpStatus": letter.httpStatus.map { .int($0) } ?? .null,
                 "reason": .string(letter.reason)]
            }),
            "visit": try context.outbox.openVisit().map { visitJSON($0, context) } ?? .null,
            "members": .array(members),
            "others": .array(others.map { stored in
                ["patient": .string(stored.subject.map { masked($0, context.identifierSystems) } ?? ""), "last": readingJSON(stored, context)]
            }),
        ]
    }

    static func readings(_ request: JSONValue, _ context: ControlContext) throws -> JSONValue {
        var limit = 20
        if let value = try integer(request, "limit") { limit = Int(max(1, min(10_000, value))) }
        let list: [StoredReading]
        if let text = try string(request, "state") {
            guard let state = ReadingState(rawValue: text) else {
                throw Refusal("\"\(text)\" is not a reading state; one of " + ReadingState.allCases.map(\.rawValue).joined(separator: ", "))
            }
            list = try context.outbox.readings(in: state, limit: limit)
        } else {
            list = try context.outbox.recentReadings(limit: limit)
        }
        return ["ok": true, "readings": .array(list.map { readingJSON($0, context) })]
    }

    static func assign(_ request: JSONValue, _ context: ControlContext) throws -> JSONValue {
        guard let number = try integer(request, "id"), number > 0 else { throw Refusal("give the reading's id (`vitalgate readings --unassigned` lists them)") }
        let patient = try citizen(request, context)
        let id = OutboxReadingID(rawValue: number)
        try context.outbox.assign(id, to: patient, actor: context.actor)
        return ["ok": true, "id": .int(number), "patient": .string(masked(patient, context.identifierSystems))]
    }

    static func startVisit(_ request: JSONValue, _ context: ControlContext) throws -> JSONValue {
        try atMostOne(of: ["qr", "patient", "member"], in: request)
        let patient: PatientIdentifier
        if let payload = try string(request, "qr") {
            do { patient = try CitizenIDCardQR(scannedText: payload, systems: context.identifierSystems).citizen } catch {
                throw Refusal(error.description)
            }
        } else {
            patient = try citizen(request, context)
        }
        var performer = context.configuration?.healthWorker
        if let text = try string(request, "performer") {
            do { performer = try context.identifierSystems.parsePerformer(text) } catch { throw Refusal(error.description) }
        }
        let visit = try context.outbox.startVisit(patient: patient, performer: performer, actor: context.actor)
        return ["ok": true, "visit": visitJSON(visit, context, full: true)]
    }

    static func showVisits(_ context: ControlContext) throws -> JSONValue {
        let recent = try context.outbox.visits(limit: 10)
        return ["ok": true, "open": recent.first(where: \.isOpen).map { visitJSON($0, context, full: true) } ?? .null,
                "recent": .array(recent.map { visitJSON($0, context) })]
    }

    /// The citizen a request names: `patient` (cccd:…, bhxh:…, SYSTEM|VALUE) or a household `member` label.
    static func citizen(_ request: JSONValue, _ context: ControlContext) throws -> PatientIdentifier {
        try atMostOne(of: ["patient", "member"], in: request)
        if let label = try string(request, "member") {
            guard let member = context.configuration?.household.member(label) else {
                throw Refusal("no household member has that label; the configuration's household.members has the labels")
            }
            return member.patient
        }
        guard let text = try string(request, "patient") else {
            throw Refusal("name the citizen: --patient cccd:<12 digits>, bhxh:<10 digits> or SYSTEM|VALUE, or --member LABEL")
        }
        do { return try context.identifierSystems.parse(text.trimmingCharacters(in: .whitespaces)) } catch {
            throw Refusal(error.description)
        }
    }

    // MARK: JSON

    static func timestamp(_ date: Date) -> JSONValue { .string(ISO8601DateFormatter().string(from: date)) }

    /// `cccd:0991******01`: enough for an operator to tell people apart on a shared screen.
    static func masked(_ patient: PatientIdentifier, _ systems: IdentifierSystems) -> String {
        let prefix = systems.typedPrefix(of: patient.system)
        let value = Array(patient.value)
        guard value.count > 6 else { return prefix + String(repeating: "*", count: value.count) }
        return prefix + String(value.prefix(4)) + String(repeating: "*", count: value.count - 6) + String(value.suffix(2))
    }

    static func full(_ patient: PatientIdentifier, _ systems: IdentifierSystems) -> String { systems.typedText(patient) }

    static func visitJSON(_ visit: Visit, _ context: ControlContext, full showFull: Bool = false) -> JSONValue {
        [
            "id": .int(visit.id),
            "patient": .string(showFull ? full(visit.patient, context.identifierSystems) : masked(visit.patient, context.identifierSystems)),
            "performer": visit.performer.map { .string($0.description) } ?? .null,
            "startedAt": timestamp(visit.startedAt), "startedBy": .string(visit.startedBy),
            "endedAt": visit.endedAt.map(timestamp) ?? .null, "endedBy": visit.endedBy.map(JSONValue.string) ?? .null,
        ]
    }

    static func readingJSON(_ stored: StoredReading, _ context: ControlContext) -> JSONValue {
        let reading = stored.reading
        let device = reading.device.bluetoothAddress?.bluetoothText ?? reading.device.usb.map { usb in
            usb.vendorProduct + (usb.serial.map { " " + $0 } ?? "")
        } ?? reading.device.systemID?.description ?? ""
        return [
            "id": .int(stored.id.rawValue),
            "state": .string(stored.state.rawValue),
            "kind": .string(reading.kind.rawValue),
            "values": .string(reading.values.map { "\($0.type.key) \($0.value) \($0.unit.ucum)" }.joined(separator: ", ")),
            "deviceTime": reading.deviceTime.map { .string($0.time.description) } ?? .null,
            "measuredAt": AssignmentRules.measuredAt(reading).map(timestamp) ?? .null,
            "receivedAt": timestamp(reading.receivedAt.instant),
            "profile": .string(reading.source.profileID),
            "device": .string(device),
            "userSlot": reading.userSlot.map { .int(Int64($0)) } ?? .null,
            "patient": stored.subject.map { .string(masked($0, context.identifierSystems)) } ?? .null,
            "rule": stored.attribution.map { .string($0.rule.rawValue) } ?? .null,
            "reason": stored.attribution?.reason.map(JSONValue.string) ?? .null,
            "visit": stored.attribution?.visitID.map { .int($0) } ?? .null,
        ]
    }
}
