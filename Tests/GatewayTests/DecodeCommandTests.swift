import Foundation
import Testing
import VitalModel
import VitalGateTestKit
@testable import Gateway

/// The `vitalgate decode` contract: options, output shapes, exit statuses. Other tools build on it.
@Suite("vitalgate decode")
struct DecodeCommandTests {
    let bp = ["decode", "--profile", "bluetooth-sig/blood-pressure", "--characteristic", "2A35",
              "--received-at", "2025-06-01T07:35:00+07:00"]
    let hr = ["decode", "--profile", "bluetooth-sig/heart-rate", "--characteristic", "2A37",
              "--received-at", "2025-06-01T07:35:00+07:00"]

    func run(_ arguments: [String], stdin: [String] = []) -> CommandResult {
        var lines = stdin[...]
        return CommandLineTool.run(arguments) { lines.popFirst() }
    }

    func json(_ line: Substring) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
    }

    @Test("one JSON line per frame, values with the device's precision")
    func readings() throws {
        let result = run(bp + ["167C0056006100E807060F11111B33000000", "15BDF00B009FF03C001200"])
        #expect(result.exitCode == 0)
        #expect(result.stderr.isEmpty)
        let lines = result.stdout.split(separator: "\n")
        #expect(lines.count == 2)
        let first = try json(lines[0])
        #expect(first["kind"] as? String == "blood-pressure")
        #expect(first["raw"] as? String == "167C0056006100E807060F11111B33000000")
        let values = try #require(first["values"] as? [[String: Any]])
        #expect(values.map { $0["type"] as? String } == ["systolic", "diastolic", "mean-arterial-pressure", "pulse-rate"])
        // Exact text, not a Double round trip: 18.9 kPa is printed as 18.9.
        #expect(lines[1].contains(#"{"type":"systolic","value":18.9,"unit":"kPa"}"#))
        #expect(lines[1].contains(#""statusBits""#))
    }

    @Test("--fhir prints one collection Bundle that validates")
    func fhir() throws {
        for arguments in [bp + ["--fhir", "167C0056006100E807060F11111B33002700"], hr + ["--fhir", "164E1B031203", "044A"],
                          bp + ["--fhir", "--device-clock", "2025-06-01T07:34:41", "--patient", "bhxh:0990000001",
                                "02800052006100E9070601071E00"]] {
            let result = run(arguments)
            #expect(result.exitCode == 0, "\(result.stderr)")
            let bundle = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
            #expect(bundle["type"] as? String == "collection")
            let compact = try JSONSerialization.data(withJSONObject: bundle)
            let verdict = try FHIRValidator.shared().validate(String(decoding: compact, as: UTF8.self))
            #expect(verdict.valid, "\(verdict.errors)")
        }
    }

    @Test("frames from standard input with -, skipping blank lines and # comments")
    func standardInput() {
        let result = run(hr + ["-"], stdin: ["# Polar H7", "164D1603", "", "0055"])
        #expect(result.exitCode == 0)
        #expect(result.stdout.split(separator: "\n").count == 2)
    }

    @Test("bad input: exit status 2 and a message that says what and where", arguments: [
        (["zz"], "frame 1 is not hex: 'z' is not a hex digit"),
        (["167C005600610", "00"], "frame 1 is not hex: 13 hex digits is an odd count"),
        (["00BDF00B009FF0", "1E7800"], "frame 2: 2A35: diastolic at byte 3: needs 2 bytes"),
        (["00BDF00B009FF000"], "frame 1: 2A35: end of input at byte 7: 1 byte left after the last field"),
        ([String](), "give at least one HEX byte string"),
        (["--patient", "cccd:12345", "00BDF00B009FF0"], "--patient: a citizen ID (CCCD) is exactly 12 digits"),
        (["--device-address", "C4:F3", "00BDF00B009FF0"], "--device-address 'C4:F3' is not 6 hex bytes"),
        (["--received-at", "yesterday", "00BDF00B009FF0"], "--received-at 'yesterday' is not a time with offset"),
        (["--colour", "00BDF00B009FF0"], "unknown option --colour"),
        (["--received-at", "0001-01-01T00:00:00+14:00", "00BDF00B009FF0"], "is not a time with offset"),
        (["--received-at", "9999-12-31T23:59:59-12:00", "00BDF00B009FF0"], "is not a time with offset"),
        (["--device-clock", "2025-02-30T00:00:00", "00BDF00B009FF0"], "--device-clock '2025-02-30T00:00:00' is not a local time"),
    ])
    func badInput(_ extra: [String], _ message: String) {
        let result = run(bp + extra)
        #expect(result.exitCode == 2)
        #expect(result.stdout.isEmpty)
        #expect(result.stderr.contains(message), "\(result.stderr)")
    }

    @Test("a device clock thousands of years off still gives valid FHIR, dated by receive time")
    func absurdDeviceClock() throws {
        let result = run(bp + ["--fhir", "--device-clock", "9999-12-31T00:00:00", "02800052006100E9070601071E00"])
        #expect(result.exitCode == 0, "\(result.stderr)")
        #expect(result.stdout.contains("too far off to correct by"))
        let verdict = try FHIRValidator.shared().validate(try compact(result.stdout))
        #expect(verdict.valid, "\(verdict.errors)")
    }

    func compact(_ text: String) throws -> String {
        let object = try JSONSerialization.jsonObject(with: Data(text.utf8))
        return String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self)
    }

    @Test("wrong profile or characteristic is a usage error that lists what exists")
    func wrongProfile() {
        var result = run(["decode", "--profile", "omron/hem-7322u", "--characteristic", "2A35", "00"])
        #expect(result.exitCode == 2)
        #expect(result.stderr.contains("no profile 'omron/hem-7322u'"))
        #expect(result.stderr.contains("shipped: ") && result.stderr.contains("bluetooth-sig/blood-pressure"))
        result = run(["decode", "--profile", "bluetooth-sig/heart-rate", "--characteristic", "2A35", "00"])
        #expect(result.exitCode == 2)
        #expect(result.stderr.contains("decodes 2A37"))
        result = run(["decode", "--profile", "bluetooth-sig/heart-rate", "--characteristic", "00002a37-0000-1000-8000-00805f9b34fb", "0055"])
        #expect(result.exitCode == 0)
    }

    @Test("the patient's number never appears in an error message")
    func noIdentifierInErrors() {
        let result = run(bp + ["--patient", "cccd:09919900000X", "00"])
        #expect(result.exitCode == 2)
        #expect(!result.stderr.contains("09919900000"))
    }

    @Test("the installed binary keeps the contract: exit status 2 on bad bytes, 0 on good ones")
    func binary() throws {
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            .appendingPathComponent("vitalgate")
        let built = FileManager.default.isExecutableFile(atPath: binary.path)
            ? binary : RepositoryPaths.root.appendingPathComponent(".build/debug/vitalgate")
        try #require(FileManager.default.isExecutableFile(atPath: built.path), "build the vitalgate product first (swift build)")
        for (frame, status) in [("zz", Int32(2)), ("0055", 0)] {
            let process = Process()
            process.executableURL = built
            process.arguments = hr + [frame]
            let errors = Pipe()
            process.standardError = errors
            process.standardOutput = Pipe()
            try process.run()
            process.waitUntilExit()
            #expect(process.terminationStatus == status)
            let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            #expect(status == 0 ? text.isEmpty : text.hasPrefix("vitalgate decode: "))
        }
    }
}
