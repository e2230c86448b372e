// Omron HEM-790IT engine (`omron-hem790`): a whole session driven by the input. Byte 0 sets up the session:
// bits 0-1 the stage a real session is brought to before the fuzzed reports (0 start: the clearing block is
// awaited; 1 GDC sent; 2 GME index 1 sent after a count of 2; 3 END sent), bit 2 (stage 0 only) the profile's
// preamble and model check, bits 3-4 retries, bit 5 maximumRecords 1, bits 6-7 the bank. The rest is cut into
// 8-byte input reports (the last may be short); a chunk starting FE is a timeout instead.
// Readings are checked against the GME record layout of libomron doc/omron_protocol_notes.asciidoc
// ("Get Individual Reading"), computed here from the record bytes.
//
// fuzz-seed: - 00
// fuzz-seed: - 01
// fuzz-seed: - 02
// fuzz-seed: - 03
// fuzz-options: -max_len=256

import FuzzSupport
import ProfileEngine
import VitalModel

// Device reports of a real session: openyou/libomron doc/logs/hem790it/1_2_07_TwoReadings.html @ 7febf17, by Seq.
private let clearingOK: [UInt8] = [0x02, 0x4F, 0x4B, 0x00, 0x06, 0x00, 0x00, 0x00]                   // 0290
private let countTwo: [[UInt8]] = [[0x07, 0x4F, 0x4B, 0x00, 0x00, 0x14, 0x00, 0x02],                 // 0374
                                   [0x01, 0x16, 0x4B, 0x00, 0x00, 0x14, 0x00, 0x02]]                 // 0380
private let records: [[UInt8]] = [[0x07, 0x4F, 0x4B, 0x00, 0x07, 0x01, 0x01, 0x00],                  // 0398
                                  [0x07, 0x06, 0x26, 0x00, 0x00, 0x7B, 0x4E, 0x57],                  // 0404
                                  [0x03, 0x00, 0x00, 0x45, 0x00, 0x7B, 0x4E, 0x57],                  // 0410
                                  [0x07, 0x4F, 0x4B, 0x00, 0x07, 0x01, 0x02, 0x00],                  // 0446
                                  [0x07, 0x08, 0x26, 0x00, 0x00, 0x78, 0x49, 0x43],                  // 0452
                                  [0x03, 0x00, 0x00, 0x58, 0x00, 0x78, 0x49, 0x43]]                  // 0458

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = fuzzInput(data, size)
    guard let setup = input.first else { return 0 }
    let stage = Int(setup & 0x03)
    let parameters = OmronHEM790Engine.Parameters(
        bank: (setup >> 6) % 3,
        preamble: stage == 0 && setup & 0x04 != 0 ? [.version, .profile, .serial, .morningAverage] : [],
        model: stage == 0 && setup & 0x04 != 0 ? "M7080IT" : nil,
        maximumRecords: setup & 0x20 != 0 ? 1 : nil,
        retries: Int(setup >> 3) & 0x03,
        timeoutMilliseconds: 1000)
    var checker = Checker(parameters: parameters)

    checker.absorb(checker.session.start(at: fuzzContext.receivedAt))
    var prefix: [[UInt8]] = []
    if stage >= 1 { prefix.append(clearingOK) }
    if stage >= 2 { prefix += countTwo }
    if stage >= 3 { prefix += records }
    for report in prefix {
        checker.absorb(checker.session.receive(report, channel: nil, at: fuzzContext.receivedAt))
    }

    var offset = 1
    while offset < input.count {
        let chunk = Array(input[offset..<min(offset + 8, input.count)])
        offset += 8
        if chunk.first == 0xFE {
            checker.absorb(checker.session.timeout(at: fuzzContext.receivedAt))
        } else {
            checker.absorb(checker.session.receive(chunk, channel: nil, at: fuzzContext.receivedAt))
        }
    }
    return 0
}

private struct Checker {
    var session: any EngineSession
    var finished = false
    /// The first report of the command the engine sent last.
    var commandStart: [UInt8] = []
    var commandEnded = true

    init(parameters: OmronHEM790Engine.Parameters) {
        session = OmronHEM790Engine(parameters: parameters).makeSession(device: fuzzContext.device, profileID: fuzzContext.profileID)
    }

    mutating func absorb(_ events: [EngineEvent]) {
        require(events.filter { if case .send = $0 { true } else { false } }.count <= 5,
                "more than a clearing block's 5 reports sent in one step")
        for event in events {
            switch event {
            case .send(let report, let channel):
                require(!finished, "sent \(hexString(report, separator: " ")) after the session finished")
                require(channel == nil, "output reports have no channel")
                require(report.count == 8 && (1...7).contains(report[0]), "not an 8-byte report with a count of 1-7: \(hexString(report, separator: " "))")
                if commandEnded { commandStart = report }
                commandEnded = report[0] < 7
            case .reading(let reading):
                require(!finished, "a reading after the session finished")
                require(commandStart.count == 8 && Array(commandStart[1...3]) == Array("GME".utf8),
                        "a reading answering \(hexString(commandStart, separator: " ")), not GME")
                check(reading)
            case .problem(let error):
                require(!error.frame.isEmpty && !error.field.isEmpty && !error.problem.isEmpty && !error.hint.isEmpty,
                        "error without frame, field, problem or hint: \(error)")
                require((0...17).contains(error.offset), "offset \(error.offset) outside any report or answer: \(error)")
            case .finished:
                require(!finished, "finished twice")
                finished = true
            }
        }
        require((session.timeoutMilliseconds == nil) == finished,
                "timeout \(String(describing: session.timeoutMilliseconds)) with the session \(finished ? "finished" : "running")")
    }

    func check(_ reading: Reading) {
        let raw = reading.raw
        require(raw.count == 14, "record of \(raw.count) bytes, not 13 and a checksum")
        require(raw.reduce(0, ^) == 0, "record \(hexString(raw, separator: " ")) fails its checksum")
        require(reading.kind == .bloodPressure && reading.source.frame == "GME" && reading.source.profileID == fuzzContext.profileID,
                "kind \(reading.kind), source \(reading.source)")
        require(reading.receivedAt == fuzzContext.receivedAt && reading.device == fuzzContext.device,
                "the engine changed the receive time or device identity it was given")
        let expected: [(MeasurementType, Int, MeasurementUnit)] = [
            (.systolic, 8, .millimetreOfMercury), (.diastolic, 9, .millimetreOfMercury), (.pulseRate, 10, .perMinute),
        ]
        require(reading.values.count == expected.count, "\(reading.values.count) values")
        for ((type, index, unit), value) in zip(expected, reading.values) {
            guard case .number(let number) = value.value else {
                require(false, "\(type.key) is \(value.value), not a number")
                return
            }
            require(raw[index] != 0, "\(type.key) byte 0 decoded as a measurement")
            require(value.type == type && value.unit == unit && decimal(number, equals: Int64(raw[index]), over: 1),
                    "\(type.key) byte \(raw[index]) decoded as \(value.type.key) \(number) \(value.unit.ucum)")
            requireDecimalText(number, type.key)
        }
        let time = reading.deviceTime?.time
        require(time?.year == 2000 + Int(raw[0]) && time?.month == Int(raw[1]) && time?.day == Int(raw[2])
                && time?.hour == Int(raw[3]) && time?.minute == Int(raw[4]) && time?.second == Int(raw[5]),
                "time \(String(describing: time)) from \(hexString(Array(raw.prefix(6)), separator: " "))")
        require(reading.status.isEmpty && reading.statusBits.isEmpty && reading.userSlot == nil,
                "the record claims a status or user the protocol does not define")
    }
}
