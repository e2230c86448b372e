import VitalModel

/// A successful token response (RFC 6749 §5.1), reduced to what the Authenticator keeps.
struct TokenResponse: Equatable {
    /// Used when `expires_in` is missing: SMART's recommended lifetime. A token that dies sooner costs
    /// one 401 and a new token.
    static let assumedLifetime = 300

    var accessToken: String
    var expiresIn: Int

    /// Parses the body of a 2xx token response; the error never quotes the body (it holds the token).
    static func parse(_ body: [UInt8]) throws(TokenResponseProblem) -> TokenResponse {
        guard let json = try? JSONValue.parse(bytes: body), case .object = json else {
            throw TokenResponseProblem("is not a JSON object")
        }
        guard case .string(let token)? = json["access_token"], !token.isEmpty else {
            throw TokenResponseProblem("has no access_token")
        }
        guard isUsableBearerToken(token) else {
            throw TokenResponseProblem("has an access_token with spaces or control characters")
        }
        switch json["token_type"] {
        case nil: break   // required by RFC 6749 but omitted by some servers; bearer is the only kind in use
        case .string(let type)? where type.lowercased() == "bearer": break
        case .string(let type)?: throw TokenResponseProblem("has token_type \(type.prefix(32).debugDescription), not bearer")
        default: throw TokenResponseProblem("has a token_type that is not a string")
        }
        var lifetime = assumedLifetime
        switch json["expires_in"] {
        case nil, .null?: break
        case .number(let text)?, .string(let text)?:
            guard let seconds = Double(text), seconds.isFinite, seconds >= 0 else {
                throw TokenResponseProblem("has an expires_in that is not a number of seconds")
            }
            lifetime = Int(min(seconds, 86_400 * 365))
        default:
            throw TokenResponseProblem("has an expires_in that is not a number")
        }
        return TokenResponse(accessToken: token, expiresIn: lifetime)
    }
}

/// What is wrong with a token response, worded to follow "the token response".
struct TokenResponseProblem: Error {
    var problem: String
    init(_ problem: String) { self.problem = problem }
}

/// The OAuth error (RFC 6749 §5.2) in an error response body, or nil when the body is not one.
func parseOAuthError(_ body: [UInt8]) -> OAuthError? {
    guard let json = try? JSONValue.parse(bytes: body), case .string(let code)? = json["error"] else { return nil }
    var description: String?
    if case .string(let text)? = json["error_description"] { description = logSafe(text, limit: 300) }
    return OAuthError(error: logSafe(code, limit: 64), errorDescription: description)
}

/// Server text made safe for one log line: control characters become spaces, long text is cut.
func logSafe(_ text: String, limit: Int) -> String {
    let cleaned = String(String.UnicodeScalarView(text.unicodeScalars.map {
        $0.properties.generalCategory == .control ? " " : $0
    }))
    return cleaned.count > limit ? String(cleaned.prefix(limit)) + "…" : cleaned
}
