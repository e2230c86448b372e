import VitalModel

/// What a FHIR server's reply says, read defensively: a hostile or broken server must cause a retry or a
/// clear rejection, never a crash or a reading marked delivered that was not.
enum ServerReply {
    /// One entry of a `transaction-response` or `batch-response`.
    struct EntryResponse: Equatable {
        var status: Int
        var location: String?
        var outcome: JSONValue?
    }

    /// The entries' responses, in order, or nil when the body is not such a Bundle.
    static func entryResponses(_ body: [UInt8]) -> [EntryResponse]? {
        guard let bundle = try? JSONValue.parse(bytes: body),
              case .string("Bundle")? = bundle["resourceType"],
              case .string(let type)? = bundle["type"], type == "transaction-response" || type == "batch-response",
              case .array(let entries)? = bundle["entry"] else { return nil }
        var responses: [EntryResponse] = []
        for entry in entries {
            guard case .string(let statusText)? = entry["response"]?["status"],
                  let status = leadingStatusCode(statusText) else { return nil }
            var location: String?
            if case .string(let text)? = entry["response"]?["location"] { location = text }
            responses.append(EntryResponse(status: status, location: location, outcome: entry["response"]?["outcome"]))
        }
        return responses
    }

    /// `201 Created` → 201. FHIR puts the code first; anything else is not a status.
    static func leadingStatusCode(_ text: String) -> Int? {
        let digits = text.trimmingCharacters(in: .whitespaces).prefix(3)
        guard digits.count == 3, let code = Int(digits), (100...599).contains(code) else { return nil }
        return code
    }

    /// A one-line reason from an OperationOutcome (its issues' diagnostics or details), or a description of
    /// the body when it is not one. For the operator's queue view; it may name the patient, so not for logs.
    static func reason(status: Int, body: [UInt8]) -> String {
        let prefix = "HTTP \(status)"
        guard let outcome = try? JSONValue.parse(bytes: body) else {
            return body.isEmpty ? prefix + " with an empty body" : prefix + " with a body that is not JSON"
        }
        if let text = issueText(outcome) { return prefix + ": " + text }
        if case .string(let type)? = outcome["resourceType"] { return prefix + " with a \(type), not an OperationOutcome" }
        return prefix + " with JSON that is not a FHIR resource"
    }

    /// Whether the body is a FHIR OperationOutcome: the server's own word about the request's content.
    static func isOperationOutcome(_ body: [UInt8]) -> Bool {
        guard let value = try? JSONValue.parse(bytes: body) else { return false }
        return value["resourceType"] == .string("OperationOutcome")
    }

    /// The diagnostics of an OperationOutcome's issues, joined, or nil when it has none.
    static func issueText(_ outcome: JSONValue) -> String? {
        guard case .string("OperationOutcome")? = outcome["resourceType"], case .array(let issues)? = outcome["issue"] else {
            return nil
        }
        let texts: [String] = issues.compactMap { issue in
            if case .string(let text)? = issue["diagnostics"] { return text }
            if case .string(let text)? = issue["details"]?["text"] { return text }
            if case .string(let code)? = issue["code"] { return "issue code " + code }
            return nil
        }
        guard !texts.isEmpty else { return nil }
        let joined = texts.joined(separator: "; ")
        return joined.count > 500 ? String(joined.prefix(500)) + "…" : joined
    }

    /// The body as text to keep with a dead letter, capped so a hostile server cannot fill the disk.
    static func keptBody(_ body: [UInt8], limit: Int = 8192) -> String? {
        guard !body.isEmpty else { return nil }
        let text = String(decoding: body.prefix(limit), as: UTF8.self)
        return body.count > limit ? text + "…" : text
    }

    /// `Device/123` from `http://host/fhir/Device/123/_history/1` (or a relative location).
    static func reference(fromLocation location: String, resourceType: String) -> String? {
        let parts = location.split(separator: "/", omittingEmptySubsequences: true)
        guard let index = parts.lastIndex(where: { $0 == resourceType }), index + 1 < parts.count else { return nil }
        return resourceType + "/" + parts[index + 1]
    }
}

import Foundation
