import Synchronization

/// The Uplink's only network client: HTTP/1.1 and HTTP/2 over libcurl, with TLS verification always on.
///
/// One curl handle is reused for every request, so the connection and TLS session to the FHIR server
/// stay open between uploads. Requests from several threads take turns. ``send(_:)`` blocks: call it
/// from a dedicated thread or serial queue, never from Swift's shared concurrency pool.
///
/// Redirects are not followed (a 3xx is returned as a response), proxies come only from `proxy`
/// (never from `http_proxy` and friends in the environment), and only `http` and `https` URLs are used.
public final class HTTPClient: Sendable {
    public let tls: TLSOptions
    public let connectTimeout: Duration
    public let requestTimeout: Duration
    public let maximumResponseBytes: Int
    public let userAgent: String
    public let proxy: String?
    private let easy: Mutex<CurlEasy?>

    /// - Parameters:
    ///   - tls: the CA bundle and client certificate; verification is on whatever is given.
    ///   - connectTimeout: how long to wait for a TCP and TLS connection.
    ///   - requestTimeout: how long one whole exchange may take, connection included.
    ///   - maximumResponseBytes: a larger response body ends the transfer with ``TransportError/Kind/responseTooLarge``.
    ///   - userAgent: sent as `User-Agent`, e.g. `vitalgate/1.0`.
    ///   - proxy: a proxy URL such as `http://proxy.lan:3128`, or nil for a direct connection.
    public init(tls: TLSOptions = .init(), connectTimeout: Duration = .seconds(10), requestTimeout: Duration = .seconds(60),
                maximumResponseBytes: Int = 32 << 20, userAgent: String, proxy: String? = nil) {
        self.tls = tls
        self.connectTimeout = connectTimeout
        self.requestTimeout = requestTimeout
        self.maximumResponseBytes = max(0, maximumResponseBytes)
        self.userAgent = userAgent
        self.proxy = proxy
        easy = Mutex(nil)
    }

    /// Sends `request` and waits for the whole response. Any HTTP status is a response; only failures to
    /// exchange one (network, TLS, limits, bad settings) throw.
    public func send(_ request: HTTPRequest) throws(TransportError) -> HTTPResponse {
        let settings = TransferSettings(tls: tls, connectTimeout: connectTimeout, requestTimeout: requestTimeout,
                                        maximumResponseBytes: maximumResponseBytes, userAgent: userAgent, proxy: proxy)
        return try easy.withLock { (easy: inout CurlEasy?) throws(TransportError) -> HTTPResponse in
            if easy == nil { easy = CurlEasy() }
            guard let handle = easy else {
                throw TransportError(kind: .other, message: "libcurl could not start (global initialisation or memory)",
                                     curlCode: 0, url: redactedURL(request.url), fix: "check the hub's free memory")
            }
            return try handle.perform(request, settings: settings)
        }
    }
}
