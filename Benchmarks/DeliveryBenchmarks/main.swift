// Durable ingest and backlog drain: the Outbox's commit rate and the Uplink's rate to a real FHIR server.
//
// One measurement per invocation, printed as one JSON line; scripts/benchmark-delivery repeats them, counts
// fsyncs with strace and prints medians. Modes:
//   ingest --db PATH --readings N --per-commit K
//   drain  --db PATH --server BASE --readings N --batch B [--run-id ID]
import FHIRExport
import Foundation
import Gateway
import Outbox
import Uplink
import VitalModel

let arguments = CommandLine.arguments
func option(_ name: String) -> String? {
    guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count else { return nil }
    return arguments[index + 1]
}
func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("vitalgate-delivery-benchmarks: \(message)\n".utf8))
    exit(2)
}
func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}
func number(_ value: Double, places: Int = 1) -> JSONValue { .number(String(format: "%.\(places)f", value)) }

let patient = PatientIdentifier(system: IdentifierSystems.vietnam.citizenID, value: "099199000001")

/// A blood-pressure reading as the SIG decoder makes it, one per minute of device time, so each is distinct.
func reading(_ number: Int, device: EUI48) -> Reading {
    let start = LocalDateTime(year: 2025, month: 1, day: 1, hour: 0, minute: 0, second: 0)!
    let time = start.adding(milliseconds: Int64(number) * 60_000)!
    let values = [
        MeasuredValue(.systolic, .number(DecimalValue(mantissa: Int64(100 + number % 60), exponent: 0)), .millimetreOfMercury),
        MeasuredValue(.diastolic, .number(DecimalValue(mantissa: Int64(60 + number % 30), exponent: 0)), .millimetreOfMercury),
        MeasuredValue(.meanArterialPressure, .number(DecimalValue(mantissa: Int64(80 + number % 20), exponent: 0)), .millimetreOfMercury),
        MeasuredValue(.pulseRate, .number(DecimalValue(mantissa: Int64(60 + number % 40), exponent: 0)), .perMinute),
    ]
    return Reading(kind: .bloodPressure, values: values, deviceTime: DeviceTimestamp(time: time),
                   receivedAt: HubTimestamp(instant: Date(timeIntervalSince1970: 1_750_000_000 + Double(number)), utcOffsetSeconds: 25_200),
                   device: DeviceIdentity(bluetoothAddress: device, manufacturer: "Benchmark", model: "BP"),
                   source: ReadingSource(profileID: "bluetooth-sig/blood-pressure", frame: "2A35"), raw: [0x16])
}

func runID() -> EUI48 {
    let text = option("--run-id") ?? String(UInt32.random(in: 0...UInt32.max), radix: 16)
    let value = UInt32(text, radix: 16) ?? 0
    return EUI48(bytes: [0x02, 0x00, UInt8(value >> 24 & 0xFF), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)])!
}

guard let mode = arguments.dropFirst().first, let path = option("--db") else {
    fail("give `ingest` or `drain` and --db PATH")
}
let count = Int(option("--readings") ?? "") ?? 1000
let clock = ContinuousClock()

switch mode {
case "ingest":
    let perCommit = max(1, Int(option("--per-commit") ?? "") ?? 1)
    let outbox = try Outbox(path: path)
    let device = runID()
    let readings = (0..<count).map { IncomingReading(reading: reading($0, device: device), subject: patient) }
    let elapsed = try clock.measure {
        var start = 0
        while start < readings.count {
            _ = try outbox.ingest(Array(readings[start..<min(readings.count, start + perCommit)]))
            start += perCommit
        }
    }
    print(JSONValue.object([("benchmark", "outbox-ingest"), ("readings", .int(count)), ("perCommit", .int(perCommit)),
                            ("seconds", number(seconds(elapsed), places: 4)),
                            ("readingsPerSecond", number(Double(count) / seconds(elapsed)))]).serialized())

case "drain":
    guard let server = option("--server") else { fail("drain needs --server BASE") }
    let batch = Int(option("--batch") ?? "") ?? 50
    let outbox = try Outbox(path: path)
    let device = runID()
    var start = 0
    while start < count {
        _ = try outbox.ingest((start..<min(count, start + 500)).map { IncomingReading(reading: reading($0, device: device), subject: patient) })
        start += 500
    }
    let identity = GatewayIdentity.derived(fromEthernet: EUI48("02:00:5E:10:00:02")!, softwareVersion: "benchmark")
    let configuration = UplinkConfiguration(baseURL: server, batchSize: batch, export: FHIRExportConfiguration(gateway: identity))
    let http = HTTPClient(userAgent: "VitalGate-benchmark")
    let deliverer = Deliverer(configuration: configuration, http: http,
                              authenticator: Authenticator(method: .none, fhirBaseURL: server, http: http))
    var requests = 0, sent = 0, received = 0, delivered = 0, created = 0, dead = 0, retried = 0, rounds = 0
    let elapsed = try clock.measure {
        // Bounded: a failing server must end the benchmark, not spin it.
        while rounds < count {
            rounds += 1
            let due = try outbox.nextBatch(limit: batch, now: Date())
            if due.isEmpty { break }
            let report = deliverer.deliver(due.map { DeliveryItem(id: $0.id.rawValue, reading: $0.reading, subject: $0.subject!) })
            requests += report.requests
            sent += report.bytesSent
            received += report.bytesReceived
            for outcome in report.outcomes.values {
                switch outcome {
                case .delivered(let status, _): delivered += 1; if status == 201 { created += 1 }
                case .retry: retried += 1
                case .rejected: dead += 1
                }
            }
            guard !report.serverUnavailable else { fail("the server failed: \(report.outcomes.values.first.map { "\($0)" } ?? "")") }
            for write in OutboxWrite.plan(report, retryAt: { _, _ in Date() }) { try write.apply(to: outbox, at: Date()) }
        }
    }
    print(JSONValue.object([("benchmark", "backlog-drain"), ("readings", .int(count)), ("batch", .int(batch)),
                            ("seconds", number(seconds(elapsed), places: 3)),
                            ("readingsPerSecond", number(Double(delivered) / seconds(elapsed))),
                            ("requests", .int(requests)), ("bytesSent", .int(sent)), ("bytesReceived", .int(received)),
                            ("delivered", .int(delivered)), ("created", .int(created)), ("dead", .int(dead)),
                            ("retried", .int(retried))]).serialized())

default:
    fail("unknown mode \(mode); use ingest or drain")
}
