import Foundation
import Testing
import VitalModel
import VitalGateTestKit
@testable import ProfileEngine

// The `stream` section of the frames engine: a session that outlives its script, sends keep-alives and
// ends on silence. Every time is explicit (milliseconds after FramesHarness.origin); frames are built for
// the test from the spec below, not golden vectors.

/// A harness that can also be moved to an absolute time.
extension FramesHarness {
    mutating func at(_ milliseconds: Int) {
        time = FramesHarness.origin
        advance(milliseconds: milliseconds)
    }

    /// Drives the session as a transport does while the device is silent: wait out its timeout, call it.
    /// Returns the times (ms after the origin) at which timeouts were called, up to `limit` of them.
    mutating func idle(from milliseconds: Int, limit: Int = 20) -> [Int] {
        var now = milliseconds
        var calls: [Int] = []
        while calls.count < limit, let wait = session.timeoutMilliseconds {
            now += wait
            at(now)
            timeout()
            calls.append(now)
        }
        return calls
    }
}

@Suite("Frames engine: streaming devices (keep-alive, silence)")
struct FramesStreamTests {
    static let start: [UInt8] = [0x7D, 0xA1]
    static let keepAlive: [UInt8] = [0x7D, 0xAF]

    /// `A5 TYPE VALUE`: type 01 is a live frame whose value is a heart rate (and is captured as `last`),
    /// type 02 an "idle" frame (finger out) that gives no reading. The script sends the start command and
    /// waits for either; the stream sends `7D AF` every 2 s and gives up after 5 s without a frame.
    static func spec(stream: FramesSpec.Stream? = FramesSpec.Stream(
        keepAlive: FramesSpec.KeepAlive(send: [.bytes([0x7D, 0xAF])], intervalMilliseconds: 2000), silenceMilliseconds: 5000),
                     script: Bool = true) -> FramesSpec {
        FramesSpec(
            sync: .bytes([0xA5]), length: .fixed(3),
            messages: [
                FramesSpec.Message(name: "live", match: [.init(offset: 1, pattern: .init(mask: 0xFF, value: 0x01))],
                                   reading: FramesSpec.ReadingMap(kind: .heartRate, values: [
                                       FramesSpec.ValueMap(type: .heartRate, unit: .perMinute, field: .init(parts: [.init(offset: 2)])),
                                   ]),
                                   captures: ["last": .init(parts: [.init(offset: 2)])]),
                FramesSpec.Message(name: "idle", match: [.init(offset: 1, pattern: .init(mask: 0xFF, value: 0x02))],
                                   ignoreWhen: [[.init(offset: 1, pattern: .init(mask: 0xFF, value: 0x02))]]),
            ],
            script: script ? [.exchange(.init(send: [.bytes(start)], expect: ["live", "idle"], timeoutMilliseconds: 1000, retries: 1))] : [],
            stream: stream)
    }

    static let live: [UInt8] = [0xA5, 0x01, 72]
    static let idle: [UInt8] = [0xA5, 0x02, 0x00]

    /// Start at 0 ms and answer the start command with a live frame at `answer` ms.
    static func started(_ spec: FramesSpec = spec(), answer: Int = 0) -> FramesHarness {
        var harness = FramesHarness(spec)
        harness.start()
        harness.at(answer)
        harness.receive(live)
        return harness
    }

    @Test("the end of the script does not finish a streaming session; frames go on decoding")
    func scriptEndKeepsSessionOpen() {
        var harness = Self.started(answer: 10)
        #expect(harness.run.sends == [Self.start])
        #expect(harness.run.finished.isEmpty)
        // Next due: the keep-alive 2000 ms after the start command was sent at 0, i.e. 1990 ms after 10.
        #expect(harness.session.timeoutMilliseconds == 1990)
        for step in 1...5 {
            harness.at(10 + step * 100)
            harness.receive(Self.live)
        }
        #expect(harness.run.readings.count == 6)
        #expect(harness.run.finished.isEmpty)
        #expect(harness.run.problems.isEmpty)
    }

    @Test("while frames stream, the keep-alive goes out on receive every 2000 ms after the last send")
    func keepAliveWhileStreaming() {
        var harness = Self.started()
        var sendTimes: [Int] = []
        // A frame every 100 ms for 7 s: no timeout would ever fire.
        for milliseconds in stride(from: 100, through: 7000, by: 100) {
            let before = harness.run.sends.count
            harness.at(milliseconds)
            harness.receive(Self.live)
            if harness.run.sends.count > before { sendTimes.append(milliseconds) }
        }
        #expect(sendTimes == [2000, 4000, 6000])
        #expect(harness.run.sends == [Self.start, Self.keepAlive, Self.keepAlive, Self.keepAlive])
        #expect(harness.run.finished.isEmpty)
        // After the keep-alive at 6000 and a frame at 7000: the next keep-alive is 1000 ms away.
        #expect(harness.session.timeoutMilliseconds == 1000)
    }

    @Test("a silent device gets keep-alives through timeouts, then the session finishes incomplete without a problem")
    func silenceEndsSession() {
        var harness = Self.started()
        let calls = harness.idle(from: 0)
        // Keep-alives at 2000 and 4000; the silence limit, 5000 ms after the frame at 0, comes before 6000.
        #expect(calls == [2000, 4000, 5000])
        #expect(harness.run.sends == [Self.start, Self.keepAlive, Self.keepAlive])
        #expect(harness.run.finished == [false])
        #expect(harness.run.problems.isEmpty)
        #expect(harness.session.timeoutMilliseconds == nil)
        // Ended: more time and more bytes bring neither keep-alives nor a second finish.
        harness.at(20_000)
        harness.timeout()
        harness.receive(Self.live)
        #expect(harness.run.sends.count == 3)
        #expect(harness.run.finished == [false])
    }

    @Test("the silence counts from the last frame, and ignored (finger-out) frames count")
    func silenceFromLastFrame() {
        var harness = Self.started()
        // Idle frames every 1000 ms until 9000: no readings, but the device is there.
        for milliseconds in stride(from: 1000, through: 9000, by: 1000) {
            harness.at(milliseconds)
            harness.receive(Self.idle)
        }
        #expect(harness.run.finished.isEmpty)
        #expect(harness.run.readings.count == 1)
        // Keep-alives at 2000, 4000, 6000, 8000; then 10000, and the end at 14000 (5000 after 9000).
        #expect(harness.idle(from: 9000) == [10_000, 12_000, 14_000])
        #expect(harness.run.sends.count == 1 + 6)
        #expect(harness.run.finished == [false])
    }

    @Test("garbage that forms no frame does not keep the session open: the silence ends it on receive")
    func garbageIsSilence() {
        var harness = Self.started()
        for milliseconds in stride(from: 500, through: 5000, by: 500) {
            harness.at(milliseconds)
            harness.receive([0x00, 0x13, 0x7E])
        }
        #expect(harness.run.finished == [false])
        // Keep-alives at 2000 and 4000 went out on receive; the end came at 5000, also on receive.
        #expect(harness.run.sends == [Self.start, Self.keepAlive, Self.keepAlive])
        #expect(harness.run.readings.count == 1)
        #expect(harness.session.timeoutMilliseconds == nil)
    }

    @Test("a late call sends one keep-alive, not one per missed interval; an early one sends nothing")
    func lateAndEarlyCalls() {
        var harness = Self.started()
        harness.at(1500)
        harness.timeout()
        #expect(harness.run.sends == [Self.start])
        #expect(harness.session.timeoutMilliseconds == 500)
        // 4500 ms after the last send: two intervals missed, one keep-alive.
        harness.at(4500)
        harness.receive(Self.live)
        #expect(harness.run.sends == [Self.start, Self.keepAlive])
        // Next: 2000 after 4500 (6500), before the silence limit at 9500.
        #expect(harness.session.timeoutMilliseconds == 2000)
    }

    @Test("the first keep-alive counts from the script's last send, a retry included")
    func countsFromRetry() {
        var harness = FramesHarness(Self.spec())
        harness.start()
        harness.at(1000)
        harness.timeout()
        #expect(harness.run.sends == [Self.start, Self.start])
        harness.at(1200)
        harness.receive(Self.live)
        // Keep-alive due at 3000, silence at 6200.
        #expect(harness.session.timeoutMilliseconds == 1800)
        #expect(harness.idle(from: 1200) == [3000, 5000, 6200])
    }

    @Test("the keep-alive is rendered like a script send, with captured variables")
    func keepAliveTemplate() {
        let stream = FramesSpec.Stream(keepAlive: FramesSpec.KeepAlive(send: [.bytes([0x7D]), .variable("last", width: 2, bigEndian: true)],
                                                                      intervalMilliseconds: 2000), silenceMilliseconds: 5000)
        var harness = Self.started(Self.spec(stream: stream))
        harness.at(2000)
        harness.receive([0xA5, 0x01, 0x51])
        // The frame is decoded first, so `last` is 0x51 when the keep-alive is rendered: 7D 00 51.
        #expect(harness.run.sends.last == [0x7D, 0x00, 0x51])
    }

    @Test("silenceMs alone: no sends, the session ends after the silence; without a script it streams from the start")
    func silenceOnly() {
        var harness = FramesHarness(Self.spec(stream: FramesSpec.Stream(silenceMilliseconds: 3000), script: false))
        harness.start()
        #expect(harness.session.timeoutMilliseconds == 3000)
        harness.at(2500)
        harness.receive(Self.live)
        #expect(harness.session.timeoutMilliseconds == 3000)
        #expect(harness.idle(from: 2500) == [5500])
        #expect(harness.run.sends.isEmpty)
        #expect(harness.run.finished == [false])
    }

    @Test("without a script the first keep-alive goes out keepAliveMs after the start")
    func keepAliveWithoutScript() {
        var harness = FramesHarness(Self.spec(script: false))
        harness.start()
        #expect(harness.run.events.isEmpty)
        #expect(harness.idle(from: 0) == [2000, 4000, 5000])
        #expect(harness.run.sends == [Self.keepAlive, Self.keepAlive])
        #expect(harness.run.finished == [false])
    }

    @Test("a failed script does not start the stream")
    func failedScript() {
        var harness = FramesHarness(Self.spec())
        harness.start()
        #expect(harness.idle(from: 0) == [1000, 2000])
        #expect(harness.run.sends == [Self.start, Self.start])
        #expect(harness.run.problemFields == ["response"])
        #expect(harness.run.finished == [false])
        #expect(harness.session.timeoutMilliseconds == nil)
    }

    @Test("a hub clock stepped back does not postpone the keep-alive or the silence by the step")
    func clockStepBack() {
        var harness = Self.started(answer: 0)
        harness.at(-60_000)
        harness.timeout()
        #expect(harness.run.sends == [Self.start])
        #expect(harness.session.timeoutMilliseconds == 2000)
        #expect(harness.idle(from: -60_000) == [-58_000, -56_000, -55_000])
        #expect(harness.run.finished == [false])
    }

    @Test("the same times give the same events")
    func deterministic() {
        func run() -> [EngineEvent] {
            var harness = Self.started(answer: 7)
            for milliseconds in [300, 2100, 2150, 4999] {
                harness.at(milliseconds)
                harness.receive(Self.live)
            }
            _ = harness.idle(from: 4999)
            return harness.run.events
        }
        #expect(run() == run())
        #expect(!run().isEmpty)
    }

    @Test("without stream: the script's end finishes the session and nothing is sent after it")
    func withoutStream() {
        var harness = Self.started(Self.spec(stream: nil))
        #expect(harness.run.finished == [true])
        #expect(harness.session.timeoutMilliseconds == nil)
        for milliseconds in stride(from: 1000, through: 20_000, by: 1000) {
            harness.at(milliseconds)
            harness.receive(Self.live)
            harness.timeout()
        }
        #expect(harness.run.sends == [Self.start])
        #expect(harness.run.finished == [true])
        #expect(harness.run.readings.count == 21)

        // Neither script nor stream: listens for ever.
        var listener = FramesHarness(Self.spec(stream: nil, script: false))
        listener.start()
        listener.at(60_000)
        listener.timeout()
        listener.receive(Self.live)
        #expect(listener.run.sends.isEmpty)
        #expect(listener.run.finished.isEmpty)
        #expect(listener.session.timeoutMilliseconds == nil)
    }
}
