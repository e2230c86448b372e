import Foundation
import Testing
import VitalModel
import ProfileEngine
import VitalGateTestKit
@testable import ProfileCatalog

/// `engine.frames.stream`: how it loads, how it is refused, and how captures of a streaming device replay.
@Suite("Frames stream section: loader and replay")
struct StreamProfileTests {
    static let contecFile = RepositoryPaths.root.appendingPathComponent("DeviceProfiles/contec/cms50d-plus.json").path
    static let keepAlive: [UInt8] = [0x7D, 0x81, 0xAF, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80]

    /// good.json with `"stream": <json>` added after its script, on a line of its own.
    static func good(stream json: String) -> String {
        let closing = "        ] }\n      ]\n    }\n  },"
        let text = BrokenProfiles.text("good.json")
        #expect(text.contains(closing), "good.json changed shape")
        return text.replacingOccurrences(of: closing, with: "        ] }\n      ],\n      \"stream\": \(json)\n    }\n  },")
    }

    /// `LINE:COLUMN` of the first `needle` on the line holding `"stream":` (1-based, as errors print).
    static func location(of needle: String, in text: String) -> String? {
        for (index, line) in text.components(separatedBy: "\n").enumerated() where line.contains("\"stream\":") {
            guard let range = line.range(of: needle) else { return nil }
            return "\(index + 1):\(line.distance(from: line.startIndex, to: range.lowerBound) + 1)"
        }
        return nil
    }

    static func merged(_ parts: [FramesSpec.TemplatePart]) -> [FramesSpec.TemplatePart] {
        var out: [FramesSpec.TemplatePart] = []
        for part in parts {
            if case .bytes(let more) = part, case .bytes(let bytes)? = out.last {
                out[out.count - 1] = .bytes(bytes + more)
            } else {
                out.append(part)
            }
        }
        return out
    }

    static func frames(_ profile: DeviceProfile) throws -> FramesSpec {
        try #require(profile.engine as? FramesEngine).spec
    }

    // MARK: Loading

    @Test("the Contec profile streams: keep-alive 7D 81 AF … every 2000 ms, silence limit 5000 ms")
    func contecLoads() throws {
        let spec = try Self.frames(ProfileLoader.load(file: Self.contecFile, expectedID: "contec/cms50d-plus"))
        let stream = try #require(spec.stream)
        #expect(stream.silenceMilliseconds == 5000)
        #expect(stream.keepAlive?.intervalMilliseconds == 2000)
        #expect(Self.merged(stream.keepAlive?.send ?? []) == [.bytes(Self.keepAlive)])
    }

    @Test("a keep-alive takes captured variables and {checksum}; silenceMs alone is enough")
    func loads() throws {
        let full = try ProfileLoader.load(bytes: Array(Self.good(stream: #"{"keepAlive": "AA 55 03 01 {count} {checksum}", "keepAliveMs": 1000, "silenceMs": 3000}"#).utf8),
                                          file: "inline.json")
        #expect(try Self.frames(full).stream.map { FramesSpec.Stream(keepAlive: $0.keepAlive.map { FramesSpec.KeepAlive(send: Self.merged($0.send), intervalMilliseconds: $0.intervalMilliseconds) },
                                                                     silenceMilliseconds: $0.silenceMilliseconds) }
                == FramesSpec.Stream(keepAlive: FramesSpec.KeepAlive(send: [.bytes([0xAA, 0x55, 0x03, 0x01]), .variable("count", width: 1, bigEndian: false), .checksum],
                                                                     intervalMilliseconds: 1000), silenceMilliseconds: 3000))
        let silenceOnly = try ProfileLoader.load(bytes: Array(Self.good(stream: #"{"silenceMs": 100}"#).utf8), file: "inline.json")
        #expect(try Self.frames(silenceOnly).stream == FramesSpec.Stream(silenceMilliseconds: 100))
        #expect(try Self.frames(ProfileLoader.load(file: BrokenProfiles.path("good.json"), expectedID: "test/good")).stream == nil)
    }

    struct BadStream: Sendable, CustomTestStringConvertible {
        var json: String
        /// Where the error points, found on the stream's line.
        var needle: String
        var field: String
        var problem: String
        var fix: String
        var testDescription: String { json }
    }

    static let badStreams: [BadStream] = [
        BadStream(json: "{}", needle: "{}", field: "engine.frames.stream", problem: #""silenceMs" is missing"#, fix: "add \"silenceMs\""),
        BadStream(json: #""on""#, needle: #""on""#, field: "engine.frames.stream", problem: "expected an object, found a string", fix: "write { ... }"),
        BadStream(json: #"{"silenceMs": 99}"#, needle: "99", field: "engine.frames.stream.silenceMs", problem: "99 is out of range", fix: "100...600000"),
        BadStream(json: #"{"silenceMs": 600001}"#, needle: "600001", field: "engine.frames.stream.silenceMs", problem: "600001 is out of range", fix: "100...600000"),
        BadStream(json: #"{"silenceMs": 5000.5}"#, needle: "5000.5", field: "engine.frames.stream.silenceMs", problem: "expected a whole number", fix: "100...600000"),
        BadStream(json: #"{"silenceMs": 5000, "keepAliveMs": 2000}"#, needle: "2000", field: "engine.frames.stream.keepAliveMs",
                  problem: #"an interval without "keepAlive" bytes to send"#, fix: "add \"keepAlive\""),
        BadStream(json: #"{"silenceMs": 5000, "keepAlive": "7D AF"}"#, needle: "{", field: "engine.frames.stream",
                  problem: #""keepAliveMs" is missing"#, fix: "add \"keepAliveMs\""),
        BadStream(json: #"{"silenceMs": 5000, "keepAlive": "7D AF", "keepAliveMs": 99}"#, needle: "99", field: "engine.frames.stream.keepAliveMs",
                  problem: "99 is out of range", fix: "100...600000"),
        BadStream(json: #"{"silenceMs": 5000, "keepAlive": "7D AF", "keepAliveMs": 5000}"#, needle: "5000}", field: "engine.frames.stream.keepAliveMs",
                  problem: "5000 ms is not shorter than silenceMs 5000", fix: "make keepAliveMs shorter than silenceMs"),
        BadStream(json: #"{"silenceMs": 5000, "keepAlive": "7D ZZ", "keepAliveMs": 2000}"#, needle: #""7D ZZ""#, field: "engine.frames.stream.keepAlive",
                  problem: #""ZZ" is not hex bytes or a {variable}"#, fix: "write bytes like"),
        BadStream(json: #"{"silenceMs": 5000, "keepAlive": "7D {nope}", "keepAliveMs": 2000}"#, needle: #""7D {nope}""#, field: "engine.frames.stream.keepAlive",
                  problem: #""{nope}" is not a captured or loop variable"#, fix: "capture it"),
        BadStream(json: #"{"silenceMs": 5000, "keepAlive": "", "keepAliveMs": 2000}"#, needle: #""""#, field: "engine.frames.stream.keepAlive",
                  problem: "is empty", fix: "7D 81 AF"),
        BadStream(json: #"{"silenceMs": 5000, "keepAliveMS": 2000}"#, needle: #""keepAliveMS""#, field: "engine.frames.stream.keepAliveMS",
                  problem: #"unknown member (did you mean "keepAliveMs"?)"#, fix: "remove it or correct the name"),
    ]

    @Test("bad stream sections are refused at file:line:column with the field, the problem and a fix", arguments: badStreams)
    func refused(_ bad: BadStream) throws {
        let text = Self.good(stream: bad.json)
        let error = try #require(ProfileLoaderErrorTests.loadError(text), "\(bad.json) loaded")
        #expect(error.file == "inline.json")
        #expect(error.location?.description == Self.location(of: bad.needle, in: text), "\(error)")
        #expect(error.field == bad.field, "\(error)")
        #expect(error.problem.contains(bad.problem), "\(error)")
        #expect(error.fix.contains(bad.fix), "\(error)")
    }

    @Test("a keep-alive with {checksum} needs the protocol's checksum")
    func checksumNeeded() throws {
        let text = String(decoding: try #require(FileManager.default.contents(atPath: Self.contecFile)), as: UTF8.self)
            .replacingOccurrences(of: #""keepAlive": "7D 81 AF 80 80 80 80 80 80""#, with: #""keepAlive": "7D 81 AF {checksum}""#)
        let error = try #require(ProfileLoaderErrorTests.loadError(text))
        #expect(error.field == "engine.frames.stream")
        #expect(error.problem == "the keepAlive uses {checksum} but the protocol has no checksum")
        #expect(error.location?.description == Self.location(of: "{ \"keepAlive\"", in: text))
    }

    // MARK: Replay

    @Test("@wait fires the engine's timeouts that fall due during it: a retry, then giving up")
    func waitFiresTimeouts() throws {
        // good.json's first request waits 1000 ms and is retried once.
        let retried = try ReplayTests.replay(ReplayTests.exchange.replacingOccurrences(
            of: "> AA 55 01 01 01\n", with: "> AA 55 01 01 01\n@wait 1500\n> AA 55 01 01 01\n"))
        #expect(retried.scriptDifferences.isEmpty, "\(retried.scriptDifferences)")
        #expect(retried.readings.count == 2)
        #expect(retried.finished == true)
        // A 2500 ms wait also covers the second timeout at 2000 ms: the script gives up.
        let gaveUp = try ReplayTests.replay("> AA 55 01 01 01\n@wait 2500\n> AA 55 01 01 01\n< 00")
        #expect(gaveUp.scriptDifferences.isEmpty, "\(gaveUp.scriptDifferences)")
        #expect(gaveUp.problems.map(\.field) == ["response"])
        #expect(gaveUp.finished == false)
    }

    @Test("a streaming capture shows the keep-alives as host lines, ends with the silence, and keeps its readings' times")
    func streamingReplay() throws {
        let profile = try ProfileLoader.load(bytes: Array(Self.good(stream: #"{"keepAlive": "AA 55 03 01 {count} {checksum}", "keepAliveMs": 1000, "silenceMs": 2500}"#).utf8),
                                             file: "inline.json")
        // The script ends with the second record at 2 ms; the last request went out at 1 ms. Keep-alives
        // fall due at 1001 and 2001 ms, the silence limit at 2502 ms. The keep-alive renders count 2 and
        // sum8 AA+55+03+01+02 = 105 → 05.
        let text = ReplayTests.exchange + "\n@timeout\n> AA 55 03 01 02 05\n@timeout\n> AA 55 03 01 02 05\n@timeout"
        let replay = Replay.run(try Capture.parse(text, file: "test.capture"), profile: profile)
        #expect(replay.scriptDifferences.isEmpty, "\(replay.scriptDifferences)")
        #expect(replay.finished == false)
        #expect(replay.problems.isEmpty)
        #expect(try ReplayTests.expected().differences(from: replay) == [])

        // Without the keep-alive lines the capture does not show what the engine sends.
        let bare = Replay.run(try Capture.parse(ReplayTests.exchange + "\n@timeout\n@timeout\n@timeout", file: "test.capture"), profile: profile)
        #expect(bare.scriptDifferences == Array(repeating: "after the last line: the engine sent AA 55 03 01 02 05, which the capture does not show", count: 2))
        // Without the last @timeout the session is still open when the capture ends.
        let open = Replay.run(try Capture.parse(ReplayTests.exchange, file: "test.capture"), profile: profile)
        #expect(open.finished == nil)
    }

    @Test("a keep-alive due during a @wait is sent then, before the device's next line")
    func keepAliveDuringWait() throws {
        let profile = try ProfileLoader.load(file: Self.contecFile, expectedID: "contec/cms50d-plus")
        let capture = """
            > 7D 81 A1 80 80 80 80 80 80
            < 01 E0 85 D5 9A BD E3 FF FF
            @wait 6000
            """
        let replay = Replay.run(try Capture.parse(capture, file: "test.capture"), profile: profile)
        // Keep-alives at 2000 and 4000 ms; the silence limit, 5000 ms after the packet, ends the session.
        #expect(replay.scriptDifferences == Array(repeating: "after the last line: the engine sent 7D 81 AF 80 80 80 80 80 80, which the capture does not show", count: 2))
        #expect(replay.finished == false)
        #expect(replay.readings.count == 1)
    }

    @Test("every shipped Contec capture covers its session to the silence that ends it")
    func contecCapturesEnd() throws {
        let profile = try ProfileLoader.load(file: Self.contecFile, expectedID: "contec/cms50d-plus")
        let captures = ProfileCatalog.captures(for: profile)
        #expect(captures.count >= 6)
        for file in captures {
            let capture = try Capture.load(file: file)
            let replay = Replay.run(capture, profile: profile)
            #expect(replay.scriptDifferences.isEmpty, "\(file): \(replay.scriptDifferences)")
            #expect(replay.finished == false, "\(file)")
            let sent = capture.entries.compactMap { entry -> [UInt8]? in if case .toDevice(let bytes, _) = entry.line { bytes } else { nil } }
            #expect(sent.filter { $0 == Self.keepAlive }.count >= 2, "\(file)")
        }
    }
}
