import FHIRExport
import Foundation
import Outbox
import Testing
import Uplink
import VitalGateTestKit
import VitalModel

/// Delivery through the fault-injecting proxy: every kind of failure a real network and server produce, and
/// the end state on the server is still exactly one Observation per reading.
@Suite("delivery through a faulty network", .serialized)
struct FaultDeliveryTests {
    static let token = "vitalgate-test-token-7f3a"

    @Test("every fault is survived: nothing lost, nothing duplicated, the one poisoned reading dead-lettered alone")
    func survivesFaults() throws {
        var options = LocalFHIRServer.Options()
        options.auth = [.bearer]
        options.bearerTokens = [Self.token]
        let server = try LocalFHIRServer.start(options)
        defer { server.stop() }
        let patientID = try server.createPatient(system: citizen.system, value: citizen.value)

        let device = uniqueDevice()
        let readings = (0..<30).map { bloodPressure($0, device: device) }
        // The poisoned reading is recognised by its own effective time, which only its Observation carries.
        let poisoned = 17
        let marker = "2025-03-01T08:17:00"

        var plan = FaultProxy.Plan(seed: 20_261_121, sequence: [
            .status(500), .status(503, retryAfter: 1), .status(429, retryAfter: 1), .timeout, .reset, .truncate,
            .garbage200, .garbage502, .resetAfterForward, .status(401),
        ], method: "POST")
        plan.probabilities = [(.status(503), 0.1), (.reset, 0.05), (.truncate, 0.05), (.garbage200, 0.03)]
        plan.poisonMarkers = [marker]
        plan.expireEachTokenOnce = true
        plan.timeoutCapSeconds = 10
        let proxy = try FaultProxy.start(upstream: server.baseURL, plan: plan)
        defer { _ = proxy.stop() }

        let tokenFile = FileManager.default.temporaryDirectory.appendingPathComponent("vitalgate-token-\(UUID().uuidString)")
        try Self.token.write(to: tokenFile, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: tokenFile.path)
        defer { try? FileManager.default.removeItem(at: tokenFile) }

        let (outbox, directory) = try temporaryOutbox()
        defer { try? FileManager.default.removeItem(at: directory) }
        let ids = try outbox.ingest(readings.map { IncomingReading(reading: $0, subject: citizen) }).map { outcome -> Int64 in
            guard case .stored(let id) = outcome else { return -1 }
            return id.rawValue
        }
        let summary = try drain(outbox, deliverer(proxy.baseURL, batchSize: 5, auth: .bearerTokenFile(path: tokenFile.path),
                                                  requestTimeout: .seconds(2)))

        // The server holds each reading but the poisoned one exactly once.
        let copies = try observationCopies(server, patientID: patientID, device: device)
        #expect(copies.count == 29, "\(copies.count) readings on the server")
        #expect(copies.values.allSatisfy { $0 == 1 }, "duplicates: \(copies.filter { $0.value > 1 })")
        #expect(Array(summary.rejected.keys) == [ids[poisoned]], "\(summary.rejected)")
        #expect(summary.rejected[ids[poisoned]]?.hasPrefix("HTTP 422") == true)
        let queue = try outbox.summary()
        #expect(queue.counts[.delivered] == 29 && queue.counts[.dead] == 1 && (queue.counts[.pending] ?? 0) == 0)
        #expect(queue.deadLetters.first?.httpStatus == 422)

        // Every fault of the plan was really injected.
        let stats = try proxy.stats()
        for fault in ["status:500", "status:503", "status:429", "timeout", "reset", "truncate", "garbage-200", "garbage-502",
                      "reset-after-forward", "status:401", "poison", "expired-token"] {
            let injected = stats.filter { $0.key.hasPrefix("fault.") && $0.key.contains(fault) }.values.reduce(0, +)
            #expect(injected >= 1, "\(fault) was never injected: \(stats)")
        }
        #expect(summary.retried > 0)
    }
}

/// Each way of authenticating against the real server's own token endpoint and bearer check.
@Suite("authentication against the real FHIR server", .serialized)
struct AuthenticationEndToEndTests {
    static let directory: URL = {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("vitalgate-auth-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }()

    static func openssl(_ arguments: [String]) throws {
        let result = try ProcessRunner.run("/usr/bin/openssl", arguments)
        guard result.status == 0 else { throw TestProcessError("openssl \(arguments.joined(separator: " ")) failed: \(result.standardError)") }
    }

    /// Keys made with the openssl command line, the server told their public halves.
    static let server: Result<(LocalFHIRServer, patientID: String), any Error> = Result {
        let ec = directory.appendingPathComponent("es384.pem").path, rsa = directory.appendingPathComponent("rs384.pem").path
        try openssl(["ecparam", "-name", "secp384r1", "-genkey", "-noout", "-out", ec])
        try openssl(["ec", "-in", ec, "-pubout", "-out", ec + ".pub"])
        try openssl(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", rsa])
        try openssl(["pkey", "-in", rsa, "-pubout", "-out", rsa + ".pub"])
        try "s3cret-for-tests".write(toFile: directory.appendingPathComponent("secret").path, atomically: true, encoding: .utf8)
        try "static-bearer-for-tests".write(toFile: directory.appendingPathComponent("token").path, atomically: true, encoding: .utf8)
        for name in ["secret", "token"] {   // secrets must be the service user's alone
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: directory.appendingPathComponent(name).path)
        }
        var options = LocalFHIRServer.Options()
        options.auth = [.bearer, .smart]
        options.bearerTokens = ["static-bearer-for-tests"]
        options.smartClients = [.init(id: "hub-es384", publicKeyPath: ec + ".pub"), .init(id: "hub-rs384", publicKeyPath: rsa + ".pub")]
        options.clientSecrets = ["hub-secret": "s3cret-for-tests"]
        options.tokenLifetimeSeconds = 300
        let server = try LocalFHIRServer.start(options)
        return (server, try server.createPatient(system: citizen.system, value: citizen.value))
    }

    static var methods: [(String, AuthMethod)] {
        let path = directory.path
        // sekmet checks a transaction POSTed to the base against `*`, so it needs `system/*.c` besides the reads.
        let scope = "system/*.c system/Patient.rs system/Device.rs system/Observation.rs"
        return [
            ("bearer token file", .bearerTokenFile(path: path + "/token")),
            ("OAuth2 client credentials", .clientCredentials(ClientCredentials(clientID: "hub-secret", secretFile: path + "/secret", scope: scope))),
            ("SMART ES384", .smartBackendServices(SMARTBackendServices(clientID: "hub-es384", privateKeyFile: path + "/es384.pem",
                                                                      algorithm: .es384, scope: scope))),
            ("SMART RS384", .smartBackendServices(SMARTBackendServices(clientID: "hub-rs384", privateKeyFile: path + "/rs384.pem",
                                                                      algorithm: .rs384, scope: scope))),
        ]
    }

    @Test("readings are delivered with each authentication method", arguments: 0..<4)
    func delivers(index: Int) throws {
        let (server, patientID) = try Self.server.get()
        let (name, method) = Self.methods[index]
        let device = uniqueDevice()
        let (outbox, directory) = try temporaryOutbox()
        defer { try? FileManager.default.removeItem(at: directory) }
        _ = try outbox.ingest((0..<3).map { IncomingReading(reading: bloodPressure($0, device: device), subject: citizen) })
        let summary = try drain(outbox, deliverer(server.baseURL, subject: .resolved, auth: method), maximumRounds: 3)
        #expect(summary.created == 3, "\(name): \(summary)")
        #expect(try observationCopies(server, patientID: patientID, device: device).count == 3, "\(name)")
    }

    @Test("a wrong secret is a retry with a fix, never a dead letter")
    func wrongCredentialsRetry() throws {
        let (server, _) = try Self.server.get()
        let wrong = Self.directory.appendingPathComponent("wrong-secret").path
        try "not-the-secret".write(toFile: wrong, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: wrong)
        let (outbox, directory) = try temporaryOutbox()
        defer { try? FileManager.default.removeItem(at: directory) }
        _ = try outbox.ingest([IncomingReading(reading: bloodPressure(1, device: uniqueDevice()), subject: citizen)])
        let summary = try drain(outbox, deliverer(server.baseURL, auth: .clientCredentials(
            ClientCredentials(clientID: "hub-secret", secretFile: wrong))), maximumRounds: 2, expectDrained: false)
        #expect(summary.rejected.isEmpty && summary.retried == 2)
        #expect(summary.retryReasons.allSatisfy { $0.contains("Fix:") && !$0.contains("not-the-secret") }, "\(summary.retryReasons)")
        #expect(try outbox.summary().counts[.pending] == 1)
    }
}
