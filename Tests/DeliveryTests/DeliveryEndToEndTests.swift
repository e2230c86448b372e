import FHIRExport
import Foundation
import Outbox
import Testing
import Uplink
import VitalGateTestKit
import VitalModel

/// Outbox → Uplink → a real FHIR server (sekmet-fhir on 127.0.0.1), asserted through the server's own search.
@Suite("delivery to a real FHIR server", .serialized)
struct DeliveryEndToEndTests {
    @Test("each reading becomes one Observation in the citizen's record, and replaying them creates nothing",
          arguments: [(UplinkConfiguration.Mode.transaction, UplinkConfiguration.SubjectStyle.conditional),
                      (.transaction, .resolved), (.singleRequests, .resolved)])
    func deliversOnce(mode: UplinkConfiguration.Mode, subject: UplinkConfiguration.SubjectStyle) throws {
        let (server, patientID) = try SharedServers.open.get()
        let device = uniqueDevice()
        let readings = (0..<12).map { bloodPressure($0, device: device) }
        let (outbox, directory) = try temporaryOutbox()
        defer { try? FileManager.default.removeItem(at: directory) }
        _ = try outbox.ingest(readings.map { IncomingReading(reading: $0, subject: citizen) })

        let first = try drain(outbox, deliverer(server.baseURL, mode: mode, subject: subject, batchSize: 5))
        #expect(first.created == 12 && first.alreadyThere == 0 && first.rejected.isEmpty, "\(first)")
        var copies = try observationCopies(server, patientID: patientID, device: device)
        #expect(copies.count == 12)
        #expect(copies.values.allSatisfy { $0 == 1 })

        // The same readings again, as a hub that lost its state would send them, in every style: nothing new.
        for (replayMode, replaySubject) in [(UplinkConfiguration.Mode.transaction, UplinkConfiguration.SubjectStyle.conditional),
                                            (.singleRequests, .resolved)] {
            let (again, againDirectory) = try temporaryOutbox()
            defer { try? FileManager.default.removeItem(at: againDirectory) }
            _ = try again.ingest(readings.map { IncomingReading(reading: $0, subject: citizen) })
            let replay = try drain(again, deliverer(server.baseURL, mode: replayMode, subject: replaySubject, batchSize: 5))
            #expect(replay.created == 0 && replay.alreadyThere == 12, "\(replayMode) replay: \(replay)")
        }
        copies = try observationCopies(server, patientID: patientID, device: device)
        #expect(copies.count == 12 && copies.values.allSatisfy { $0 == 1 })
    }

    @Test("the Observations the server holds validate against R4 and the vital-signs profiles")
    func storedResourcesValidate() throws {
        let (server, patientID) = try SharedServers.open.get()
        let device = uniqueDevice()
        let (outbox, directory) = try temporaryOutbox()
        defer { try? FileManager.default.removeItem(at: directory) }
        _ = try outbox.ingest((0..<3).map { IncomingReading(reading: bloodPressure($0, device: device), subject: citizen) })
        _ = try drain(outbox, deliverer(server.baseURL))
        let observations = try server.searchAll("Observation?subject=Patient/\(patientID)&_count=200").filter {
            $0.serialized().contains(device.compactHex)
        }
        #expect(observations.count >= 3)
        let validator = try FHIRValidator.shared()
        for observation in observations {
            let result = try validator.validate(observation.serialized())
            #expect(result.valid, "\(result.errors)")
        }
    }

    @Test("a reading for a citizen the server does not know is isolated and dead-lettered; the batch is delivered")
    func unknownPatientIsIsolated() throws {
        let (server, patientID) = try SharedServers.open.get()
        let device = uniqueDevice()
        let stranger = PatientIdentifier(system: IdentifierSystems.vietnam.citizenID, value: "099199000777")
        let (outbox, directory) = try temporaryOutbox()
        defer { try? FileManager.default.removeItem(at: directory) }
        var incoming = (0..<9).map { IncomingReading(reading: bloodPressure($0, device: device), subject: citizen) }
        incoming.insert(IncomingReading(reading: bloodPressure(50, device: device), subject: stranger), at: 4)
        let ids = try outbox.ingest(incoming).map { outcome -> Int64 in
            if case .stored(let id) = outcome { return id.rawValue }
            Issue.record("not stored: \(outcome)")
            return -1
        }
        let summary = try drain(outbox, deliverer(server.baseURL, batchSize: 10))
        #expect(summary.created == 9)
        #expect(Array(summary.rejected.keys) == [ids[4]])
        #expect(summary.rejected[ids[4]]?.contains("HTTP 404") == true, "\(summary.rejected)")
        // A transaction of ten, halved until the one is alone: at most two requests per halving (log2 10 < 4).
        #expect(summary.requests > 1 && summary.requests <= 1 + 2 * 4)
        let queue = try outbox.summary()
        #expect(queue.counts[.dead] == 1 && queue.counts[.delivered] == 9)
        #expect(try observationCopies(server, patientID: patientID, device: device).count == 9)
    }

    /// A device whose clock did not advance gives two different readings the same device time (and another
    /// sends two under one time with different sequence numbers); the server must keep both, also when they
    /// arrive in different batches and the first is long delivered.
    @Test("readings sharing a device time each reach the server", arguments: [false, true])
    func stuckClock(differentSequence: Bool) throws {
        let (server, patientID) = try SharedServers.open.get()
        let device = uniqueDevice()
        var first = bloodPressure(7, device: device, systolic: 121)
        var second = bloodPressure(7, device: device, systolic: 135)
        second.receivedAt.instant += 90
        if differentSequence {
            first.sequenceNumber = 1
            second.sequenceNumber = 2
            second.values = first.values
        }
        let (outbox, directory) = try temporaryOutbox()
        defer { try? FileManager.default.removeItem(at: directory) }
        _ = try outbox.ingest([IncomingReading(reading: first, subject: citizen)])
        #expect(try drain(outbox, deliverer(server.baseURL)).created == 1)
        let outcome = try outbox.ingest([IncomingReading(reading: second, subject: citizen)])
        guard case .stored? = outcome.first else { Issue.record("the second reading was not stored: \(outcome)"); return }
        #expect(try drain(outbox, deliverer(server.baseURL)).created == 1)
        let copies = try observationCopies(server, patientID: patientID, device: device)
        #expect(copies.count == 2 && copies.values.allSatisfy { $0 == 1 }, "\(copies)")
    }
}
