import Foundation
import Testing
@testable import Uplink

/// The Authenticator against the scripted server's real token endpoint, which checks client secrets and
/// verifies client assertions with the openssl CLI.
@Suite("Authenticator")
struct AuthenticatorTests {
    let http = HTTPClient(requestTimeout: .seconds(30), userAgent: "vitalgate-tests/1")

    private func tokenRequests(_ server: TestHTTPServer) async throws -> Int {
        try await server.stats(using: http)["token_requests"] as? Int ?? -1
    }

    /// GET /fhir/metadata with `header`: the server accepts only tokens it issued.
    private func fhirStatus(_ server: TestHTTPServer, _ header: String?) async throws -> Int {
        let headers = header.map { [(name: "Authorization", value: $0)] } ?? []
        return try await send(http, HTTPRequest(url: server.baseURL + "/fhir/metadata", headers: headers)).get().status
    }

    /// Writes a credential file readable by its owner only, as the authenticator requires.
    private func write(_ text: String, to path: String) throws {
        try text.write(toFile: path, atomically: false, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
    }

    // MARK: - none and bearer token file

    @Test("no auth gives no header")
    func none() async throws {
        let authenticator = Authenticator(method: .none, fhirBaseURL: "http://127.0.0.1:1", http: http)
        #expect(try await authorize(authenticator).get() == nil)
    }

    @Test("a bearer token file is trimmed, cached, and re-read when replaced or rewritten")
    func bearerFileRotation() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/token"
        try write("  first-token\n", to: path)
        let authenticator = Authenticator(method: .bearerTokenFile(path: path), fhirBaseURL: "http://127.0.0.1:1", http: http)
        #expect(try await authorize(authenticator).get() == "Bearer first-token")
        #expect(try await authorize(authenticator).get() == "Bearer first-token")
        // Rotation by atomic replace (a new inode), as token agents do.
        try write("second-token\n", to: directory + "/token.new")
        #expect(rename(directory + "/token.new", path) == 0)
        #expect(try await authorize(authenticator).get() == "Bearer second-token")
        // Rotation by rewriting in place with a different length.
        try write("third-token-longer", to: path)
        #expect(try await authorize(authenticator).get() == "Bearer third-token-longer")
        // invalidate() forces a re-read even when nothing about the file seems to have changed.
        let fourth = "fourth-token-long!"   // same length as the third
        #expect(fourth.count == "third-token-longer".count)
        let handle = try #require(FileHandle(forWritingAtPath: path))
        try handle.write(contentsOf: Data(fourth.utf8))
        try handle.close()
        authenticator.invalidate()
        #expect(try await authorize(authenticator).get() == "Bearer \(fourth)")
    }

    @Test("a missing, empty or malformed bearer token file is a configuration error that never quotes the token")
    func bearerFileErrors() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let missing = Authenticator(method: .bearerTokenFile(path: directory + "/absent"), fhirBaseURL: "http://127.0.0.1:1", http: http)
        let missingError = try #require(try await authorize(missing).failure)
        #expect(missingError.description.contains(directory + "/absent"))
        #expect(missingError.description.contains("No such file"))
        #expect(!missingError.isRetryable)

        try write(" \n\t\n", to: directory + "/empty")
        let empty = Authenticator(method: .bearerTokenFile(path: directory + "/empty"), fhirBaseURL: "http://127.0.0.1:1", http: http)
        let emptyError = try #require(try await authorize(empty).failure)
        #expect(emptyError.message.contains("is empty"))

        try write("secret-part-one\nsecret-part-two\n", to: directory + "/two-lines")
        let twoLines = Authenticator(method: .bearerTokenFile(path: directory + "/two-lines"), fhirBaseURL: "http://127.0.0.1:1", http: http)
        let twoLinesError = try #require(try await authorize(twoLines).failure)
        guard case .configuration = twoLinesError.kind else { Issue.record("kind \(twoLinesError.kind)"); return }
        #expect(!twoLinesError.description.contains("secret-part"))

        let unreadable = Authenticator(method: .bearerTokenFile(path: directory), fhirBaseURL: "http://127.0.0.1:1", http: http)
        let unreadableError = try #require(try await authorize(unreadable).failure)
        #expect(unreadableError.message.contains("not a regular file"))

        // A token every local account can read is refused, without quoting it; 0640 (group vitalgate) is fine.
        try write("world-readable-token\n", to: directory + "/open")
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: directory + "/open")
        let open = Authenticator(method: .bearerTokenFile(path: directory + "/open"), fhirBaseURL: "http://127.0.0.1:1", http: http)
        let openError = try #require(try await authorize(open).failure)
        #expect(openError.message.contains("open to every user") && openError.description.contains("chmod 0640"))
        #expect(!openError.description.contains("world-readable-token") && !openError.isRetryable)
        // Group access for a group that is not the service's is refused too; for the service's own group it is fine.
        try FileManager.default.setAttributes([.posixPermissions: 0o640, .groupOwnerAccountID: 54_321], ofItemAtPath: directory + "/open")
        let foreignGroup = Authenticator(method: .bearerTokenFile(path: directory + "/open"), fhirBaseURL: "http://127.0.0.1:1", http: http)
        #expect(try await authorize(foreignGroup).failure?.message.contains("open to group 54321") == true)
        try FileManager.default.setAttributes([.posixPermissions: 0o640, .groupOwnerAccountID: Int(getegid())], ofItemAtPath: directory + "/open")
        #expect(try await authorize(Authenticator(method: .bearerTokenFile(path: directory + "/open"), fhirBaseURL: "http://127.0.0.1:1",
                                                  http: http)).get() == "Bearer world-readable-token")
    }

    // MARK: - client credentials

    private func secretServer(_ extra: [String] = []) async throws -> TestHTTPServer {
        try await TestHTTPServer.start(["--client-id", "hub 1/ward:a", "--client-secret", "s3cr:et&+ %", "--token-lifetime", "300"] + extra)
    }

    private func secretFile(_ directory: String, _ secret: String = "s3cr:et&+ %") throws -> String {
        let path = directory + "/secret"
        try write(secret + "\n", to: path)
        return path
    }

    /// An authenticator for the secret server's token endpoint, its secret in a file under `directory`.
    private func clientCredentials(_ server: TestHTTPServer, _ directory: String, secret: String = "s3cr:et&+ %",
                                   now: @escaping @Sendable () -> Date = { Date() }) throws -> Authenticator {
        Authenticator(method: .clientCredentials(ClientCredentials(tokenURL: server.baseURL + "/token", clientID: "hub 1/ward:a",
                                                                   secretFile: try secretFile(directory, secret))),
                      fhirBaseURL: server.baseURL, http: http, now: now)
    }

    @Test("client credentials: one token for many requests, a new one after invalidate() and near expiry")
    func clientCredentialsCaching() async throws {
        let server = try await secretServer()
        defer { server.stop() }
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let clock = TestClock()
        let method = AuthMethod.clientCredentials(ClientCredentials(tokenURL: server.baseURL + "/token", clientID: "hub 1/ward:a",
                                                                    secretFile: try secretFile(directory), scope: "system/Observation.cs"))
        let authenticator = Authenticator(method: method, fhirBaseURL: server.baseURL + "/fhir", http: http, now: { clock.now })

        let first = try #require(try await authorize(authenticator).get())
        #expect(first.hasPrefix("Bearer tok-"))
        for _ in 0..<5 { #expect(try await authorize(authenticator).get() == first) }
        #expect(try await tokenRequests(server) == 1)
        #expect(try await fhirStatus(server, first) == 200)
        let form = try await server.stats(using: http)["last_form"] as? [String: String]
        #expect(form == ["grant_type": "client_credentials", "scope": "system/Observation.cs"])

        authenticator.invalidate()
        let second = try #require(try await authorize(authenticator).get())
        #expect(second != first)
        #expect(try await tokenRequests(server) == 2)

        // 300 s lifetime, refreshed 30 s (10%) early.
        clock.advance(by: 269)
        #expect(try await authorize(authenticator).get() == second)
        #expect(try await tokenRequests(server) == 2)
        clock.advance(by: 2)
        let third = try #require(try await authorize(authenticator).get())
        #expect(third != second)
        #expect(try await tokenRequests(server) == 3)
    }

    @Test("short-lived tokens keep at least a 5 s margin")
    func shortLivedTokens() async throws {
        let server = try await secretServer(["--token-lifetime", "20"])
        defer { server.stop() }
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let clock = TestClock()
        let authenticator = try clientCredentials(server, directory, now: { clock.now })
        let first = try await authorize(authenticator).get()
        clock.advance(by: 14)
        #expect(try await authorize(authenticator).get() == first)
        clock.advance(by: 2)
        #expect(try await authorize(authenticator).get() != first)
        #expect(try await tokenRequests(server) == 2)
    }

    @Test("concurrent callers share one token request")
    func concurrentCallers() async throws {
        let server = try await secretServer()
        defer { server.stop() }
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let authenticator = try clientCredentials(server, directory)
        let headers = await withTaskGroup(of: String?.self) { group in
            for _ in 0..<8 { group.addTask { try? await authorize(authenticator).get() } }
            return await group.reduce(into: Set<String?>()) { $0.insert($1) }
        }
        #expect(headers.count == 1)
        #expect(headers.first??.hasPrefix("Bearer tok-") == true)
        #expect(try await tokenRequests(server) == 1)
    }

    @Test("a wrong secret surfaces invalid_client without the secret, and is not retryable")
    func wrongSecret() async throws {
        let server = try await secretServer()
        defer { server.stop() }
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let authenticator = try clientCredentials(server, directory, secret: "wrong-secret-value")
        let error = try #require(try await authorize(authenticator).failure)
        guard case .rejected(let status, let oauth) = error.kind else { Issue.record("kind \(error.kind)"); return }
        #expect(status == 401)
        #expect(oauth?.error == "invalid_client")
        #expect(!error.isRetryable)
        #expect(error.description.contains("invalid_client"))
        #expect(error.description.contains("Fix: check auth.clientID"))
        #expect(!error.description.contains("wrong-secret-value"))
    }

    @Test("a missing secret file fails before any request")
    func missingSecret() async throws {
        let server = try await secretServer()
        defer { server.stop() }
        let authenticator = Authenticator(
            method: .clientCredentials(ClientCredentials(tokenURL: server.baseURL + "/token", clientID: "hub 1/ward:a",
                                                         secretFile: "/nonexistent/vitalgate/secret")),
            fhirBaseURL: server.baseURL, http: http)
        let error = try #require(try await authorize(authenticator).failure)
        guard case .configuration = error.kind else { Issue.record("kind \(error.kind)"); return }
        #expect(error.description.contains("/nonexistent/vitalgate/secret"))
        #expect(try await tokenRequests(server) == 0)
    }

    @Test("OAuth errors, bare error statuses and Retry-After from the token endpoint")
    func tokenEndpointRefusals() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let secret = try secretFile(directory)

        let scopeServer = try await secretServer(["--token-error", "invalid_scope"])
        defer { scopeServer.stop() }
        let scoped = Authenticator(method: .clientCredentials(ClientCredentials(
            tokenURL: scopeServer.baseURL + "/token", clientID: "hub 1/ward:a", secretFile: secret, scope: "system/*.*")),
                                   fhirBaseURL: scopeServer.baseURL, http: http)
        let scopeError = try #require(try await authorize(scoped).failure)
        guard case .rejected(400, let oauth?) = scopeError.kind else { Issue.record("kind \(scopeError.kind)"); return }
        #expect(oauth == OAuthError(error: "invalid_scope", errorDescription: "scripted refusal"))
        #expect(scopeError.fix.contains("auth.scope"))

        let busyServer = try await secretServer(["--token-status", "503"])
        defer { busyServer.stop() }
        let busy = Authenticator(method: .clientCredentials(ClientCredentials(
            tokenURL: busyServer.baseURL + "/token", clientID: "hub 1/ward:a", secretFile: secret)),
                                 fhirBaseURL: busyServer.baseURL, http: http)
        let busyError = try #require(try await authorize(busy).failure)
        guard case .rejected(503, nil) = busyError.kind else { Issue.record("kind \(busyError.kind)"); return }
        #expect(busyError.isRetryable)
        #expect(busyError.retryAfter == .seconds(7))

        let garbled = Authenticator(method: .clientCredentials(ClientCredentials(
            tokenURL: busyServer.baseURL + "/echo", clientID: "hub 1/ward:a", secretFile: secret)),
                                    fhirBaseURL: busyServer.baseURL, http: http)
        let garbledError = try #require(try await authorize(garbled).failure)
        guard case .invalidResponse(200) = garbledError.kind else { Issue.record("kind \(garbledError.kind)"); return }
        #expect(garbledError.message.contains("has no access_token"))
    }

    @Test("an unreachable token endpoint is retryable and carries the transport error")
    func unreachable() async throws {
        let server = try await secretServer()
        let port = server.port
        try await server.stopAndWait()
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let authenticator = Authenticator(method: .clientCredentials(ClientCredentials(
            tokenURL: "http://127.0.0.1:\(port)/token", clientID: "hub", secretFile: try secretFile(directory))),
                                          fhirBaseURL: "http://127.0.0.1:\(port)", http: http)
        let failure = try #require(try await authorize(authenticator).failure)
        guard case .tokenEndpointUnreachable(let transport) = failure.kind else { Issue.record("kind \(failure.kind)"); return }
        #expect(transport.kind == .connect)
        #expect(failure.isRetryable)
    }

    @Test("without a token URL the token endpoint is discovered once from .well-known/smart-configuration")
    func discovery() async throws {
        let server = try await secretServer()
        defer { server.stop() }
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let authenticator = Authenticator(
            method: .clientCredentials(ClientCredentials(clientID: "hub 1/ward:a", secretFile: try secretFile(directory))),
            fhirBaseURL: server.baseURL + "/", http: http)
        let header = try #require(try await authorize(authenticator).get())
        #expect(try await fhirStatus(server, header) == 200)
        authenticator.invalidate()
        _ = try await authorize(authenticator).get()
        #expect(try await tokenRequests(server) == 2)

        let silent = try await secretServer(["--no-discovery"])
        defer { silent.stop() }
        let undiscoverable = Authenticator(
            method: .clientCredentials(ClientCredentials(clientID: "hub 1/ward:a", secretFile: try secretFile(directory))),
            fhirBaseURL: silent.baseURL, http: http)
        let error = try #require(try await authorize(undiscoverable).failure)
        guard case .rejected(404, _) = error.kind else { Issue.record("kind \(error.kind)"); return }
        #expect(error.fix.contains("auth.tokenURL"))
    }

    // MARK: - SMART Backend Services

    private func smartServer(publicKey: String, algorithm: JWSAlgorithm, extra: [String] = []) async throws -> TestHTTPServer {
        try await TestHTTPServer.start(["--client-id", "hub-7", "--client-public-key", publicKey, "--client-alg", algorithm.rawValue,
                                        "--client-kid", "hub-7-key"] + extra)
    }

    @Test("SMART Backend Services: the server verifies ES384 and RS384 assertions and issues a token",
          arguments: [JWSAlgorithm.es384, .rs384])
    func smartBackendServices(algorithm: JWSAlgorithm) async throws {
        let keys = try await TestSigningKeys.get()
        let (privateKey, publicKey) = algorithm == .es384 ? (keys.p384, keys.p384Public) : (keys.rsaTraditional, keys.rsaPublic)
        let server = try await smartServer(publicKey: publicKey, algorithm: algorithm)
        defer { server.stop() }
        let clock = TestClock()
        let authenticator = Authenticator(
            method: .smartBackendServices(SMARTBackendServices(clientID: "hub-7", privateKeyFile: privateKey, keyID: "hub-7-key",
                                                               algorithm: algorithm, scope: "system/Observation.cs system/Patient.rs")),
            fhirBaseURL: server.baseURL + "/fhir", http: http, now: { clock.now })
        let header = try #require(try await authorize(authenticator).get())
        #expect(try await fhirStatus(server, header) == 200)
        #expect(try await authorize(authenticator).get() == header)

        let stats = try await server.stats(using: http)
        #expect(stats["token_requests"] as? Int == 1)
        let form = try #require(stats["last_form"] as? [String: String])
        #expect(form["scope"] == "system/Observation.cs system/Patient.rs")
        #expect(form["grant_type"] == "client_credentials")
        let assertion = try #require(stats["last_assertion"] as? [String: Any])
        let claims = try #require(assertion["claims"] as? [String: Any])
        // Discovered through smart-configuration, so the audience is the discovered token URL.
        #expect(claims["aud"] as? String == server.baseURL + "/token")
        #expect(claims["exp"] as? Int == Int(clock.now.timeIntervalSince1970 + 240))

        // Each new token needs a fresh jti: the server refuses replays, so a second request proves it.
        authenticator.invalidate()
        let renewed = try #require(try await authorize(authenticator).get())
        #expect(renewed != header)
    }

    @Test("an assertion signed by a key the server does not know is refused as invalid_client")
    func unknownKey() async throws {
        let keys = try await TestSigningKeys.get()
        let server = try await smartServer(publicKey: keys.p384Public, algorithm: .es384)
        defer { server.stop() }
        let authenticator = Authenticator(
            method: .smartBackendServices(SMARTBackendServices(tokenURL: server.baseURL + "/token", clientID: "hub-7",
                                                               privateKeyFile: keys.otherP384, keyID: "hub-7-key", scope: "system/Observation.cs")),
            fhirBaseURL: server.baseURL, http: http)
        let error = try #require(try await authorize(authenticator).failure)
        guard case .rejected(401, let oauth) = error.kind else { Issue.record("kind \(error.kind)"); return }
        #expect(oauth?.error == "invalid_client")
        #expect(oauth?.errorDescription == "signature does not verify")
        #expect(error.fix.contains("public half"))
        #expect(!error.isRetryable)
    }

    @Test("a key that does not fit the algorithm fails locally, before any request")
    func wrongKeyType() async throws {
        let keys = try await TestSigningKeys.get()
        let server = try await smartServer(publicKey: keys.p384Public, algorithm: .es384)
        defer { server.stop() }
        let authenticator = Authenticator(
            method: .smartBackendServices(SMARTBackendServices(tokenURL: server.baseURL + "/token", clientID: "hub-7",
                                                               privateKeyFile: keys.rsa, algorithm: .es384, scope: "system/Observation.cs")),
            fhirBaseURL: server.baseURL, http: http)
        let error = try #require(try await authorize(authenticator).failure)
        guard case .configuration = error.kind else { Issue.record("kind \(error.kind)"); return }
        #expect(error.message.contains(keys.rsa))
        #expect(error.message.contains("P-384"))
        #expect(!error.description.contains("PRIVATE KEY"))
        #expect(try await tokenRequests(server) == 0)
    }
}
