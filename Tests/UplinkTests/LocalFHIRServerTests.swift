import Foundation
import Testing
import VitalGateTestKit
import VitalModel
#if canImport(Glibc)
import Glibc
#endif

/// Smoke tests of the test infrastructure itself: the real FHIR server and the fault proxy, started on
/// 127.0.0.1 and stopped by PID.
@Suite("Local FHIR server and fault proxy")
struct LocalFHIRServerTests {
    static let system = "urn:vitalgate:test:patient"

    /// A transaction of `count` Observations for the patient, each created only if its identifier is new.
    static func transaction(patientValue: String, run: String, count: Int) -> JSONValue {
        let entries: [JSONValue] = (0..<count).map { index in
            let identifier = "urn:vitalgate:test:\(run):\(index)"
            return [
                "fullUrl": .string("urn:uuid:\(UUID().uuidString.lowercased())"),
                "resource": [
                    "resourceType": "Observation",
                    "status": "final",
                    "identifier": [["system": "urn:ietf:rfc:3986", "value": .string(identifier)]],
                    "code": ["coding": [["system": "http://loinc.org", "code": "8867-4"]]],
                    "subject": ["reference": .string("Patient?" + LoopbackHTTP.identifierQuery(
                        system: system, value: patientValue))],
                    "effectiveDateTime": "2026-01-02T03:04:05Z",
                    "valueQuantity": ["value": .int(60 + index), "unit": "/min",
                                      "system": "http://unitsofmeasure.org", "code": "/min"],
                ],
                "request": ["method": "POST", "url": "Observation",
                            "ifNoneExist": .string("identifier=urn:ietf:rfc:3986|" + identifier)],
            ]
        }
        return ["resourceType": "Bundle", "type": "transaction", "entry": .array(entries)]
    }

    static func entryStatuses(_ reply: LoopbackReply) -> [String] {
        guard case .array(let entries)? = reply.body["entry"] else { return [] }
        return entries.compactMap { entry in
            if case .string(let status)? = entry["response"]?["status"] { status } else { nil }
        }
    }

    static func processExists(_ pid: Int32) -> Bool {
        kill(pid, 0) == 0
    }

    @Test("a transaction through a 503-then-forward proxy lands once; searches count it")
    func transactionThroughProxy() async throws {
        let (serverPID, proxyPID) = try await onDedicatedThread { () throws -> (Int32, Int32) in
            let server = try LocalFHIRServer.start()
            #expect(server.baseURL.hasPrefix("http://127.0.0.1:"))
            #expect(server.baseURL == "http://127.0.0.1:\(server.port)/fhir")
            #expect(try server.get("metadata").status == 200)

            let patientValue = "smoke-\(UUID().uuidString)"
            let patientID = try server.createPatient(system: Self.system, value: patientValue)
            #expect(try server.createPatient(system: Self.system, value: patientValue) == patientID)
            let patientQuery = "Patient?" + LoopbackHTTP.identifierQuery(system: Self.system, value: patientValue)
            #expect(try server.searchCount(patientQuery) == 1)

            let proxy = try FaultProxy.start(upstream: server.baseURL,
                                             plan: .init(seed: 1, sequence: [.status(503)], method: "POST", path: "/fhir"))
            #expect(proxy.baseURL == "http://127.0.0.1:\(proxy.port)/fhir")
            let bundle = Array(Self.transaction(patientValue: patientValue, run: UUID().uuidString, count: 3)
                .serialized().utf8)

            let refused = try LoopbackHTTP.send(method: "POST", base: proxy.baseURL, body: bundle)
            #expect(refused.status == 503)
            #expect(refused.body["resourceType"] == "OperationOutcome")
            #expect(try server.searchCount("Observation?subject=Patient/\(patientID)") == 0)

            let accepted = try LoopbackHTTP.send(method: "POST", base: proxy.baseURL, body: bundle)
            #expect(accepted.status == 200)
            #expect(Self.entryStatuses(accepted) == Array(repeating: "201 Created", count: 3))
            let replayed = try LoopbackHTTP.send(method: "POST", base: proxy.baseURL, body: bundle)
            #expect(Self.entryStatuses(replayed) == Array(repeating: "200 OK", count: 3))

            #expect(try server.searchCount("Observation?subject=Patient/\(patientID)") == 3)
            let found = try server.searchAll("Observation?subject=Patient/\(patientID)&_count=2")
            #expect(found.count == 3)
            #expect(Set(found.compactMap { $0["id"] }).count == 3)

            let stats = try proxy.stats()
            #expect(stats["fault.status:503"] == 1)
            #expect(stats["matched"] == 3)
            #expect(stats["forwarded"] == 2)
            #expect(try proxy.decisions() == ["status:503", "forward", "forward"])

            let (serverPID, proxyPID) = (server.pid, proxy.pid)
            let final = proxy.stop()
            #expect(final?["forwarded"] == 2)
            server.stop()
            #expect(!server.isRunning)
            return (serverPID, proxyPID)
        }
        #expect(!Self.processExists(serverPID))
        #expect(!Self.processExists(proxyPID))
    }

    @Test("a poisoned reading is refused with an OperationOutcome naming its entry")
    func poisonMarker() async throws {
        try await onDedicatedThread {
            let server = try LocalFHIRServer.start()
            defer { server.stop() }
            let patientValue = "poison-\(UUID().uuidString)"
            try server.createPatient(system: Self.system, value: patientValue)
            let run = UUID().uuidString
            var plan = FaultProxy.Plan()
            plan.poisonMarkers = ["urn:vitalgate:test:\(run):1"]
            let proxy = try FaultProxy.start(upstream: server.baseURL, plan: plan)
            defer { proxy.stop() }
            let bundle = Self.transaction(patientValue: patientValue, run: run, count: 3)
            let reply = try LoopbackHTTP.send(method: "POST", base: proxy.baseURL, body: Array(bundle.serialized().utf8))
            #expect(reply.status == 422)
            guard case .array(let issues)? = reply.body["issue"], let issue = issues.first else {
                Issue.record("no OperationOutcome issue in \(reply.body.serialized())")
                return
            }
            #expect(issue["code"] == "processing")
            #expect(issue["expression"] == ["Bundle.entry[1]"])
            #expect(try proxy.stats()["forwarded"] == 0)
        }
    }

    @Test("a bad option fails start-up with the server's own explanation")
    func badOptionExplains() async throws {
        let error = try await onDedicatedThread { () -> TestProcessError? in
            var options = LocalFHIRServer.Options()
            options.auth = [.smart]
            options.smartClients = [.init(id: "ghost", publicKeyPath: "/nonexistent/key.pem")]
            do throws(TestProcessError) {
                let server = try LocalFHIRServer.start(options)
                server.stop()
                return nil
            } catch {
                return error
            }
        }
        #expect(error?.description.contains("public key file /nonexistent/key.pem does not exist") == true)
    }

    @Test("a server with static bearer tokens refuses requests without one")
    func bearerAuth() async throws {
        try await onDedicatedThread {
            var options = LocalFHIRServer.Options()
            options.auth = [.bearer]
            options.bearerTokens = ["smoke-token-\(UUID().uuidString)"]
            let server = try LocalFHIRServer.start(options)
            defer { server.stop() }
            #expect(try server.searchCount("Patient") == 0)
            let anonymous = try LoopbackHTTP.send(base: server.baseURL, "Patient")
            #expect(anonymous.status == 401)
            #expect(anonymous.headers["www-authenticate"]?.hasPrefix("Bearer") == true)
        }
    }
}
