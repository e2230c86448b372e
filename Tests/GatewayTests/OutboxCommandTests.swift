import Foundation
import Outbox
import Testing
import VitalModel
@testable import Gateway

/// `vitalgate queue` and `vitalgate dead-letters` on a real Outbox file, run in process.
@Suite("queue and dead-letter commands")
struct OutboxCommandTests {
    /// An Outbox with three readings: one delivered, one dead-lettered with the server's reason, one pending.
    func populated() throws -> (directory: String, ids: [OutboxReadingID]) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vitalgate-cli-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let outbox = try Outbox(path: directory + "/outbox.db")
        let patient = PatientIdentifier(system: IdentifierSystems.vietnam.citizenID, value: "099199000001")
        let readings = (0..<3).map { number -> Reading in
            let rate = MeasuredValue(.heartRate, .number(DecimalValue(mantissa: Int64(60 + number), exponent: 0)), .perMinute)
            let received = HubTimestamp(instant: Date(timeIntervalSince1970: 1_760_000_000 + Double(number)), utcOffsetSeconds: 25_200)
            let device = DeviceIdentity(bluetoothAddress: EUI48("02:00:00:00:00:09")!)
            let source = ReadingSource(profileID: "bluetooth-sig/heart-rate", frame: "2A37")
            return Reading(kind: .heartRate, values: [rate], receivedAt: received, device: device, source: source,
                           raw: [0x00, UInt8(60 + number)])
        }
        let ids = try outbox.ingest(readings.map { IncomingReading(reading: $0, subject: patient) }).map(\.id)
        _ = try outbox.nextBatch(limit: 3, now: Date())
        try outbox.markDelivered([DeliveryRecord(id: ids[0], status: 201, locations: ["Observation/1"])], at: Date())
        try outbox.deadLetter(ids[1], httpStatus: 422, reason: "HTTP 422: Observation.valueQuantity: unit not allowed",
                              outcome: #"{"resourceType":"OperationOutcome"}"#, at: Date())
        try outbox.scheduleRetry([ids[2]], error: "HTTP 503 with a body that is not JSON", notBefore: Date().addingTimeInterval(60))
        return (directory, ids)
    }

    @Test("the queue shows counts, the retry reason and each dead letter with the server's reason")
    func queue() throws {
        let (directory, ids) = try populated()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let text = CommandLineTool.run(["queue", "--state-dir", directory])
        #expect(text.exitCode == 0, "\(text.stderr)")
        #expect(text.stdout.contains("pending       1"))
        #expect(text.stdout.contains("delivered     1"))
        #expect(text.stdout.contains("dead letters  1"))
        #expect(text.stdout.contains("r\(ids[1].rawValue)  HTTP 422"))
        #expect(text.stdout.contains("unit not allowed"))
        #expect(text.stdout.contains("HTTP 503 with a body that is not JSON"))

        let json = CommandLineTool.run(["queue", "--json", "--state-dir", directory])
        let parsed = try JSONValue.parse(json.stdout)
        #expect(parsed["counts"]?["dead"] == .number("1"))
        #expect(parsed["counts"]?["pending"] == .number("1"))
        guard case .array(let letters)? = parsed["deadLetters"] else { Issue.record("no deadLetters"); return }
        #expect(letters.first?["httpStatus"] == .number("422"))
    }

    @Test("discarding asks for confirmation, is audited with who did it, and retry puts a dead letter back")
    func deadLetters() throws {
        let (directory, ids) = try populated()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let id = "r\(ids[1].rawValue)"
        let refused = CommandLineTool.run(["dead-letters", "discard", id, "--state-dir", directory], input: { "no" })
        #expect(refused.exitCode == 1 && refused.stderr.contains("not discarded"))

        let notDead = CommandLineTool.run(["dead-letters", "retry", "r\(ids[0].rawValue)", "--state-dir", directory])
        #expect(notDead.exitCode == 1 && notDead.stderr.contains("is delivered and cannot become pending"), "\(notDead.stderr)")

        let retried = CommandLineTool.run(["dead-letters", "retry", id, "--state-dir", directory])
        #expect(retried.exitCode == 0, "\(retried.stderr)")
        var options = OutboxOptions()
        options.role = .operator
        var outbox = try Outbox(path: directory + "/outbox.db", options: options)
        #expect(try outbox.reading(ids[1])?.state == .pending)

        _ = try outbox.nextBatch(limit: 5, now: Date().addingTimeInterval(3600))
        try outbox.deadLetter(ids[1], httpStatus: 422, reason: "again", outcome: nil, at: Date())
        var answers = ["discard"]
        let discarded = DeadLettersCommand.run(["discard", id, "--state-dir", directory], input: { answers.popLast() },
                                               actor: "nurse-lan")
        #expect(discarded.exitCode == 0, "\(discarded.stderr)")
        outbox = try Outbox(path: directory + "/outbox.db", options: options)
        #expect(try outbox.reading(ids[1])?.state == .discarded)
        let audit = try outbox.auditTrail(limit: 20)
        #expect(audit.contains { $0.event == "discarded" && $0.readingID == ids[1] && $0.actor == "nurse-lan" })
    }

    @Test("retry all puts every dead letter back in one go")
    func retryAll() throws {
        let (directory, ids) = try populated()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let result = DeadLettersCommand.run(["retry", "all", "--state-dir", directory], input: { nil }, actor: "nurse-lan")
        #expect(result.exitCode == 0 && result.stdout == "1 dead letter(s) back in the queue\n", "\(result)")
        var options = OutboxOptions()
        options.role = .operator
        #expect(try Outbox(path: directory + "/outbox.db", options: options).reading(ids[1])?.state == .pending)
    }

    @Test("bad ids and a missing outbox are usage errors that say what to do", arguments: [
        (["dead-letters", "retry", "x7"], "is not a reading id"),
        (["dead-letters", "drop", "r1"], "give `retry ID` or `discard ID`"),
        (["queue", "--state-dir", "/nonexistent/vitalgate"], "/nonexistent/vitalgate/outbox.db does not exist"),
    ])
    func usage(arguments: [String], message: String) {
        let result = CommandLineTool.run(arguments + (arguments.contains("--state-dir") ? [] : ["--state-dir", "/nonexistent"]))
        #expect(result.exitCode == 2)
        #expect(result.stderr.contains(message), "\(result.stderr)")
    }
}
