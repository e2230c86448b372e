import Foundation
import Testing
import VitalModel
import VitalGateTestKit
@testable import ProfileEngine

// Unit tests of the `frames` engine. Unless a test names a source, the frames here are inputs built for
// the test from the layout its spec declares (they are not golden vectors), and each expected value is
// worked by hand in a comment from those bytes.

/// Everything one or more calls into a session returned, sorted by kind.
struct FramesRun {
    var events: [EngineEvent] = []

    var readings: [Reading] { events.compactMap { if case .reading(let reading) = $0 { reading } else { nil } } }
    var problems: [DecodeError] { events.compactMap { if case .problem(let problem) = $0 { problem } else { nil } } }
    var sends: [[UInt8]] { events.compactMap { if case .send(let bytes, _) = $0 { bytes } else { nil } } }
    var finished: [Bool] { events.compactMap { if case .finished(let complete) = $0 { complete } else { nil } } }

    /// `type=value` of every value of every reading, e.g. `oxygen-saturation=98`.
    var values: [[String]] { readings.map { $0.values.map { "\($0.type.key)=\($0.value)" } } }
    var problemFields: [String] { problems.map(\.field) }
}

/// A session of `spec` with a fixed device and clock, driven chunk by chunk.
struct FramesHarness {
    static let origin = HubTimestamp(iso8601: "2025-01-01T08:00:00+07:00")!
    static let device = DeviceIdentity(usb: USBIdentity(vendorID: 0x10C4, productID: 0xEA60, serial: nil))

    var session: any EngineSession
    var run = FramesRun()
    var time = FramesHarness.origin

    init(_ spec: FramesSpec) {
        session = FramesEngine(spec: spec).makeSession(device: Self.device, profileID: "test/frames")
    }

    mutating func start() { run.events += session.start(at: time) }
    mutating func receive(_ bytes: [UInt8]) { run.events += session.receive(bytes, channel: nil, at: time) }
    mutating func timeout() { run.events += session.timeout(at: time) }
    mutating func advance(milliseconds: Int) { time.instant = time.instant.addingTimeInterval(Double(milliseconds) / 1000) }

    /// Feeds `chunks` to a fresh session and returns what it produced.
    static func feed(_ spec: FramesSpec, _ chunks: [[UInt8]]) -> FramesRun {
        var harness = FramesHarness(spec)
        harness.start()
        for chunk in chunks { harness.receive(chunk) }
        return harness.run
    }
}

fileprivate typealias Part = FramesSpec.FieldSpec.Part

fileprivate func field(_ offset: Int, width: Int = 1, big: Bool = false, bits: ClosedRange<Int>? = nil, signed: Bool = false) -> FramesSpec.FieldSpec {
    FramesSpec.FieldSpec(parts: [Part(offset: offset, width: width, bigEndian: big, bits: bits)], signed: signed)
}

fileprivate func equals(_ offset: Int, _ value: UInt8) -> FramesSpec.ByteCondition {
    FramesSpec.ByteCondition(offset: offset, pattern: .init(mask: 0xFF, value: value))
}

// MARK: - Fixed length, bit-pattern sync, continuation (a CMS50-legacy-like layout)

@Suite("Frames engine: fixed-length frames with a bit-pattern sync")
struct FixedFramesTests {
    /// Five-byte frames: byte 0 has bit 7 set (sync), every other byte bit 7 clear. SpO2 is bits 0-6 of
    /// byte 4; the pulse rate is bit 6 of byte 2 (as bit 7) joined to bits 0-6 of byte 3. SpO2 0x7F means
    /// "no finger" and is ignored; pulse 255 means "not a number".
    static let spec = FramesSpec(
        sync: .pattern(.init(mask: 0x80, value: 0x80)),
        length: .fixed(5),
        continuation: .init(mask: 0x80, value: 0x00),
        messages: [FramesSpec.Message(
            name: "live",
            ignoreWhen: [[FramesSpec.ByteCondition(offset: 4, pattern: .init(mask: 0x7F, value: 0x7F))]],
            reading: FramesSpec.ReadingMap(kind: .pulseOximetry, values: [
                FramesSpec.ValueMap(type: .oxygenSaturation, unit: .percent, field: field(4, bits: 0...6)),
                FramesSpec.ValueMap(type: .oximeterPulseRate, unit: .perMinute,
                                    field: FramesSpec.FieldSpec(parts: [Part(offset: 2, bits: 6...6), Part(offset: 3, bits: 0...6)]),
                                    specials: [255: .notANumber]),
            ]))])

    /// Builds a frame of the layout above (test input, not a device capture).
    static func frame(spo2: UInt8, pulse: Int) -> [UInt8] {
        [0x80, 0x10, UInt8((pulse >> 7) & 1) << 6, UInt8(pulse & 0x7F), spo2]
    }

    @Test("a frame becomes a reading with the values its bits hold")
    func decodes() {
        // Pulse 133 = 0b1000_0101: bit 7 goes to bit 6 of byte 2 (0x40), the rest is byte 3 (0x05).
        let input = Self.frame(spo2: 98, pulse: 133)
        #expect(input == [0x80, 0x10, 0x40, 0x05, 0x62])
        let run = FramesHarness.feed(Self.spec, [input])
        #expect(run.problems.isEmpty)
        #expect(run.values == [["oxygen-saturation=98", "oximeter-pulse-rate=133"]])
        let reading = run.readings.first
        #expect(reading?.kind == .pulseOximetry)
        #expect(reading?.raw == input)
        #expect(reading?.source == ReadingSource(profileID: "test/frames", frame: "live"))
        #expect(reading?.device == FramesHarness.device)
        #expect(reading?.value(.oxygenSaturation)?.unit == .percent)
    }

    @Test("a frame cut short by the next frame start is dropped with one problem")
    func continuation() {
        // 80 10 00 is a frame missing two bytes; the 0x80 that follows has bit 7 set, so it is a new start.
        let run = FramesHarness.feed(Self.spec, [[0x80, 0x10, 0x00] + Self.frame(spo2: 97, pulse: 60)])
        #expect(run.values == [["oxygen-saturation=97", "oximeter-pulse-rate=60"]])
        #expect(run.problemFields == ["frame start"])
        #expect(run.problems.first?.offset == 0)
        #expect(run.problems.first?.problem.hasPrefix("3 bytes skipped") == true)
    }

    static let stream = frame(spo2: 98, pulse: 72) + frame(spo2: 97, pulse: 133) + frame(spo2: 96, pulse: 60)
    static let streamValues = [
        ["oxygen-saturation=98", "oximeter-pulse-rate=72"],
        ["oxygen-saturation=97", "oximeter-pulse-rate=133"],
        ["oxygen-saturation=96", "oximeter-pulse-rate=60"],
    ]

    @Test("frames split across two chunks at every point decode the same", arguments: 0...15)
    func split(at point: Int) {
        let run = FramesHarness.feed(Self.spec, [Array(Self.stream[..<point]), Array(Self.stream[point...])])
        #expect(run.values == Self.streamValues)
        #expect(run.problems.isEmpty)
    }

    @Test("frames fed one byte at a time decode the same")
    func byteByByte() {
        let run = FramesHarness.feed(Self.spec, Self.stream.map { [$0] })
        #expect(run.values == Self.streamValues)
        #expect(run.problems.isEmpty)
    }

    @Test("garbage before, between and after frames: one problem per run, at its offset")
    func garbage() {
        let first = Self.frame(spo2: 98, pulse: 72), second = Self.frame(spo2: 97, pulse: 73), third = Self.frame(spo2: 96, pulse: 74)
        var harness = FramesHarness(Self.spec)
        harness.receive([0x01, 0x02, 0x03] + first + [0x05, 0x06] + second + [0x07])
        #expect(harness.run.readings.count == 2)
        // Offsets: the first run starts at byte 0; the second after 3 garbage bytes and a 5-byte frame.
        #expect(harness.run.problemFields == ["frame start", "frame start"])
        #expect(harness.run.problems.map(\.offset) == [0, 8])
        #expect(harness.run.problems.map { $0.problem.hasPrefix("3 bytes") } == [true, false])
        #expect(harness.run.problems.last?.problem.hasPrefix("2 bytes") == true)
        // The trailing byte is reported once the next frame shows where the garbage ended (offset 3+5+2+5).
        harness.receive(third)
        #expect(harness.run.readings.count == 3)
        #expect(harness.run.problems.count == 3)
        #expect(harness.run.problems.last?.offset == 15)
        #expect(harness.run.problems.last?.problem.hasPrefix("1 byte skipped") == true)
    }

    @Test("many frames in one large chunk are all decoded")
    func largeChunk() {
        // 400 frames = 2000 bytes in one read, well past the engine's buffer bound (4 × 256): a USB-serial
        // read can return kilobytes at once, and none of those frames is garbage.
        let chunk = (0..<400).flatMap { Self.frame(spo2: UInt8(90 + $0 % 10), pulse: 60 + $0 % 50) }
        let run = FramesHarness.feed(Self.spec, [chunk])
        #expect(run.readings.count == 400)
        #expect(run.problems.isEmpty)
        #expect(run.values.last == ["oxygen-saturation=99", "oximeter-pulse-rate=109"])  // 399 % 10, 60 + 399 % 50
    }

    @Test("ignoreWhen frames are consumed silently")
    func ignored() {
        let run = FramesHarness.feed(Self.spec, [Self.frame(spo2: 0x7F, pulse: 0) + Self.frame(spo2: 95, pulse: 61)])
        #expect(run.values == [["oxygen-saturation=95", "oximeter-pulse-rate=61"]])
        #expect(run.problems.isEmpty)
    }

    @Test("a special raw value becomes the special, not a number")
    func special() {
        let run = FramesHarness.feed(Self.spec, [Self.frame(spo2: 96, pulse: 255)])
        #expect(run.values == [["oxygen-saturation=96", "oximeter-pulse-rate=NaN"]])
        #expect(run.readings.first?.value(.oximeterPulseRate)?.value == .special(.notANumber))
    }
}

// MARK: - Length field, checksums

@Suite("Frames engine: length-field frames with checksums")
struct LengthFieldFramesTests {
    /// `AA 55 LEN payload… CHECK`, where LEN counts the payload; the check covers the payload only.
    static func spec(_ algorithm: ChecksumAlgorithm, bigEndian: Bool = false, maximumLength: Int = 64) -> FramesSpec {
        let width = algorithm.width
        return FramesSpec(
            sync: .bytes([0xAA, 0x55]),
            length: .field(field(2), add: 3 + width),
            checksum: FramesSpec.Checksum(algorithm: algorithm, from: 3, through: -(width + 1), at: -width, bigEndian: bigEndian),
            maximumLength: maximumLength,
            messages: [FramesSpec.Message(name: "data", reading: FramesSpec.ReadingMap(kind: .heartRate, values: [
                FramesSpec.ValueMap(type: .heartRate, unit: .perMinute, field: field(3)),
            ]))])
    }

    /// A frame around the payload "123456789" whose check value the RevEng catalogue states (see
    /// ChecksumTests): the engine must accept it. Its value field is the first payload byte, '1' = 0x31 = 49.
    static func frame(_ vector: ChecksumTests.CheckValue, bigEndian: Bool = false, payload: [UInt8] = ChecksumTests.check) -> [UInt8] {
        let check: [UInt8] = vector.algorithm.width == 1 ? [UInt8(vector.value)]
            : bigEndian ? [UInt8(vector.value >> 8), UInt8(vector.value & 0xFF)] : [UInt8(vector.value & 0xFF), UInt8(vector.value >> 8)]
        return [0xAA, 0x55, UInt8(payload.count)] + payload + check
    }

    @Test("a frame carrying the catalogue check value is accepted", arguments: ChecksumTests.checkValues)
    func accepted(_ vector: ChecksumTests.CheckValue) {
        let run = FramesHarness.feed(Self.spec(vector.algorithm), [Self.frame(vector)])
        #expect(run.problems.isEmpty, "\(run.problems)")
        #expect(run.values == [["heart-rate=49"]])
    }

    @Test("two-byte checks are read big-endian when the profile says so",
          arguments: ChecksumTests.checkValues.filter { $0.algorithm.width == 2 })
    func bigEndian(_ vector: ChecksumTests.CheckValue) {
        let run = FramesHarness.feed(Self.spec(vector.algorithm, bigEndian: true), [Self.frame(vector, bigEndian: true)])
        #expect(run.problems.isEmpty, "\(run.problems)")
        #expect(run.readings.count == 1)
        // And the little-endian copy fails under the big-endian profile (no check value here is a palindrome).
        let wrong = FramesHarness.feed(Self.spec(vector.algorithm, bigEndian: true), [Self.frame(vector)])
        #expect(wrong.problemFields == ["checksum"])
    }

    @Test("a wrong checksum is one problem; the next frame is still decoded", arguments: ChecksumTests.checkValues)
    func wrongChecksum(_ vector: ChecksumTests.CheckValue) {
        var corrupted = Self.frame(vector)
        corrupted[7] ^= 0x01  // '5' becomes '4': every algorithm here detects a single-bit error
        let good = Self.frame(vector)
        let run = FramesHarness.feed(Self.spec(vector.algorithm), [corrupted + good])
        #expect(run.problemFields == ["checksum"], "\(run.problems)")
        #expect(run.problems.first?.offset == corrupted.count - vector.algorithm.width)
        #expect(run.readings.count == 1)
        #expect(run.readings.first?.raw == good)
    }

    @Test("a frame split at every point decodes the same")
    func split() {
        let vector = ChecksumTests.checkValues.first { $0.algorithm == .crc16MODBUS }!
        let stream = Self.frame(vector) + Self.frame(vector)
        for point in 0...stream.count {
            let run = FramesHarness.feed(Self.spec(.crc16MODBUS), [Array(stream[..<point]), Array(stream[point...])])
            #expect(run.readings.count == 2, "split at \(point)")
            #expect(run.problems.isEmpty, "split at \(point): \(run.problems)")
        }
    }

    @Test("garbage that holds part of the sync bytes does not hide the real sync")
    func partialSync() {
        let vector = ChecksumTests.checkValues.first { $0.algorithm == .sum8 }!
        // AA AA 55: the first AA is garbage; AA 55 ending a chunk must be kept for the next one.
        let run = FramesHarness.feed(Self.spec(.sum8), [[0x00, 0xAA], [0xAA], [0x55] + Self.frame(vector).dropFirst(2)])
        #expect(run.readings.count == 1)
        #expect(run.problemFields == ["frame start"])
        #expect(run.problems.first?.problem.hasPrefix("2 bytes") == true)
    }

    @Test("a length field beyond maximumLength resynchronises instead of waiting")
    func lengthTooBig() {
        let vector = ChecksumTests.checkValues.first { $0.algorithm == .xor8 }!
        // LEN 0xFF would make a 259-byte frame; maximumLength is 64, so AA 55 FF cannot start a frame.
        let run = FramesHarness.feed(Self.spec(.xor8), [[0xAA, 0x55, 0xFF, 0x01, 0x02] + Self.frame(vector)])
        #expect(run.readings.count == 1)
        #expect(run.problemFields == ["frame start"])
        #expect(run.problems.first?.problem.hasPrefix("5 bytes") == true)
    }

    @Test("a length smaller than the header is rejected, not read out of range")
    func lengthTooSmall() {
        // add -10 makes every LEN below 13 give a length shorter than the 3 header bytes.
        var spec = Self.spec(.sum8)
        spec.length = .field(field(2), add: -10)
        spec.checksum = nil
        let run = FramesHarness.feed(spec, [[0xAA, 0x55, 0x00, 0xAA, 0x55, 0x01, 0xAA, 0x55]])
        #expect(run.readings.isEmpty)
    }

    @Test("the buffer stays bounded while no frame start arrives")
    func bounded() {
        var harness = FramesHarness(Self.spec(.sum8))
        for _ in 0..<100 { harness.receive([UInt8](repeating: 0x00, count: 1000)) }
        // A sync and a length that promises a 64-byte frame (0x3C + 4): the engine waits for all of it.
        harness.receive([0xAA, 0x55, 0x3C, 0x01])
        harness.receive([UInt8](repeating: 0x00, count: 59))
        #expect(harness.run.events.isEmpty)
        // The 64th byte completes it; its sum8 (over 01 00 … 00 = 0x01) differs from the stored 0x00.
        let vector = ChecksumTests.checkValues.first { $0.algorithm == .sum8 }!
        harness.receive([0x00] + Self.frame(vector))
        #expect(harness.run.problemFields == ["frame start", "checksum"], "\(harness.run.problems)")
        #expect(harness.run.problems.first?.problem.hasPrefix("100000 bytes") == true)
        #expect(harness.run.problems.first?.offset == 0)
        #expect(harness.run.readings.count == 1)
    }

    /// A Modbus RTU temperature/humidity sensor: request and reply as published in microrobotics/RS485-TH,
    /// Reading-Data-from-RS485.md-TH.md @ 7e26b46aeb0f1323228e80baf942b0f73e94c09b: "Request Data = 01 03
    /// 00 00 00 02 C4 0B", "Data Returned from sensor = 01 03 04 01 11 02 72 2A 8F", CRC low byte first,
    /// byte 3-4 "Temp Hi Byte"/"Temp Low Byte".
    @Test("a real Modbus sensor exchange: the rendered request and the reply's CRC")
    func modbusSensor() {
        let spec = FramesSpec(
            sync: .bytes([0x01, 0x03]),
            length: .field(field(2), add: 5),
            checksum: FramesSpec.Checksum(algorithm: .crc16MODBUS, from: 0, through: -3, at: -2, bigEndian: false),
            messages: [FramesSpec.Message(name: "registers", captures: ["temperature": field(3, width: 2, big: true)])],
            script: [
                .exchange(.init(send: [.bytes([0x01, 0x03, 0x00, 0x00, 0x00, 0x02]), .checksum], expect: ["registers"],
                                timeoutMilliseconds: 1000, retries: 0)),
                // Echo the captured temperature back, to observe the capture: 0x0111 as the source's hi/lo bytes.
                .exchange(.init(send: [.bytes([0x01, 0x06, 0x00, 0x00]), .variable("temperature", width: 2, bigEndian: true)],
                                expect: [], timeoutMilliseconds: 1000, retries: 0)),
            ])
        var harness = FramesHarness(spec)
        harness.start()
        #expect(harness.run.sends == [[0x01, 0x03, 0x00, 0x00, 0x00, 0x02, 0xC4, 0x0B]])
        harness.receive([0x01, 0x03, 0x04, 0x01, 0x11, 0x02, 0x72, 0x2A, 0x8F])
        #expect(harness.run.problems.isEmpty, "\(harness.run.problems)")
        #expect(harness.run.sends.last == [0x01, 0x06, 0x00, 0x00, 0x01, 0x11])
        #expect(harness.run.finished == [true])
    }
}

// MARK: - Whole chunks, per-message lengths

@Suite("Frames engine: sync none and per-message lengths")
struct ChunkFramesTests {
    /// HID-style reports: type byte 0, `01` a 3-byte count, `02` a 6-byte record; reports are padded.
    static let hidSpec = FramesSpec(
        sync: .none, length: .perMessage,
        messages: [
            FramesSpec.Message(name: "count", match: [equals(0, 0x01)], length: 3, captures: ["count": field(1, width: 2)]),
            FramesSpec.Message(name: "record", match: [equals(0, 0x02)], length: 6, reading: FramesSpec.ReadingMap(kind: .bloodPressure, values: [
                FramesSpec.ValueMap(type: .systolic, unit: .millimetreOfMercury, field: field(1, width: 2)),
                FramesSpec.ValueMap(type: .diastolic, unit: .millimetreOfMercury, field: field(3)),
                FramesSpec.ValueMap(type: .pulseRate, unit: .perMinute, field: field(4)),
            ])),
        ])

    static func padded(_ bytes: [UInt8], to size: Int = 8, with pad: UInt8 = 0x00) -> [UInt8] {
        bytes + [UInt8](repeating: pad, count: max(size - bytes.count, 0))
    }

    @Test("each chunk is one frame and padding after the message is ignored")
    func padding() {
        // 0x0078 = 120 little-endian, 0x50 = 80, 0x48 = 72; the sixth byte and the padding are not fields.
        let run = FramesHarness.feed(Self.hidSpec, [Self.padded([0x02, 0x78, 0x00, 0x50, 0x48, 0x00], with: 0xFF),
                                                    Self.padded([0x02, 0x79, 0x00, 0x51, 0x49, 0x00])])
        #expect(run.values == [["systolic=120", "diastolic=80", "pulse-rate=72"], ["systolic=121", "diastolic=81", "pulse-rate=73"]])
        #expect(run.readings.first?.raw == [0x02, 0x78, 0x00, 0x50, 0x48, 0x00])
        #expect(run.problems.isEmpty)
    }

    @Test("a chunk is never joined with the next: a short one is a problem")
    func short() {
        let run = FramesHarness.feed(Self.hidSpec, [[0x02, 0x78, 0x00], [0x50, 0x48, 0x00]])
        #expect(run.readings.isEmpty)
        #expect(run.problemFields == ["length", "message"])
    }

    @Test("a chunk that matches no message is one problem naming the messages")
    func unknown() {
        let run = FramesHarness.feed(Self.hidSpec, [Self.padded([0x09])])
        #expect(run.problemFields == ["message"])
        #expect(run.problems.first?.problem.contains("count, record") == true)
    }

    @Test("empty chunks produce nothing")
    func empty() {
        #expect(FramesHarness.feed(Self.hidSpec, [[], []]).events.isEmpty)
    }

    /// The same messages on a byte stream: sync `A5`, the type byte decides the length.
    static let streamSpec = FramesSpec(
        sync: .bytes([0xA5]), length: .perMessage,
        messages: [
            FramesSpec.Message(name: "short", match: [equals(1, 0x01)], length: 3, reading: FramesSpec.ReadingMap(kind: .heartRate, values: [
                FramesSpec.ValueMap(type: .heartRate, unit: .perMinute, field: field(2)),
            ])),
            FramesSpec.Message(name: "long", match: [equals(1, 0x02)], length: 5, reading: FramesSpec.ReadingMap(kind: .heartRate, values: [
                FramesSpec.ValueMap(type: .heartRate, unit: .perMinute, field: field(2, width: 3, big: true)),
            ])),
        ])

    @Test("per-message lengths on a stream, split at every point")
    func perMessageStream() {
        // long: 00 01 2C big-endian = 300.
        let stream: [UInt8] = [0xA5, 0x01, 0x48, 0xA5, 0x02, 0x00, 0x01, 0x2C, 0xA5, 0x01, 0x49]
        for point in 0...stream.count {
            let run = FramesHarness.feed(Self.streamSpec, [Array(stream[..<point]), Array(stream[point...])])
            #expect(run.values == [["heart-rate=72"], ["heart-rate=300"], ["heart-rate=73"]], "split at \(point)")
            #expect(run.problems.isEmpty, "split at \(point)")
        }
    }

    @Test("a type byte no message claims is skipped as garbage")
    func perMessageUnknownType() {
        let run = FramesHarness.feed(Self.streamSpec, [[0xA5, 0x07, 0x00, 0xA5, 0x01, 0x48]])
        #expect(run.values == [["heart-rate=72"]])
        #expect(run.problemFields == ["frame start"])
    }
}

// MARK: - Values

@Suite("Frames engine: value mapping")
struct FramesValueTests {
    static func spec(_ values: [FramesSpec.ValueMap], kind: MeasurementKind = .bodyWeight, time: FramesSpec.TimeMap? = nil,
                     userSlot: FramesSpec.IntegerMap? = nil, status: [FramesSpec.StatusRule] = [], interval: Int? = nil) -> FramesSpec {
        FramesSpec(sync: .none, length: .fixed(12), messages: [FramesSpec.Message(name: "m", reading: FramesSpec.ReadingMap(
            kind: kind, values: values, time: time, userSlot: userSlot, status: status, minimumIntervalMilliseconds: interval))])
    }

    static func value(_ field: FramesSpec.FieldSpec, scale: String = "1", add: Int64 = 0) -> FramesSpec.ValueMap {
        FramesSpec.ValueMap(type: .bodyWeight, unit: .kilogram, field: field, scale: DecimalValue(scale)!, add: add)
    }

    static func decode(_ value: FramesSpec.ValueMap, _ frame: [UInt8]) -> String? {
        FramesHarness.feed(spec([value]), [frame]).readings.first?.values.first?.value.description
    }

    static let zeros = [UInt8](repeating: 0, count: 12)

    static func frame(_ prefix: [UInt8]) -> [UInt8] { prefix + [UInt8](repeating: 0, count: 12 - prefix.count) }

    @Test("scale keeps exact decimals: 4660 × 0.005 = 23.300")
    func scale() {
        // 34 12 little-endian = 0x1234 = 4660; 4660 × 5 = 23300, three decimals.
        #expect(Self.decode(Self.value(field(0, width: 2), scale: "0.005"), Self.frame([0x34, 0x12])) == "23.300")
        // 0.1 × 7 = 0.7, not 0.7000000000000001.
        #expect(Self.decode(Self.value(field(0), scale: "0.1"), Self.frame([0x07])) == "0.7")
        // A scale above 1: 25 × 20 = 500.
        #expect(Self.decode(Self.value(field(0), scale: "20"), Self.frame([25])) == "500")
    }

    @Test("add is in raw units and applies before the scale")
    func add() {
        // (100 + (−40)) × 0.5 = 30.0
        #expect(Self.decode(Self.value(field(0), scale: "0.5", add: -40), Self.frame([100])) == "30.0")
    }

    @Test("signed fields use two's complement over their own bit count")
    func signed() {
        #expect(Self.decode(Self.value(field(0, width: 2, signed: true)), Self.frame([0xFE, 0xFF])) == "-2")
        #expect(Self.decode(Self.value(field(0, width: 2, signed: false)), Self.frame([0xFE, 0xFF])) == "65534")
        // Bits 0-3 of 0x0F as a signed 4-bit field: 1111 = −1; 0x07 = 0111 = 7.
        #expect(Self.decode(Self.value(field(0, bits: 0...3, signed: true)), Self.frame([0x0F])) == "-1")
        #expect(Self.decode(Self.value(field(0, bits: 0...3, signed: true)), Self.frame([0x07])) == "7")
        // 32-bit signed minimum: 00 00 00 80 little-endian = −2147483648.
        #expect(Self.decode(Self.value(field(0, width: 4, signed: true)), Self.frame([0, 0, 0, 0x80])) == "-2147483648")
        #expect(Self.decode(Self.value(field(0, width: 4)), Self.frame([0xFF, 0xFF, 0xFF, 0xFF])) == "4294967295")
    }

    @Test("endianness and multi-part fields")
    func parts() {
        #expect(Self.decode(Self.value(field(0, width: 2, big: true)), Self.frame([0x12, 0x34])) == "4660")
        #expect(Self.decode(Self.value(field(1, width: 3)), Self.frame([0xFF, 0x01, 0x02, 0x03])) == "197121")  // 0x030201
        // Bits 4-7 of byte 0 (0xA_ → 0xA) are the high part, byte 2 the low: 0xA << 8 | 0x5C = 2652.
        let split = FramesSpec.FieldSpec(parts: [Part(offset: 0, bits: 4...7), Part(offset: 2)])
        #expect(Self.decode(Self.value(split), Self.frame([0xA3, 0xFF, 0x5C])) == "2652")
        // A big-endian 16-bit part's bits 3-12: 0x1FF8 >> 3 = 0x3FF = 1023.
        #expect(Self.decode(Self.value(field(0, width: 2, big: true, bits: 3...12)), Self.frame([0x1F, 0xF8])) == "1023")
    }

    @Test("scale overflow is a problem, not a trap")
    func overflow() {
        // 4294967295 × 10^10 exceeds Int64 (about 9.2 × 10^18). Profiles cannot say this (scale is at
        // most 10^9), but the engine must not rely on its loader.
        let run = FramesHarness.feed(Self.spec([Self.value(field(0, width: 4), scale: "10000000000")]), [Self.frame([0xFF, 0xFF, 0xFF, 0xFF])])
        #expect(run.readings.isEmpty)
        #expect(run.problemFields == ["body-weight"])
    }

    static func integer(_ offset: Int, add: Int = 0, unknown: [Int64] = []) -> FramesSpec.IntegerMap {
        FramesSpec.IntegerMap(field: field(offset), add: add, unknown: unknown)
    }

    static let time = FramesSpec.TimeMap(year: integer(1, add: 2000, unknown: [0]), month: integer(2), day: integer(3),
                                         hour: integer(4), minute: integer(5), second: integer(6))

    @Test("time fields give the device time")
    func time() {
        // Year 24 (+2000), month 6, day 15, 17:17:27.
        let run = FramesHarness.feed(Self.spec([Self.value(field(0))], time: Self.time), [Self.frame([70, 24, 6, 15, 17, 17, 27])])
        #expect(run.readings.first?.deviceTime?.time.description == "2024-06-15T17:17:27")
    }

    @Test("an impossible date is a problem naming the time")
    func invalidTime() {
        // Month 13; and 31 April.
        for frame in [Self.frame([70, 24, 13, 1, 0, 0, 0]), Self.frame([70, 24, 4, 31, 0, 0, 0])] {
            let run = FramesHarness.feed(Self.spec([Self.value(field(0))], time: Self.time), [frame])
            #expect(run.readings.isEmpty)
            #expect(run.problemFields == ["time"])
            #expect(run.problems.first?.problem.contains("not a valid date") == true)
        }
    }

    @Test("an 'unknown' raw time part means no device time, and the reading still counts")
    func unknownTime() {
        let run = FramesHarness.feed(Self.spec([Self.value(field(0))], time: Self.time), [Self.frame([70, 0, 6, 15, 17, 17, 27])])
        #expect(run.readings.count == 1)
        #expect(run.readings.first?.deviceTime == nil)
    }

    @Test("user slot (with add and unknown) and status rules")
    func slotAndStatus() {
        let spec = Self.spec([Self.value(field(0))], userSlot: Self.integer(1, add: 1, unknown: [0xFF]),
                             status: [FramesSpec.StatusRule(when: [FramesSpec.ByteCondition(offset: 2, pattern: .init(mask: 0x01, value: 0x01))],
                                                            status: .questionable)])
        let run = FramesHarness.feed(spec, [Self.frame([70, 0, 0x01]), Self.frame([70, 0xFF, 0x02])])
        #expect(run.readings.map(\.userSlot) == [1, Reading.unknownUserSlot])
        #expect(run.readings.map(\.status) == [.questionable, []])
    }

    @Test("minimumIntervalMs lets through at most one reading per interval")
    func throttle() {
        var harness = FramesHarness(Self.spec([Self.value(field(0))], interval: 1000))
        var emittedAt: [Int] = []
        var elapsed = 0
        for step in [0, 200, 800, 500, 600, 999, 1] {  // at 0, 200, 1000, 1500, 2100, 3099, 3100 ms
            harness.advance(milliseconds: step)
            elapsed += step
            let before = harness.run.readings.count
            harness.receive(Self.frame([UInt8(elapsed % 256)]))
            if harness.run.readings.count > before { emittedAt.append(elapsed) }
        }
        #expect(emittedAt == [0, 1000, 2100, 3100])
        // Time that arrives in many small steps (a replay advances 1 ms per capture line) still counts a
        // whole interval: the 1000th millisecond after a reading lets the next one through.
        var fine = FramesHarness(Self.spec([Self.value(field(0))], interval: 1000))
        fine.receive(Self.frame([1]))
        for _ in 0..<999 {
            fine.advance(milliseconds: 1)
            fine.receive(Self.frame([2]))
        }
        #expect(fine.run.readings.count == 1)
        fine.advance(milliseconds: 1)
        fine.receive(Self.frame([3]))
        #expect(fine.run.readings.count == 2)
        // The hub clock stepping back (NTP) must not silence the device for the size of the step.
        harness.advance(milliseconds: -60_000)
        harness.receive(Self.frame([1]))
        #expect(harness.run.readings.count == 5)
    }
}

// MARK: - Script

@Suite("Frames engine: request/response script")
struct FramesScriptTests {
    /// `A5 TYPE payload… SUM8`; `01` answers with a 16-bit record count, `02` with one record.
    static func spec(retries: Int = 0, indexTemplate: [FramesSpec.TemplatePart] = [.variable("index", width: 2, bigEndian: true)]) -> FramesSpec {
        FramesSpec(
            sync: .bytes([0xA5]), length: .perMessage,
            checksum: FramesSpec.Checksum(algorithm: .sum8, from: 0, through: -2, at: -1, bigEndian: false),
            messages: [
                FramesSpec.Message(name: "count", match: [equals(1, 0x01)], length: 5, captures: ["count": field(2, width: 2)]),
                FramesSpec.Message(name: "record", match: [equals(1, 0x02)], length: 4, reading: FramesSpec.ReadingMap(kind: .heartRate, values: [
                    FramesSpec.ValueMap(type: .heartRate, unit: .perMinute, field: field(2)),
                ])),
                FramesSpec.Message(name: "busy", match: [equals(1, 0x0E)], length: 3, ignoreWhen: [[equals(1, 0x0E)]]),
            ],
            script: [
                .exchange(.init(send: [.bytes([0xA5, 0x01]), .checksum], expect: ["count"], timeoutMilliseconds: 500, retries: retries)),
                .repeatSteps(count: "count", variable: "index", from: 1, steps: [
                    .exchange(.init(send: [.bytes([0xA5, 0x02])] + indexTemplate + [.checksum], expect: ["record"],
                                    timeoutMilliseconds: 300, retries: retries)),
                ]),
                .exchange(.init(send: [.bytes([0xA5, 0x03]), .variable("count", width: 1, bigEndian: false), .checksum], expect: [],
                                timeoutMilliseconds: 100, retries: 0)),
            ])
    }

    /// Device replies, with sum8 over all bytes before the last.
    static func reply(_ body: [UInt8]) -> [UInt8] {
        body + [body.reduce(UInt8(0), &+)]
    }

    @Test("sends, captures a count, repeats with {index} and {checksum}, finishes")
    func download() {
        var harness = FramesHarness(Self.spec())
        harness.start()
        // A5 01 + sum8 (0xA5 + 0x01 = 0xA6).
        #expect(harness.run.sends == [[0xA5, 0x01, 0xA6]])
        #expect(harness.session.timeoutMilliseconds == 500)
        // Count 2, little-endian 02 00; sum 0xA5 + 0x01 + 0x02 = 0xA8.
        harness.receive([0xA5, 0x01, 0x02, 0x00, 0xA8])
        // index 1 as two big-endian bytes: A5 02 00 01, sum 0xA8.
        #expect(harness.run.sends.last == [0xA5, 0x02, 0x00, 0x01, 0xA8])
        #expect(harness.session.timeoutMilliseconds == 300)
        harness.receive(Self.reply([0xA5, 0x02, 72]))
        #expect(harness.run.sends.last == [0xA5, 0x02, 0x00, 0x02, 0xA9])
        harness.receive(Self.reply([0xA5, 0x02, 73]))
        // The closing request renders count (2) in one byte: A5 03 02, sum 0xAA; it expects nothing.
        #expect(harness.run.sends == [[0xA5, 0x01, 0xA6], [0xA5, 0x02, 0x00, 0x01, 0xA8], [0xA5, 0x02, 0x00, 0x02, 0xA9], [0xA5, 0x03, 0x02, 0xAA]])
        #expect(harness.run.values == [["heart-rate=72"], ["heart-rate=73"]])
        #expect(harness.run.finished == [true])
        #expect(harness.run.problems.isEmpty)
        #expect(harness.session.timeoutMilliseconds == nil)
    }

    @Test("variables render little-endian by default and in widths 1 to 4")
    func widths() {
        // index 1: 4 bytes LE = 01 00 00 00; sum 0xA5 + 0x02 + 0x01 = 0xA8.
        var harness = FramesHarness(Self.spec(indexTemplate: [.variable("index", width: 4, bigEndian: false)]))
        harness.start()
        harness.receive([0xA5, 0x01, 0x01, 0x00, 0xA7])
        #expect(harness.run.sends.last == [0xA5, 0x02, 0x01, 0x00, 0x00, 0x00, 0xA8])
        // Width 3 big-endian of a count of 0x0102 = 258 records: index 1 = 00 00 01.
        var big = FramesHarness(Self.spec(indexTemplate: [.variable("index", width: 3, bigEndian: true), .variable("count", width: 2, bigEndian: true)]))
        big.start()
        big.receive([0xA5, 0x01, 0x02, 0x01, 0xA9])
        // A5 02 00 00 01 01 02: sum = 0xA5 + 0x02 + 0x01 + 0x01 + 0x02 = 0xAB.
        #expect(big.run.sends.last == [0xA5, 0x02, 0x00, 0x00, 0x01, 0x01, 0x02, 0xAB])
    }

    @Test("a count of zero skips the loop")
    func zeroCount() {
        var harness = FramesHarness(Self.spec())
        harness.start()
        harness.receive([0xA5, 0x01, 0x00, 0x00, 0xA6])
        #expect(harness.run.sends.last == [0xA5, 0x03, 0x00, 0xA8])
        #expect(harness.run.finished == [true])
    }

    @Test("a repeat count above 65535 from the device stops the script with a problem")
    func implausibleCount() {
        var spec = Self.spec()
        spec.messages[0] = FramesSpec.Message(name: "count", match: [equals(1, 0x01)], length: 7, captures: ["count": field(2, width: 4)])
        // 65536 = 00 00 01 00 little-endian; sum 0xA5 + 0x01 + 0x01 = 0xA7.
        var harness = FramesHarness(spec)
        harness.start()
        harness.receive([0xA5, 0x01, 0x00, 0x00, 0x01, 0x00, 0xA7])
        #expect(harness.run.sends.count == 1)
        #expect(harness.run.problemFields == ["count"])
        #expect(harness.run.finished == [false])
        #expect(harness.session.timeoutMilliseconds == nil)
        // 65535 (FF FF 00 00; sum 0xA5 + 0x01 + 0xFF + 0xFF = 0x2A4 → 0xA4) is allowed: the first request goes out.
        var largest = FramesHarness(spec)
        largest.start()
        largest.receive([0xA5, 0x01, 0xFF, 0xFF, 0x00, 0x00, 0xA4])
        #expect(largest.run.sends.last == [0xA5, 0x02, 0x00, 0x01, 0xA8])
        #expect(largest.run.problems.isEmpty)
    }

    @Test("an ignored frame can still answer an expect")
    func ignoredAnswers() {
        var spec = Self.spec()
        spec.script = [.exchange(.init(send: [.bytes([0xA5, 0x0E]), .checksum], expect: ["busy"], timeoutMilliseconds: 100, retries: 0))]
        var harness = FramesHarness(spec)
        harness.start()
        harness.receive(Self.reply([0xA5, 0x0E]))
        #expect(harness.run.finished == [true])
        #expect(harness.run.readings.isEmpty)
    }

    @Test("timeouts resend until retries run out, then a problem and finished(complete: false)")
    func timeout() {
        var harness = FramesHarness(Self.spec(retries: 2))
        harness.start()
        harness.timeout()
        harness.timeout()
        #expect(harness.run.sends == [[0xA5, 0x01, 0xA6], [0xA5, 0x01, 0xA6], [0xA5, 0x01, 0xA6]])
        #expect(harness.run.finished.isEmpty)
        harness.timeout()
        #expect(harness.run.sends.count == 3)
        #expect(harness.run.problemFields == ["response"])
        #expect(harness.run.problems.first?.problem.contains("no count within 500 ms") == true)
        #expect(harness.run.finished == [false])
        #expect(harness.session.timeoutMilliseconds == nil)
        // After giving up, late answers decode but start nothing, and further timeouts are no-ops.
        harness.receive([0xA5, 0x01, 0x02, 0x00, 0xA8])
        harness.timeout()
        #expect(harness.run.sends.count == 3)
        #expect(harness.run.finished == [false])
    }

    @Test("a retry that gets its answer continues the script")
    func retryThenAnswer() {
        var harness = FramesHarness(Self.spec(retries: 1))
        harness.start()
        harness.timeout()
        harness.receive([0xA5, 0x01, 0x00, 0x00, 0xA6])
        #expect(harness.run.finished == [true])
        #expect(harness.run.problems.isEmpty)
    }

    @Test("a profile without a script sends nothing and never finishes")
    func noScript() {
        var harness = FramesHarness(ChunkFramesTests.streamSpec)
        harness.start()
        harness.timeout()
        #expect(harness.run.events.isEmpty)
        #expect(harness.session.timeoutMilliseconds == nil)
    }
}

// MARK: - Never a trap

@Suite("Frames engine: hostile input")
struct FramesFuzzTests {
    static let specs: [(String, FramesSpec)] = [
        ("fixed", FixedFramesTests.spec), ("length field", LengthFieldFramesTests.spec(.crc16ARC)),
        ("chunks", ChunkFramesTests.hidSpec), ("per message", ChunkFramesTests.streamSpec), ("script", FramesScriptTests.spec(retries: 1)),
        ("time", FramesValueTests.spec([FramesValueTests.value(field(0, width: 4, signed: true), scale: "0.001")], time: FramesValueTests.time)),
    ]

    @Test("random chunks never trap and keep the buffer bounded", arguments: 0..<specs.count)
    func random(_ index: Int) {
        let (_, spec) = Self.specs[index]
        var generator = SeededGenerator(seed: UInt64(index) &+ 0xF00D)
        var harness = FramesHarness(spec)
        harness.start()
        for _ in 0..<3000 {
            // Bytes biased towards the sync and type bytes, so that partial frames are common.
            let count = Int.random(in: 0...40, using: &generator)
            let chunk = (0..<count).map { _ in
                [0xA5, 0xAA, 0x55, 0x80, 0x01, 0x02, UInt8.random(in: 0...255, using: &generator)].randomElement(using: &generator)!
            }
            harness.receive(chunk)
            if Int.random(in: 0..<10, using: &generator) == 0 { harness.timeout() }
            harness.advance(milliseconds: 7)
        }
        // Every problem names its field; nothing else is asserted about random bytes.
        #expect(harness.run.problems.allSatisfy { !$0.field.isEmpty })
    }
}
