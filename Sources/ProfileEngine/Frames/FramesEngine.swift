import Foundation
import VitalModel

/// The `frames` engine: runs a ``FramesSpec`` over a byte stream (serial, RFCOMM) or over reports (HID).
public struct FramesEngine: DeviceEngine {
    public let spec: FramesSpec
    public var name: String { "frames" }
    public var inputs: [String] { spec.messages.map(\.name) }

    public init(spec: FramesSpec) {
        self.spec = spec
    }

    public func makeSession(device: DeviceIdentity, profileID: String) -> any EngineSession {
        FramesSession(spec: spec, device: device, profileID: profileID)
    }
}

/// One conversation: a receive buffer that resynchronises on garbage, the script's position, and for a
/// streaming device (``FramesSpec/Stream``) the keep-alive and silence timers that follow the script.
public struct FramesSession: EngineSession {
    let spec: FramesSpec
    let device: DeviceIdentity
    let profileID: String
    private var buffer: [UInt8] = []
    /// Garbage is reported once per run of skipped bytes, not once per byte.
    private var skipped = 0
    private var skippedAt = 0
    /// The bytes being skipped follow a frame that failed its checksum (see ``flushSkipped()``).
    private var skippingRejectedFrame = false
    private var streamOffset = 0
    private var variables: [String: Int64] = [:]
    private var cursors: [Cursor] = []
    private var waiting: Waiting?
    private var scriptDone = false
    private var lastEmitted: [String: Date] = [:]
    /// When the script last sent, in ``StreamTimers`` milliseconds: the first keep-alive counts from it.
    private var lastScriptSend: Int64?
    /// Running once the script is done on a profile with a `stream` section.
    private var streamTimers: StreamTimers?

    struct Cursor {
        var steps: [FramesSpec.ScriptStep]
        var index = 0
        var loop: (variable: String, current: Int64, end: Int64)?
    }

    struct Waiting {
        var exchange: FramesSpec.Exchange
        var bytes: [UInt8]
        var retriesLeft: Int
    }

    init(spec: FramesSpec, device: DeviceIdentity, profileID: String) {
        self.spec = spec
        self.device = device
        self.profileID = profileID
    }

    /// The script's answer timeout; while streaming, the time until the next keep-alive or the silence
    /// limit, counted from the latest call, so an idle device still gets its keep-alives.
    public var timeoutMilliseconds: Int? {
        if let streamTimers { return streamTimers.millisecondsToNext }
        return waiting?.exchange.timeoutMilliseconds
    }

    /// The most iterations a `repeat` runs: more records than any device stores.
    static let maximumRepeatCount: Int64 = 65_535
    /// Requests one session may send in all: nested repeats multiply, and their counts come from the device.
    public static let maximumSends = 65_535
    private var sendsSoFar = 0

    public mutating func start(at time: HubTimestamp) -> [EngineEvent] {
        guard !spec.script.isEmpty else {
            beginStream(at: time)
            return []
        }
        cursors = [Cursor(steps: spec.script)]
        return advanceScript(at: time)
    }

    public mutating func receive(_ bytes: [UInt8], channel: String?, at time: HubTimestamp) -> [EngineEvent] {
        streamTimers?.observe(StreamTimers.milliseconds(time))
        // Frames stream in continuously, so a driver's read timeout may never fire: the stream's timers
        // are checked on every receive as well.
        let events = decode(bytes, at: time)
        return events + streamTick()
    }

    private mutating func decode(_ bytes: [UInt8], at time: HubTimestamp) -> [EngineEvent] {
        var events: [EngineEvent] = []
        if case .none = spec.sync {
            events += handleChunk(bytes, at: time)
            streamOffset += bytes.count
            return events
        }
        // Frame as the bytes arrive, a frame's worth at a time: a single read can hold kilobytes of valid
        // frames, and cutting frames from a short buffer keeps each cut cheap.
        var rest = bytes[...]
        while !rest.isEmpty {
            buffer += rest.prefix(spec.maximumLength)
            rest = rest.dropFirst(spec.maximumLength)
            while let frame = nextFrame(&events) {
                events += flushSkipped()
                events += handle(frame, at: time)
            }
            // A length field or bad data must not make the buffer grow without bound.
            if buffer.count > spec.maximumLength * 4 {
                let excess = buffer.count - spec.maximumLength
                noteSkipped(excess)
                buffer.removeFirst(excess)
                streamOffset += excess
            }
        }
        return events
    }

    public mutating func timeout(at time: HubTimestamp) -> [EngineEvent] {
        if streamTimers != nil {
            streamTimers?.observe(StreamTimers.milliseconds(time))
            return streamTick()
        }
        guard var current = waiting else { return [] }
        if current.retriesLeft > 0 {
            current.retriesLeft -= 1
            waiting = current
            lastScriptSend = StreamTimers.milliseconds(time)
            return [.send(current.bytes, channel: nil)]
        }
        waiting = nil
        scriptDone = true
        cursors = []
        let expected = current.exchange.expect.joined(separator: " or ")
        return [.problem(DecodeError(frame: expected, field: "response", offset: streamOffset,
                                     problem: "no \(expected) within \(current.exchange.timeoutMilliseconds) ms of sending \(hexString(current.bytes, separator: " "))",
                                     hint: "check the device is switched on and in transfer mode, and the line settings (baud, parity) of the profile")),
                .finished(complete: false)]
    }

    // MARK: Framing

    private mutating func noteSkipped(_ count: Int) {
        if skipped == 0 { skippedAt = streamOffset }
        skipped += count
    }

    private mutating func drop(_ count: Int) {
        noteSkipped(count)
        buffer.removeFirst(count)
        streamOffset += count
    }

    private mutating func flushSkipped() -> [EngineEvent] {
        defer { skipped = 0; skippingRejectedFrame = false }
        // The rest of a frame that failed its checksum is skipped while resynchronising; that frame was
        // already reported, and one corrupted frame is one problem.
        guard skipped > 0, !skippingRejectedFrame else { return [] }
        return [.problem(DecodeError(frame: "stream", field: "frame start", offset: skippedAt,
                                     problem: "\(skipped) byte\(skipped == 1 ? "" : "s") skipped that did not form a valid frame",
                                     hint: "line noise, a cut-off frame or wrong line settings; the engine resynchronised on the next frame start"))]
    }

    /// Cuts the next whole, checked frame from the buffer, dropping garbage before it; nil when more
    /// bytes are needed.
    private mutating func nextFrame(_ events: inout [EngineEvent]) -> [UInt8]? {
        while !buffer.isEmpty {
            // 1. Align on a frame start.
            switch spec.sync {
            case .bytes(let sync):
                if let start = firstIndex(of: sync) {
                    if start > 0 { drop(start) }
                } else {
                    // Keep a tail that could be the beginning of the sync bytes.
                    let keep = (1..<sync.count).reversed().first { buffer.count >= $0 && Array(buffer.suffix($0)) == Array(sync.prefix($0)) } ?? 0
                    if buffer.count - keep > 0 { drop(buffer.count - keep) }
                    return nil
                }
            case .pattern(let pattern):
                guard let start = buffer.firstIndex(where: pattern.matches) else {
                    drop(buffer.count)
                    return nil
                }
                if start > 0 { drop(start) }
            case .none:
                return nil
            }

            // 2. Work out the length.
            let length: Int
            switch lengthOfFrame() {
            case .needMore: return nil
            case .invalid: drop(1); continue
            case .length(let value): length = value
            }

            // 3. Every byte after the start must look like a continuation byte.
            if let continuation = spec.continuation {
                let available = min(length, buffer.count)
                if let bad = (1..<max(available, 1)).first(where: { !continuation.matches(buffer[$0]) }) {
                    drop(bad)
                    continue
                }
            }
            guard buffer.count >= length else { return nil }

            // 4. Checksum.
            let frame = Array(buffer[0..<length])
            if let checksum = spec.checksum, !Self.verify(frame, checksum) {
                events += flushSkipped()
                events.append(.problem(checksumError(frame, checksum)))
                buffer.removeFirst(1)
                streamOffset += 1
                skippingRejectedFrame = true
                continue
            }
            buffer.removeFirst(length)
            streamOffset += length
            return frame
        }
        return nil
    }

    private func firstIndex(of sync: [UInt8]) -> Int? {
        guard buffer.count >= sync.count else { return nil }
        return (0...(buffer.count - sync.count)).first { start in
            (0..<sync.count).allSatisfy { buffer[start + $0] == sync[$0] }
        }
    }

    private enum LengthResult { case needMore, invalid, length(Int) }

    private func lengthOfFrame() -> LengthResult {
        switch spec.length {
        case .fixed(let length):
            return .length(length)
        case .field(let field, let add):
            guard let raw = Self.extract(field, from: buffer) else { return .needMore }
            let length = Int(raw) + add
            let minimum = field.parts.map { $0.offset + $0.width }.max() ?? 1
            return length < minimum || length > spec.maximumLength ? .invalid : .length(length)
        case .perMessage:
            var needMore = false
            for message in spec.messages {
                guard let length = message.length else { continue }
                switch Self.matches(message.match, buffer) {
                case .some(true): return .length(length)
                case .none: needMore = true
                case .some(false): continue
                }
            }
            return needMore ? .needMore : .invalid
        }
    }

    /// True or false when decidable from `bytes`, nil when a condition lies beyond them.
    static func matches(_ conditions: [FramesSpec.ByteCondition], _ bytes: [UInt8]) -> Bool? {
        var undecided = false
        for condition in conditions {
            guard condition.offset < bytes.count else { undecided = true; continue }
            if !condition.pattern.matches(bytes[condition.offset]) { return false }
        }
        return undecided ? nil : true
    }

    static func verify(_ frame: [UInt8], _ checksum: FramesSpec.Checksum) -> Bool {
        guard let covered = coveredRange(frame.count, checksum), let stored = storedChecksum(frame, checksum) else { return false }
        return checksum.algorithm.compute(frame[covered]) == stored
    }

    public static func coveredRange(_ count: Int, _ checksum: FramesSpec.Checksum) -> ClosedRange<Int>? {
        let last = count + checksum.through
        return checksum.from <= last && checksum.from >= 0 && last < count ? checksum.from...last : nil
    }

    static func storedChecksum(_ frame: [UInt8], _ checksum: FramesSpec.Checksum) -> UInt16? {
        let start = frame.count + checksum.at
        let width = checksum.algorithm.width
        guard start >= 0, start + width <= frame.count else { return nil }
        if width == 1 { return UInt16(frame[start]) }
        let (a, b) = (UInt16(frame[start]), UInt16(frame[start + 1]))
        return checksum.bigEndian ? a << 8 | b : b << 8 | a
    }

    private func checksumError(_ frame: [UInt8], _ checksum: FramesSpec.Checksum) -> DecodeError {
        let stored = Self.storedChecksum(frame, checksum).map { String($0, radix: 16, uppercase: true) } ?? "none"
        let computed = Self.coveredRange(frame.count, checksum).map { String(checksum.algorithm.compute(frame[$0]), radix: 16, uppercase: true) } ?? "none"
        return DecodeError(frame: hexString(Array(frame.prefix(16)), separator: " ") + (frame.count > 16 ? " …" : ""),
                           field: "checksum", offset: streamOffset + max(frame.count + checksum.at, 0),
                           problem: "\(checksum.algorithm.rawValue) is 0x\(stored) but the bytes give 0x\(computed)",
                           hint: "a corrupted frame (it was dropped and the stream resynchronised); if every frame fails, check the profile's checksum range and algorithm")
    }

    // MARK: Messages

    /// A transport that delivers whole frames (HID reports): each chunk is one frame, trailing padding
    /// beyond the message length is ignored.
    private mutating func handleChunk(_ chunk: [UInt8], at time: HubTimestamp) -> [EngineEvent] {
        guard !chunk.isEmpty else { return [] }
        guard let message = spec.messages.first(where: { Self.matches($0.match, chunk) == true }) else {
            return [.problem(noMessage(chunk))]
        }
        let length: Int
        switch spec.length {
        case .fixed(let fixed): length = message.length ?? fixed
        case .perMessage: length = message.length ?? chunk.count
        case .field(let field, let add):
            guard let raw = Self.extract(field, from: chunk) else { return [.problem(shortFrame(chunk, message.name, needed: field.parts.map { $0.offset + $0.width }.max() ?? 1))] }
            length = Int(raw) + add
        }
        guard length > 0, length <= chunk.count else { return [.problem(shortFrame(chunk, message.name, needed: length))] }
        let frame = Array(chunk.prefix(length))
        if let checksum = spec.checksum, !Self.verify(frame, checksum) { return [.problem(checksumError(frame, checksum))] }
        return handle(frame, at: time, message: message)
    }

    private mutating func handle(_ frame: [UInt8], at time: HubTimestamp) -> [EngineEvent] {
        guard let message = spec.messages.first(where: { Self.matches($0.match, frame) == true }) else {
            return [.problem(noMessage(frame))]
        }
        return handle(frame, at: time, message: message)
    }

    private func noMessage(_ frame: [UInt8]) -> DecodeError {
        DecodeError(frame: hexString(Array(frame.prefix(16)), separator: " "), field: "message", offset: streamOffset,
                    problem: "the frame matches none of the profile's messages (" + spec.messages.map(\.name).joined(separator: ", ") + ")",
                    hint: "the device sent a message the profile does not describe; add it to engine.frames.messages if it matters")
    }

    private func shortFrame(_ frame: [UInt8], _ message: String, needed: Int) -> DecodeError {
        DecodeError(frame: message, field: "length", offset: streamOffset,
                    problem: "\(frame.count) bytes arrived but the message needs \(needed)",
                    hint: "a cut-off report; check the transport's report size")
    }

    private mutating func handle(_ frame: [UInt8], at time: HubTimestamp, message: FramesSpec.Message) -> [EngineEvent] {
        var events: [EngineEvent] = []
        // Any frame of the profile's messages shows the device is there, finger-out frames included.
        streamTimers?.frameArrived()
        if message.ignoreWhen.contains(where: { Self.matches($0, frame) == true }) {
            return advanceIfAwaited(message.name, at: time)
        }
        for (name, field) in message.captures {
            if let value = Self.extract(field, from: frame) { variables[name] = value }
        }
        if let map = message.reading {
            do {
                if let reading = try makeReading(map, frame: frame, message: message.name, at: time) {
                    events.append(.reading(reading))
                }
            } catch {
                events.append(.problem(error))
            }
        }
        events += advanceIfAwaited(message.name, at: time)
        return events
    }

    private mutating func advanceIfAwaited(_ name: String, at time: HubTimestamp) -> [EngineEvent] {
        guard let current = waiting, current.exchange.expect.contains(name) else { return [] }
        waiting = nil
        return advanceScript(at: time)
    }

    // MARK: Readings

    private mutating func makeReading(_ map: FramesSpec.ReadingMap, frame: [UInt8], message: String,
                                      at time: HubTimestamp) throws(DecodeError) -> Reading? {
        if let interval = map.minimumIntervalMilliseconds, let last = lastEmitted[message],
           time.instant.timeIntervalSince(last) * 1000 < Double(interval), time.instant >= last {
            return nil
        }
        var values: [MeasuredValue] = []
        for value in map.values {
            guard let raw = Self.extract(value.field, from: frame) else {
                throw DecodeError(frame: message, field: value.type.key, offset: 0, problem: "the field lies beyond the \(frame.count)-byte frame",
                                  hint: "check the field offsets of message \(message) in the profile")
            }
            if let special = value.specials[raw] {
                values.append(MeasuredValue(value.type, .special(special), value.unit))
                continue
            }
            let (sum, overflowAdd) = raw.addingReportingOverflow(value.add)
            let (mantissa, overflowMul) = sum.multipliedReportingOverflow(by: value.scale.mantissa)
            guard !overflowAdd, !overflowMul else {
                throw DecodeError(frame: message, field: value.type.key, offset: 0, problem: "the value \(raw) overflows when scaled",
                                  hint: "check the field's width, add and scale in the profile")
            }
            values.append(MeasuredValue(value.type, .number(DecimalValue(mantissa: mantissa, exponent: value.scale.exponent)), value.unit))
        }
        var deviceTime: DeviceTimestamp?
        if let timeMap = map.time {
            deviceTime = try Self.deviceTime(timeMap, frame: frame, message: message)
        }
        var userSlot: Int?
        if let slot = map.userSlot, let raw = Self.extract(slot.field, from: frame) {
            // A value the profile calls "unknown" is the device saying it has users but not which one measured.
            if slot.unknown.contains(raw) {
                userSlot = Reading.unknownUserSlot
            } else if Int(raw) + slot.add >= 0 {
                userSlot = Int(raw) + slot.add
            }
        }
        var status: MeasurementStatus = []
        for rule in map.status where Self.matches(rule.when, frame) == true { status.insert(rule.status) }
        lastEmitted[message] = time.instant
        return Reading(kind: map.kind, values: values, deviceTime: deviceTime, receivedAt: time, device: device,
                       userSlot: userSlot, status: status, source: ReadingSource(profileID: profileID, frame: message), raw: frame)
    }

    static func deviceTime(_ map: FramesSpec.TimeMap, frame: [UInt8], message: String) throws(DecodeError) -> DeviceTimestamp? {
        func part(_ item: FramesSpec.IntegerMap?, default fallback: Int) -> Int? {
            guard let item else { return fallback }
            guard let raw = extract(item.field, from: frame) else { return nil }
            if item.unknown.contains(raw) { return nil }
            return Int(raw) + item.add
        }
        guard let year = part(map.year, default: 0), let month = part(map.month, default: 0), let day = part(map.day, default: 0),
              let hour = part(map.hour, default: 0), let minute = part(map.minute, default: 0), let second = part(map.second, default: 0)
        else { return nil }
        guard let time = LocalDateTime(year: year, month: month, day: day, hour: hour, minute: minute, second: second) else {
            throw DecodeError(frame: message, field: "time", offset: 0,
                              problem: "\(year)-\(month)-\(day) \(hour):\(minute):\(second) is not a valid date and time",
                              hint: "the device clock may be unset, or the profile's time field offsets or bit ranges are wrong")
        }
        return DeviceTimestamp(time: time, resolution: .second)
    }

    /// The field's value, or nil when it lies (partly) beyond `bytes`.
    static func extract(_ field: FramesSpec.FieldSpec, from bytes: [UInt8]) -> Int64? {
        var value: UInt64 = 0
        for part in field.parts {
            guard part.offset >= 0, part.width > 0, part.offset + part.width <= bytes.count else { return nil }
            var raw: UInt64 = 0
            for index in 0..<part.width {
                let byte = UInt64(bytes[part.offset + (part.bigEndian ? index : part.width - 1 - index)])
                raw = raw << 8 | byte
            }
            if let bits = part.bits {
                raw = (raw >> UInt64(bits.lowerBound)) & ((1 << UInt64(bits.count)) - 1)
            }
            value = value << UInt64(part.bitCount) | raw
        }
        let count = field.bitCount
        if field.signed, count > 0, count < 64, value & (1 << UInt64(count - 1)) != 0 {
            return Int64(bitPattern: value | ~((1 << UInt64(count)) - 1))
        }
        return Int64(bitPattern: value)
    }

    // MARK: Script

    private mutating func advanceScript(at time: HubTimestamp) -> [EngineEvent] {
        var events: [EngineEvent] = []
        while !scriptDone {
            guard var top = cursors.popLast() else {
                scriptDone = true
                // A streaming device has only been started: the session goes on until it falls silent.
                if spec.stream != nil {
                    beginStream(at: time)
                } else {
                    events.append(.finished(complete: true))
                }
                break
            }
            if top.index >= top.steps.count {
                if var loop = top.loop, loop.current + 1 < loop.end {
                    loop.current += 1
                    variables[loop.variable] = loop.current
                    top.loop = loop
                    top.index = 0
                    cursors.append(top)
                }
                continue
            }
            let step = top.steps[top.index]
            top.index += 1
            cursors.append(top)
            switch step {
            case .repeatSteps(let countName, let variable, let from, let steps):
                let count = variables[countName] ?? 0
                guard count > 0 else { continue }
                // The count comes from the device; a corrupt one must not queue billions of requests.
                guard count <= Self.maximumRepeatCount else {
                    scriptDone = true
                    cursors = []
                    events.append(.problem(DecodeError(frame: "script", field: countName, offset: streamOffset,
                                                       problem: "the device reported \(count) for \(countName), more than the \(Self.maximumRepeatCount) a repeat allows",
                                                       hint: "a corrupted answer, or the profile captures \(countName) from the wrong bytes")))
                    events.append(.finished(complete: false))
                    return events
                }
                variables[variable] = Int64(from)
                cursors.append(Cursor(steps: steps, loop: (variable, Int64(from), Int64(from) + count)))
            case .exchange(let exchange):
                sendsSoFar += 1
                guard sendsSoFar <= Self.maximumSends else {
                    scriptDone = true
                    cursors = []
                    events.append(.problem(DecodeError(frame: "script", field: "requests", offset: streamOffset,
                                                       problem: "the script would send more than \(Self.maximumSends) requests in one session",
                                                       hint: "nested repeats multiply their counts; check the counts the device reported and the profile's script")))
                    events.append(.finished(complete: false))
                    return events
                }
                let bytes = render(exchange.send)
                events.append(.send(bytes, channel: nil))
                lastScriptSend = StreamTimers.milliseconds(time)
                if !exchange.expect.isEmpty {
                    waiting = Waiting(exchange: exchange, bytes: bytes, retriesLeft: exchange.retries)
                    return events
                }
            }
        }
        return events
    }

    // MARK: Stream

    private mutating func beginStream(at time: HubTimestamp) {
        guard let stream = spec.stream else { return }
        streamTimers = StreamTimers(stream, now: StreamTimers.milliseconds(time), lastSend: lastScriptSend)
    }

    /// The stream's due action at the time last observed: the end after the silence limit (a device
    /// switched off or unplugged long ago, which is not a decoding problem), else a keep-alive. A call
    /// that comes late sends one keep-alive, not one per missed interval.
    private mutating func streamTick() -> [EngineEvent] {
        guard var timers = streamTimers else { return [] }
        defer { streamTimers = timers }
        if timers.isSilent {
            timers.end()
            return [.finished(complete: false)]
        }
        if timers.isKeepAliveDue, let keepAlive = spec.stream?.keepAlive {
            timers.sent()
            return [.send(render(keepAlive.send), channel: nil)]
        }
        return []
    }

    private func render(_ template: [FramesSpec.TemplatePart]) -> [UInt8] {
        var bytes: [UInt8] = []
        for part in template {
            switch part {
            case .bytes(let literal): bytes += literal
            case .variable(let name, let width, let bigEndian):
                let value = UInt64(bitPattern: variables[name] ?? 0)
                let little = (0..<width).map { UInt8(truncatingIfNeeded: value >> UInt64(8 * $0)) }
                bytes += bigEndian ? little.reversed() : little
            case .checksum:
                // The same range a received frame's checksum covers, counted from the start of the request.
                guard let checksum = spec.checksum else { break }
                let covered = bytes.count > checksum.from ? Array(bytes[checksum.from...]) : []
                let sum = checksum.algorithm.compute(covered)
                if checksum.algorithm.width == 1 {
                    bytes.append(UInt8(truncatingIfNeeded: sum))
                } else if checksum.bigEndian {
                    bytes += [UInt8(sum >> 8), UInt8(truncatingIfNeeded: sum)]
                } else {
                    bytes += [UInt8(truncatingIfNeeded: sum), UInt8(sum >> 8)]
                }
            }
        }
        return bytes
    }
}
