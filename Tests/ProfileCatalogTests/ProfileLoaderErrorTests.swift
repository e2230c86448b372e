import Foundation
import Testing
import VitalModel
import ProfileEngine
import VitalGateTestKit
@testable import ProfileCatalog

/// One row of `Tests/Fixtures/broken-profiles/cases.json` (see the README there).
struct BrokenProfileCase: Decodable, Sendable, CustomTestStringConvertible {
    var file: String
    var location: String
    var field: String
    var problem: String
    var fix: String
    var schema: String
    var expectedID: String?
    var why: String?
    var testDescription: String { file }
}

enum BrokenProfiles {
    static let directory = RepositoryPaths.fixture("broken-profiles")

    static func path(_ file: String) -> String { directory.appendingPathComponent(file).path }

    struct Table: Decodable { var cases: [BrokenProfileCase] }

    /// Empty when the table cannot be read; ``ProfileLoaderErrorTests/tableIsComplete()`` fails then.
    static let cases: [BrokenProfileCase] = {
        guard let data = FileManager.default.contents(atPath: path("cases.json")) else { return [] }
        return (try? JSONDecoder().decode(Table.self, from: data).cases) ?? []
    }()

    static func text(_ file: String) -> String {
        String(decoding: FileManager.default.contents(atPath: path(file)) ?? Data(), as: UTF8.self)
    }
}

@Suite("Profile loader errors")
struct ProfileLoaderErrorTests {
    @Test("the table covers every broken fixture, and there are at least 25")
    func tableIsComplete() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: BrokenProfiles.directory.path)
            .filter { $0.hasSuffix(".json") && !["cases.json", "good.json", "good-ble.json"].contains($0) }
        #expect(Set(files) == Set(BrokenProfiles.cases.map(\.file)))
        #expect(BrokenProfiles.cases.count >= 25)
        #expect(BrokenProfiles.cases.allSatisfy { ["rejects", "accepts"].contains($0.schema) })
    }

    @Test("each broken profile is reported with file:line:column, field, problem and fix", arguments: BrokenProfiles.cases)
    func broken(_ testCase: BrokenProfileCase) {
        let path = BrokenProfiles.path(testCase.file)
        do {
            let profile = try ProfileLoader.load(file: path, expectedID: testCase.expectedID)
            Issue.record("\(testCase.file) loaded as \(profile.id); expected an error at \(testCase.location)")
        } catch {
            #expect(error.file == path)
            #expect(error.location?.description == testCase.location, "\(error)")
            #expect(error.field == testCase.field, "\(error)")
            #expect(error.problem.contains(testCase.problem), "\(error)")
            #expect(error.fix.contains(testCase.fix), "\(error)")
            // What a person reads: `FILE:LINE:COLUMN: FIELD: PROBLEM. Fix: FIX`.
            let field = testCase.field.isEmpty ? "" : testCase.field + ": "
            #expect(error.description.hasPrefix("\(path):\(testCase.location): \(field)"), "\(error)")
            #expect(error.description.contains(". Fix: "), "\(error)")
        }
    }

    @Test("the good fixtures load, so every broken one fails for its one change")
    func goodFixturesLoad() throws {
        let frames = try ProfileLoader.load(file: BrokenProfiles.path("good.json"), expectedID: "test/good")
        #expect(frames.id == "test/good")
        #expect(frames.kinds == [.pulseOximetry])
        #expect(frames.match.usb == [USBMatch(vendorID: 0x10C4, productID: 0xEA60, product: "Test Oximeter")])
        #expect(frames.transport == .serial(SerialSettings(baud: 19200, parity: .odd)))
        #expect(frames.time == TimeBehaviour(deviceClock: false, zone: .none))
        let engine = try #require(frames.engine as? FramesEngine)
        #expect(engine.spec.sync == .bytes([0xAA, 0x55]))
        #expect(engine.spec.length == .field(FramesSpec.FieldSpec(parts: [.init(offset: 2)]), add: 4))
        #expect(engine.spec.checksum == FramesSpec.Checksum(algorithm: .sum8, from: 0, through: -2, at: -1, bigEndian: false))
        #expect(engine.spec.messages.map(\.name) == ["count", "record"])
        #expect(engine.spec.messages[1].reading?.values.map(\.type) == [.oxygenSaturation, .oximeterPulseRate])
        #expect(engine.spec.messages[1].reading?.values[1].specials == [255: .notANumber])
        #expect(engine.spec.script.map(Self.mergingBytes) == [
            .exchange(.init(send: [.bytes([0xAA, 0x55, 0x01, 0x01]), .checksum], expect: ["count"], timeoutMilliseconds: 1000, retries: 1)),
            .repeatSteps(count: "count", variable: "index", from: 1, steps: [
                .exchange(.init(send: [.bytes([0xAA, 0x55, 0x02, 0x02]), .variable("index", width: 1, bigEndian: false), .checksum],
                                expect: ["record"], timeoutMilliseconds: 2000, retries: 0)),
            ]),
        ])

        let ble = try ProfileLoader.load(file: BrokenProfiles.path("good-ble.json"), expectedID: "test/good-ble")
        #expect(ble.match.bluetooth == BluetoothMatch(services: ["1810"], names: ["BP*"]))
        #expect(ble.engine.inputs == ["2A35", "2A36"])
        #expect(ble.time == TimeBehaviour(deviceClock: true, set: .currentTime, zone: .local))
    }

    /// The step with adjacent literal bytes joined, so tests compare meaning, not how tokens were split.
    static func mergingBytes(_ step: FramesSpec.ScriptStep) -> FramesSpec.ScriptStep {
        switch step {
        case .repeatSteps(let count, let variable, let from, let steps):
            return .repeatSteps(count: count, variable: variable, from: from, steps: steps.map(mergingBytes))
        case .exchange(var exchange):
            var parts: [FramesSpec.TemplatePart] = []
            for part in exchange.send {
                if case .bytes(let more) = part, case .bytes(let bytes)? = parts.last {
                    parts[parts.count - 1] = .bytes(bytes + more)
                } else {
                    parts.append(part)
                }
            }
            exchange.send = parts
            return .exchange(exchange)
        }
    }

    static func loadError(_ text: String) -> ProfileError? {
        do {
            _ = try ProfileLoader.load(bytes: Array(text.utf8), file: "inline.json")
            return nil
        } catch {
            return error
        }
    }

    @Test("an engine with two kinds is one error naming the choices")
    func twoEngines() {
        let text = BrokenProfiles.text("good-ble.json").replacingOccurrences(
            of: #""engine": { "gatt-standard": { "characteristics": ["2A35", "2A36"] } },"#,
            with: #""engine": { "gatt-standard": { "characteristics": ["2A35"] }, "frames": {} },"#)
        let error = Self.loadError(text)
        #expect(error?.field == "engine")
        #expect(error?.problem == "has 2 members")
        #expect(error?.location?.description == "20:13")
        #expect(error?.fix.contains(#""gatt-standard", "frames""#) == true)
    }

    @Test("a file that cannot be read names the path and no position")
    func unreadable() {
        do {
            _ = try ProfileLoader.load(file: "/nonexistent/vendor/model.json")
            Issue.record("loaded a file that does not exist")
        } catch {
            #expect(error.file == "/nonexistent/vendor/model.json")
            #expect(error.location == nil)
            #expect(error.problem == "no such file")
        }
        do {
            _ = try ProfileLoader.load(file: RepositoryPaths.root.appendingPathComponent("DeviceProfiles").path)
            Issue.record("loaded a directory")
        } catch {
            #expect(error.problem == "is a directory, not a profile file")
        }
    }

    @Test("a top level that is not an object, and the empty file")
    func notAnObject() {
        #expect(Self.loadError("[]")?.problem == "expected an object, found an array")
        #expect(Self.loadError("")?.problem == "not valid JSON: expected a value but the file ends")
        #expect(Self.loadError("")?.location?.description == "1:1")
    }

    @Test("every truncation of a good profile is an error, never a trap or a partial profile")
    func truncations() {
        let bytes = Array(BrokenProfiles.text("good.json").utf8)
        // Every prefix that stops before the closing brace.
        let closing = bytes.lastIndex(of: UInt8(ascii: "}")) ?? 0
        for end in 0...closing {
            do {
                _ = try ProfileLoader.load(bytes: Array(bytes[..<end]), file: "truncated.json")
                Issue.record("a truncation at byte \(end) loaded")
            } catch {
                #expect(error.location != nil, "truncation at \(end): \(error)")
            }
        }
    }

    @Test("single-byte corruptions of a good profile never trap")
    func corruptions() {
        let bytes = Array(BrokenProfiles.text("good.json").utf8)
        for index in stride(from: 0, to: bytes.count, by: 3) {
            for replacement in [UInt8(ascii: "0"), UInt8(ascii: "\""), UInt8(ascii: "}"), UInt8(ascii: "-"), 0xFF] {
                var copy = bytes
                copy[index] = replacement
                _ = try? ProfileLoader.load(bytes: copy, file: "corrupt.json")
            }
        }
    }

    @Test("UUIDs: short, 0x-prefixed and base-UUID forms normalise; others are rejected")
    func uuids() {
        #expect(normalizeUUID("2a35") == "2A35")
        #expect(normalizeUUID("0x2A35") == "2A35")
        #expect(normalizeUUID("00002a35-0000-1000-8000-00805f9b34fb") == "2A35")
        #expect(normalizeUUID("6e400001-b5a3-f393-e0a9-e50e24dcca9e") == "6E400001-B5A3-F393-E0A9-E50E24DCCA9E")
        for bad in ["", "2A3", "2A355", "2A3G", "0x", "6e400001b5a3f393e0a9e50e24dcca9e", "6e400001-b5a3-f393-e0a9-e50e24dcca9", "２Ａ３５"] {
            #expect(normalizeUUID(bad) == nil, "\(bad)")
        }
    }

    @Test("did-you-mean suggests only near names")
    func suggestions() {
        let far = Self.loadError(BrokenProfiles.text("good.json").replacingOccurrences(of: #""summary":"#, with: #""description":"#))
        #expect(far?.field == "description")
        #expect(far?.problem == "unknown member")
        #expect(editDistance("partiy", "parity") == 2)
        #expect(editDistance("", "abc") == 3)
        #expect(editDistance("kitten", "sitting") == 3)
    }
}
