/// How the Uplink proves who it is to the FHIR server. Mutual TLS (``TLSOptions``) combines with any of these.
public enum AuthMethod: Sendable, Hashable {
    /// No `Authorization` header.
    case none
    /// A token someone else obtains and writes to `path`; the file is re-read when it changes (rotation)
    /// and after ``Authenticator/invalidate()``.
    case bearerTokenFile(path: String)
    /// OAuth 2.0 client credentials grant with `client_secret_basic` (RFC 6749 §4.4, §2.3.1).
    case clientCredentials(ClientCredentials)
    /// SMART Backend Services: client credentials with a `private_key_jwt` client assertion.
    case smartBackendServices(SMARTBackendServices)
}

/// OAuth 2.0 client credentials with a shared secret, common in national and regional gateways.
public struct ClientCredentials: Sendable, Hashable {
    /// The token endpoint; nil: discovered from `{base}/.well-known/smart-configuration`.
    public var tokenURL: String?
    public var clientID: String
    /// A file holding only the client secret (surrounding whitespace is ignored); readable by the service only.
    public var secretFile: String
    /// The `scope` parameter, or nil to send none.
    public var scope: String?

    public init(tokenURL: String? = nil, clientID: String, secretFile: String, scope: String? = nil) {
        self.tokenURL = tokenURL
        self.clientID = clientID
        self.secretFile = secretFile
        self.scope = scope
    }
}

/// SMART Backend Services (SMART App Launch 2.2, `client-confidential-asymmetric`).
public struct SMARTBackendServices: Sendable, Hashable {
    /// The token endpoint, also the assertion's `aud`; nil: discovered from `{base}/.well-known/smart-configuration`.
    public var tokenURL: String?
    /// The registered client id: the assertion's `iss` and `sub`.
    public var clientID: String
    /// The unencrypted PEM private key (PKCS#8 or traditional): P-384 for ES384, RSA of 2048 bits or more for RS384.
    public var privateKeyFile: String
    /// The `kid` the server knows the public key by (from the registered JWKS), or nil to send none.
    public var keyID: String?
    public var algorithm: JWSAlgorithm
    /// The `scope` parameter, e.g. `system/Observation.cs system/Patient.rs`.
    public var scope: String

    public init(tokenURL: String? = nil, clientID: String, privateKeyFile: String, keyID: String? = nil,
                algorithm: JWSAlgorithm = .es384, scope: String) {
        self.tokenURL = tokenURL
        self.clientID = clientID
        self.privateKeyFile = privateKeyFile
        self.keyID = keyID
        self.algorithm = algorithm
        self.scope = scope
    }
}

/// The JWS algorithms SMART Backend Services clients must support (RFC 7518 §3.1).
public enum JWSAlgorithm: String, Sendable, Hashable, CaseIterable {
    /// ECDSA with P-384 and SHA-384; signatures are the 96-byte `R||S`.
    case es384 = "ES384"
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    case rs384 = "RS384"
}
