import Foundation
import Synchronization
import VitalModel

/// Produces the `Authorization` header for FHIR requests and keeps it fresh.
///
/// Tokens from a token endpoint are cached until 10% of their lifetime (at least 5 s) before they
/// expire; a bearer token file is re-read when it changes. Callers on several threads share one cache
/// and at most one token request is in flight: the others wait for its result. ``authorization()``
/// blocks on the network when it needs a new token, so call it where ``HTTPClient/send(_:)`` is called.
public final class Authenticator: Sendable {
    public let method: AuthMethod
    private let fhirBaseURL: String
    private let http: HTTPClient
    private let now: @Sendable () -> Date
    private let state = Mutex(State())

    private struct State {
        var token: CachedToken?
        /// The token endpoint found through SMART discovery; kept for the Authenticator's life.
        var discoveredTokenURL: String?
        var bearerFile: (stamp: FileStamp, header: String)?
    }

    private struct CachedToken {
        var header: String
        var refreshAt: Date
    }

    /// - Parameters:
    ///   - fhirBaseURL: the FHIR base, e.g. `https://fhir.example.vn/r4`; discovery reads
    ///     `{fhirBaseURL}/.well-known/smart-configuration` when a method has no token URL.
    ///   - http: the client for the token endpoint, normally the one that sends the FHIR requests
    ///     (so mutual TLS applies to both).
    ///   - now: the clock for token expiry and assertion `exp`; tests move it.
    public init(method: AuthMethod, fhirBaseURL: String, http: HTTPClient, now: @escaping @Sendable () -> Date = Date.init) {
        self.method = method
        var base = fhirBaseURL
        while base.hasSuffix("/") { base.removeLast() }
        self.fhirBaseURL = base
        self.http = http
        self.now = now
    }

    /// The `Authorization` header value (`Bearer …`), or nil for ``AuthMethod/none``.
    public func authorization() throws(AuthError) -> String? {
        switch method {
        case .none:
            return nil
        case .bearerTokenFile(let path):
            return try state.withLock { (state: inout State) throws(AuthError) -> String? in
                try bearerHeader(fromFile: path, state: &state)
            }
        case .clientCredentials, .smartBackendServices:
            return try state.withLock { (state: inout State) throws(AuthError) -> String? in
                if let token = state.token, now() < token.refreshAt { return token.header }
                state.token = nil
                let token = try requestToken(state: &state)
                state.token = token
                return token.header
            }
        }
    }

    /// Forgets the current token (after a 401): the next ``authorization()`` requests a new one, or
    /// re-reads the bearer token file.
    public func invalidate() {
        state.withLock { state in
            state.token = nil
            state.bearerFile = nil
        }
    }

    // MARK: - Bearer token file

    private func bearerHeader(fromFile path: String, state: inout State) throws(AuthError) -> String {
        if let cached = state.bearerFile, let stamp = try? CredentialFiles.stamp(path, what: "bearer token file"),
           stamp == cached.stamp {
            return cached.header
        }
        state.bearerFile = nil
        let (stamp, token) = try CredentialFiles.readTrimmedText(path, what: "bearer token file")
        guard isUsableBearerToken(token) else {
            throw AuthError(kind: .configuration, message: "the bearer token file \(path) holds spaces or control characters inside the token",
                            fix: "write only the token, on one line, into \(path)")
        }
        let header = "Bearer " + token
        state.bearerFile = (stamp, header)
        return header
    }

    // MARK: - Token endpoint

    private func requestToken(state: inout State) throws(AuthError) -> CachedToken {
        var headers: [(name: String, value: String)] = [
            ("Content-Type", "application/x-www-form-urlencoded"), ("Accept", "application/json"),
        ]
        var form: [(String, String)] = [("grant_type", "client_credentials")]
        let tokenURL: String
        switch method {
        case .clientCredentials(let settings):
            tokenURL = try resolveTokenURL(settings.tokenURL, state: &state)
            let (_, secret) = try CredentialFiles.readTrimmedText(settings.secretFile, what: "client secret file")
            // RFC 6749 §2.3.1: both parts are form-encoded before they are joined for HTTP Basic.
            let credentials = formURLEncoded(settings.clientID) + ":" + formURLEncoded(secret)
            headers.append(("Authorization", "Basic " + Data(credentials.utf8).base64EncodedString()))
            if let scope = settings.scope { form.append(("scope", scope)) }
        case .smartBackendServices(let settings):
            tokenURL = try resolveTokenURL(settings.tokenURL, state: &state)
            form.append(("scope", settings.scope))
            form.append(("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"))
            form.append(("client_assertion", try clientAssertion(settings, tokenURL: tokenURL)))
        case .none, .bearerTokenFile:
            throw AuthError(kind: .configuration, message: "this auth method has no token endpoint")
        }
        let requestedAt = now()
        let response: HTTPResponse
        do {
            response = try http.send(HTTPRequest(method: "POST", url: tokenURL, headers: headers, body: formBody(form)))
        } catch {
            throw AuthError(kind: .tokenEndpointUnreachable(error), message: "cannot reach the token endpoint: \(error)")
        }
        guard (200..<300).contains(response.status) else {
            throw rejection(response, url: tokenURL, what: "the token endpoint")
        }
        let token: TokenResponse
        do {
            token = try TokenResponse.parse(response.body)
        } catch {
            throw AuthError(kind: .invalidResponse(status: response.status),
                            message: "the token response from \(redactedURL(tokenURL)) \(error.problem)",
                            fix: "check auth.tokenURL points at the OAuth token endpoint")
        }
        // Refresh early: the request took time, clocks drift, and a token that dies in flight costs a 401.
        let lifetime = Double(token.expiresIn)
        let margin = max(lifetime * 0.1, 5)
        return CachedToken(header: "Bearer " + token.accessToken,
                           refreshAt: requestedAt.addingTimeInterval(max(0, lifetime - margin)))
    }

    private func clientAssertion(_ settings: SMARTBackendServices, tokenURL: String) throws(AuthError) -> String {
        let file = try CredentialFiles.read(settings.privateKeyFile, what: "private key file")
        do {
            let signer = try JWSSigner(pem: file.bytes, algorithm: settings.algorithm)
            return try ClientAssertion.make(clientID: settings.clientID, tokenURL: tokenURL, keyID: settings.keyID,
                                            signer: signer, now: now())
        } catch {
            throw AuthError(kind: .configuration,
                            message: "the private key file \(settings.privateKeyFile) \(error.problem)", fix: error.fix)
        }
    }

    /// The configured token URL, or the one the server's SMART configuration names (fetched once).
    private func resolveTokenURL(_ configured: String?, state: inout State) throws(AuthError) -> String {
        if let configured { return configured }
        if let known = state.discoveredTokenURL { return known }
        let url = fhirBaseURL + "/.well-known/smart-configuration"
        let response: HTTPResponse
        do {
            response = try http.send(HTTPRequest(method: "GET", url: url, headers: [("Accept", "application/json")]))
        } catch {
            throw AuthError(kind: .tokenEndpointUnreachable(error),
                            message: "cannot reach the SMART configuration to find the token endpoint: \(error)")
        }
        guard response.status == 200 else {
            throw rejection(response, url: url, what: "the SMART configuration")
        }
        guard let json = try? JSONValue.parse(bytes: response.body), case .string(let endpoint)? = json["token_endpoint"],
              endpoint.hasPrefix("https://") || endpoint.hasPrefix("http://") else {
            throw AuthError(kind: .invalidResponse(status: response.status),
                            message: "the SMART configuration at \(redactedURL(url)) names no http(s) token_endpoint",
                            fix: "set auth.tokenURL")
        }
        state.discoveredTokenURL = endpoint
        return endpoint
    }

    /// An error status from the token endpoint or discovery, with the OAuth error and what to do.
    private func rejection(_ response: HTTPResponse, url: String, what: String) -> AuthError {
        let oauth = parseOAuthError(response.body)
        var message = "\(what) at \(redactedURL(url)) answered HTTP \(response.status)"
        if let oauth { message += ": \(oauth)" }
        let wait = response.header("retry-after").flatMap { retryAfter($0, now: now()) }
        return AuthError(kind: .rejected(status: response.status, oauthError: oauth), message: message,
                         fix: fixHint(status: response.status, oauthError: oauth?.error, response: response, what: what),
                         retryAfter: wait)
    }

    private func fixHint(status: Int, oauthError: String?, response: HTTPResponse, what: String) -> String {
        let isSMART = if case .smartBackendServices = method { true } else { false }
        switch oauthError {
        case "invalid_client"?:
            return isSMART
                ? "check auth.clientID and auth.keyID, that the server holds this key's public half (JWKS), and the hub's clock"
                : "check auth.clientID and the secret file, and that the server has this client registered"
        case "invalid_scope"?:
            return "ask only for scopes this client is registered for (auth.scope)"
        case "unauthorized_client"?:
            return "ask the server's administrator to allow the client_credentials grant for this client"
        case "unsupported_grant_type"?:
            return "this server does not offer client_credentials; choose another auth method"
        case "invalid_grant"?, "invalid_request"?:
            return isSMART ? "check the hub's clock and auth.tokenURL (the assertion's audience)" : "check the auth settings"
        default:
            break
        }
        switch status {
        case 300..<400:
            let target = response.header("location").map { " (it points to \(redactedURL($0)))" } ?? ""
            return "\(what) redirects\(target); configure the final URL"
        case 401, 403:
            return isSMART ? "check auth.clientID, auth.keyID and the registered public key" : "check auth.clientID and the secret file"
        case 404, 405:
            return what == "the token endpoint" ? "check auth.tokenURL" : "set auth.tokenURL; this server publishes no SMART configuration"
        case 408, 429, 500...:
            return ""
        default:
            return "check the auth settings"
        }
    }
}
