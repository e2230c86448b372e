import Foundation
import Testing
@testable import Uplink

/// The libcurl client against a real local HTTP server: what goes on the wire, what comes back, and
/// how each failure is reported.
@Suite("HTTP client")
struct HTTPClientTests {
    let client = HTTPClient(userAgent: "vitalgate-tests/1")

    /// The JSON the server's /echo route returns.
    private func echo(_ response: HTTPResponse) throws -> (method: String, path: String, headers: [String: String], body: String) {
        let json = try #require(try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any])
        var headers: [String: String] = [:]
        for pair in json["headers"] as? [[String]] ?? [] where pair.count == 2 { headers[pair[0]] = pair[1] }
        return (json["method"] as? String ?? "", json["path"] as? String ?? "", headers, json["body"] as? String ?? "")
    }

    @Test("a POST sends the caller's headers and body, User-Agent, and no Expect: 100-continue")
    func postRoundTrip() async throws {
        let server = try await TestHTTPServer.start()
        defer { server.stop() }
        // Larger than curl's 1 KiB threshold for adding Expect: 100-continue on its own.
        let body = Array(String(repeating: "{\"resourceType\":\"Bundle\"}", count: 200).utf8)
        let request = HTTPRequest(method: "POST", url: server.baseURL + "/echo",
                                  headers: [("Content-Type", "application/fhir+json"), ("Accept", "application/fhir+json")],
                                  body: body)
        let response = try await send(client, request).get()
        #expect(response.status == 200)
        #expect(response.header("Content-Type") == "application/json")
        #expect(response.headers.allSatisfy { $0.name == $0.name.lowercased() })
        let seen = try echo(response)
        #expect(seen.method == "POST")
        #expect(seen.body == String(decoding: body, as: UTF8.self))
        #expect(seen.headers["content-type"] == "application/fhir+json")
        #expect(seen.headers["accept"] == "application/fhir+json")
        #expect(seen.headers["user-agent"] == "vitalgate-tests/1")
        #expect(seen.headers["expect"] == nil)
        #expect(seen.headers["content-length"] == String(body.count))
    }

    @Test("GET, HEAD, PUT with a body, DELETE without one, and POST without a body")
    func methods() async throws {
        let server = try await TestHTTPServer.start()
        defer { server.stop() }
        let url = server.baseURL + "/echo"
        let get = try echo(try await send(client, HTTPRequest(url: url)).get())
        #expect(get.method == "GET" && get.body.isEmpty)
        let head = try await send(client, HTTPRequest(method: "HEAD", url: url)).get()
        #expect(head.status == 200 && head.body.isEmpty)
        let put = try echo(try await send(client, HTTPRequest(method: "PUT", url: url, body: Array("abc".utf8))).get())
        #expect(put.method == "PUT" && put.body == "abc")
        let delete = try echo(try await send(client, HTTPRequest(method: "DELETE", url: url)).get())
        #expect(delete.method == "DELETE" && delete.body.isEmpty)
        let emptyPost = try echo(try await send(client, HTTPRequest(method: "POST", url: url)).get())
        #expect(emptyPost.method == "POST" && emptyPost.body.isEmpty && emptyPost.headers["content-length"] == "0")
    }

    @Test("one connection carries many requests (the easy handle is reused)")
    func connectionReuse() async throws {
        let server = try await TestHTTPServer.start()
        defer { server.stop() }
        for index in 0..<5 {
            let response = try await send(client, HTTPRequest(method: "POST", url: server.baseURL + "/echo",
                                                              body: Array("request \(index)".utf8))).get()
            #expect(response.status == 200)
        }
        let stats = try await server.stats(using: client)
        #expect(stats["connections"] as? Int == 1)
    }

    @Test("error statuses are responses, with their headers; redirects are not followed")
    func statusesAndRedirects() async throws {
        let server = try await TestHTTPServer.start()
        defer { server.stop() }
        let unavailable = try await send(client, HTTPRequest(url: server.baseURL + "/status/503?header=Retry-After:120")).get()
        #expect(unavailable.status == 503)
        #expect(unavailable.header("Retry-After") == "120")
        #expect(unavailable.header("retry-after").flatMap { retryAfter($0, now: Date()) } == .seconds(120))
        let unauthorized = try await send(client, HTTPRequest(
            url: server.baseURL + "/status/401?header=WWW-Authenticate:Bearer%20error%3D%22invalid_token%22")).get()
        #expect(unauthorized.status == 401)
        #expect(unauthorized.headerValues("www-authenticate") == ["Bearer error=\"invalid_token\""])
        let redirect = try await send(client, HTTPRequest(method: "POST", url: server.baseURL + "/status/307?header=Location:/echo",
                                                          body: Array("x".utf8))).get()
        #expect(redirect.status == 307)
        #expect(redirect.header("location") == "/echo")
    }

    @Test("a body over the limit stops the transfer with responseTooLarge; the limit itself is fine")
    func responseCap() async throws {
        let server = try await TestHTTPServer.start()
        defer { server.stop() }
        let capped = HTTPClient(maximumResponseBytes: 100_000, userAgent: "vitalgate-tests/1")
        let exact = try await send(capped, HTTPRequest(url: server.baseURL + "/bytes/100000")).get()
        #expect(exact.body.count == 100_000)
        let error = try #require(try await send(capped, HTTPRequest(url: server.baseURL + "/bytes/100001")).failure)
        #expect(error.kind == .responseTooLarge)
        #expect(error.url == server.baseURL + "/bytes/100001")
        // The handle recovers: the next request works.
        #expect(try await send(capped, HTTPRequest(url: server.baseURL + "/bytes/10")).get().body.count == 10)
    }

    @Test("a server slower than the request timeout gives a timeout error")
    func requestTimeout() async throws {
        let server = try await TestHTTPServer.start()
        defer { server.stop() }
        let impatient = HTTPClient(requestTimeout: .milliseconds(500), userAgent: "vitalgate-tests/1")
        let error = try #require(try await send(impatient, HTTPRequest(url: server.baseURL + "/slow/20")).failure)
        #expect(error.kind == .timeout)
        #expect(error.curlCode == 28)
        #expect(error.description.contains("Fix:"))
    }

    @Test("a refused connection is a connect error; its description carries no query")
    func connectionRefused() async throws {
        let server = try await TestHTTPServer.start()
        let port = server.port
        try await server.stopAndWait()
        let result = try await send(client, HTTPRequest(url: "http://127.0.0.1:\(port)/Patient?identifier=PATIENT-123"))
        let error = try #require(result.failure)
        #expect(error.kind == .connect)
        #expect(error.url == "http://127.0.0.1:\(port)/Patient")
        #expect(!error.description.contains("PATIENT-123"))
        #expect(error.description.contains("Fix:"))
    }

    @Test("errors show URLs without user information, query or fragment")
    func urlRedaction() {
        #expect(redactedURL("https://hub:s3cret@fhir.example:8443/r4/Patient?identifier=x|1#top") == "https://fhir.example:8443/r4/Patient")
        #expect(redactedURL("http://fhir.example/r4?_format=json") == "http://fhir.example/r4")
        #expect(redactedURL("http://fhir.example/a@b") == "http://fhir.example/a@b")
    }

    @Test("an unresolvable host is a resolve error")
    func unresolvable() async throws {
        let error = try #require(try await send(client, HTTPRequest(url: "http://vitalgate-test.invalid/")).failure)
        #expect(error.kind == .resolve)
    }

    @Test("only http and https URLs are used", arguments: ["file:///etc/hostname", "ftp://127.0.0.1/", "gopher://127.0.0.1/", "not a url"])
    func otherSchemes(url: String) async throws {
        let error = try #require(try await send(client, HTTPRequest(url: url)).failure)
        #expect(error.kind == .configuration)
    }

    @Test("header names and values that would inject lines are refused before anything is sent")
    func headerInjection() async throws {
        let server = try await TestHTTPServer.start()
        defer { server.stop() }
        let badValue = try #require(try await send(client, HTTPRequest(url: server.baseURL + "/echo",
                                                                  headers: [("X-Test", "a\r\nInjected: yes")])).failure)
        #expect(badValue.kind == .configuration)
        #expect(badValue.curlCode == 0)
        let badName = try #require(try await send(client, HTTPRequest(url: server.baseURL + "/echo", headers: [("Bad Name", "x")])).failure)
        #expect(badName.kind == .configuration)
        let badMethod = try #require(try await send(client, HTTPRequest(method: "GET /x", url: server.baseURL + "/echo")).failure)
        #expect(badMethod.kind == .configuration)
        let stats = try await server.stats(using: client)
        #expect(stats["connections"] as? Int == 1)   // only the stats request itself
    }

    @Test("a configured proxy carries the request")
    func proxy() async throws {
        let server = try await TestHTTPServer.start()
        defer { server.stop() }
        // The scripted server answers absolute-form request targets too, so it can stand in for a proxy.
        let proxied = HTTPClient(userAgent: "vitalgate-tests/1", proxy: server.baseURL)
        let response = try await send(proxied, HTTPRequest(url: "http://fhir.example.invalid/echo")).get()
        let seen = try echo(response)
        #expect(seen.path == "http://fhir.example.invalid/echo")
        #expect(seen.headers["host"] == "fhir.example.invalid")
    }

    @Test("requests from many threads share one client safely")
    func concurrentRequests() async throws {
        let server = try await TestHTTPServer.start()
        defer { server.stop() }
        let client = self.client
        let statuses = await withTaskGroup(of: Int.self) { group in
            for index in 0..<8 {
                group.addTask {
                    (try? await send(client, HTTPRequest(method: "POST", url: server.baseURL + "/echo",
                                                         body: Array("\(index)".utf8))).get().status) ?? -1
                }
            }
            return await group.reduce(into: [Int]()) { $0.append($1) }
        }
        #expect(statuses == Array(repeating: 200, count: 8))
    }
}

extension Result {
    /// The error, or nil on success.
    var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
