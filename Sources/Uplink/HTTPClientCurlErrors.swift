internal import CCurl

/// Turns a failed `curl_easy_perform` into a ``TransportError`` with a kind the delivery logic can act
/// on and a fix a person can act on.
///
/// - Parameters:
///   - detail: curl's error buffer for this transfer (more specific than `curl_easy_strerror`).
///   - responseTooLarge: the write callback stopped the transfer at the size cap.
func transportError(code: CURLcode, detail: String, url: String, responseTooLarge: Bool,
                    tls: TLSOptions) -> TransportError {
    let generic = String(cString: curl_easy_strerror(code))
    let message = detail.isEmpty ? generic : detail
    let curlCode = Int32(bitPattern: code.rawValue)
    func error(_ kind: TransportError.Kind, _ fix: String) -> TransportError {
        TransportError(kind: kind, message: message, curlCode: curlCode, url: url, fix: fix)
    }
    if responseTooLarge {
        return TransportError(kind: .responseTooLarge, message: "the response body passed the client's size limit",
                              curlCode: curlCode, url: url,
                              fix: "check the URL points at the FHIR endpoint, or raise the response limit")
    }
    // TLS 1.3 servers refuse a missing client certificate with an alert that reaches the client only
    // when it reads, so curl reports a receive error; the alert text says what really happened.
    if message.contains("certificate required") {
        return error(.tls, "the server requires a client certificate: set tls.clientCertificate and tls.clientKey")
    }
    if message.contains("alert bad certificate") || message.contains("alert unknown ca")
        || message.contains("certificate unknown") {
        return error(.tls, "the server refused the client certificate: check it is issued by a CA the server trusts")
    }
    switch code {
    case CURLE_UNSUPPORTED_PROTOCOL, CURLE_URL_MALFORMAT:
        return error(.configuration, "check the server URL (only http:// and https:// URLs are used)")
    case CURLE_NOT_BUILT_IN, CURLE_UNKNOWN_OPTION, CURLE_FUNCTION_NOT_FOUND, CURLE_BAD_FUNCTION_ARGUMENT:
        return error(.configuration, "this libcurl lacks a needed feature; install libcurl4-openssl-dev's libcurl 7.85 or newer")
    case CURLE_COULDNT_RESOLVE_PROXY:
        return error(.resolve, "check the proxy host name")
    case CURLE_COULDNT_RESOLVE_HOST:
        return error(.resolve, "check the server host name and the hub's DNS")
    case CURLE_COULDNT_CONNECT:
        return error(.connect, "check the server is running and reachable from this network")
    case CURLE_OPERATION_TIMEDOUT:
        return error(.timeout, "check the network; a slow server may need a longer request timeout")
    case CURLE_PEER_FAILED_VERIFICATION:
        if message.contains("name") || message.contains("subjectAltName") || message.contains("match") {
            return error(.tls, "use the host name the server's certificate was issued for")
        }
        return error(.tls, tls.caBundlePath == nil
                     ? "give the server's CA in tls.caBundle"
                     : "give the server's CA in tls.caBundle (the configured bundle does not issue this server's certificate)")
    case CURLE_SSL_CACERT_BADFILE:
        return error(.configuration, "check tls.caBundle path: the file must exist, be readable and hold PEM certificates")
    case CURLE_SSL_CERTPROBLEM:
        return error(.configuration, "check tls.clientCertificate and tls.clientKey: both PEM, readable, and the key must match the certificate")
    case CURLE_SSL_CRL_BADFILE, CURLE_SSL_ISSUER_ERROR, CURLE_SSL_ENGINE_NOTFOUND, CURLE_SSL_ENGINE_SETFAILED,
         CURLE_SSL_ENGINE_INITFAILED:
        return error(.configuration, "check the TLS settings")
    case CURLE_SSL_CLIENTCERT:
        return error(.tls, "the server requires a client certificate: set tls.clientCertificate and tls.clientKey")
    case CURLE_SSL_CONNECT_ERROR, CURLE_SSL_CIPHER, CURLE_SSL_PINNEDPUBKEYNOTMATCH, CURLE_SSL_SHUTDOWN_FAILED,
         CURLE_SSL_INVALIDCERTSTATUS, CURLE_USE_SSL_FAILED:
        return error(.tls, "check the server speaks TLS 1.2 or newer on this port and the URL's scheme is right")
    case CURLE_SEND_ERROR, CURLE_READ_ERROR:
        return error(.send, closedConnectionHint(url: url, tls: tls))
    case CURLE_RECV_ERROR, CURLE_GOT_NOTHING, CURLE_PARTIAL_FILE, CURLE_WEIRD_SERVER_REPLY, CURLE_HTTP2,
         CURLE_HTTP2_STREAM, CURLE_HTTP3, CURLE_BAD_CONTENT_ENCODING:
        return error(.receive, closedConnectionHint(url: url, tls: tls))
    default:
        return error(.other, "")
    }
}

/// A TLS 1.3 server that refuses the client's certificate (or its absence) does so after the client's
/// side of the handshake is done; the client often sees only a reset connection, not the alert. When
/// that keeps happening on HTTPS, the client certificate is the likely cause.
private func closedConnectionHint(url: String, tls: TLSOptions) -> String {
    guard url.lowercased().hasPrefix("https://") else { return "" }
    return tls.clientCertificatePath == nil
        ? "if this repeats, the server may require a client certificate: set tls.clientCertificate and tls.clientKey"
        : "if this repeats, the server may refuse the client certificate: check it is issued by a CA the server trusts"
}
