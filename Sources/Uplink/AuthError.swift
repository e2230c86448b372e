/// Why no `Authorization` header could be produced, and whether trying again later can help.
///
/// Messages name files, URLs and the server's OAuth error; they never contain a secret, a private key,
/// a client assertion or a token.
public struct AuthError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable {
        /// A setting or local file is wrong (missing, unreadable, empty, wrong key type); fix and restart.
        case configuration
        /// The token endpoint (or the SMART discovery document) could not be reached.
        case tokenEndpointUnreachable(TransportError)
        /// The server answered with an error status; `oauthError` when its body was an OAuth error
        /// (RFC 6749 §5.2), e.g. `invalid_client`.
        case rejected(status: Int, oauthError: OAuthError?)
        /// The server answered 2xx but not with a usable token or discovery document.
        case invalidResponse(status: Int)
    }

    public var kind: Kind
    public var message: String
    /// What to change, or empty.
    public var fix: String
    /// The server's `Retry-After` on a 429 or 503 from the token endpoint.
    public var retryAfter: Duration?

    public init(kind: Kind, message: String, fix: String = "", retryAfter: Duration? = nil) {
        self.kind = kind
        self.message = message
        self.fix = fix
        self.retryAfter = retryAfter
    }

    /// True when the same request may succeed later without anyone changing anything: the network, a
    /// 408, 429 or 5xx from the token endpoint, or a garbled reply. False for settings, files and
    /// refusals of these credentials.
    public var isRetryable: Bool {
        switch kind {
        case .configuration: false
        case .tokenEndpointUnreachable(let transport): transport.kind != .configuration
        case .rejected(let status, _): status == 408 || status == 429 || status >= 500
        case .invalidResponse: true
        }
    }

    public var description: String {
        fix.isEmpty ? message : "\(message). Fix: \(fix)"
    }
}

/// An OAuth 2.0 error response body (RFC 6749 §5.2) as the server sent it, shortened and stripped of
/// control characters so it is safe in a log line.
public struct OAuthError: Sendable, Hashable, CustomStringConvertible {
    /// `invalid_request`, `invalid_client`, `invalid_grant`, `unauthorized_client`, `unsupported_grant_type`,
    /// `invalid_scope`, or a server's own code.
    public var error: String
    public var errorDescription: String?

    public init(error: String, errorDescription: String? = nil) {
        self.error = error
        self.errorDescription = errorDescription
    }

    public var description: String {
        errorDescription.map { "\(error) (\($0))" } ?? error
    }
}
