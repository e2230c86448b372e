import Foundation
import Testing
import VitalGateTestKit
@testable import Uplink

/// Keys made once per run by the openssl CLI, in the formats a deployment may hand over.
struct TestSigningKeys: Sendable {
    let directory: String
    var p384: String { directory + "/p384.pem" }                  // PKCS#8
    var p384Traditional: String { directory + "/p384-ec.pem" }    // EC PRIVATE KEY
    var p384Public: String { directory + "/p384.pub.pem" }
    var otherP384: String { directory + "/other-p384.pem" }
    var p256: String { directory + "/p256.pem" }
    var rsa: String { directory + "/rsa.pem" }
    var rsaTraditional: String { directory + "/rsa-trad.pem" }    // RSA PRIVATE KEY
    var rsaPublic: String { directory + "/rsa.pub.pem" }
    var rsa1024: String { directory + "/rsa1024.pem" }
    var encrypted: String { directory + "/encrypted.pem" }

    static let shared: Result<TestSigningKeys, any Error> = Result { try generate() }

    static func get() async throws -> TestSigningKeys { try await onDedicatedThread { try shared.get() } }

    private static func generate() throws -> TestSigningKeys {
        let directory = try makeRunDirectory()
        try openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384", "-out", "p384.pem"], in: directory)
        try openssl(["ec", "-in", "p384.pem", "-out", "p384-ec.pem"], in: directory)
        try openssl(["pkey", "-in", "p384.pem", "-pubout", "-out", "p384.pub.pem"], in: directory)
        try openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384", "-out", "other-p384.pem"], in: directory)
        try openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "p256.pem"], in: directory)
        try openssl(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "rsa.pem"], in: directory)
        try openssl(["rsa", "-in", "rsa.pem", "-traditional", "-out", "rsa-trad.pem"], in: directory)
        try openssl(["pkey", "-in", "rsa.pem", "-pubout", "-out", "rsa.pub.pem"], in: directory)
        try openssl(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024", "-out", "rsa1024.pem"], in: directory)
        try openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384", "-aes-256-cbc",
                     "-pass", "pass:vitalgate", "-out", "encrypted.pem"], in: directory)
        return TestSigningKeys(directory: directory)
    }
}

func fileBytes(_ path: String) throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: path))) }

/// DER ECDSA-Sig-Value from JWS's R||S, so openssl can check an ES384 signature.
func derSignature(fromRaw raw: [UInt8]) -> [UInt8] {
    func integer(_ bytes: ArraySlice<UInt8>) -> [UInt8] {
        var value = Array(bytes.drop { $0 == 0 })
        if value.isEmpty { value = [0] }
        if value[0] & 0x80 != 0 { value.insert(0, at: 0) }
        return [0x02, UInt8(value.count)] + value
    }
    let half = raw.count / 2
    let body = integer(raw[..<half]) + integer(raw[half...])
    return [0x30, UInt8(body.count)] + body
}

func base64URLDecoded(_ text: Substring) -> [UInt8]? {
    var standard = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
    while standard.count % 4 != 0 { standard += "=" }
    return Data(base64Encoded: standard).map(Array.init)
}

/// A base64url JSON object (a JWS header or claims).
func jsonObject(_ part: Substring) throws -> [String: Any] {
    let bytes = try #require(base64URLDecoded(part))
    return try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
}

/// `openssl dgst -sha384 -verify`: true when the signature checks out.
func opensslVerifies(publicKey: String, message: [UInt8], signature: [UInt8]) throws -> Bool {
    let directory = try makeTemporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: directory) }
    try Data(message).write(to: URL(fileURLWithPath: directory + "/message"))
    try Data(signature).write(to: URL(fileURLWithPath: directory + "/signature"))
    let result = try runOpenSSL(["dgst", "-sha384", "-verify", publicKey, "-signature", "signature", "message"], in: directory)
    return result.status == 0
}

@Suite("JWS signing with libcrypto")
struct AuthJWSTests {
    let message = Array("eyJhbGciOiJFUzM4NCJ9.eyJpc3MiOiJodWIifQ".utf8)

    @Test("ES384 signatures are 96-byte R||S that openssl verifies, from PKCS#8 and traditional PEM")
    func es384() async throws {
        let keys = try await TestSigningKeys.get()
        for path in [keys.p384, keys.p384Traditional] {
            let signer = try JWSSigner(pem: try fileBytes(path), algorithm: .es384)
            let signature = try signer.sign(message)
            #expect(signature.count == 96)
            let message = self.message
            #expect(try await onDedicatedThread { try opensslVerifies(publicKey: keys.p384Public, message: message,
                                                                      signature: derSignature(fromRaw: signature)) })
            var changed = message
            changed[0] ^= 1
            let tampered = changed
            #expect(try await onDedicatedThread { try opensslVerifies(publicKey: keys.p384Public, message: tampered,
                                                                      signature: derSignature(fromRaw: signature)) } == false)
        }
    }

    @Test("RS384 matches openssl dgst -sha384 -sign byte for byte (PKCS#1 v1.5 is deterministic)")
    func rs384KnownAnswer() async throws {
        let keyPath = fixturePath("rs384-known-answer-key.pem")
        let message = self.message
        let expected = try await onDedicatedThread { () throws -> [UInt8] in
            let directory = try makeTemporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            try Data(message).write(to: URL(fileURLWithPath: directory + "/message"))
            return try openssl(["dgst", "-sha384", "-sign", keyPath, "message"], in: directory)
        }
        let signer = try JWSSigner(pem: try fileBytes(keyPath), algorithm: .rs384)
        let signature = try signer.sign(message)
        #expect(signature.count == 256)
        #expect(signature == expected)
    }

    @Test("RS384 from a generated key verifies with openssl, from PKCS#8 and traditional PEM")
    func rs384Verify() async throws {
        let keys = try await TestSigningKeys.get()
        let message = self.message
        for path in [keys.rsa, keys.rsaTraditional] {
            let signature = try JWSSigner(pem: try fileBytes(path), algorithm: .rs384).sign(message)
            #expect(try await onDedicatedThread { try opensslVerifies(publicKey: keys.rsaPublic, message: message, signature: signature) })
        }
    }

    @Test("a key that does not fit the algorithm, a weak, encrypted or malformed key is refused with a reason")
    func unsuitableKeys() async throws {
        let keys = try await TestSigningKeys.get()
        let cases: [(String, JWSAlgorithm, String)] = [
            (keys.rsa, .es384, "P-384"),
            (keys.p256, .es384, "prime256v1"),
            (keys.p384, .rs384, "not an RSA key"),
            (keys.rsa1024, .rs384, "1024 bits"),
            (keys.encrypted, .es384, "unencrypted"),
            (keys.p384Public, .es384, "private key"),
        ]
        for (path, algorithm, reason) in cases {
            let pem = try fileBytes(path)
            let error = try #require(throws: JWSError.self) { try JWSSigner(pem: pem, algorithm: algorithm) }
            #expect(error.problem.contains(reason), "\(path): \(error.problem)")
            #expect(!error.fix.isEmpty)
        }
        #expect(throws: JWSError.self) { try JWSSigner(pem: [], algorithm: .es384) }
        #expect(throws: JWSError.self) { try JWSSigner(pem: Array("garbage".utf8), algorithm: .rs384) }
    }

    @Test("a client assertion carries SMART's header and claims and its signature verifies")
    func clientAssertion() async throws {
        let keys = try await TestSigningKeys.get()
        for (algorithm, key, publicKey) in [(JWSAlgorithm.es384, keys.p384, keys.p384Public), (.rs384, keys.rsa, keys.rsaPublic)] {
            let signer = try JWSSigner(pem: try fileBytes(key), algorithm: algorithm)
            let now = Date(timeIntervalSince1970: 1_760_000_000.75)
            let jwt = try ClientAssertion.make(clientID: "hub-7", tokenURL: "https://auth.example/token", keyID: "key-1",
                                               signer: signer, now: now)
            let parts = jwt.split(separator: ".", omittingEmptySubsequences: false)
            try #require(parts.count == 3)
            #expect(!jwt.contains("=") && !jwt.contains("+") && !jwt.contains("/"))
            let header = try jsonObject(parts[0])
            #expect(header["alg"] as? String == algorithm.rawValue)
            #expect(header["typ"] as? String == "JWT")
            #expect(header["kid"] as? String == "key-1")
            let claims = try jsonObject(parts[1])
            #expect(claims["iss"] as? String == "hub-7")
            #expect(claims["sub"] as? String == "hub-7")
            #expect(claims["aud"] as? String == "https://auth.example/token")
            #expect(claims["exp"] as? Int == 1_760_000_240)
            let jti = try #require(claims["jti"] as? String)
            #expect(jti.count == 32 && jti.allSatisfy { "0123456789abcdef".contains($0) })
            var signature = try #require(base64URLDecoded(parts[2]))
            if algorithm == .es384 {
                #expect(signature.count == 96)
                signature = derSignature(fromRaw: signature)
            }
            let signed = Array("\(parts[0]).\(parts[1])".utf8)
            let finalSignature = signature
            #expect(try await onDedicatedThread { try opensslVerifies(publicKey: publicKey, message: signed, signature: finalSignature) })
            // A second assertion never repeats the jti.
            let again = try ClientAssertion.make(clientID: "hub-7", tokenURL: "https://auth.example/token", keyID: nil,
                                                 signer: signer, now: now)
            let againClaims = try jsonObject(again.split(separator: ".")[1])
            #expect(againClaims["jti"] as? String != jti)
            let againHeader = try jsonObject(again.split(separator: ".")[0])
            #expect(againHeader["kid"] == nil)
        }
    }

    @Test("base64url has no padding; form encoding follows application/x-www-form-urlencoded")
    func encodings() {
        #expect(base64URLEncoded([0xFB, 0xFF]) == "-_8")
        #expect(base64URLEncoded(Array("any carnal pleasure.".utf8)) == "YW55IGNhcm5hbCBwbGVhc3VyZS4")
        #expect(base64URLEncoded([UInt8]()) == "")
        #expect(formURLEncoded("a b&c=d/é+*-._~") == "a+b%26c%3Dd%2F%C3%A9%2B*-._%7E")
        #expect(String(decoding: formBody([("grant_type", "client_credentials"), ("scope", "system/Observation.cs system/Patient.rs")]),
                       as: UTF8.self) == "grant_type=client_credentials&scope=system%2FObservation.cs+system%2FPatient.rs")
    }
}
