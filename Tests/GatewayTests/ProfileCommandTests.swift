import Foundation
import Testing
import VitalModel
import VitalGateTestKit
@testable import Gateway

/// The vendor kit as a vendor meets it: `vitalgate profile test|lint|list` and `decode --capture`.
@Suite("vitalgate profile")
struct ProfileCommandTests {
    let profiles = RepositoryPaths.root.appendingPathComponent("DeviceProfiles").path

    /// Vendor folders of the shipped tree (not the schema, not README.md).
    func vendors() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: profiles).filter { name in
            var isDirectory: ObjCBool = false
            return name != "schema" && FileManager.default.fileExists(atPath: "\(profiles)/\(name)", isDirectory: &isDirectory) && isDirectory.boolValue
        }
    }

    func run(_ arguments: [String]) -> CommandResult {
        CommandLineTool.run(arguments) { nil }
    }

    @Test("every shipped profile passes its golden captures")
    func shippedProfilesPass() throws {
        let result = run(["profile", "test", "--profiles", profiles])
        #expect(result.exitCode == 0, "\(result.stdout)\(result.stderr)")
        let summary = try #require(result.stdout.split(separator: "\n").last)
        let passed = try #require(Int(summary.split(separator: " ").first ?? ""))
        #expect(passed >= 2, "\(summary)")
        #expect(summary.contains(" 0 failed"))
    }

    @Test("every shipped profile lints clean")
    func shippedProfilesLint() throws {
        let files = try vendors().flatMap { vendor in
            ((try? FileManager.default.contentsOfDirectory(atPath: "\(profiles)/\(vendor)")) ?? [])
                .filter { $0.hasSuffix(".json") }.map { "\(profiles)/\(vendor)/\($0)" }
        }
        #expect(files.count >= 2)
        let result = run(["profile", "lint"] + files)
        #expect(result.exitCode == 0, "\(result.stdout)")
        #expect(result.stdout.split(separator: "\n").allSatisfy { $0.hasSuffix(": ok") })
    }

    /// A copy of one shipped profile with its capture, to break on purpose.
    func scratchTree() throws -> URL {
        let tree = FileManager.default.temporaryDirectory.appendingPathComponent("vitalgate-profile-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tree.appendingPathComponent("bluetooth-sig"), withIntermediateDirectories: true)
        for item in ["bluetooth-sig/blood-pressure.json", "bluetooth-sig/blood-pressure"] {
            try FileManager.default.copyItem(at: URL(fileURLWithPath: "\(profiles)/\(item)"), to: tree.appendingPathComponent(item))
        }
        return tree
    }

    @Test("a reading that differs from the expected file fails the test with the path of the difference")
    func differenceFails() throws {
        let tree = try scratchTree()
        defer { try? FileManager.default.removeItem(at: tree) }
        let expected = tree.appendingPathComponent("bluetooth-sig/blood-pressure/derdilla-and-boso.expected.json")
        let text = try String(contentsOf: expected, encoding: .utf8)
        try text.replacingOccurrences(of: #""value": 86,"#, with: #""value": 87,"#).write(to: expected, atomically: true, encoding: .utf8)
        let result = run(["profile", "test", "--profiles", tree.path])
        #expect(result.exitCode == 1)
        #expect(result.stdout.contains("readings[0].values[1].value: expected 87, got 86"), "\(result.stdout)")

        // The same as JSON, for a vendor's CI.
        let json = run(["profile", "test", "--json", "--profiles", tree.path])
        #expect(json.exitCode == 1)
        let report = try JSONValue.parse(json.stdout)
        #expect(report["failed"] == .int(1) && report["passed"] == .int(0))
        guard case .array(let results)? = report["results"], let first = results.first else { Issue.record(Comment(rawValue: json.stdout)); return }
        #expect(first["profile"] == .string("bluetooth-sig/blood-pressure") && first["passed"] == .bool(false))
        #expect(first["differences"] == .array([.string("readings[0].values[1].value: expected 87, got 86")]), "\(json.stdout)")
    }

    @Test("lint names file, line, column and field of a broken profile; the other profiles still load")
    func lintBroken() throws {
        let tree = try scratchTree()
        defer { try? FileManager.default.removeItem(at: tree) }
        let broken = tree.appendingPathComponent("bluetooth-sig/heart-rate.json")
        try """
        {
          "format": 1,
          "id": "bluetooth-sig/heart-rate",
          "revision": 1,
          "vendor": "Example",
          "model": "Strap",
          "kinds": ["heart-rate"],
          "match": { "bluetooth": { "services": ["180D"] } },
          "transport": { "ble": { "characteristics": [ { "service": "180D", "uuid": "2A37", "mode": "notfy" } ] } },
          "engine": { "gatt-standard": { "characteristics": ["2A37"] } },
          "time": { "deviceClock": false }
        }
        """.write(to: broken, atomically: true, encoding: .utf8)
        let lint = run(["profile", "lint", broken.path])
        #expect(lint.exitCode == 1)
        #expect(lint.stdout.contains("heart-rate.json:9:93: transport.ble.characteristics[0].mode: \"notfy\" is not one of"), "\(lint.stdout)")
        let lintJSON = run(["profile", "lint", "--json", broken.path])
        #expect(lintJSON.exitCode == 1)
        let linted = try JSONValue.parse(lintJSON.stdout)
        #expect(linted["errors"] == .int(1))
        guard case .array(let files)? = linted["files"], case .array(let findings)? = files.first?["findings"] else { Issue.record(Comment(rawValue: lintJSON.stdout)); return }
        #expect(files.first?["ok"] == .bool(false) && findings.count == 1)
        guard case .string(let text)? = findings.first?["text"] else { Issue.record(Comment(rawValue: lintJSON.stdout)); return }
        #expect(text.contains("heart-rate.json:9:93: transport.ble.characteristics[0].mode"))
        let list = run(["profile", "list", "--profiles", tree.path])
        #expect(list.exitCode == 1)
        #expect(list.stdout.contains("bluetooth-sig/blood-pressure"))
        #expect(list.stderr.contains("broken: ") && list.stderr.contains("heart-rate.json:9:93"))
    }

    @Test("decode --capture --fhir of every shipped capture that should decode cleanly validates")
    func everyCaptureMakesValidFHIR() throws {
        var checked = 0
        for vendor in try vendors() {
            for file in try FileManager.default.contentsOfDirectory(atPath: "\(profiles)/\(vendor)") where file.hasSuffix(".json") {
                let id = "\(vendor)/\(file.dropLast(5))"
                let folder = "\(profiles)/\(id)"
                for capture in (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [] where capture.hasSuffix(".capture") {
                    let expected = try String(contentsOfFile: "\(folder)/\(capture.dropLast(8)).expected.json", encoding: .utf8)
                    let object = try #require(try JSONSerialization.jsonObject(with: Data(expected.utf8)) as? [String: Any])
                    guard (object["problems"] as? [Any] ?? []).isEmpty, !(object["readings"] as? [Any] ?? []).isEmpty else { continue }
                    let result = run(["decode", "--profiles", profiles, "--profile", id, "--capture", "\(folder)/\(capture)", "--fhir",
                                      "--system-id", "00-00-5E-EF-10-00-00-01"])
                    #expect(result.exitCode == 0, "\(id) \(capture): \(result.stderr)")
                    let bundle = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8))
                    let verdict = try FHIRValidator.shared().validate(String(decoding: try JSONSerialization.data(withJSONObject: bundle), as: UTF8.self))
                    #expect(verdict.valid, "\(id) \(capture): \(verdict.errors)")
                    checked += 1
                }
            }
        }
        #expect(checked >= 2)
    }
}
