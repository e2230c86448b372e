import Foundation

/// Why an HTTP exchange produced no response: the network, TLS, a limit, or the configuration.
///
/// An HTTP status (even 500) is never a `TransportError`; it arrives as an ``HTTPResponse``.
public struct TransportError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable, Hashable {
        /// The host name (or proxy name) did not resolve.
        case resolve
        /// No TCP connection (refused, unreachable).
        case connect
        /// The connect or total timeout passed.
        case timeout
        /// The TLS handshake failed: untrusted certificate, host-name mismatch, client certificate refused.
        case tls
        /// The request could not be sent completely.
        case send
        /// The response could not be received completely, or made no sense as HTTP.
        case receive
        /// The response body passed the client's `maximumResponseBytes`.
        case responseTooLarge
        /// The request or the client's settings are wrong (bad URL, unreadable CA or client certificate);
        /// retrying will not help until someone changes them.
        case configuration
        /// Anything else curl reported.
        case other
    }

    public var kind: Kind
    /// What went wrong, with curl's own description (never the request body or headers).
    public var message: String
    /// The `CURLcode`, or 0 when the client refused the request before curl saw it.
    public var curlCode: Int32
    /// The request URL without user information or query (queries can carry patient identifiers).
    public var url: String
    /// What to change, or empty when there is nothing to suggest.
    public var fix: String

    public init(kind: Kind, message: String, curlCode: Int32, url: String, fix: String = "") {
        self.kind = kind
        self.message = message
        self.curlCode = curlCode
        self.url = url
        self.fix = fix
    }

    public var description: String {
        let code = curlCode == 0 ? "" : " (curl \(curlCode))"
        let what = "\(url): \(kind.rawValue): \(message)\(code)"
        return fix.isEmpty ? what : "\(what). Fix: \(fix)"
    }
}

/// `url` as errors and logs may show it: scheme, host, port and path only.
func redactedURL(_ url: String) -> String {
    var text = Substring(url)
    if let cut = text.firstIndex(where: { $0 == "?" || $0 == "#" }) { text = text[..<cut] }
    // user:password@ sits between "//" and the first "/" after it.
    if let schemeEnd = text.range(of: "//") {
        let authorityEnd = text[schemeEnd.upperBound...].firstIndex(of: "/") ?? text.endIndex
        if let at = text[schemeEnd.upperBound..<authorityEnd].lastIndex(of: "@") {
            return String(text[..<schemeEnd.upperBound]) + String(text[text.index(after: at)...])
        }
    }
    return String(text)
}
