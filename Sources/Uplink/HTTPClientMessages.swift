/// One HTTP request as the Uplink sends it.
///
/// The caller sets `Accept` and `Content-Type`; the client adds only `User-Agent` and turns off
/// `Expect: 100-continue` (a round trip that buys nothing for small FHIR bundles).
public struct HTTPRequest: Sendable {
    /// `GET`, `POST`, `PUT`, ... (an HTTP token; anything else is refused as a configuration error).
    public var method: String
    /// An absolute `http://` or `https://` URL.
    public var url: String
    /// Header fields in order. Names and values must not contain CR or LF.
    public var headers: [(name: String, value: String)]
    /// The request body, or nil for none.
    public var body: [UInt8]?

    public init(method: String = "GET", url: String, headers: [(name: String, value: String)] = [], body: [UInt8]? = nil) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
    }
}

/// A complete HTTP response: any status is a response, not an error; only transport failures throw.
public struct HTTPResponse: Sendable {
    public var status: Int
    /// Header fields of the final response in order, names lower-cased, values trimmed.
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]

    public init(status: Int, headers: [(name: String, value: String)], body: [UInt8]) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The first value of the header field `name` (any case), or nil.
    public func header(_ name: String) -> String? {
        let wanted = name.lowercased()
        return headers.first { $0.name == wanted }?.value
    }

    /// Every value of the header field `name` (any case), in order; `WWW-Authenticate` may repeat.
    public func headerValues(_ name: String) -> [String] {
        let wanted = name.lowercased()
        return headers.filter { $0.name == wanted }.map(\.value)
    }
}

/// Where the client finds the certificates that make TLS trustworthy for one deployment.
///
/// Certificate and host-name verification are always on; there is no option to turn them off.
public struct TLSOptions: Sendable, Hashable {
    /// A PEM file of CA certificates. When set, the server must chain to one of these and the
    /// system's trust store is not consulted (a private CA pins the deployment). Nil: the system store.
    public var caBundlePath: String?
    /// A PEM client certificate for mutual TLS (RFC 8705); combine with any ``AuthMethod``.
    public var clientCertificatePath: String?
    /// The PEM private key of ``clientCertificatePath`` (unencrypted; protect it with file permissions).
    public var clientKeyPath: String?

    public init(caBundlePath: String? = nil, clientCertificatePath: String? = nil, clientKeyPath: String? = nil) {
        self.caBundlePath = caBundlePath
        self.clientCertificatePath = clientCertificatePath
        self.clientKeyPath = clientKeyPath
    }
}
