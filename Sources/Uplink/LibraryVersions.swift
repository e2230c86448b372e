internal import CCurl
internal import CCrypto

/// What the Uplink's C libraries can do on this machine; `vitalgate version` and start-up checks show it.
public struct UplinkLibraries: Sendable, Hashable {
    public let curlVersion: String
    /// The TLS library libcurl was built with, e.g. `OpenSSL/3.0.19`.
    public let curlTLS: String
    public let supportsHTTP2: Bool
    public let cryptoVersion: String

    /// Reads the versions from the linked libraries.
    public static func current() -> UplinkLibraries {
        let info = vg_curl_version_info()!.pointee
        let features = Int32(info.features)
        return UplinkLibraries(
            curlVersion: String(cString: info.version),
            curlTLS: info.ssl_version.map { String(cString: $0) } ?? "none",
            supportsHTTP2: features & CURL_VERSION_HTTP2 != 0,
            cryptoVersion: String(cString: OpenSSL_version(Int32(OPENSSL_VERSION))))
    }
}
