import Foundation
import Testing
import VitalModel
import VitalGateTestKit
@testable import ProfileEngine

/// The notifications of the shipped heart-rate capture (Polar H7 77 bpm with skin contact and R-R 790/1024 s;
/// Polar H7 78 bpm, R-R 795 and 786; Wahoo 74 bpm without skin contact), in wire order.
let capturedHeartRates: [[UInt8]] = {
    let url = RepositoryPaths.root.appendingPathComponent("DeviceProfiles/bluetooth-sig/heart-rate/polar-and-wahoo.capture")
    let text = (try? String(contentsOf: url, encoding: .utf8)) ?? ""
    return text.split(separator: "\n").filter { $0.hasPrefix("< 2A37:") }.map { line in
        bytes(line.dropFirst("< 2A37:".count).filter { !$0.isWhitespace })
    }
}()

/// Builds samples as a strap's session would: real notifications decoded at chosen hub times.
struct Strap {
    static let device = DeviceIdentity(bluetoothAddress: EUI48("00:00:5E:00:53:01"))
    /// 2025-06-01T07:35:00+07:00 (00:35:00Z).
    static let base: Int64 = 1_748_738_100_000
    static let hanoi = 7 * 3600

    static func time(_ second: Double, offset: Int = hanoi) -> HubTimestamp {
        HubTimestamp(unixMilliseconds: base + Int64((second * 1000).rounded()), utcOffsetSeconds: offset)
    }

    static func sample(_ frame: [UInt8], at second: Double, offset: Int = hanoi, device: DeviceIdentity = device) throws -> Reading {
        try HeartRateMeasurementDecoder().decode(frame, context: DecodeContext(device: device, receivedAt: time(second, offset: offset),
                                                                                profileID: "bluetooth-sig/heart-rate"))
    }

    static var polar77: [UInt8] { capturedHeartRates[0] }
    static var polar78: [UInt8] { capturedHeartRates[1] }
    static var wahooNoContact: [UInt8] { capturedHeartRates[2] }
}

@Suite("Heart-rate windows")
struct HeartRateWindowsTests {
    @Test("the capture holds the three notifications its SOURCES.md describes")
    func capture() throws {
        #expect(capturedHeartRates.count == 3)
        #expect(try Strap.sample(Strap.polar77, at: 0).value(.heartRate)?.value.description == "77")
        #expect(try Strap.sample(Strap.polar78, at: 0).value(.heartRate)?.value.description == "78")
        #expect(try Strap.sample(Strap.wahooNoContact, at: 0).sensorContact == .notDetected)
    }

    @Test("windows align to the wall clock's minutes; a sample past the end closes the window")
    func alignmentAndClosing() throws {
        var windows = try HeartRateWindows(windowSeconds: 60)
        // Connected at 07:34:50.500: the first window starts there, the next ones on the minute.
        var emitted: [Reading] = []
        for (index, second) in stride(from: -9.5, to: 60, by: 1).enumerated() {
            emitted += windows.add(try Strap.sample(index % 2 == 0 ? Strap.polar77 : Strap.polar78, at: second))
        }
        #expect(emitted.count == 1)
        #expect(windows.nextDeadline == Strap.time(60))
        emitted += windows.add(try Strap.sample(Strap.polar77, at: 60.2))
        #expect(windows.nextDeadline == Strap.time(120))
        try #require(emitted.count == 2)

        let first = try #require(emitted[0].window)
        #expect(first.start == Strap.time(-9.5) && first.end == Strap.time(0))
        #expect(first.sampleCount == 10 && first.excludedSampleCount == 0)

        let full = emitted[1]
        let window = try #require(full.window)
        #expect(window.start == Strap.time(0) && window.end == Strap.time(60))
        #expect(window.start.localTime.description == "2025-06-01T07:35:00")
        #expect(window.sampleCount == 60)
        #expect(window.minimum.value.description == "77" && window.maximum.value.description == "78")
        // Thirty 77s and thirty 78s: 77.5, written with one decimal.
        #expect(full.values.first == MeasuredValue(.heartRate, .number(DecimalValue(mantissa: 775, exponent: -1)), .perMinute))
        #expect(full.kind == .heartRate)
        #expect(full.receivedAt == window.end)
        #expect(full.deviceTime == nil && full.raw.isEmpty && full.sensorContact == nil)
        #expect(full.device == Strap.device && full.source == ReadingSource(profileID: "bluetooth-sig/heart-rate", frame: "2A37"))
        // Every R-R interval of the window, in order: one per 77 notification, two per 78 notification.
        let intervals = full.values.filter { $0.type == .rrInterval }.map(\.value.description)
        #expect(intervals.count == 90)
        #expect(Array(intervals.prefix(3)) == ["0.7714843750", "0.7763671875", "0.7675781250"])
    }

    @Test("windows follow the local clock: a one-hour window in UTC+05:30 is a local clock hour")
    func localAlignment() throws {
        var windows = try HeartRateWindows(windowSeconds: 3600)
        let india = 5 * 3600 + 1800
        _ = windows.add(try Strap.sample(Strap.polar77, at: 0, offset: india))   // 06:05 local
        _ = windows.add(try Strap.sample(Strap.polar77, at: 10, offset: india))
        let emitted = windows.add(try Strap.sample(Strap.polar78, at: 3600, offset: india))
        let window = try #require(emitted.first?.window)
        #expect(window.end.localTime.description == "2025-06-01T07:00:00")
        #expect(windows.nextDeadline?.localTime.description == "2025-06-01T08:00:00")
    }

    @Test("the mean has one decimal, rounded half up: 77, 77, 77, 78 is 77.3; 77, 78, 78 is 77.7")
    func meanRounding() throws {
        for (rates, expected) in [([77, 77, 77, 78], "77.3"), ([77, 78, 78], "77.7"), ([74], "74.0")] {
            var windows = try HeartRateWindows(windowSeconds: 60)
            for (index, rate) in rates.enumerated() {
                // Flags 0x00: an 8-bit rate, contact not supported, as a minimal strap sends it.
                _ = windows.add(try Strap.sample([0x00, UInt8(rate)], at: Double(index)))
            }
            let reading = try #require(windows.flush(at: Strap.time(60)).first)
            #expect(reading.values.first?.value.description == expected, "\(rates)")
        }
    }

    @Test("no skin contact: left out of the mean and counted; a window with no usable sample emits nothing")
    func contactLost() throws {
        var windows = try HeartRateWindows(windowSeconds: 60)
        _ = windows.add(try Strap.sample(Strap.polar77, at: 0))
        _ = windows.add(try Strap.sample(Strap.wahooNoContact, at: 1))
        _ = windows.add(try Strap.sample(Strap.wahooNoContact, at: 2))
        _ = windows.add(try Strap.sample(Strap.polar78, at: 3))
        let emitted = windows.add(try Strap.sample(Strap.wahooNoContact, at: 60))
        let window = try #require(emitted.first?.window)
        #expect(window.sampleCount == 2 && window.excludedSampleCount == 2)
        #expect(window.minimum.value.description == "77" && window.maximum.value.description == "78")
        #expect(emitted.first?.values.first?.value.description == "77.5")
        #expect(emitted.first?.status == [], "the no-contact samples' questionable flag must not reach the window")
        // 07:36: only samples without contact.
        _ = windows.add(try Strap.sample(Strap.wahooNoContact, at: 61))
        #expect(windows.add(try Strap.sample(Strap.polar77, at: 120)).isEmpty)
        #expect(windows.excludedInEmptyWindowsCount == 2)
    }

    @Test("a sample older than the open window is dropped and counted; a closed window never changes")
    func lateAndRepeated() throws {
        var windows = try HeartRateWindows(windowSeconds: 60)
        _ = windows.add(try Strap.sample(Strap.polar77, at: 0))
        _ = windows.add(try Strap.sample(Strap.polar78, at: 30))
        let closed = windows.add(try Strap.sample(Strap.polar77, at: 61))
        #expect(closed.count == 1)
        #expect(windows.add(try Strap.sample(Strap.polar78, at: 59)).isEmpty)
        #expect(windows.droppedSampleCount == 1)
        // Out of order inside the open window is fine; an exact repeat (same time, same bytes) is not taken twice.
        _ = windows.add(try Strap.sample(Strap.polar78, at: 70))
        _ = windows.add(try Strap.sample(Strap.polar78, at: 65))
        _ = windows.add(try Strap.sample(Strap.polar78, at: 65))
        #expect(windows.droppedSampleCount == 2)
        let next = try #require(windows.flush(at: Strap.time(120)).first?.window)
        #expect(next.sampleCount == 3)
        #expect(next.minimum.value.description == "77" && next.maximum.value.description == "78")
    }

    @Test("flush at a disconnect ends the window there; after reconnecting the window starts at the next sample")
    func flushAtDisconnect() throws {
        var windows = try HeartRateWindows(windowSeconds: 60)
        #expect(windows.flush(at: Strap.time(0)).isEmpty)
        #expect(windows.nextDeadline == nil)
        _ = windows.add(try Strap.sample(Strap.polar77, at: 0))
        _ = windows.add(try Strap.sample(Strap.polar78, at: 19.5))
        let cut = try #require(windows.flush(at: Strap.time(20)).first?.window)
        #expect(cut.start == Strap.time(0) && cut.end == Strap.time(20))
        #expect(windows.nextDeadline == nil)
        _ = windows.add(try Strap.sample(Strap.polar78, at: 41))
        let rest = try #require(windows.flush(at: Strap.time(90)).first?.window)
        #expect(rest.start == Strap.time(41) && rest.end == Strap.time(60))
        #expect(rest.sampleCount == 1)
        // Disconnected after a silent end of window: the reconnected window still starts at its first sample.
        _ = windows.add(try Strap.sample(Strap.polar77, at: 100))
        // A flush with a clock read before the last sample still covers it.
        _ = windows.add(try Strap.sample(Strap.polar77, at: 101))
        let early = try #require(windows.flush(at: Strap.time(100.5)).first?.window)
        #expect(early.start == Strap.time(100) && early.end == Strap.time(101))
    }

    @Test("timers: closeEnded waits for the deadline and never cuts a window short; flush at the deadline is the same")
    func timers() throws {
        var windows = try HeartRateWindows(windowSeconds: 60)
        _ = windows.add(try Strap.sample(Strap.polar77, at: 0))
        let deadline = try #require(windows.nextDeadline)
        #expect(windows.closeEnded(at: Strap.time(59.999)).isEmpty)
        #expect(windows.closeEnded(at: deadline).count == 1)
        // The stream goes on: the next window starts on its minute although no sample closed the last one.
        _ = windows.add(try Strap.sample(Strap.polar77, at: 75))
        let stale = windows.closeEnded(at: deadline)  // a timer set for the old deadline fires late
        #expect(stale.isEmpty)
        let timed = try #require(windows.flush(at: Strap.time(121)).first?.window)
        #expect(timed.start == Strap.time(60) && timed.end == Strap.time(120))
        // A flush used as the timer loses nothing; the stream counts as stopped, so the next window starts at its sample.
        _ = windows.add(try Strap.sample(Strap.polar77, at: 130))
        #expect(windows.flush(at: Strap.time(180)).first?.window?.start == Strap.time(130))
        _ = windows.add(try Strap.sample(Strap.polar77, at: 185))
        #expect(windows.flush(at: Strap.time(185)).first?.window?.start == Strap.time(185))
    }

    @Test("a long gap: the window before it ends on its minute, nothing is emitted for empty minutes")
    func longGap() throws {
        var windows = try HeartRateWindows(windowSeconds: 60)
        _ = windows.add(try Strap.sample(Strap.polar77, at: 10))
        let emitted = windows.add(try Strap.sample(Strap.polar78, at: 3 * 3600 + 5))
        let window = try #require(emitted.first?.window)
        #expect(emitted.count == 1)
        #expect(window.start == Strap.time(10) && window.end == Strap.time(60))
        #expect(windows.nextDeadline == Strap.time(3 * 3600 + 60))
        let after = try #require(windows.flush(at: Strap.time(4 * 3600)).first?.window)
        #expect(after.start == Strap.time(3 * 3600))
    }

    @Test("0 s passes every reading through at once; other kinds and other devices always pass through")
    func passthrough() throws {
        var off = try HeartRateWindows(windowSeconds: 0)
        let samples = try (0..<5).map { try Strap.sample(Strap.polar77, at: Double($0)) }
        for sample in samples { #expect(off.add(sample) == [sample]) }
        #expect(off.nextDeadline == nil)
        #expect(off.flush(at: Strap.time(60)).isEmpty)

        var windows = try HeartRateWindows()
        #expect(windows.windowSeconds == 60)
        let cuff = try BloodPressureMeasurementDecoder().decode(bytes("167C0056006100E807060F11111B33000000"), context: testContext)
        #expect(windows.add(cuff) == [cuff])
        _ = windows.add(samples[0])
        let other = try Strap.sample(Strap.polar78, at: 1, device: DeviceIdentity(bluetoothAddress: EUI48("00:00:5E:00:53:02")))
        #expect(windows.add(other) == [other])
        let summary = try #require(windows.add(try Strap.sample(Strap.polar77, at: 60)).first)
        #expect(windows.add(summary) == [summary], "an already summarised reading is not summarised again")
    }

    @Test("window lengths outside 0...3600 s are refused with a fix", arguments: [-1, 3601, Int.max, Int.min])
    func badLength(_ seconds: Int) {
        let error = #expect(throws: HeartRateWindowsError.self) { try HeartRateWindows(windowSeconds: seconds) }
        #expect(error?.description.contains("Fix: set bluetooth.heartRate.windowSeconds") == true)
    }

    @Test("the clamping initialiser brings a length to the nearest end of 0...3600 s and keeps one inside",
          arguments: [(-1, 0), (Int.min, 0), (3601, 3600), (Int.max, 3600), (60, 60)])
    func clamped(_ seconds: Int, _ expected: Int) {
        #expect(HeartRateWindows(clampingWindowSeconds: seconds).windowSeconds == expected)
    }

    @Test("a day at 1 Hz from local midnight is 1,440 readings of 60 s, each on its minute, every sample counted")
    func day() throws {
        var windows = try HeartRateWindows(windowSeconds: 60)
        let midnight = -(7 * 3600 + 35 * 60.0)  // 2025-06-01T00:00:00+07:00
        let templates = try [Strap.polar77, Strap.polar78, Strap.wahooNoContact].map { try Strap.sample($0, at: 0) }
        var emitted: [Reading] = []
        for second in 0..<86_400 {
            var sample = templates[second % 3]
            sample.receivedAt = Strap.time(midnight + Double(second))
            emitted += windows.add(sample)
        }
        emitted += windows.flush(at: Strap.time(midnight + 86_400))
        #expect(emitted.count == 1440)
        let windowsOut = emitted.compactMap(\.window)
        #expect(windowsOut.count == 1440)
        #expect(windowsOut.allSatisfy { $0.durationMilliseconds == 60_000 && $0.start.localTime.second == 0 })
        #expect(windowsOut.first?.start.localTime.description == "2025-06-01T00:00:00")
        #expect(windowsOut.last?.end.localTime.description == "2025-06-02T00:00:00")
        #expect(windowsOut.map(\.sampleCount).reduce(0, +) == 57_600)
        #expect(windowsOut.map(\.excludedSampleCount).reduce(0, +) == 28_800)
        #expect(zip(windowsOut, windowsOut.dropFirst()).allSatisfy { $0.end == $1.start })
        #expect(windows.droppedSampleCount == 0)
    }
}
