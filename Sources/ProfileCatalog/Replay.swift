import Foundation
import VitalModel
import ProfileEngine

/// Plays a capture's device side into a profile's engine, the way a transport would, and checks that
/// the engine sends what the capture shows the host sending.
///
/// Time is the capture's: device lines 1 ms apart, `@wait` and `@timeout` as written. Like a driver's
/// timer, the engine's timeout fires whenever it falls due while the device is silent, during a `@wait`
/// as well as at a `@timeout`; so a streaming profile's keep-alives appear at deterministic points and
/// are compared with the capture's `>` lines like any other request.
public struct Replay: Sendable {
    public var readings: [Reading] = []
    public var problems: [DecodeError] = []
    /// Where the engine's requests differ from the capture's host lines.
    public var scriptDifferences: [String] = []
    /// How the session ended (`complete` of its first ``EngineEvent/finished(complete:)``), nil while open.
    public var finished: Bool?

    /// Timer firings one `@wait` may cause: a bound, so a session that keeps asking for an immediate
    /// timeout cannot loop for ever.
    static let maximumTimeoutsPerWait = 100_000

    public static func run(_ capture: Capture, profile: DeviceProfile) -> Replay {
        var result = Replay()
        let device = capture.device ?? defaultDevice(for: profile)
        var session = profile.engine.makeSession(device: device, profileID: profile.id)
        var time = capture.receivedAt
        // When the session last heard from the driver: its timeout counts from there.
        var lastCall = time
        var pendingSends: [[UInt8]] = []
        var deviceLines = 0

        func absorb(_ events: [EngineEvent]) {
            for event in events {
                switch event {
                case .send(let bytes, _): pendingSends.append(bytes)
                case .reading(let reading): result.readings.append(reading)
                case .problem(let problem): result.problems.append(problem)
                case .finished(let complete): if result.finished == nil { result.finished = complete }
                }
            }
        }
        func advance(_ milliseconds: Int) {
            time.instant = time.instant.addingTimeInterval(Double(milliseconds) / 1000)
        }
        /// When the session's timeout falls due, if it waits for one.
        func timeoutDue() -> HubTimestamp? {
            guard let milliseconds = session.timeoutMilliseconds else { return nil }
            var due = lastCall
            due.instant = due.instant.addingTimeInterval(Double(milliseconds) / 1000)
            return due
        }
        func fireTimeout(at due: HubTimestamp) {
            if due.instant > time.instant { time = due }
            lastCall = time
            absorb(session.timeout(at: time))
        }

        absorb(session.start(at: time))
        for entry in capture.entries {
            switch entry.line {
            case .toDevice(let bytes, _):
                if pendingSends.isEmpty {
                    result.scriptDifferences.append("line \(entry.lineNumber): the capture shows the host sending \(hexString(bytes, separator: " ")), but the engine sent nothing")
                } else {
                    let sent = pendingSends.removeFirst()
                    if sent != bytes {
                        result.scriptDifferences.append("line \(entry.lineNumber): the engine sent \(hexString(sent, separator: " ")) where the capture shows \(hexString(bytes, separator: " "))")
                    }
                }
            case .fromDevice(let bytes, let channel):
                // Lines are taken as 1 ms apart so readings without a device time stay distinct.
                if deviceLines > 0 { advance(1) }
                deviceLines += 1
                lastCall = time
                absorb(session.receive(bytes, channel: channel, at: time))
            case .wait(let milliseconds):
                var end = time
                end.instant = end.instant.addingTimeInterval(Double(milliseconds) / 1000)
                var fired = 0
                while let due = timeoutDue(), due.instant <= end.instant, fired < Self.maximumTimeoutsPerWait {
                    fireTimeout(at: due)
                    fired += 1
                }
                time = end
            case .timeout:
                fireTimeout(at: timeoutDue() ?? time)
            }
        }
        for sent in pendingSends {
            result.scriptDifferences.append("after the last line: the engine sent \(hexString(sent, separator: " ")), which the capture does not show")
        }
        return result
    }

    /// A documentation identity (RFC 7042 addresses) or the profile's USB ids, when the capture names none.
    public static func defaultDevice(for profile: DeviceProfile) -> DeviceIdentity {
        switch profile.transport {
        case .serial, .hidraw:
            if let usb = profile.match.usb.first {
                return DeviceIdentity(usb: USBIdentity(vendorID: usb.vendorID, productID: usb.productID, serial: nil))
            }
        case .ble, .rfcomm: break
        }
        return DeviceIdentity(bluetoothAddress: EUI48("00:00:5E:00:53:01"))
    }
}

/// What a capture's `.expected.json` says the replay must produce.
///
/// Each expected reading lists the members it asserts, in the shape `vitalgate decode` prints;
/// `values` must be complete, other members not listed are not compared. So an expected file holds what
/// the capture's source states (the values, the device time, the user) and not VitalGate's bookkeeping.
public struct ExpectedReadings: Sendable {
    public var readings: [JSONValue]
    /// Fields of the decode problems the replay must report, in order (e.g. `checksum`).
    public var problems: [String]

    public static func load(file: String) throws(ProfileError) -> ExpectedReadings {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw ProfileError(file: file, location: nil, field: "", problem: "cannot read the expected readings",
                               fix: "write it beside the capture: a JSON object with \"readings\" and \"problems\"")
        }
        let json: LocatedJSON
        do { json = try LocatedJSONParser.parse(bytes: [UInt8](data)) } catch {
            throw ProfileError(file: file, location: error.location, field: "", problem: "not valid JSON: \(error.problem)", fix: "correct the syntax")
        }
        var root = try ProfileObject(json, file: file, path: "")
        _ = root.raw("source")
        var readings: [JSONValue] = []
        for (item, path) in try root.array("readings", required: true, nonEmpty: false)! {
            let value = plain(item)
            guard case .object = value, value["values"] != nil else {
                throw ProfileError(file: file, location: item.location, field: path, problem: "an expected reading needs \"values\"",
                                   fix: "list every value, like {\"type\": \"systolic\", \"value\": 120, \"unit\": \"mm[Hg]\"}")
            }
            readings.append(value)
        }
        let problems = try root.strings("problems", nonEmpty: false) ?? []
        try root.finish()
        return ExpectedReadings(readings: readings, problems: problems)
    }

    /// Differences between this expectation and a replay, one line each; empty when they agree.
    public func differences(from replay: Replay) -> [String] {
        var out: [String] = []
        let actual = replay.readings.map(\.json)
        if actual.count != readings.count {
            out.append("expected \(readings.count) reading\(readings.count == 1 ? "" : "s"), the replay produced \(actual.count)")
        }
        for (index, (expected, got)) in zip(readings, actual).enumerated() {
            out += Self.compare(expected, got, path: "readings[\(index)]")
        }
        let fields = replay.problems.map(\.field)
        if fields != problems {
            out.append("expected problems [\(problems.joined(separator: ", "))], the replay reported [\(fields.joined(separator: ", "))]"
                       + (replay.problems.isEmpty ? "" : ": " + replay.problems.map(\.description).joined(separator: " | ")))
        }
        return out
    }

    /// Compares members `expected` lists; numbers compare by exact text, so 79.0 differs from 79.
    static func compare(_ expected: JSONValue, _ actual: JSONValue?, path: String) -> [String] {
        guard let actual else { return ["\(path): expected \(expected.serialized()), the reading has no such member"] }
        switch (expected, actual) {
        case (.object(let members), .object):
            return members.flatMap { compare($0.1, actual[$0.0], path: "\(path).\($0.0)") }
        case (.array(let a), .array(let b)):
            if a.count != b.count { return ["\(path): expected \(a.count) entries, got \(b.count): \(actual.serialized())"] }
            return zip(a, b).enumerated().flatMap { compare($0.element.0, $0.element.1, path: "\(path)[\($0.offset)]") }
        default:
            return expected == actual ? [] : ["\(path): expected \(expected.serialized()), got \(actual.serialized())"]
        }
    }

    static func plain(_ json: LocatedJSON) -> JSONValue {
        switch json.value {
        case .object(let members): .object(members.map { ($0.key, plain($0.value)) })
        case .array(let items): .array(items.map(plain))
        case .string(let text): .string(text)
        case .number(let text): .number(text)
        case .bool(let flag): .bool(flag)
        case .null: .null
        }
    }
}
