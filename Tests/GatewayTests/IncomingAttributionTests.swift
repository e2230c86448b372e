import Assignment
import Foundation
import Outbox
import Testing
import VitalModel
@testable import Gateway

/// The one place device readings get their citizen before they are stored (`AssignmentRules.incoming`).
@Suite("attribution of incoming readings")
struct IncomingAttributionTests {
    static let visited = PatientIdentifier(system: IdentifierSystems.vietnam.citizenID, value: "099085000009")

    /// A streamed heart rate from a kit strap, measured now: a visit's citizen's when the visit can be read.
    static func reading() -> Reading {
        Reading(kind: .heartRate, values: [MeasuredValue(.heartRate, .number(DecimalValue(mantissa: 71, exponent: 0)), .perMinute)],
                receivedAt: .now(), device: DeviceIdentity(bluetoothAddress: EUI48("02:00:00:00:00:0A")!),
                source: ReadingSource(profileID: "bluetooth-sig/heart-rate", frame: "2A37"), raw: [0, 71])
    }

    @Test("an open visit this version cannot read back: readings are stored and held, given to nobody")
    func unreadableOpenVisit() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("vitalgate-incoming-\(UUID().uuidString).db").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let outbox = try Outbox(path: path)
        _ = try outbox.startVisit(patient: Self.visited, performer: nil, actor: "chw")
        let rules = AssignmentRules(household: Household())

        let readable = try rules.incoming([Self.reading()], outbox: outbox)
        #expect(readable.map(\.subject) == [Self.visited])

        // As another version might leave it: the citizen's value in a form this version does not read as text.
        try SQLiteDatabase(path: path).execute("UPDATE visits SET patient_value = x'00' WHERE ended_at IS NULL")
        #expect(throws: OutboxError.self) { try outbox.openVisit() }
        let held = try rules.incoming([Self.reading()], outbox: outbox)
        #expect(held.map(\.subject) == [nil])
        #expect(held.first?.attribution.rule == .unassigned)
        #expect(held.first?.attribution.reason?.contains("a visit is open that this VitalGate version cannot read back") == true)
        _ = try outbox.ingest(held)
        #expect(try outbox.readings(in: .unassigned, limit: 10).count == 1)
    }
}
