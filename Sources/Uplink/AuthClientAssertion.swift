import Foundation
import VitalModel

/// The `private_key_jwt` client assertion SMART Backend Services asks for (SMART App Launch 2.2,
/// RFC 7523): a JWS whose claims say "client `clientID`, talking to `tokenURL`, until `exp`, once".
enum ClientAssertion {
    /// How long an assertion lives; SMART allows at most five minutes, less leaves room for clock skew.
    static let lifetime: TimeInterval = 240

    /// The compact JWS `header.claims.signature`.
    static func make(clientID: String, tokenURL: String, keyID: String?, signer: JWSSigner, now: Date) throws(JWSError) -> String {
        var header: [(String, JSONValue)] = [("alg", .string(signer.algorithm.rawValue)), ("typ", "JWT")]
        if let keyID { header.append(("kid", .string(keyID))) }
        guard let nonce = secureRandomBytes(16) else {
            throw JWSError(problem: "OpenSSL's random generator is not seeded", fix: "check the hub's entropy source (/dev/urandom)")
        }
        let expiry = Int((now.timeIntervalSince1970 + lifetime).rounded(.down))
        let claims: JSONValue = .object([
            ("iss", .string(clientID)),
            ("sub", .string(clientID)),
            ("aud", .string(tokenURL)),
            ("exp", .int(expiry)),
            // 128 random bits: the server refuses a jti it has seen, so it must never repeat. Lower-case
            // hex, as before: jti is case-sensitive and servers compare it byte for byte.
            ("jti", .string(hexString(nonce, separator: "").lowercased())),
        ])
        let signingInput = base64URLEncoded(Array(JSONValue.object(header).serialized().utf8)) + "."
            + base64URLEncoded(Array(claims.serialized().utf8))
        let signature = try signer.sign(Array(signingInput.utf8))
        return signingInput + "." + base64URLEncoded(signature)
    }
}
