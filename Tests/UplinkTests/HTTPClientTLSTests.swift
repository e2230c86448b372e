import Foundation
import Testing
@testable import Uplink

/// TLS with private CAs and client certificates against a real TLS server; verification is always on.
@Suite("HTTP client TLS")
struct HTTPClientTLSTests {
    private func tlsServer(_ pki: TestPKI, certificate: String? = nil, key: String? = nil,
                           requireClientCertificate: Bool = false) async throws -> TestHTTPServer {
        var arguments = ["--tls-cert", certificate ?? pki.serverCertificate, "--tls-key", key ?? pki.serverKey]
        if requireClientCertificate { arguments += ["--client-ca", pki.clientCA] }
        return try await TestHTTPServer.start(arguments, tls: true)
    }

    private func client(_ tls: TLSOptions) -> HTTPClient {
        HTTPClient(tls: tls, connectTimeout: .seconds(10), requestTimeout: .seconds(30), userAgent: "vitalgate-tests/1")
    }

    @Test("the server's private CA in caBundlePath makes HTTPS work, with one connection for many requests")
    func privateCA() async throws {
        let pki = try await TestPKI.get()
        let server = try await tlsServer(pki)
        defer { server.stop() }
        let trusting = client(TLSOptions(caBundlePath: pki.serverCA))
        for _ in 0..<3 {
            #expect(try await send(trusting, HTTPRequest(url: server.baseURL + "/echo")).get().status == 200)
        }
        #expect(try await server.stats(using: trusting)["connections"] as? Int == 1)
    }

    @Test("a CA bundle that did not issue the server's certificate fails as tls, with a caBundle fix")
    func wrongCA() async throws {
        let pki = try await TestPKI.get()
        let server = try await tlsServer(pki)
        defer { server.stop() }
        let error = try #require(try await send(client(TLSOptions(caBundlePath: pki.otherCA)),
                                            HTTPRequest(url: server.baseURL + "/echo")).failure)
        #expect(error.kind == .tls)
        #expect(error.fix.contains("tls.caBundle"))
    }

    @Test("the system trust store does not trust a private CA")
    func systemStore() async throws {
        let pki = try await TestPKI.get()
        let server = try await tlsServer(pki)
        defer { server.stop() }
        let error = try #require(try await send(client(TLSOptions()), HTTPRequest(url: server.baseURL + "/echo")).failure)
        #expect(error.kind == .tls)
    }

    @Test("a certificate for another host name fails even when its CA is trusted")
    func hostNameMismatch() async throws {
        let pki = try await TestPKI.get()
        let server = try await tlsServer(pki, certificate: pki.mismatchCertificate, key: pki.mismatchKey)
        defer { server.stop() }
        let error = try #require(try await send(client(TLSOptions(caBundlePath: pki.serverCA)),
                                            HTTPRequest(url: server.baseURL + "/echo")).failure)
        #expect(error.kind == .tls)
        #expect(error.fix.contains("host name"))
    }

    @Test("a missing CA file is a configuration error naming tls.caBundle")
    func missingCAFile() async throws {
        let pki = try await TestPKI.get()
        let server = try await tlsServer(pki)
        defer { server.stop() }
        let error = try #require(try await send(client(TLSOptions(caBundlePath: pki.directory + "/no-such-ca.pem")),
                                            HTTPRequest(url: server.baseURL + "/echo")).failure)
        #expect(error.kind == .configuration)
        #expect(error.description.contains("Fix: check tls.caBundle path"))
    }

    @Test("mutual TLS: the right client certificate is accepted")
    func clientCertificateAccepted() async throws {
        let pki = try await TestPKI.get()
        let server = try await tlsServer(pki, requireClientCertificate: true)
        defer { server.stop() }
        let mtls = client(TLSOptions(caBundlePath: pki.serverCA, clientCertificatePath: pki.clientCertificate,
                                     clientKeyPath: pki.clientKey))
        #expect(try await send(mtls, HTTPRequest(url: server.baseURL + "/echo")).get().status == 200)
    }

    @Test("mutual TLS: no client certificate fails, with a client-certificate fix")
    func clientCertificateMissing() async throws {
        let pki = try await TestPKI.get()
        let server = try await tlsServer(pki, requireClientCertificate: true)
        defer { server.stop() }
        let error = try #require(try await send(client(TLSOptions(caBundlePath: pki.serverCA)),
                                            HTTPRequest(url: server.baseURL + "/echo")).failure)
        // TLS 1.3 refuses after the client's half of the handshake: curl sees the alert, or, when the
        // server's reset wins the race, a failed send or receive. Every form points at the certificate.
        #expect([.tls, .send, .receive].contains(error.kind))
        #expect(error.fix.contains("client certificate"))
    }

    @Test("mutual TLS: a client certificate from a CA the server does not trust fails, with a fix naming it")
    func clientCertificateUntrusted() async throws {
        let pki = try await TestPKI.get()
        let server = try await tlsServer(pki, requireClientCertificate: true)
        defer { server.stop() }
        let stranger = client(TLSOptions(caBundlePath: pki.serverCA, clientCertificatePath: pki.strangerCertificate,
                                         clientKeyPath: pki.strangerKey))
        let error = try #require(try await send(stranger, HTTPRequest(url: server.baseURL + "/echo")).failure)
        #expect([.tls, .send, .receive].contains(error.kind))
        #expect(error.fix.contains("client certificate"))
    }

    @Test("an unreadable client certificate or a key that does not match it is a configuration error")
    func clientCertificateFiles() async throws {
        let pki = try await TestPKI.get()
        let server = try await tlsServer(pki, requireClientCertificate: true)
        defer { server.stop() }
        let missing = client(TLSOptions(caBundlePath: pki.serverCA, clientCertificatePath: pki.directory + "/none.pem",
                                        clientKeyPath: pki.clientKey))
        let missingError = try #require(try await send(missing, HTTPRequest(url: server.baseURL + "/echo")).failure)
        #expect(missingError.kind == .configuration)
        #expect(missingError.fix.contains("tls.clientCertificate"))
        let mismatched = client(TLSOptions(caBundlePath: pki.serverCA, clientCertificatePath: pki.clientCertificate,
                                           clientKeyPath: pki.strangerKey))
        let mismatchError = try #require(try await send(mismatched, HTTPRequest(url: server.baseURL + "/echo")).failure)
        #expect(mismatchError.kind == .configuration)
    }

    @Test("plain HTTP to a TLS port and HTTPS to a plain port fail without hanging")
    func schemeMismatch() async throws {
        let pki = try await TestPKI.get()
        let tls = try await tlsServer(pki)
        defer { tls.stop() }
        let plain = try await TestHTTPServer.start()
        defer { plain.stop() }
        let quick = HTTPClient(tls: TLSOptions(caBundlePath: pki.serverCA), requestTimeout: .seconds(10), userAgent: "vitalgate-tests/1")
        let httpsToPlain = try #require(try await send(quick, HTTPRequest(url: "https://127.0.0.1:\(plain.port)/echo")).failure)
        #expect(httpsToPlain.kind == .tls)
        // The TLS server answers an HTTP request with a TLS alert or by closing: not a response.
        let plainToTLS = try await send(quick, HTTPRequest(url: "http://127.0.0.1:\(tls.port)/echo"))
        #expect(plainToTLS.failure != nil)
    }
}
