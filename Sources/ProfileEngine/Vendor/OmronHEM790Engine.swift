import VitalModel

/// The `omron-hem790` engine: downloads every stored reading of an Omron HEM-790IT blood-pressure monitor
/// over USB HID, then switches it off.
///
/// The protocol is described in libomron's `doc/omron_protocol_notes.asciidoc` and shown by the USB logs in
/// its `doc/logs/hem790it/` (sources: `DeviceProfiles/omron/hem-790it/SOURCES.md`).
///
/// ## Reports
///
/// Both directions use 8-byte HID reports without a report id. Byte 0 counts the valid bytes that follow
/// (0-7); the device ignores the rest. Each ``EngineEvent/send(_:channel:)`` of this engine is one whole
/// 8-byte output report (channel nil) for the transport to write as it is; on Linux hidraw that write is
/// prefixed with the report number 0 that unnumbered reports take, which is not part of the report. A
/// command longer than 7 bytes spans several reports. Unused bytes are filled as the Omron software and
/// libomron fill them: one buffer per command, zeroed when the command starts, each report overwriting only
/// the count and its bytes, so a continuation report keeps the tail of the report before it.
///
/// Each ``EngineSession/receive(_:channel:at:)`` takes one input report.
///
/// The mode feature report (SET_REPORT Feature, 2 bytes) is not an engine send: the profile lists it in
/// `transport.hidraw.featureReports`, which the transport sends once when it opens the device.
///
/// ## Session
///
/// 1. The clearing block (30 zero bytes: four reports `07 00…` and one `02 00…`), repeated until the
///    device answers `OK`; empty reports (count 0) are ignored, other answers mean "again".
/// 2. The ``Parameters/preamble`` commands (`VER00`, `PRF00`, `SRL00`, the newest weekly morning
///    average); answers are checked, and `VER00`'s against ``Parameters/model``.
/// 3. `GDC` for the record count, then `GME` for each record from the oldest (index count − 1) to the
///    newest (index 0), as both the Omron software and libomron do.
/// 4. `END`, answered `OK` and `OFF\r\n`; the device switches off.
///
/// An answer is `NO` (the device asks for the command again; the engine re-sends it at once), or `OK`
/// followed by `00`, the data and an XOR checksum over everything after `OK` (`END`: `OK`, then
/// `OFF\r\n`). A malformed answer is reported as a ``DecodeError`` and the command is sent again, after a
/// bad checksum at once and otherwise when the device has gone quiet for the timeout. When the retries run
/// out the engine reports it and ends the session with `END`. A record with an impossible date or a zero
/// pressure or pulse is reported and skipped; the download goes on.
///
/// Errors name the command (`GME`, `GDC`, …, or `report` for a report that breaks the report format) as
/// their frame; offsets count from the report's count byte, or from the `O` of `OK` in the reassembled
/// answer.
public struct OmronHEM790Engine: DeviceEngine {
    /// Commands the engine can send before it counts the records.
    public enum PreambleStep: String, Sendable, Hashable, CaseIterable {
        /// `VER00`: the unit's model and version string ("M7080IT 207").
        case version
        /// `PRF00`: an ASCII string whose meaning is unknown.
        case profile
        /// `SRL00`: 7 binary bytes whose meaning is unknown.
        case serial
        /// `GMA` for the newest week of ``Parameters/bank``: the weekly morning average, discarded.
        case morningAverage = "morning-average"
    }

    /// What a profile can set in `engine.omron-hem790`.
    public struct Parameters: Sendable, Hashable {
        /// The memory bank `GDC` and `GME` address (0, 1 or 2; the notes guess users A, B and both).
        public var bank: UInt8
        /// Commands sent after the clearing block and before `GDC`, in order.
        public var preamble: [PreambleStep]
        /// The start of the `VER00` answer this device must give; nil accepts any.
        public var model: String?
        /// Download only this many of the newest records; nil downloads all.
        public var maximumRecords: Int?
        /// How often a command (or the clearing block) is sent again after `NO`, a bad answer or silence.
        public var retries: Int
        /// How long the engine waits for an answer.
        public var timeoutMilliseconds: Int

        public init(bank: UInt8 = 0, preamble: [PreambleStep] = [.version], model: String? = nil,
                    maximumRecords: Int? = nil, retries: Int = 3, timeoutMilliseconds: Int = 1000) {
            self.bank = bank
            self.preamble = preamble
            self.model = model
            self.maximumRecords = maximumRecords
            self.retries = retries
            self.timeoutMilliseconds = timeoutMilliseconds
        }
    }

    public let parameters: Parameters
    public var name: String { "omron-hem790" }
    public var inputs: [String] { ["GME"] }

    public init(parameters: Parameters = Parameters()) {
        self.parameters = parameters
    }

    public func makeSession(device: DeviceIdentity, profileID: String) -> any EngineSession {
        OmronHEM790Session(parameters: parameters, device: device, profileID: profileID)
    }

    /// Bytes of one input or output report.
    public static let reportSize = 8

    /// The output reports that carry `command`, filled as described in the type's documentation.
    public static func outputReports(_ command: [UInt8]) -> [[UInt8]] {
        var report = [UInt8](repeating: 0, count: reportSize)
        var reports: [[UInt8]] = []
        var offset = 0
        while offset < command.count {
            let count = min(reportSize - 1, command.count - offset)
            report[0] = UInt8(count)
            for index in 0..<count { report[1 + index] = command[offset + index] }
            reports.append(report)
            offset += count
        }
        return reports
    }
}

/// One download from one HEM-790IT; see ``OmronHEM790Engine``.
public struct OmronHEM790Session: EngineSession {
    /// A command and what answers it.
    enum Request: Hashable {
        case clear
        case preamble(OmronHEM790Engine.PreambleStep)
        case count
        case record(index: Int)
        case end

        /// The frame name errors carry.
        var name: String {
            switch self {
            case .clear: "clear"
            case .preamble(.version): "VER"
            case .preamble(.profile): "PRF"
            case .preamble(.serial): "SRL"
            case .preamble(.morningAverage): "GMA"
            case .count: "GDC"
            case .record: "GME"
            case .end: "END"
            }
        }

        func command(bank: UInt8) -> [UInt8] {
            switch self {
            // 30 zero bytes, as the Omron software sends (four full reports and one of 2).
            case .clear: return [UInt8](repeating: 0, count: 30)
            case .preamble(.version): return Array("VER00".utf8)
            case .preamble(.profile): return Array("PRF00".utf8)
            case .preamble(.serial): return Array("SRL00".utf8)
            case .preamble(.morningAverage): return Array("GMA".utf8) + [0x00, bank, 0x00, 0x00, 0x00, bank]
            case .count: return Array("GDC".utf8) + [0x00, bank, 0x00, 0x00, bank]
            case .record(let index):
                let low = UInt8(truncatingIfNeeded: index)
                return Array("GME".utf8) + [0x00, bank, 0x00, low, low ^ bank]
            case .end: return Array("END".utf8) + [0xFF, 0xFF]
            }
        }

        /// Bytes of the whole `OK` answer: `OK`, `00`, the data, the checksum (`END`: `OK` and `OFF\r\n`).
        var answerLength: Int {
            switch self {
            case .clear: 2
            case .preamble(.version): 15
            case .preamble(.profile): 14
            case .preamble(.serial): 11
            case .preamble(.morningAverage): 12
            case .count: 8
            case .record: 17
            case .end: 7
            }
        }
    }

    enum Phase: Hashable {
        case idle
        case awaiting(Request)
        /// A malformed answer was reported; the rest of it is dropped until the device is quiet.
        case draining(Request)
        case finished
    }

    static let ok: [UInt8] = [0x4F, 0x4B]
    static let no: [UInt8] = [0x4E, 0x4F]
    static let off: [UInt8] = Array("OFF\r\n".utf8)

    let parameters: OmronHEM790Engine.Parameters
    let device: DeviceIdentity
    let profileID: String
    private(set) var phase: Phase = .idle
    /// The valid bytes of the answer so far.
    private var answer: [UInt8] = []
    /// Times the current request has been sent again.
    private var resent = 0
    private var queue: [Request] = []
    /// Set when the session gave up on something; the final `.finished` then says incomplete.
    private var failed = false

    init(parameters: OmronHEM790Engine.Parameters, device: DeviceIdentity, profileID: String) {
        self.parameters = parameters
        self.device = device
        self.profileID = profileID
    }

    public var timeoutMilliseconds: Int? {
        switch phase {
        case .awaiting, .draining: parameters.timeoutMilliseconds
        case .idle, .finished: nil
        }
    }

    public mutating func start(at time: HubTimestamp) -> [EngineEvent] {
        guard phase == .idle else { return [] }
        queue = parameters.preamble.map(Request.preamble) + [.count]
        return send(.clear)
    }

    public mutating func receive(_ bytes: [UInt8], channel: String?, at time: HubTimestamp) -> [EngineEvent] {
        let request: Request
        switch phase {
        case .idle, .finished:
            guard let count = bytes.first, count != 0 else { return [] }
            return [.problem(DecodeError(
                frame: "report", field: "report", offset: 0,
                problem: "a report arrived \(phase == .idle ? "before the session started" : "after the session ended")",
                hint: "the device answers only what the engine asks; start the session first, or check the capture holds one session"))]
        case .draining:
            return []
        case .awaiting(let awaited):
            request = awaited
        }
        if request == .clear { return clearingAnswer(bytes) }

        let valid: [UInt8]
        switch Self.validBytes(of: bytes) {
        case .failure(let error): return malformed(error, request)
        case .success(let bytes): valid = bytes
        }
        if valid.isEmpty { return [] }
        answer += valid
        return evaluate(request, at: time)
    }

    public mutating func timeout(at time: HubTimestamp) -> [EngineEvent] {
        switch phase {
        case .idle, .finished:
            return []
        case .draining(let request):
            return again(request, after: nil)
        case .awaiting(.end):
            // The notes report END answered by nothing at all; the readings are in either way.
            phase = .finished
            return [.finished(complete: !failed)]
        case .awaiting(let request):
            if answer.isEmpty { return again(request, after: nil) }
            let cutOff = DecodeError(
                frame: request.name, field: "length", offset: answer.count,
                problem: "the answer stopped after \(answer.count) of its \(request.answerLength) bytes",
                hint: "a report was lost; the engine asks again")
            return again(request, after: cutOff)
        }
    }

    // MARK: Reports

    /// The bytes a report's count byte marks valid.
    static func validBytes(of report: [UInt8]) -> Result<[UInt8], DecodeError> {
        guard let count = report.first else {
            return .failure(DecodeError(frame: "report", field: "report", offset: 0, problem: "the report is empty",
                                        hint: "the transport must deliver each \(OmronHEM790Engine.reportSize)-byte input report whole"))
        }
        guard report.count <= OmronHEM790Engine.reportSize else {
            return .failure(DecodeError(
                frame: "report", field: "report", offset: OmronHEM790Engine.reportSize,
                problem: "the report has \(report.count) bytes; this device's input reports have \(OmronHEM790Engine.reportSize)",
                hint: "the transport must deliver one report per call, without a report id"))
        }
        let limit = min(OmronHEM790Engine.reportSize, report.count) - 1
        guard Int(count) <= limit else {
            return .failure(DecodeError(
                frame: "report", field: "count", offset: 0,
                problem: "the count byte says \(count) valid bytes but only \(limit) follow it",
                hint: "the report is cut short or is not a count-prefixed report of this device"))
        }
        return .success(Array(report[1..<(1 + Int(count))]))
    }

    private mutating func clearingAnswer(_ report: [UInt8]) -> [EngineEvent] {
        guard let count = report.first, count != 0 else { return [] }
        if count == 2, report.count >= 3, Array(report[1...2]) == Self.ok { return next() }
        // The device's "not yet" (seen as `08 60 …`): the Omron software sends the block again.
        return again(.clear, after: nil)
    }

    // MARK: Answers

    private mutating func evaluate(_ request: Request, at time: HubTimestamp) -> [EngineEvent] {
        guard answer.count >= 2 else { return [] }
        let status = Array(answer[0...1])
        if status == Self.no {
            guard answer.count == 2 else {
                return malformed(DecodeError(frame: request.name, field: "status", offset: 2,
                                             problem: "\"NO\" is followed by \(answer.count - 2) more bytes",
                                             hint: "a \"NO\" answer is 2 bytes; the reports are out of step"), request)
            }
            return again(request, after: nil)
        }
        guard status == Self.ok else {
            return malformed(DecodeError(
                frame: request.name, field: "status", offset: 0,
                problem: "the answer starts \(hexString(status, separator: " ")), neither \"OK\" (4F 4B) nor \"NO\" (4E 4F)",
                hint: "a garbled or stray answer; the engine waits for the device to go quiet and asks again"), request)
        }
        // Every data answer in the notes and the logs is `OK 00 …`; anything else there is not such an answer.
        if request != .end, answer.count >= 3, answer[2] != 0x00 {
            return malformed(DecodeError(
                frame: request.name, field: "status", offset: 2,
                problem: "\"OK\" is followed by \(hexString([answer[2]], separator: "")), not 00",
                hint: "a garbled answer; the engine waits for the device to go quiet and asks again"), request)
        }
        guard answer.count <= request.answerLength else {
            return malformed(DecodeError(
                frame: request.name, field: "length", offset: request.answerLength,
                problem: "the answer has \(answer.count) bytes; a \(request.name) answer has \(request.answerLength)",
                hint: "the reports are out of step with the commands; the engine asks again"), request)
        }
        guard answer.count == request.answerLength else { return [] }

        if request == .end {
            phase = .finished
            var events: [EngineEvent] = []
            if Array(answer[2...]) != Self.off {
                events.append(.problem(DecodeError(
                    frame: "END", field: "OFF", offset: 2,
                    problem: "END was answered \(hexString(Array(answer[2...]), separator: " ")), not \"OFF\\r\\n\"",
                    hint: "the device may not have switched off; switch it off by hand")))
            }
            return events + [.finished(complete: !failed && events.isEmpty)]
        }

        let checksum = answer[2...].reduce(UInt8(0), ^)
        guard checksum == 0 else {
            let error = DecodeError(
                frame: request.name, field: "checksum", offset: answer.count - 1,
                problem: "the XOR of the bytes after \"OK\" is \(hexString([checksum], separator: "")), not 00",
                hint: "a byte was lost or corrupted on the way; the engine asks again")
            return again(request, after: error)
        }
        return accepted(request, at: time)
    }

    private mutating func accepted(_ request: Request, at time: HubTimestamp) -> [EngineEvent] {
        switch request {
        case .preamble(.version):
            // Bytes 3..<14: the 11-character version string ("M7080IT 207").
            let text = String(decoding: answer[3..<(answer.count - 1)], as: UTF8.self)
            if let model = parameters.model, !text.hasPrefix(model) {
                return giveUp(DecodeError(
                    frame: "VER", field: "model", offset: 3,
                    problem: "the device calls itself \"\(text)\", not \"\(model)…\"",
                    hint: "this is not the device the profile describes (the HJ-720IT pedometer shares USB id 0590:0028); use its own profile"))
            }
        case .count:
            // `OK 00 ?? ?? ?? count xor`: the notes' "Byte 3", libomron's data[6].
            let stored = Int(answer[6])
            let wanted = min(stored, parameters.maximumRecords ?? stored)
            queue = (0..<wanted).reversed().map { Request.record(index: $0) } + [.end]
        case .record:
            let event = record(Array(answer[3...]), at: time)
            return [event] + next()
        case .clear, .preamble, .end:
            break
        }
        return next()
    }

    /// A `GME` record: 13 data bytes and the checksum (notes, "Get Individual Reading").
    private func record(_ bytes: [UInt8], at time: HubTimestamp) -> EngineEvent {
        func field(_ index: Int) -> Int { index < bytes.count ? Int(bytes[index]) : 0 }
        func error(_ name: String, _ index: Int, _ problem: String, _ hint: String) -> EngineEvent {
            .problem(DecodeError(frame: "GME", field: name, offset: 3 + index, problem: problem, hint: hint))
        }
        guard bytes.count == 14 else {
            return error("length", 0, "the record has \(bytes.count) bytes, not 14", "the reports are out of step")
        }
        // Byte 0 is the year's last two digits; the Omron software's export reads 07 as 2007.
        guard let stamp = LocalDateTime(year: 2000 + field(0), month: field(1), day: field(2),
                                        hour: field(3), minute: field(4), second: field(5)) else {
            return error("time", 0,
                         "\(2000 + field(0))-\(field(1))-\(field(2)) \(field(3)):\(field(4)):\(field(5)) is not a valid date and time",
                         "a corrupted record or an unset clock; the record is skipped")
        }
        let pressures: [(MeasurementType, Int, MeasurementUnit)] = [
            (.systolic, 8, .millimetreOfMercury), (.diastolic, 9, .millimetreOfMercury), (.pulseRate, 10, .perMinute),
        ]
        var values: [MeasuredValue] = []
        for (type, index, unit) in pressures {
            guard field(index) != 0 else {
                return error(type.key, index, "the \(type.key) byte is 0, which is no measurement",
                             "an empty or corrupted record; the record is skipped")
            }
            values.append(MeasuredValue(type, .number(DecimalValue(mantissa: Int64(field(index)), exponent: 0)), unit))
        }
        // Byte 12 (flags): the notes define only the high nibble (0 single reading, 1-3 the place in a
        // TruRead series). Irregular heartbeat and movement, which the Omron software exports, have no
        // documented bit, so the reading claims neither; the byte stays in `raw`.
        return .reading(Reading(kind: .bloodPressure, values: values,
                                deviceTime: DeviceTimestamp(time: stamp, resolution: .second),
                                receivedAt: time, device: device,
                                source: ReadingSource(profileID: profileID, frame: "GME"), raw: bytes))
    }

    // MARK: Flow

    private mutating func send(_ request: Request) -> [EngineEvent] {
        answer = []
        phase = .awaiting(request)
        return OmronHEM790Engine.outputReports(request.command(bank: parameters.bank)).map { .send($0, channel: nil) }
    }

    private mutating func next() -> [EngineEvent] {
        resent = 0
        guard !queue.isEmpty else {
            phase = .finished
            return [.finished(complete: !failed)]
        }
        return send(queue.removeFirst())
    }

    /// Sends `request` again, reporting `error` first, or gives up when the retries are spent.
    private mutating func again(_ request: Request, after error: DecodeError?) -> [EngineEvent] {
        let reported: [EngineEvent] = error.map { [.problem($0)] } ?? []
        guard resent < parameters.retries else {
            let attempts = parameters.retries + 1
            let what: String = switch request {
            case .clear: "the device did not accept the clearing block"
            case .end: "the device did not confirm END"
            default: "\(request.name) got no usable answer"
            }
            return reported + giveUp(DecodeError(
                frame: request.name, field: "response", offset: 0,
                problem: "\(what) after \(attempts) attempt\(attempts == 1 ? "" : "s") (\(parameters.timeoutMilliseconds) ms each)",
                hint: "check the monitor is connected and not measuring, and that the profile's feature report set the mode"))
        }
        resent += 1
        return reported + send(request)
    }

    /// Reports a malformed answer and waits for the device to go quiet before asking again.
    private mutating func malformed(_ error: DecodeError, _ request: Request) -> [EngineEvent] {
        answer = []
        phase = .draining(request)
        return [.problem(error)]
    }

    /// Reports `error` and ends the session: with `END` once the device has accepted the clearing block,
    /// so that it switches off; at once when it never did, or when `END` itself failed.
    private mutating func giveUp(_ error: DecodeError) -> [EngineEvent] {
        failed = true
        queue = []
        switch phase {
        case .awaiting(.clear), .draining(.clear), .awaiting(.end), .draining(.end):
            phase = .finished
            return [.problem(error), .finished(complete: false)]
        default:
            resent = 0
            return [.problem(error)] + send(.end)
        }
    }
}
