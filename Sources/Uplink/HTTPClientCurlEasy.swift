internal import CCurl
import VitalModel

/// `curl_global_init` must run once before any other curl call; a global's initialiser runs exactly
/// once, on first use, even when threads race to it.
private let curlGlobalInitResult: CURLcode = vg_curl_global_init_default()

/// The settings every transfer of one ``HTTPClient`` shares.
struct TransferSettings: Sendable {
    var tls: TLSOptions
    var connectTimeout: Duration
    var requestTimeout: Duration
    var maximumResponseBytes: Int
    var userAgent: String
    var proxy: String?
}

/// One curl easy handle, reused for every request so curl keeps the connection (and TLS session) open.
///
/// Not thread-safe: ``HTTPClient`` owns it behind a lock and uses it from one thread at a time.
final class CurlEasy {
    private let handle: UnsafeMutableRawPointer
    /// curl writes a specific error message here (CURLOPT_ERRORBUFFER); it must outlive each transfer.
    private let errorBuffer: UnsafeMutablePointer<CChar>

    /// Nil when curl cannot start (global initialisation failed or out of memory).
    init?() {
        guard curlGlobalInitResult == CURLE_OK, let handle = curl_easy_init() else { return nil }
        self.handle = handle
        errorBuffer = .allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
    }

    deinit {
        curl_easy_cleanup(handle)
        errorBuffer.deallocate()
    }

    /// Runs one request to completion on the calling thread.
    func perform(_ request: HTTPRequest, settings: TransferSettings) throws(TransportError) -> HTTPResponse {
        let shownURL = redactedURL(request.url)
        // Reset drops every option from the last request (method, body, headers) but keeps the
        // connection cache, DNS cache and TLS session cache.
        curl_easy_reset(handle)
        errorBuffer[0] = 0
        let collector = ResponseCollector(bodyLimit: settings.maximumResponseBytes)
        var headerList: UnsafeMutablePointer<curl_slist>?
        defer { curl_slist_free_all(headerList) }

        try configure(request, settings: settings, collector: collector, headerList: &headerList, url: shownURL)

        // POSTFIELDS does not copy: the body must stay put until the transfer ends. An empty body still
        // needs a valid pointer, or curl would read the body from stdin.
        let body = request.body ?? []
        let storage = body.isEmpty ? [0] : body
        let code: CURLcode = storage.withUnsafeBufferPointer { bytes in
            if request.body != nil || request.method == "POST" {
                var result = vg_curl_setopt_off_t(handle, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.count))
                if result == CURLE_OK {
                    result = vg_curl_setopt_pointer(handle, CURLOPT_POSTFIELDS,
                                                    UnsafeMutableRawPointer(mutating: bytes.baseAddress!))
                }
                if result != CURLE_OK { return result }
            }
            return withExtendedLifetime(collector) { curl_easy_perform(handle) }
        }
        guard code == CURLE_OK else {
            throw transportError(code: code, detail: errorText(), url: shownURL,
                                 responseTooLarge: collector.tooLarge, tls: settings.tls)
        }
        var status = 0
        _ = vg_curl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
        return HTTPResponse(status: status, headers: collector.headers, body: collector.body)
    }

    private func configure(_ request: HTTPRequest, settings: TransferSettings, collector: ResponseCollector,
                           headerList: inout UnsafeMutablePointer<curl_slist>?, url: String) throws(TransportError) {
        func refuse(_ message: String, _ fix: String) -> TransportError {
            TransportError(kind: .configuration, message: message, curlCode: 0, url: url, fix: fix)
        }
        guard isToken(request.method) else {
            throw refuse("the request method is not an HTTP token", "use GET, POST, PUT or another HTTP method")
        }
        var lines = ["Expect:"]   // no 100-continue round trip before a body
        for (name, value) in request.headers {
            guard isToken(name), !value.utf8.contains(where: { $0 == 13 || $0 == 10 || $0 == 0 }) else {
                throw refuse("the request header \(name.prefix(64).debugDescription) has a malformed name or a line break in its value",
                             "remove line breaks from configured header values")
            }
            let trimmed = value.trimmingASCIIWhitespace()
            // curl's way to send a header with an empty value is "Name;".
            lines.append(trimmed.isEmpty ? "\(name);" : "\(name): \(trimmed)")
        }
        for line in lines {
            guard let extended = curl_slist_append(headerList, line) else {
                throw TransportError(kind: .other, message: "out of memory building request headers", curlCode: 0, url: url)
            }
            headerList = extended
        }

        var failedOption: String?
        func set(_ result: CURLcode, _ option: String) {
            if result != CURLE_OK, failedOption == nil { failedOption = option }
        }
        set(vg_curl_setopt_pointer(handle, CURLOPT_ERRORBUFFER, UnsafeMutableRawPointer(errorBuffer)), "ERRORBUFFER")
        set(vg_curl_setopt_string(handle, CURLOPT_URL, request.url), "URL")
        // Only HTTP(S), here and (were redirects followed) after a redirect.
        set(vg_curl_setopt_string(handle, CURLOPT_PROTOCOLS_STR, "http,https"), "PROTOCOLS_STR")
        set(vg_curl_setopt_string(handle, CURLOPT_REDIR_PROTOCOLS_STR, "http,https"), "REDIR_PROTOCOLS_STR")
        // A redirect is the server's answer for the caller to judge, never a silent re-POST elsewhere.
        set(vg_curl_setopt_long(handle, CURLOPT_FOLLOWLOCATION, 0), "FOLLOWLOCATION")
        // "" turns off proxies from the environment (http_proxy and friends): the service's network
        // path is its configuration, not whatever variables its unit inherits.
        set(vg_curl_setopt_string(handle, CURLOPT_PROXY, settings.proxy ?? ""), "PROXY")
        // No signals: curl runs on a worker thread of a process with its own signal handling.
        set(vg_curl_setopt_long(handle, CURLOPT_NOSIGNAL, 1), "NOSIGNAL")
        set(vg_curl_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, milliseconds(settings.connectTimeout)), "CONNECTTIMEOUT_MS")
        set(vg_curl_setopt_long(handle, CURLOPT_TIMEOUT_MS, milliseconds(settings.requestTimeout)), "TIMEOUT_MS")
        set(vg_curl_setopt_long(handle, CURLOPT_TCP_KEEPALIVE, 1), "TCP_KEEPALIVE")
        set(vg_curl_setopt_string(handle, CURLOPT_USERAGENT, settings.userAgent), "USERAGENT")

        // Verification is always on; there is deliberately no switch.
        set(vg_curl_setopt_long(handle, CURLOPT_SSL_VERIFYPEER, 1), "SSL_VERIFYPEER")
        set(vg_curl_setopt_long(handle, CURLOPT_SSL_VERIFYHOST, 2), "SSL_VERIFYHOST")
        set(vg_curl_setopt_long(handle, CURLOPT_SSLVERSION, CURL_SSLVERSION_TLSv1_2), "SSLVERSION")
        if let caBundle = settings.tls.caBundlePath {
            set(vg_curl_setopt_string(handle, CURLOPT_CAINFO, caBundle), "CAINFO")
            // Only the given bundle: a private CA must not be diluted by the system store's directory.
            set(vg_curl_setopt_string(handle, CURLOPT_CAPATH, nil), "CAPATH")
        }
        if let certificate = settings.tls.clientCertificatePath {
            set(vg_curl_setopt_string(handle, CURLOPT_SSLCERT, certificate), "SSLCERT")
            set(vg_curl_setopt_string(handle, CURLOPT_SSLCERTTYPE, "PEM"), "SSLCERTTYPE")
        }
        if let key = settings.tls.clientKeyPath {
            set(vg_curl_setopt_string(handle, CURLOPT_SSLKEY, key), "SSLKEY")
            set(vg_curl_setopt_string(handle, CURLOPT_SSLKEYTYPE, "PEM"), "SSLKEYTYPE")
        }

        switch request.method {
        case "GET" where request.body == nil:
            set(vg_curl_setopt_long(handle, CURLOPT_HTTPGET, 1), "HTTPGET")
        case "HEAD" where request.body == nil:
            set(vg_curl_setopt_long(handle, CURLOPT_NOBODY, 1), "NOBODY")
        default:
            if request.body != nil || request.method == "POST" {
                set(vg_curl_setopt_long(handle, CURLOPT_POST, 1), "POST")
            }
            if request.method != "POST" {
                set(vg_curl_setopt_string(handle, CURLOPT_CUSTOMREQUEST, request.method), "CUSTOMREQUEST")
            }
        }
        set(vg_curl_setopt_slist(handle, CURLOPT_HTTPHEADER, headerList), "HTTPHEADER")

        let context = Unmanaged.passUnretained(collector).toOpaque()
        set(vg_curl_setopt_write_callback(handle, CURLOPT_WRITEFUNCTION, collectBody), "WRITEFUNCTION")
        set(vg_curl_setopt_pointer(handle, CURLOPT_WRITEDATA, context), "WRITEDATA")
        set(vg_curl_setopt_write_callback(handle, CURLOPT_HEADERFUNCTION, collectHeader), "HEADERFUNCTION")
        set(vg_curl_setopt_pointer(handle, CURLOPT_HEADERDATA, context), "HEADERDATA")

        if let failedOption {
            throw refuse("this libcurl refused the option CURLOPT_\(failedOption)",
                         "install libcurl 7.85 or newer built with OpenSSL (libcurl4-openssl-dev)")
        }
    }

    private func errorText() -> String {
        String(cString: errorBuffer).trimmingASCIIWhitespace()
    }
}

/// What one transfer received, filled by the C callbacks.
final class ResponseCollector {
    /// Header bytes accepted per response; curl's own limit is higher, and a FHIR server sends little.
    static let headerLimit = 256 * 1024

    let bodyLimit: Int
    var body: [UInt8] = []
    var headers: [(name: String, value: String)] = []
    var headerBytes = 0
    var tooLarge = false

    init(bodyLimit: Int) { self.bodyLimit = bodyLimit }

    func appendBody(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard body.count + bytes.count <= bodyLimit else { tooLarge = true; return false }
        body.append(contentsOf: bytes)
        return true
    }

    func appendHeaderLine(_ bytes: UnsafeRawBufferPointer) -> Bool {
        headerBytes += bytes.count
        guard headerBytes <= Self.headerLimit else { tooLarge = true; return false }
        var end = bytes.count
        while end > 0, bytes[end - 1] == 10 || bytes[end - 1] == 13 { end -= 1 }
        let line = String(decoding: bytes[..<end], as: UTF8.self)
        if line.hasPrefix("HTTP/") {
            // A new status line: an interim 1xx or a proxy's CONNECT reply came before; keep only the last.
            headers.removeAll()
        } else if let first = line.first, first == " " || first == "\t" {
            // Obsolete line folding continues the previous field's value.
            if var last = headers.popLast() {
                last.value = (last.value + " " + line.trimmingASCIIWhitespace()).trimmingASCIIWhitespace()
                headers.append(last)
            }
        } else if let colon = line.firstIndex(of: ":") {
            let name = line[..<colon].trimmingASCIIWhitespace().lowercased()
            let value = line[line.index(after: colon)...].trimmingASCIIWhitespace()
            if !name.isEmpty { headers.append((name: name, value: value)) }
        }
        return true
    }
}

/// CURLOPT_WRITEFUNCTION: anything other than the byte count given aborts the transfer.
private func collectBody(_ data: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int,
                         _ context: UnsafeMutableRawPointer?) -> Int {
    guard let context else { return vg_curl_write_abort() }
    let collector = Unmanaged<ResponseCollector>.fromOpaque(context).takeUnretainedValue()
    let length = size * count
    guard length > 0, let data else { return length }
    return collector.appendBody(UnsafeRawBufferPointer(start: data, count: length)) ? length : vg_curl_write_abort()
}

/// CURLOPT_HEADERFUNCTION: called once per header line, status line and the blank line included.
private func collectHeader(_ data: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int,
                           _ context: UnsafeMutableRawPointer?) -> Int {
    guard let context else { return vg_curl_write_abort() }
    let collector = Unmanaged<ResponseCollector>.fromOpaque(context).takeUnretainedValue()
    let length = size * count
    guard length > 0, let data else { return length }
    return collector.appendHeaderLine(UnsafeRawBufferPointer(start: data, count: length)) ? length : vg_curl_write_abort()
}

/// RFC 9110 token characters (method and header names).
private func isToken(_ text: String) -> Bool {
    !text.isEmpty && text.utf8.allSatisfy { byte in
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        default:
            "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }
}

/// A timeout for curl in whole milliseconds, at least 1 (0 would mean "no timeout").
private func milliseconds(_ duration: Duration) -> Int {
    Int(clamping: max(1, duration.wholeMilliseconds))
}

extension StringProtocol {
    /// The text without leading and trailing spaces, tabs, CR and LF (HTTP's whitespace, no Foundation).
    func trimmingASCIIWhitespace() -> String {
        // "\r\n" is one Character in Swift, so it is listed on its own.
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" || $0 == "\n" || $0 == "\r\n" }
        guard let start = firstIndex(where: { !isSpace($0) }), let end = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[start...end])
    }
}
