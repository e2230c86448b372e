import Foundation
import Outbox
import Testing
import VitalModel
@testable import Gateway

/// `vitalgate visit`, `readings`, `assign` and `status` without a running daemon: the CLI answers them on the Outbox
/// (`--state-dir`), with the same replies the daemon gives over its control socket.
@Suite("visit, readings, assign and status commands")
struct CitizenCommandsTests {
    static let visited = "099085000009"   // a man born in 1985 (digit 4 = 0); 099: no real province
    /// A card QR payload in the chip card's 7-field layout (public descriptions of the layout), fictional person.
    static let qr = "\(visited)||Nguyen Van Thu|15031985|Nam|Thon Thu, Xa Gia|01072021"

    func directory() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("vitalgate-citizen-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        _ = try Outbox(path: path + "/outbox.db")   // as the daemon leaves it: created and at the current schema
        return path
    }

    func run(_ arguments: [String], input: String? = nil) -> CommandResult {
        var lines = input.map { [$0] } ?? []
        return CommandLineTool.run(arguments) { lines.isEmpty ? nil : lines.removeFirst() }
    }

    @Test("a visit from a scanned QR code: started, shown, refused twice, ended; the QR's name never printed")
    func visitLifecycle() throws {
        let state = try directory()
        defer { try? FileManager.default.removeItem(atPath: state) }
        let started = run(["visit", "start", "--qr", "-", "--state-dir", state], input: Self.qr + "\r")
        #expect(started.exitCode == 0, "\(started.stderr)")
        #expect(started.stdout.contains("Visit 1 started for cccd:\(Self.visited)") && !started.stdout.contains("Nguyen"))
        let again = run(["visit", "start", "--patient", "cccd:099060000001", "--state-dir", state])
        #expect(again.exitCode == 1 && again.stderr.contains("Visit 1 is still open") && again.stderr.contains("vitalgate visit end"))
        let shown = run(["visit", "--json", "--state-dir", state])
        let reply = try JSONValue.parse(shown.stdout)
        #expect(reply["open"]?["id"] == .int(1) && reply["open"]?["patient"] == .string("cccd:\(Self.visited)"))
        #expect(run(["visit", "end", "--state-dir", state]).exitCode == 0)
        let twice = run(["visit", "end", "--state-dir", state])
        #expect(twice.exitCode == 1 && twice.stderr.contains("No visit is open"))
        #expect(run(["visit", "show", "--state-dir", state]).stdout.contains("No visit is open."))
    }

    @Test("a control request with a member of the wrong type, or with members that exclude each other, is refused by name and changes nothing",
          arguments: [
            (#"{"command": "readings", "limit": "50"}"#, #""limit" must be a whole number"#),
            (#"{"command": "readings", "limit": 1.5}"#, #""limit" must be a whole number"#),
            (#"{"command": "readings", "state": 3}"#, #""state" must be a string"#),
            (#"{"command": "assign", "id": "7", "patient": "cccd:099085000009"}"#, #""id" must be a whole number"#),
            (#"{"command": "assign", "id": 7, "patient": "cccd:099085000009", "member": "ba"}"#, #"give only one of "patient", "member""#),
            (#"{"command": "visit-start", "patient": ["cccd:099085000009"]}"#, #""patient" must be a string"#),
            (#"{"command": "visit-start", "patient": "cccd:099085000009", "qr": "x"}"#, #"give only one of "qr", "patient""#),
            (#"{"command": "visit-start", "patient": "cccd:099085000009", "performer": 42}"#, #""performer" must be a string"#),
          ])
    func wrongRequestMembers(_ request: String, _ expected: String) throws {
        let state = try directory()
        defer { try? FileManager.default.removeItem(atPath: state) }
        let outbox = try Outbox(path: state + "/outbox.db")
        let reply = ControlCommands.handle(try JSONValue.parse(request),
                                           ControlContext(outbox: outbox, configuration: nil, live: nil, actor: "test"))
        #expect(reply["ok"] == false)
        guard case .string(let error)? = reply["error"] else { Issue.record("no error in \(reply)"); return }
        #expect(error.contains(expected), "\(error)")
        #expect(try outbox.visits(limit: 10).isEmpty)
    }

    @Test("bad input is a usage error or a refusal that never repeats what was typed", arguments: [
        (["visit", "start"], 2, "--patient"),
        (["visit", "start", "--patient", "cccd:09908500000"], 1, "12 digits"),
        (["visit", "start", "--patient", "cccd:999085000009"], 1, "province"),
        (["visit", "start", "--qr", "099085000009|"], 1, "fewer than the 7"),
        (["visit", "start", "--qr", "https://example.vn/099085000009"], 1, "QR"),
        (["visit", "start", "--patient", "cccd:099085000009", "--performer", "CHW-42"], 1, "SYSTEM|VALUE"),
        (["visit", "start", "--patient", "cccd:099085000009", "--performer", "http://fhir.hl7.org.vn/core/sid/cccd|09908500000"], 1,
         "12 digits"),
        (["visit", "pause"], 2, "start, end or show"),
        (["assign", "r0", "--patient", "cccd:099085000009"], 2, "reading id"),
        (["assign", "r7"], 2, "--patient CITIZEN or --member LABEL"),
        (["assign", "7", "--member", "ong"], 1, "no household member"),
        (["assign", "7", "--patient", "cccd:099085000009"], 1, "no reading 7"),
        (["readings", "--state", "lost"], 1, "not a reading state"),
        (["readings", "--limit", "-3"], 2, "positive"),
    ] as [([String], Int32, String)])
    func mistakes(arguments: [String], code: Int32, text: String) throws {
        let state = try directory()
        defer { try? FileManager.default.removeItem(atPath: state) }
        let result = run(arguments + ["--state-dir", state])
        #expect(result.exitCode == code, "\(result.stderr)")
        #expect(result.stderr.contains(text), "\(result.stderr)")
        #expect(!result.stderr.contains("09908500000") && !result.stderr.contains("999085000009"), "\(result.stderr)")
    }

    @Test("readings --unassigned shows why a reading is held; assign gives it to a citizen; status counts it")
    func heldAndAssigned() throws {
        let state = try directory()
        defer { try? FileManager.default.removeItem(atPath: state) }
        do {
            let outbox = try Outbox(path: state + "/outbox.db")
            let reading = Reading(kind: .heartRate, values: [MeasuredValue(.heartRate, .number(DecimalValue(mantissa: 71, exponent: 0)), .perMinute)],
                                  receivedAt: .now(), device: DeviceIdentity(bluetoothAddress: EUI48("02:00:00:00:00:09")!), userSlot: 255,
                                  source: ReadingSource(profileID: "bluetooth-sig/heart-rate", frame: "2A37"), raw: [0, 71])
            _ = try outbox.ingest([IncomingReading(reading: reading, subject: nil, attribution: .unassigned("the device did not know who measured"))])
        }
        let held = run(["readings", "--unassigned", "--state-dir", state])
        #expect(held.exitCode == 0 && held.stdout.contains("r1  unassigned  heart-rate  heart-rate 71 /min"), "\(held.stdout)")
        #expect(held.stdout.contains("user slot 255") && held.stdout.contains("held: the device did not know who measured"))
        let status = run(["status", "--json", "--state-dir", state])
        #expect(try JSONValue.parse(status.stdout)["queue"]?["unassigned"] == .int(1), "\(status.stdout)")
        #expect(run(["status", "--state-dir", state]).stdout.contains("Needs attention: unassigned readings are held"))
        let assigned = run(["assign", "r1", "--patient", "cccd:\(Self.visited)", "--state-dir", state])
        #expect(assigned.exitCode == 0 && assigned.stdout.contains("r1 assigned to cccd:0990******09"), "\(assigned.stdout)\(assigned.stderr)")
        let all = try JSONValue.parse(run(["readings", "--json", "--state-dir", state]).stdout)
        guard case .array(let list)? = all["readings"], let first = list.first else { Issue.record("no readings"); return }
        #expect(first["state"] == .string("pending") && first["rule"] == .string("operator") && first["reason"] == .null)
    }
}
