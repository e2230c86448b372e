import Foundation
import Testing
import VitalGateTestKit
import VitalModel
@testable import Uplink

/// The pure parts of delivery: how statuses are classed, how replies are read, how long to wait.
@Suite("delivery logic")
struct DeliveryLogicTests {
    /// ARCHITECTURE §7.3 and style-and-reliability.md B7.4: network-like failures retry forever, a 4xx isolates
    /// and dead-letters the reading, credentials and redirects are configuration problems that retry.
    @Test("statuses are classed as the delivery guarantees say", arguments: [
        (200, "success"), (201, "success"), (204, "success"),
        (408, "transient"), (429, "transient"), (500, "transient"), (502, "transient"), (503, "transient"), (504, "transient"),
        (401, "authorization"), (403, "authorization"), (407, "authorization"),
        (301, "redirect"), (307, "redirect"),
        (400, "rejected"), (404, "rejected"), (409, "rejected"), (412, "rejected"), (413, "rejected"), (422, "rejected"),
        (99, "transient"), (600, "transient"),
    ])
    func statusClasses(status: Int, expected: String) {
        #expect("\(StatusClass(status))" == expected)
    }

    @Test("a transaction-response is read entry by entry; anything else is not one")
    func entryResponses() throws {
        let reply = #"{"resourceType":"Bundle","type":"transaction-response","entry":[{"response":{"status":"201 Created","location":"Device/1/_history/1"}},{"response":{"status":"200 OK","location":"http://h/fhir/Observation/9/_history/1"}},{"response":{"status":"422","outcome":{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"processing","diagnostics":"bad value"}]}}}]}"#
        let entries = try #require(ServerReply.entryResponses(Array(reply.utf8)))
        #expect(entries.map(\.status) == [201, 200, 422])
        #expect(entries[1].location == "http://h/fhir/Observation/9/_history/1")
        #expect(entries[2].outcome.flatMap(ServerReply.issueText) == "bad value")

        for hostile in ["", "<html>502 Bad Gateway</html>", "{}", #"{"resourceType":"Bundle","type":"searchset","entry":[]}"#,
                        #"{"resourceType":"Bundle","type":"transaction-response","entry":[{"response":{"status":"OK"}}]}"#,
                        #"{"resourceType":"Bundle","type":"transaction-response","entry":[{"response":{}}]}"#,
                        #"{"resourceType":"Bundle","type":"transaction-response","entry":"#] {
            #expect(ServerReply.entryResponses(Array(hostile.utf8)) == nil, "accepted: \(hostile)")
        }
    }

    @Test("reasons come from OperationOutcome diagnostics, and say what the body was otherwise")
    func reasons() {
        let outcome = #"{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"invalid","diagnostics":"one"},{"severity":"error","code":"value","details":{"text":"two"}},{"severity":"error","code":"required"}]}"#
        #expect(ServerReply.reason(status: 422, body: Array(outcome.utf8)) == "HTTP 422: one; two; issue code required")
        #expect(ServerReply.reason(status: 502, body: Array("<html/>".utf8)) == "HTTP 502 with a body that is not JSON")
        #expect(ServerReply.reason(status: 500, body: []) == "HTTP 500 with an empty body")
        #expect(ServerReply.reason(status: 400, body: Array(#"{"resourceType":"Patient"}"#.utf8))
                == "HTTP 400 with a Patient, not an OperationOutcome")
        let huge = #"{"resourceType":"OperationOutcome","issue":[{"code":"x","diagnostics":""# + String(repeating: "a", count: 5000) + #""}]}"#
        #expect(ServerReply.reason(status: 400, body: Array(huge.utf8)).count < 520)
        #expect(ServerReply.keptBody(Array(repeating: UInt8(ascii: "b"), count: 10_000))!.count <= 8193)
    }

    @Test("status lines and locations", arguments: [
        ("201 Created", 201), ("200", 200), (" 412 Precondition Failed", 412), ("OK", nil), ("20", nil), ("999 x", nil),
    ] as [(String, Int?)])
    func statusLines(text: String, expected: Int?) {
        #expect(ServerReply.leadingStatusCode(text) == expected)
    }

    @Test("a location names the resource by type and id")
    func locations() {
        #expect(ServerReply.reference(fromLocation: "http://h/fhir/Device/abc/_history/1", resourceType: "Device") == "Device/abc")
        #expect(ServerReply.reference(fromLocation: "Observation/7", resourceType: "Observation") == "Observation/7")
        #expect(ServerReply.reference(fromLocation: "http://h/fhir/Device", resourceType: "Device") == nil)
    }

    @Test("backoff doubles from the initial delay, stays in the upper half of its step, and is capped")
    func backoff() {
        let policy = Backoff(initial: .seconds(1), maximum: .seconds(60))
        var generator = SeededGenerator(seed: 42)
        for failures in 1...40 {
            let ceiling = min(1000 * (1 << min(failures - 1, 20)), 60_000)
            for _ in 0..<20 {
                let delay = policy.delay(afterFailures: failures, retryAfter: nil, using: &generator).wholeMilliseconds
                #expect(delay >= Int64(ceiling / 2) && delay <= Int64(ceiling), "failure \(failures): \(delay) ms")
            }
        }
    }

    @Test("a server's Retry-After is honoured, between the initial delay and the configured ceiling")
    func honoursRetryAfter() {
        let policy = Backoff(initial: .seconds(1), maximum: .seconds(60), maximumRetryAfter: .seconds(600))
        var generator = SeededGenerator(seed: 1)
        #expect(policy.delay(afterFailures: 1, retryAfter: .seconds(120), using: &generator) == .seconds(120))
        #expect(policy.delay(afterFailures: 9, retryAfter: .seconds(7200), using: &generator) == .seconds(600))
        // `Retry-After: 0`, or a date already past on a hub whose clock is not set yet: no tight loop.
        #expect(policy.delay(afterFailures: 1, retryAfter: .zero, using: &generator) == .seconds(1))
    }

    /// The one place that decides what an answer means for the readings (ARCHITECTURE §7.3).
    @Test("verdicts: only the FHIR server's OperationOutcome condemns a reading", arguments: [
        (201, "", "accepted"), (503, "<html/>", "unavailable"), (429, "", "unavailable"), (401, "", "unavailable"),
        (302, "", "unavailable"), (404, "<html>Not Found</html>", "unavailable"), (405, "", "unavailable"),
        (404, #"{"resourceType":"OperationOutcome","issue":[{"code":"not-found","diagnostics":"no match"}]}"#, "refused"),
        (422, #"{"resourceType":"OperationOutcome","issue":[{"code":"processing"}]}"#, "refused"),
        (413, "<html>Request Entity Too Large</html>", "unexplained"), (400, "Bad Request", "unexplained"),
    ])
    func verdicts(status: Int, body: String, expected: String) {
        let verdict = Verdict(HTTPResponse(status: status, headers: [], body: Array(body.utf8)), baseURL: "https://x/fhir")
        let name = switch verdict {
        case .accepted: "accepted"
        case .unavailable: "unavailable"
        case .refused: "refused"
        case .unexplained: "unexplained"
        }
        #expect(name == expected)
    }

    @Test("references to entries of the same reading are rewritten to the server's ids, nothing else")
    func rewriting() throws {
        let resource: JSONValue = ["resourceType": "Observation", "device": ["reference": "urn:uuid:a"],
                                   "extension": [["url": "x", "valueReference": ["reference": "urn:uuid:g"]]],
                                   "subject": ["reference": "Patient/1"], "note": [["text": "urn:uuid:a"]]]
        let rewritten = Session.rewritingReferences(resource, ["urn:uuid:a": "Device/5", "urn:uuid:g": "Device/6"])
        #expect(rewritten["device"]?["reference"] == "Device/5")
        #expect(rewritten.serialized().contains(#""valueReference":{"reference":"Device/6"}"#))
        #expect(rewritten["subject"]?["reference"] == "Patient/1")
        #expect(rewritten.serialized().contains(#""text":"urn:uuid:a""#))
    }

    @Test("a search-set Bundle yields its Patient matches only")
    func patientSearch() {
        let body = #"{"resourceType":"Bundle","type":"searchset","entry":[{"resource":{"resourceType":"Patient","id":"p1"},"search":{"mode":"match"}},{"resource":{"resourceType":"Organization","id":"o"},"search":{"mode":"include"}}]}"#
        #expect(PatientResolver.ids(inSearchSet: Array(body.utf8)) == ["p1"])
        #expect(PatientResolver.ids(inSearchSet: Array(#"{"resourceType":"Bundle","type":"searchset","total":0}"#.utf8)) == [])
        #expect(PatientResolver.ids(inSearchSet: Array("nope".utf8)) == nil)
    }
}
