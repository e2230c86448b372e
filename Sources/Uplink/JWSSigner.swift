internal import CCrypto

/// Why a JWS could not be signed; the Authenticator turns it into an ``AuthError``.
struct JWSError: Error, Sendable {
    var problem: String
    var fix: String
}

/// A private key loaded for one JWS algorithm, checked to fit it (P-384 for ES384, RSA ≥ 2048 bits
/// for RS384). Not shared between threads; the Authenticator loads it per token request so a replaced
/// key file takes effect at the next token.
final class JWSSigner {
    let algorithm: JWSAlgorithm
    private let key: OpaquePointer

    /// Loads a PEM private key (PKCS#8 `PRIVATE KEY`, or traditional `EC PRIVATE KEY` / `RSA PRIVATE KEY`).
    /// Encrypted keys are refused rather than prompting for a passphrase.
    init(pem: [UInt8], algorithm: JWSAlgorithm) throws(JWSError) {
        self.algorithm = algorithm
        ERR_clear_error()   // an earlier, unrelated failure on this thread must not be reported as ours
        guard pem.count < Int32.max, let key = pem.withUnsafeBytes({ vg_pem_read_private_key($0.baseAddress, Int32($0.count)) }) else {
            let detail = lastOpenSSLError()
            throw JWSError(problem: "is not an unencrypted PEM private key" + (detail.isEmpty ? "" : " (\(detail))"),
                           fix: "give a PEM private key without a passphrase (openssl pkey -in key.pem -out plain.pem)")
        }
        self.key = key
        switch algorithm {
        case .es384:
            guard vg_evp_pkey_is_ec(key) == 1, curveName(key) == "secp384r1" else {
                throw JWSError(problem: "is not a P-384 (secp384r1) EC key, which ES384 needs (it is \(keyDescription(key)))",
                               fix: "generate one with: openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384, or set the algorithm to RS384 for an RSA key")
            }
        case .rs384:
            guard vg_evp_pkey_is_rsa(key) == 1 else {
                throw JWSError(problem: "is not an RSA key, which RS384 needs (it is \(keyDescription(key)))",
                               fix: "generate one with: openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072, or set the algorithm to ES384 for a P-384 key")
            }
            guard EVP_PKEY_get_bits(key) >= 2048 else {
                throw JWSError(problem: "is an RSA key of \(EVP_PKEY_get_bits(key)) bits; RS384 needs at least 2048 (RFC 7518 §3.3)",
                               fix: "generate a key of 2048 bits or more")
            }
        }
    }

    deinit { EVP_PKEY_free(key) }

    /// The JWS signature of `input`: SHA-384 with RSASSA-PKCS1-v1_5, or ECDSA as 96 bytes `R||S`.
    func sign(_ input: [UInt8]) throws(JWSError) -> [UInt8] {
        guard let context = EVP_MD_CTX_new() else { throw failure("could not allocate a signing context") }
        defer { EVP_MD_CTX_free(context) }
        guard EVP_DigestSignInit(context, nil, EVP_sha384(), nil, key) == 1 else { throw failure("could not start signing") }
        var length = 0
        guard EVP_DigestSign(context, nil, &length, input, input.count) == 1, length > 0 else {
            throw failure("could not size the signature")
        }
        var signature = [UInt8](repeating: 0, count: length)
        guard EVP_DigestSign(context, &signature, &length, input, input.count) == 1 else { throw failure("signing failed") }
        signature.removeLast(signature.count - length)
        guard algorithm == .es384 else { return signature }
        // libcrypto writes ECDSA signatures as DER; JWS wants the two integers side by side, 48 bytes each.
        var raw = [UInt8](repeating: 0, count: 96)
        guard vg_ecdsa_der_to_raw(signature, signature.count, &raw, 48) == 1 else {
            throw failure("could not convert the ECDSA signature to R||S")
        }
        return raw
    }

    private func failure(_ problem: String) -> JWSError {
        let detail = lastOpenSSLError()
        return JWSError(problem: problem + (detail.isEmpty ? "" : " (\(detail))"), fix: "check the private key file")
    }
}

/// `count` random bytes from OpenSSL's CSPRNG, or nil if it is not seeded.
func secureRandomBytes(_ count: Int) -> [UInt8]? {
    var bytes = [UInt8](repeating: 0, count: count)
    guard RAND_bytes(&bytes, Int32(count)) == 1 else { return nil }
    return bytes
}

private func curveName(_ key: OpaquePointer) -> String? {
    var buffer = [CChar](repeating: 0, count: 64)
    var length = 0
    guard EVP_PKEY_get_group_name(key, &buffer, buffer.count, &length) == 1 else { return nil }
    return String(decoding: buffer.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

private func keyDescription(_ key: OpaquePointer) -> String {
    if vg_evp_pkey_is_ec(key) == 1 { return "EC on \(curveName(key) ?? "an unknown curve")" }
    if vg_evp_pkey_is_rsa(key) == 1 { return "RSA of \(EVP_PKEY_get_bits(key)) bits" }
    return String(cString: OBJ_nid2sn(EVP_PKEY_get_base_id(key)))
}

private func lastOpenSSLError() -> String {
    var buffer = [CChar](repeating: 0, count: 256)
    vg_openssl_last_error(&buffer, buffer.count)
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
