import Foundation
import Testing
import VitalModel
import ProfileEngine
import VitalGateTestKit
@testable import ProfileCatalog

/// Defects found by reviewing the profile loader and the frames engine, each kept fixed by a test.
@Suite("Profile review regressions")
struct ReviewRegressionTests {
    static let good = BrokenProfiles.text("good.json")

    func load(_ text: String) throws(ProfileError) -> DeviceProfile {
        try ProfileLoader.load(bytes: Array(text.utf8), file: "test/good.json", expectedID: "test/good")
    }

    func loadError(_ text: String) -> ProfileError? {
        do { _ = try load(text); return nil } catch { return error }
    }

    @Test("the fixture itself loads")
    func fixtureLoads() throws {
        _ = try load(Self.good)
    }

    @Test("a line break in a profile string is refused: it could inject a udev rule")
    func controlCharacters() throws {
        let text = Self.good.replacingOccurrences(of: #""model": "Frames Oximeter""#,
                                                  with: #""model": "X\nKERNEL==\"*\", RUN+=\"/bin/true\"""#)
        let error = try #require(loadError(text))
        #expect(error.field == "model")
        #expect(error.problem.contains("control character"))
        #expect(UdevRules.comment("a\nb\rc") == "# a?b?c")
        #expect(UdevRules.escape("x\ny") == "x?y")
    }

    @Test("sync none is refused on a serial stream, which keeps no frame boundaries")
    func syncNoneOnSerial() throws {
        let text = Self.good.replacingOccurrences(of: #""sync": { "bytes": "AA 55" }"#, with: #""sync": "none""#)
        let error = try #require(loadError(text))
        #expect(error.field == "engine")
        #expect(error.problem.contains("keeps frame boundaries"))
    }

    @Test("{checksum} without a checksum is refused, and with one it covers the profile's range")
    func templateChecksum() throws {
        let without = Self.good.replacingOccurrences(of: #""checksum": { "algorithm": "sum8" },"#, with: "")
        let error = try #require(loadError(without))
        #expect(error.problem.contains("{checksum}"))

        let ranged = Self.good.replacingOccurrences(of: #""checksum": { "algorithm": "sum8" }"#,
                                                    with: #""checksum": { "algorithm": "sum8", "from": 2 }"#)
        let profile = try load(ranged)
        var session = profile.engine.makeSession(device: DeviceIdentity(), profileID: profile.id)
        let events = session.start(at: Capture.defaultReceivedAt)
        // AA 55 01 01: the sum from byte 2 is 02, not the 01 of a sum over all four bytes.
        #expect(events.first == .send([0xAA, 0x55, 0x01, 0x01, 0x02], channel: nil))
    }

    @Test("a message longer than maximumLength is refused: it could never be assembled")
    func messageLongerThanMaximum() throws {
        let text = Self.good
            .replacingOccurrences(of: #""length": { "field": { "offset": 2 }, "add": 4 },"#, with: #""length": "per-message", "maximumLength": 4,"#)
            .replacingOccurrences(of: #""name": "count","#, with: #""name": "count", "length": 40,"#)
            .replacingOccurrences(of: #""name": "record","#, with: #""name": "record", "length": 8,"#)
        let error = try #require(loadError(text))
        #expect(error.problem.contains("more than maximumLength 4"), "\(error)")
    }

    @Test("nested repeats over device counts stop at the session's request limit instead of running away")
    func nestedRepeatsAreBounded() throws {
        let text = Self.good.replacingOccurrences(of: #""captures": { "count": { "offset": 4 } }"#,
                                                  with: #""captures": { "count": { "offset": 4, "width": 2 } }"#)
            .replacingOccurrences(of: #"{ "send": "AA 55 02 02 {index} {checksum}", "expect": ["record"] }"#,
                                  with: #"{ "repeat": "count", "as": "inner", "steps": [ { "send": "AA 55 02 02 {inner:2}" } ] }"#)
        let profile = try load(text)
        var session = profile.engine.makeSession(device: DeviceIdentity(), profileID: profile.id)
        _ = session.start(at: Capture.defaultReceivedAt)
        // A count answer of 0xFFFF (sum8 over AA 55 03 01 FF FF = 0x301, low byte 01).
        let events = session.receive([0xAA, 0x55, 0x03, 0x01, 0xFF, 0xFF, 0x01], channel: nil, at: Capture.defaultReceivedAt)
        let sends = events.filter { if case .send = $0 { true } else { false } }.count
        #expect(sends == FramesSession.maximumSends - 1)
        #expect(events.contains { if case .problem(let problem) = $0 { problem.field == "requests" } else { false } })
        #expect(events.last == .finished(complete: false))
    }

    @Test("hex bytes separated by colons are bytes, not a channel")
    func colonSeparatedBytes() throws {
        let capture = try Capture.parse("< AABB:CC\n< 2A35: 01 02\n", file: "x.capture")
        #expect(capture.entries.map(\.line) == [.fromDevice([0xAA, 0xBB, 0xCC], channel: nil), .fromDevice([0x01, 0x02], channel: "2A35")])
    }
}
