import Assignment
import Foundation
import Outbox
import ProfileCatalog
import Testing
import VitalModel
@testable import Gateway

/// The household and health-worker settings: a good file reads fully; each mistake names line and field, says how to
/// fix it, and never repeats an identifier; and editing the household never moves a reading already stored.
@Suite("household settings")
struct HouseholdSettingsTests {
    func load(_ text: String) throws(ProfileError) -> DaemonConfiguration {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("vitalgate-household-\(UUID().uuidString).json").path
        _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try DaemonConfiguration.load(path)
    }

    static func file(_ household: String, extra: String = "") -> String {
        "{\"server\": {\"baseURL\": \"https://x\"},\n \"household\": \(household)\(extra)}"
    }

    @Test("members, slot bindings, a single-user device and the health worker")
    func complete() throws {
        let configuration = try load(Self.file("""
            {"members": [{"label": "ong", "patient": "cccd:099060000001"}, {"label": "ba", "patient": "bhxh:0991234567"}],
             "devices": [{"bluetooth": "F1:0B:50:00:00:11", "slots": {"1": "ong", "2": "ba"}},
                         {"profile": "omron/hem-790it", "serialNumber": "2011", "member": "ba"},
                         {"systemID": "00-1C-05-FF-FE-00-00-01", "member": "ong"}]}
            """, extra: ", \"healthWorker\": {\"identifier\": \"urn:example:cchn|000123/HNO-CCHN\"}"))
        let household = configuration.household
        #expect(household.members.map(\.label) == ["ong", "ba"])
        #expect(household.members[1].patient == PatientIdentifier(system: IdentifierSystems.vietnam.socialInsurance, value: "0991234567"))
        #expect(household.devices[0].slots == [1: "ong", 2: "ba"] && household.devices[0].selector.bluetoothAddress == EUI48("F1:0B:50:00:00:11"))
        #expect(household.devices[1].member == "ba" && household.devices[1].selector.profile == "omron/hem-790it")
        #expect(household.devices[2].selector.systemID == EUI64("00-1C-05-FF-FE-00-00-01"))
        #expect(configuration.healthWorker == PerformerIdentifier(system: "urn:example:cchn", value: "000123/HNO-CCHN"))
    }

    @Test("mistakes name line and field, say how to fix, and never repeat an identifier", arguments: [
        (#"{"members": [{"label": "ong", "patient": "cccd:099060000011"}, {"label": "ong", "patient": "cccd:099060000012"}]}"#,
         "household.members[1].label", "own label"),
        (#"{"members": [{"label": "ong", "patient": "cccd:099060000011"}, {"label": "ba", "patient": "cccd:099060000011"}]}"#,
         "household.members[1].patient", "same person twice"),
        (#"{"members": [{"label": "ong", "patient": "cccd:98706000001"}]}"#, "household.members[0].patient", "12 digits"),
        (#"{"members": [{"label": "ong", "patient": "cccd:987060000011"}]}"#, "household.members[0].patient", "province"),
        (#"{"members": [{"label": "ong", "patient": "cccd:099960000011"}]}"#, "household.members[0].patient", "year"),
        (#"{"members": [{"label": "ong", "patient": "099060000011"}]}"#, "household.members[0].patient", "cccd:"),
        (#"{"members": [{"label": "ong", "patient": "cccd:099060000011", "name": "x"}]}"#, "household.members[0].name", "unknown member"),
        (#"{"members": [{"label": "ong", "patient": "cccd:099060000011"}], "devices": [{"member": "ong"}]}"#,
         "household.devices[0]", "names no device"),
        (#"{"members": [{"label": "ong", "patient": "cccd:099060000011"}], "devices": [{"bluetooth": "F1:0B", "member": "ong"}]}"#,
         "household.devices[0].bluetooth", "six hex bytes"),
        (#"{"members": [{"label": "ong", "patient": "cccd:099060000011"}], "devices": [{"profile": "a/b"}]}"#,
         "household.devices[0]", "neither whose"),
        (#"{"members": [{"label": "ong", "patient": "cccd:099060000011"}], "devices": [{"profile": "a/b", "member": "ong", "slots": {"1": "ong"}}]}"#,
         "household.devices[0]", "both"),
        (#"{"members": [{"label": "ong", "patient": "cccd:099060000011"}], "devices": [{"profile": "a/b", "slots": {"255": "ong"}}]}"#,
         "household.devices[0].slots.255", "unknown user"),
        (#"{"members": [{"label": "ong", "patient": "cccd:099060000011"}], "devices": [{"profile": "a/b", "slots": {"01": "ong"}}]}"#,
         "household.devices[0].slots.01", "0 to 254"),
        (#"{"members": [{"label": "ong", "patient": "cccd:099060000011"}], "devices": [{"profile": "a/b", "member": "ba"}]}"#,
         "household.devices[0].member", "label of one of the 1 entries"),
        (#"{"members": [{"label": "ong", "patient": "cccd:099060000011"}], "devices": [{"profile": "a/b", "member": "ong"}, {"profile": "a/b", "member": "ong"}]}"#,
         "household.devices[1]", "merge"),
    ])
    func mistakes(household: String, place: String, fix: String) {
        do {
            _ = try load(Self.file(household))
            Issue.record("accepted: \(household)")
        } catch {
            #expect(error.description.contains(place), "\(error)")
            #expect(error.description.contains(fix), "\(error)")
            #expect(error.location?.line == 2, "line: \(error)")
            for value in ["099060000011", "099060000012", "98706000001", "987060000011", "099960000011", "\"ong\"", "\"ba\""] {
                #expect(!error.description.contains(value), "\(error)")
            }
        }
    }

    @Test("owner and household together, and a health worker without SYSTEM|VALUE, are refused")
    func conflicts() {
        #expect(throws: ProfileError.self) {
            try load(#"{"server": {"baseURL": "https://x"}, "owner": "cccd:099060000011", "household": {"members": [{"label": "a", "patient": "cccd:099060000012"}]}}"#)
        }
        do {
            _ = try load(#"{"server": {"baseURL": "https://x"}, "healthWorker": {"identifier": "CHW-0042"}}"#)
            Issue.record("accepted a health worker without a system")
        } catch {
            #expect(error.description.contains("healthWorker.identifier") && error.description.contains("SYSTEM|VALUE"), "\(error)")
        }
    }

    @Test("editing the household never moves a stored reading, even when the device sends it again")
    func editsNeverReassign() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vitalgate-edit-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let outbox = try Outbox(path: directory + "/outbox.db")
        let ong = PatientIdentifier(system: IdentifierSystems.vietnam.citizenID, value: "099060000011")
        let ba = PatientIdentifier(system: IdentifierSystems.vietnam.citizenID, value: "099163000012")
        let cuff = EUI48("F1:0B:50:00:00:11")!
        func household(slot1: String) -> AssignmentRules {
            AssignmentRules(household: Household(members: [.init(label: "ong", patient: ong), .init(label: "ba", patient: ba)],
                                                 devices: [.init(selector: .init(bluetoothAddress: cuff), slots: [1: slot1])]))
        }
        func reading(minute: Int) -> Reading {
            Reading(kind: .bloodPressure, values: [MeasuredValue(.systolic, .number(DecimalValue(mantissa: 120, exponent: 0)), .millimetreOfMercury)],
                    deviceTime: DeviceTimestamp(time: LocalDateTime(year: 2026, month: 11, day: 1, hour: 7, minute: minute, second: 0)!),
                    receivedAt: .now(), device: DeviceIdentity(bluetoothAddress: cuff), userSlot: 1,
                    source: ReadingSource(profileID: "bluetooth-sig/blood-pressure", frame: "2A35"), raw: [1])
        }
        let before = OutboxSink(outbox: outbox, assignment: household(slot1: "ong"), counters: ReadingCounters(), onStored: {})
        try before.store([reading(minute: 1)])
        // The family corrects the binding: user 1 is grandmother's from now on.
        let after = OutboxSink(outbox: outbox, assignment: household(slot1: "ba"), counters: ReadingCounters(), onStored: {})
        try after.store([reading(minute: 1), reading(minute: 2)])   // the cuff re-sends its memory, plus a new one
        let stored = try outbox.recentReadings(limit: 10).sorted { $0.id < $1.id }
        #expect(stored.count == 2)
        #expect(stored[0].subject == ong && stored[1].subject == ba)
        #expect(after.newReadings == 1)
    }
}
