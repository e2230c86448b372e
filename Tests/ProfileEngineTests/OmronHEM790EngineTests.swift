import Foundation
import Testing
import VitalModel
import VitalGateTestKit
@testable import ProfileEngine

// Tests of the `omron-hem790` engine. Device reports marked with a Seq number are transcribed from openyou/libomron
// doc/logs/hem790it/*.html @ 7febf1792621f381050881ee827b186bbd6ed610 (USBlyzer logs of a real HEM-790IT; see
// DeviceProfiles/omron/hem-790it/SOURCES.md). Reports marked "constructed" are built for the test from the layout of
// doc/omron_protocol_notes.asciidoc; they are inputs, not golden vectors.

/// Reports of a real session (1_2_07_TwoReadings.html unless noted), by Seq.
private enum OmronLog {
    static let clearingOK = "02 4F 4B 00 06 00 00 00"                                         // 0290
    static let notYet = "08 60 00 00 00 00 00 00"                                             // 0254
    static let empty = "00 00 00 00 00 00 00 00"                                              // 0221
    static let version = ["07 4F 4B 00 4D 37 30 38", "07 30 49 54 20 32 30 37", "01 4A 49 FF 20 32 30 37"]  // 0302-0314
    static let countTwo = ["07 4F 4B 00 00 14 00 02", "01 16 4B 00 00 14 00 02"]              // 0374-0380
    static let recordIndex1 = ["07 4F 4B 00 07 01 01 00", "07 06 26 00 00 7B 4E 57", "03 00 00 45 00 7B 4E 57"]  // 0398-0410
    static let no = "02 4E 4F 45 00 7B 4E 57"                                                 // 0428
    static let recordIndex0 = ["07 4F 4B 00 07 01 02 00", "07 08 26 00 00 78 49 43", "03 00 00 58 00 78 49 43"]  // 0446-0458
    static let endOK = "02 4F 4B 58 00 78 49 43"                                              // 0470
    static let off = "05 4F 46 46 0D 0A 49 43"                                                // 0476
    /// Omron790IT.html 0387-0393: a GDC answer with count 0.
    static let countZero = ["07 4F 4B 00 00 00 00 00", "01 00 30 54 00 00 00 00"]

    // Host reports of the same log.
    static let clearingBlock = Array(repeating: "07 00 00 00 00 00 00 00", count: 4) + ["02 00 00 00 00 00 00 00"]  // 0220-0250
    static let gdc = ["07 47 44 43 00 00 00 00", "01 00 44 43 00 00 00 00"]                   // 0364-0370
    static let gmeIndex1 = ["07 47 4D 45 00 00 00 01", "01 01 4D 45 00 00 00 01"]             // 0388-0394
    static let gmeIndex0 = ["07 47 4D 45 00 00 00 00", "01 00 4D 45 00 00 00 00"]             // 0418-0424
}

/// `"07 4F 4B"` → bytes.
private func report(_ text: String) -> [UInt8] {
    bytes(text.replacingOccurrences(of: " ", with: ""))
}

private func reports(_ texts: [String]) -> [[UInt8]] { texts.map(report) }

/// XOR of `bytes`, for constructed answers.
private func xor(_ bytes: [UInt8]) -> UInt8 { bytes.reduce(0, ^) }

/// The reports carrying a constructed `OK 00 <data> <xor>` answer, 7 valid bytes per report.
private func constructedAnswer(_ data: [UInt8]) -> [[UInt8]] {
    let body = [0x00] + data
    let answer: [UInt8] = [0x4F, 0x4B] + body + [xor(body)]
    return stride(from: 0, to: answer.count, by: 7).map { start in
        let part = Array(answer[start..<min(start + 7, answer.count)])
        return [UInt8(part.count)] + part + Array(repeating: 0, count: 7 - part.count)
    }
}

/// One session with a fixed device and clock; each call returns that call's events.
private struct OmronHarness {
    static let device = DeviceIdentity(usb: USBIdentity(vendorID: 0x0590, productID: 0x0028, serial: nil))
    static let origin = HubTimestamp(iso8601: "2025-01-01T08:00:00+07:00")!

    var session: any EngineSession
    var all: [EngineEvent] = []

    init(_ parameters: OmronHEM790Engine.Parameters) {
        session = OmronHEM790Engine(parameters: parameters).makeSession(device: Self.device, profileID: "omron/hem-790it")
    }

    @discardableResult mutating func start() -> [EngineEvent] { note(session.start(at: Self.origin)) }
    @discardableResult mutating func receive(_ bytes: [UInt8]) -> [EngineEvent] { note(session.receive(bytes, channel: nil, at: Self.origin)) }
    @discardableResult mutating func receive(_ text: String) -> [EngineEvent] { receive(report(text)) }
    @discardableResult mutating func receive(_ texts: [String]) -> [EngineEvent] { texts.flatMap { receive($0) } }
    @discardableResult mutating func receive(_ reports: [[UInt8]]) -> [EngineEvent] { reports.flatMap { receive($0) } }
    @discardableResult mutating func timeout() -> [EngineEvent] { note(session.timeout(at: Self.origin)) }

    private mutating func note(_ events: [EngineEvent]) -> [EngineEvent] {
        all += events
        return events
    }

    /// A session without preamble, past the clearing block: the engine has just sent GDC.
    static func awaitingCount(retries: Int = 3, maximumRecords: Int? = nil) -> OmronHarness {
        var harness = OmronHarness(.init(preamble: [], maximumRecords: maximumRecords, retries: retries))
        harness.start()
        harness.receive(OmronLog.clearingOK)
        return harness
    }

    /// Past GDC (count 2): the engine has just sent GME for index 1.
    static func awaitingRecord(retries: Int = 3) -> OmronHarness {
        var harness = awaitingCount(retries: retries)
        harness.receive(OmronLog.countTwo)
        return harness
    }

    /// Past both records: the engine has just sent END.
    static func awaitingEnd() -> OmronHarness {
        var harness = awaitingRecord()
        harness.receive(OmronLog.recordIndex1)
        harness.receive(OmronLog.recordIndex0)
        return harness
    }
}

private extension Array where Element == EngineEvent {
    var sends: [[UInt8]] { compactMap { if case .send(let bytes, _) = $0 { bytes } else { nil } } }
    var readings: [Reading] { compactMap { if case .reading(let reading) = $0 { reading } else { nil } } }
    var problems: [DecodeError] { compactMap { if case .problem(let problem) = $0 { problem } else { nil } } }
    var finished: [Bool] { compactMap { if case .finished(let complete) = $0 { complete } else { nil } } }
}

// MARK: - Captures

/// A capture file's `>` and `<` lines (the text format of Sources/ProfileCatalog/Capture.swift, read here without it).
private struct OmronCapture: CustomStringConvertible {
    enum Line { case host([UInt8]), device([UInt8]) }
    let name: String
    let lines: [Line]

    static let directory = RepositoryPaths.root.appendingPathComponent("DeviceProfiles/omron/hem-790it")

    static var all: [OmronCapture] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.filter { $0.hasSuffix(".capture") }.sorted().map(load)
    }

    static func load(_ name: String) -> OmronCapture {
        let text = (try? String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)) ?? ""
        var lines: [Line] = []
        for raw in text.split(separator: "\n") {
            let line = raw.trimmingCharacters(in: .whitespaces)
            guard let first = line.first, first == ">" || first == "<" else { continue }
            let hex = line.dropFirst().trimmingCharacters(in: .whitespaces)
            lines.append(first == ">" ? .host(report(hex)) : .device(report(hex)))
        }
        return OmronCapture(name: name, lines: lines)
    }

    /// The readings its `.expected.json` states: `type=value unit` per value, and the device time.
    var expected: (readings: [[String]], times: [String], problems: [String]) {
        let file = Self.directory.appendingPathComponent(name.replacingOccurrences(of: ".capture", with: ".expected.json"))
        guard let data = try? Data(contentsOf: file),
              let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let readings = root["readings"] as? [[String: Any]] else { return ([["unreadable \(file.path)"]], [], []) }
        let values = readings.map { reading in
            ((reading["values"] as? [[String: Any]]) ?? []).map { value in
                "\(value["type"] ?? "?")=\(value["value"] ?? "?") \(value["unit"] ?? "?")"
            }
        }
        let times = readings.map { (($0["deviceTime"] as? [String: Any])?["time"] as? String) ?? "none" }
        return (values, times, (root["problems"] as? [String]) ?? [])
    }

    var description: String { name }
}

private func describe(_ reading: Reading) -> [String] {
    reading.values.map { "\($0.type.key)=\($0.value) \($0.unit.ucum)" }
}

@Suite("Omron HEM-790IT engine (omron-hem790)")
struct OmronHEM790EngineTests {
    /// The parameters of DeviceProfiles/omron/hem-790it.json.
    static let profileParameters = OmronHEM790Engine.Parameters(
        bank: 0, preamble: [.version, .profile, .morningAverage], model: "M7080IT", retries: 3, timeoutMilliseconds: 1000)

    @Test("the shipped captures exist")
    func capturesExist() {
        #expect(OmronCapture.all.count >= 5)
    }

    @Test("a session over each real capture sends the logged reports and yields the readings the sources state",
          arguments: OmronCapture.all)
    fileprivate func capture(_ capture: OmronCapture) {
        var harness = OmronHarness(Self.profileParameters)
        var pending = harness.start().sends
        var readings: [Reading] = []
        var problems: [DecodeError] = []
        for (number, line) in capture.lines.enumerated() {
            switch line {
            case .host(let bytes):
                #expect(!pending.isEmpty && pending.first == bytes,
                        "line \(number): the log shows \(hexString(bytes, separator: " ")), the engine sent \(pending.first.map { hexString($0, separator: " ") } ?? "nothing")")
                if !pending.isEmpty { pending.removeFirst() }
            case .device(let bytes):
                let events = harness.receive(bytes)
                pending += events.sends
                readings += events.readings
                problems += events.problems
            }
        }
        #expect(pending.isEmpty, "sends the capture does not show: \(pending.map { hexString($0, separator: " ") })")
        let expected = capture.expected
        #expect(readings.map(describe) == expected.readings)
        #expect(readings.map { $0.deviceTime?.time.description ?? "none" } == expected.times)
        #expect(problems.map(\.field) == expected.problems)
        #expect(harness.all.finished == [true])
        #expect(harness.session.timeoutMilliseconds == nil)
    }

    @Test("the device side of a capture alone, as `vitalgate decode` feeds it, gives the same readings",
          arguments: OmronCapture.all)
    fileprivate func deviceSideOnly(_ capture: OmronCapture) {
        var harness = OmronHarness(Self.profileParameters)
        harness.start()
        for case .device(let bytes) in capture.lines { harness.receive(bytes) }
        #expect(harness.all.readings.map(describe) == capture.expected.readings)
        #expect(harness.all.problems.isEmpty)
    }

    @Test("readings carry the record bytes, the GME frame and a device time of second resolution, and claim no status")
    func readingShape() throws {
        var harness = OmronHarness.awaitingRecord()
        let reading = try #require(harness.receive(OmronLog.recordIndex1).readings.first)
        // The record: bytes 3 onward of the answer `OK 00 …` (0398-0410), 13 data bytes and the checksum.
        #expect(reading.raw == report("07 01 01 00 06 26 00 00 7B 4E 57 00 00 45"))
        #expect(reading.kind == .bloodPressure)
        #expect(reading.source == ReadingSource(profileID: "omron/hem-790it", frame: "GME"))
        #expect(reading.deviceTime?.resolution == .second && reading.deviceTime?.clock == .unknown)
        #expect(reading.values.map(\.unit) == [.millimetreOfMercury, .millimetreOfMercury, .perMinute])
        #expect(reading.status.isEmpty && reading.statusBits.isEmpty && reading.userSlot == nil)
        #expect(reading.device == OmronHarness.device && reading.receivedAt == OmronHarness.origin)
    }

    // MARK: Output reports

    @Test("commands are split into reports as the Omron software sends them",
          arguments: [
            // (command from the notes, host reports as logged in 1_2_07_TwoReadings.html)
            ("47 44 43 00 00 00 00 00", OmronLog.gdc),
            ("47 4D 45 00 00 00 01 01", OmronLog.gmeIndex1),
            ("47 4D 41 00 00 00 00 00 00", ["07 47 4D 41 00 00 00 00", "02 00 00 41 00 00 00 00"]),  // 0340-0346
            ("47 4D 41 00 00 07 00 00 07", ["07 47 4D 41 00 00 07 00", "02 00 07 41 00 00 07 00"]),  // 0622-0628
            (String(repeating: "00 ", count: 30), OmronLog.clearingBlock),
            // Notes, "Get Unit Version": 05 56 45 52 30 30 XX XX; VitalGate sends 00 for the ignored bytes.
            ("56 45 52 30 30", ["05 56 45 52 30 30 00 00"]),
          ])
    func outputReports(_ command: String, _ logged: [String]) {
        let commandBytes = report(command.trimmingCharacters(in: .whitespaces))
        #expect(OmronHEM790Engine.outputReports(commandBytes) == reports(logged))
    }

    @Test("every command sent for banks 1 and 2 ends with the XOR of its bytes after the mnemonic", arguments: [1, 2])
    func bankChecksums(_ bank: Int) {
        var harness = OmronHarness(.init(bank: UInt8(bank), preamble: [.morningAverage]))
        harness.start()
        harness.receive(OmronLog.clearingOK)
        harness.receive(constructedAnswer([0x80, 0x03, 0x06, 0x0C, 0x1F, 0x00, 0x00, 0x00]))  // constructed GMA answer
        harness.receive(constructedAnswer([0x00, 0x14, 0x00, 0x02]))  // constructed GDC answer, count 2
        var commands: [[UInt8]] = []
        var current: [UInt8] = []
        for sent in harness.all.sends {
            #expect(sent.count == 8 && sent[0] <= 7)
            current += sent[1..<(1 + Int(sent[0]))]
            if sent[0] < 7 { commands.append(current); current = [] }
        }
        let addressed = commands.filter { $0.count > 4 && [Array("GMA".utf8), Array("GDC".utf8), Array("GME".utf8)].contains(Array($0.prefix(3))) }
        #expect(addressed.count == 3)  // GMA, GDC, GME index 1
        for command in addressed {
            #expect(command[4] == UInt8(bank), "\(hexString(command, separator: " ")) addresses another bank")
            #expect(xor(Array(command[3...])) == 0, "\(hexString(command, separator: " ")): bad checksum")
        }
    }

    // MARK: Malformed input

    enum Stage: Sendable { case count, record, end, finished }

    struct MalformedCase: Sendable, CustomStringConvertible {
        var name: String
        var stage: Stage
        var reports: [[UInt8]]
        var field: String
        var description: String { name }
    }

    static var recordWithMonth13: [[UInt8]] {
        // Constructed: the 0398-0410 record with month 13 and its checksum recomputed.
        constructedAnswer(report("07 0D 01 00 06 26 00 00 7B 4E 57 00 00"))
    }

    static let malformed: [MalformedCase] = [
        MalformedCase(name: "empty report", stage: .count, reports: [[]], field: "report"),
        MalformedCase(name: "9-byte report", stage: .count, reports: [report("07 4F 4B 00 00 14 00 02 16")], field: "report"),
        MalformedCase(name: "count beyond the report", stage: .count, reports: [report("07 4F 4B 00")], field: "count"),
        MalformedCase(name: "count byte 8 (the log's clearing answer) outside the clearing block", stage: .count,
                      reports: [report(OmronLog.notYet)], field: "count"),
        MalformedCase(name: "neither OK nor NO", stage: .count, reports: [report("02 4F 00 00 00 00 00 00")], field: "status"),
        MalformedCase(name: "garbage bytes first", stage: .count, reports: [report("07 FF FE 4F 4B 00 00 14")], field: "status"),
        MalformedCase(name: "OK not followed by 00", stage: .count, reports: [report("07 4F 4B 01 00 14 00 02")], field: "status"),
        MalformedCase(name: "NO with more bytes", stage: .count, reports: [report("03 4E 4F 00 00 00 00 00")], field: "status"),
        MalformedCase(name: "answer longer than GDC's", stage: .count,
                      reports: reports([OmronLog.countTwo[0], "02 16 00 00 00 00 00 00"]), field: "length"),
        MalformedCase(name: "GDC checksum off by one", stage: .count,
                      reports: reports([OmronLog.countTwo[0], "01 17 4B 00 00 14 00 02"]), field: "checksum"),
        MalformedCase(name: "GME record with its pulse byte changed", stage: .record,
                      reports: reports([OmronLog.recordIndex1[0], "07 06 26 00 00 7B 4E 58", OmronLog.recordIndex1[2]]), field: "checksum"),
        MalformedCase(name: "GME record with month 13", stage: .record, reports: recordWithMonth13, field: "time"),
        MalformedCase(name: "GME record with systolic 0", stage: .record,
                      reports: constructedAnswer(report("07 01 01 00 06 26 00 00 00 4E 57 00 00")), field: "systolic"),
        MalformedCase(name: "GME record with diastolic 0", stage: .record,
                      reports: constructedAnswer(report("07 01 01 00 06 26 00 00 7B 00 57 00 00")), field: "diastolic"),
        MalformedCase(name: "GME record with pulse 0", stage: .record,
                      reports: constructedAnswer(report("07 01 01 00 06 26 00 00 7B 4E 00 00 00")), field: "pulse-rate"),
        MalformedCase(name: "END answered with something other than OFF", stage: .end,
                      reports: reports([OmronLog.endOK, "05 4F 4E 21 0D 0A 00 00"]), field: "OFF"),
        MalformedCase(name: "a report after OFF", stage: .finished, reports: [report(OmronLog.countTwo[0])], field: "report"),
    ]

    @Test("malformed reports and answers are reported with the field at fault, never trapping", arguments: malformed)
    func malformedInput(_ test: MalformedCase) throws {
        var harness: OmronHarness
        switch test.stage {
        case .count: harness = .awaitingCount()
        case .record: harness = .awaitingRecord()
        case .end: harness = .awaitingEnd()
        case .finished:
            harness = .awaitingEnd()
            harness.receive([OmronLog.endOK, OmronLog.off])
        }
        let before = harness.all.count
        for bytes in test.reports { harness.receive(bytes) }
        let problems = Array(harness.all.dropFirst(before)).problems
        let problem = try #require(problems.first, "no problem reported")
        #expect(problem.field == test.field, "\(problem)")
        #expect(!problem.problem.isEmpty && !problem.hint.isEmpty && problem.offset >= 0)
        #expect(problems.count == 1, "\(problems)")
        #expect(Array(harness.all.dropFirst(before)).readings.isEmpty)
    }

    @Test("a record that does not decode is skipped and the download goes on")
    func badRecordSkipped() {
        var harness = OmronHarness.awaitingRecord()
        let events = harness.receive(Self.recordWithMonth13)
        #expect(events.problems.map(\.field) == ["time"])
        #expect(events.sends == reports(OmronLog.gmeIndex0))
    }

    @Test("every cut of every report of a real GME answer is reported as a count problem unless only stale bytes are cut",
          arguments: 0..<3)
    func truncatedReports(_ index: Int) {
        let whole = reports(OmronLog.recordIndex1)
        for length in 0..<whole[index].count {
            var harness = OmronHarness.awaitingRecord()
            var cut = whole
            cut[index] = Array(whole[index].prefix(length))
            let events = cut.flatMap { harness.receive($0) }
            let complete = length > 0 && Int(whole[index][0]) <= length - 1
            if complete {
                #expect(events.problems.isEmpty, "cut to \(length): \(events.problems)")
                #expect(events.readings.count == 1, "cut to \(length)")
            } else {
                #expect(events.problems.first?.field == (length == 0 ? "report" : "count"), "cut to \(length): \(events.problems)")
                #expect(events.readings.isEmpty, "cut to \(length)")
            }
        }
    }

    @Test("a VER00 answer from another device stops the download with END")
    func wrongModel() {
        var harness = OmronHarness(.init(preamble: [.version], model: "M7080IT"))
        harness.start()
        harness.receive(OmronLog.clearingOK)
        // Constructed: an 11-character version string of another model.
        let events = harness.receive(constructedAnswer(Array("HJ720IT 100".utf8)))
        #expect(events.problems.map(\.field) == ["model"])
        #expect(events.sends == [report("05 45 4E 44 FF FF 00 00")])
        harness.receive([OmronLog.endOK, OmronLog.off])
        #expect(harness.all.finished == [false])
    }

    @Test("the real VER00 answer passes the model check and GDC follows")
    func rightModel() {
        var harness = OmronHarness(.init(preamble: [.version], model: "M7080IT"))
        harness.start()
        harness.receive(OmronLog.clearingOK)
        let events = harness.receive(OmronLog.version)
        #expect(events.problems.isEmpty)
        #expect(events.sends == reports(OmronLog.gdc))
    }

    @Test("reports before start are refused")
    func beforeStart() {
        var harness = OmronHarness(.init())
        #expect(harness.receive(OmronLog.clearingOK).problems.map(\.field) == ["report"])
        #expect(harness.session.timeoutMilliseconds == nil)
    }

    // MARK: Clearing, timeouts and retries

    @Test("the clearing block is sent at start and again after the device's not-yet answer; empty reports are ignored")
    func clearing() {
        var harness = OmronHarness(.init(preamble: []))
        #expect(harness.start().sends == reports(OmronLog.clearingBlock))
        #expect(harness.receive(OmronLog.empty).isEmpty)
        #expect(harness.receive(OmronLog.notYet).sends == reports(OmronLog.clearingBlock))
        #expect(harness.receive(OmronLog.clearingOK).sends == reports(OmronLog.gdc))
        #expect(harness.all.problems.isEmpty)
    }

    @Test("a device that never accepts the clearing block ends the session without END")
    func clearingGivesUp() {
        var harness = OmronHarness(.init(preamble: [], retries: 1))
        harness.start()
        #expect(harness.timeout().sends == reports(OmronLog.clearingBlock))
        let last = harness.timeout()
        #expect(last.problems.map(\.field) == ["response"])
        #expect(last.sends.isEmpty)
        #expect(last.finished == [false])
        #expect(harness.session.timeoutMilliseconds == nil)
    }

    @Test("silence after a command: it is sent again `retries` times, then the session reports it and sends END")
    func silence() {
        var harness = OmronHarness.awaitingCount(retries: 2)
        #expect(harness.session.timeoutMilliseconds == 1000)
        #expect(harness.timeout().sends == reports(OmronLog.gdc))
        #expect(harness.timeout().sends == reports(OmronLog.gdc))
        let givenUp = harness.timeout()
        #expect(givenUp.problems.map(\.field) == ["response"])
        #expect(givenUp.sends == [report("05 45 4E 44 FF FF 00 00")])
        // END unanswered: the session ends, incomplete.
        #expect(harness.timeout().finished == [false])
        #expect(harness.session.timeoutMilliseconds == nil)
    }

    @Test("an answer cut off by silence is reported and asked for again")
    func cutOff() {
        var harness = OmronHarness.awaitingRecord()
        harness.receive(OmronLog.recordIndex1[0])
        let events = harness.timeout()
        #expect(events.problems.map(\.field) == ["length"])
        #expect(events.sends == reports(OmronLog.gmeIndex1))
        #expect(harness.receive(OmronLog.recordIndex1).readings.count == 1)
    }

    @Test("NO is answered by the same command at once; more NOs than retries give up with END")
    func noRetries() {
        var harness = OmronHarness.awaitingRecord(retries: 1)
        let first = harness.receive(OmronLog.no)
        #expect(first.problems.isEmpty)
        #expect(first.sends == reports(OmronLog.gmeIndex1))
        let second = harness.receive(OmronLog.no)
        #expect(second.problems.map(\.field) == ["response"])
        #expect(second.sends == [report("05 45 4E 44 FF FF 00 00")])
        harness.receive([OmronLog.endOK, OmronLog.off])
        #expect(harness.all.finished == [false])
    }

    @Test("a bad checksum is asked for again at once")
    func checksumRetry() {
        var harness = OmronHarness.awaitingCount()
        let events = harness.receive([OmronLog.countTwo[0], "01 17 4B 00 00 14 00 02"])
        #expect(events.problems.map(\.field) == ["checksum"])
        #expect(events.sends == reports(OmronLog.gdc))
        #expect(harness.receive(OmronLog.countTwo).sends == reports(OmronLog.gmeIndex1))
    }

    @Test("after a garbled answer the rest is dropped until the device is quiet, then the command is sent again")
    func garbledDrains() {
        var harness = OmronHarness.awaitingCount()
        #expect(harness.receive("02 4F 00 00 00 00 00 00").problems.map(\.field) == ["status"])
        // The rest of the garbled answer: dropped, nothing sent.
        #expect(harness.receive(OmronLog.countTwo[1]).isEmpty)
        #expect(harness.session.timeoutMilliseconds == 1000)
        #expect(harness.timeout().sends == reports(OmronLog.gdc))
        #expect(harness.receive(OmronLog.countTwo).sends == reports(OmronLog.gmeIndex1))
    }

    @Test("records are asked for from the oldest index to the newest; maximumRecords keeps the newest")
    func recordOrder() {
        var all = OmronHarness.awaitingCount()
        #expect(all.receive(OmronLog.countTwo).sends == reports(OmronLog.gmeIndex1))
        var newest = OmronHarness.awaitingCount(maximumRecords: 1)
        #expect(newest.receive(OmronLog.countTwo).sends == reports(OmronLog.gmeIndex0))
        let events = newest.receive(OmronLog.recordIndex0)
        #expect(events.readings.map { $0.deviceTime?.time.description } == ["2007-01-02T00:08:38"])
        #expect(events.sends == [report("05 45 4E 44 FF FF 00 00")])
    }

    @Test("a record count of 0 (Omron790IT.html) goes straight to END, and OFF ends the session complete")
    func countZero() {
        var harness = OmronHarness.awaitingCount()
        #expect(harness.receive(OmronLog.countZero).sends == [report("05 45 4E 44 FF FF 00 00")])
        #expect(harness.receive(OmronLog.endOK).isEmpty)
        #expect(harness.receive(OmronLog.off).finished == [true])
        #expect(harness.all.readings.isEmpty && harness.all.problems.isEmpty)
    }

    @Test("END answered by nothing (the notes saw it under Linux) still ends the session complete")
    func silentEnd() {
        var harness = OmronHarness.awaitingEnd()
        #expect(harness.all.readings.count == 2)
        #expect(harness.timeout().finished == [true])
        #expect(harness.all.problems.isEmpty)
    }
}
