import Foundation
import VitalModel

/// One HTTP answer as `scripts/fhir-server/query --envelope` reports it.
public struct LoopbackReply: Sendable {
    public var status: Int
    /// Header names lower-cased.
    public var headers: [String: String]
    /// The parsed JSON body, or `.null` when the body was empty or not JSON.
    public var body: JSONValue
    /// The body as text when it was not JSON (an HTML error page, say).
    public var text: String?
}

/// A test-only HTTP client for servers on 127.0.0.1, through the Python `query` helper (Foundation
/// `Process` only: VitalGate does not use URLSession). Blocking; see ``onDedicatedThread(_:)``.
public enum LoopbackHTTP {
    /// Sends one request. `pathOrURL` is joined to `base` unless it is an absolute URL (a Bundle's next
    /// link). A transport failure (refused, reset, timed out) throws; any HTTP answer is returned.
    public static func send(method: String = "GET", base: String, _ pathOrURL: String = "", body: [UInt8]? = nil,
                            headers: [String: String] = [:],
                            timeout: Duration = .seconds(60)) throws(TestProcessError) -> LoopbackReply {
        let python = try ProcessRunner.requirePython()
        var arguments = [ProcessRunner.script("scripts/fhir-server/query"), "--envelope", "-X", method,
                         "--timeout", String(Int(timeout.timeInterval.rounded(.up))), base]
        if !pathOrURL.isEmpty { arguments.append(pathOrURL) }
        if body != nil { arguments += ["--data", "-"] }
        for (name, value) in headers.sorted(by: { $0.key < $1.key }) {
            arguments += ["-H", "\(name): \(value)"]
        }
        let output = try ProcessRunner.run(python, arguments, input: body ?? [], timeout: timeout + .seconds(30))
        guard output.status == 0 else {
            throw TestProcessError("\(method) \(pathOrURL.isEmpty ? base : pathOrURL) failed: "
                + output.standardError.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        let envelope: JSONValue
        do {
            envelope = try JSONValue.parse(bytes: output.standardOutput)
        } catch {
            throw TestProcessError("the query helper printed something that is not JSON (\(error))")
        }
        guard case .number(let statusText)? = envelope["status"], let status = Int(statusText) else {
            throw TestProcessError("the query helper's answer has no status")
        }
        var replyHeaders: [String: String] = [:]
        if case .object(let members)? = envelope["headers"] {
            for (name, value) in members {
                if case .string(let text) = value { replyHeaders[name] = text }
            }
        }
        var text: String?
        if case .string(let value)? = envelope["text"] { text = value }
        return LoopbackReply(status: status, headers: replyHeaders, body: envelope["body"] ?? .null, text: text)
    }

    /// `identifier=SYSTEM|VALUE` for a search or If-None-Exist, with each part percent-encoded and the
    /// FHIR `|` separator kept.
    public static func identifierQuery(system: String, value: String) -> String {
        "identifier=" + encodeQueryPart(system) + "|" + encodeQueryPart(value)
    }

    /// Percent-encodes everything but unreserved characters and `:` `/` (common in URIs, allowed in a
    /// query). A `|` inside a part is escaped as FHIR search asks (`\|`), then encoded.
    public static func encodeQueryPart(_ text: String) -> String {
        var allowed = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
        allowed.insert(charactersIn: ":/")
        let escaped = text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "|", with: "\\|")
            .replacingOccurrences(of: ",", with: "\\,").replacingOccurrences(of: "$", with: "\\$")
        return escaped.addingPercentEncoding(withAllowedCharacters: allowed) ?? escaped
    }
}
