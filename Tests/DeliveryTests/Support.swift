import FHIRExport
import Gateway
import Foundation
import Outbox
import Testing
import Uplink
import VitalGateTestKit
import VitalModel

/// The demo citizen: 099 is no province code, so this can be no real person.
let citizen = PatientIdentifier(system: IdentifierSystems.vietnam.citizenID, value: "099199000001")
let hubIdentity = GatewayIdentity.derived(fromEthernet: EUI48("02:00:5E:10:00:03")!, softwareVersion: "test")

/// Servers shared by the tests of this target; each stops when the test process ends (stdin EOF) or by its
/// own time bound.
enum SharedServers {
    /// No authentication, the demo citizen registered.
    static let open: Result<(LocalFHIRServer, patientID: String), TestProcessError> = {
        Result { () throws(TestProcessError) -> (LocalFHIRServer, patientID: String) in
            let server = try LocalFHIRServer.start()
            return (server, try server.createPatient(system: citizen.system, value: citizen.value))
        }
    }()
}

/// A blood-pressure reading as the SIG decoder makes it, from a device with its own address per test, one per
/// minute of device time so each is distinct.
func bloodPressure(_ number: Int, device: EUI48, systolic: Int? = nil) -> Reading {
    let start = LocalDateTime(year: 2025, month: 3, day: 1, hour: 8, minute: 0, second: 0)!
    func value(_ type: MeasurementType, _ number: Int, _ unit: MeasurementUnit) -> MeasuredValue {
        MeasuredValue(type, .number(DecimalValue(mantissa: Int64(number), exponent: 0)), unit)
    }
    return Reading(
        kind: .bloodPressure,
        values: [value(.systolic, systolic ?? 110 + number % 40, .millimetreOfMercury),
                 value(.diastolic, 70 + number % 20, .millimetreOfMercury),
                 value(.meanArterialPressure, 85 + number % 10, .millimetreOfMercury),
                 value(.pulseRate, 60 + number % 30, .perMinute)],
        deviceTime: DeviceTimestamp(time: start.adding(milliseconds: Int64(number) * 60_000)!),
        receivedAt: HubTimestamp(instant: Date(timeIntervalSince1970: 1_760_000_000 + Double(number)), utcOffsetSeconds: 25_200),
        device: DeviceIdentity(bluetoothAddress: device, manufacturer: "Test", model: "Cuff"),
        source: ReadingSource(profileID: "bluetooth-sig/blood-pressure", frame: "2A35"), raw: [0x16])
}

/// A device address no other test uses, so each test's readings are its own on a shared server.
func uniqueDevice() -> EUI48 {
    let value = UInt32.random(in: 0...UInt32.max)
    return EUI48(bytes: [0x02, 0x01, UInt8(value >> 24 & 0xFF), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)])!
}

/// A fresh Outbox in a temporary directory.
func temporaryOutbox() throws -> (Outbox, URL) {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vitalgate-delivery-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    return (try Outbox(path: directory.appendingPathComponent("outbox.db").path), directory)
}

func deliverer(_ baseURL: String, mode: UplinkConfiguration.Mode = .transaction,
               subject: UplinkConfiguration.SubjectStyle = .conditional, batchSize: Int = 10,
               auth: AuthMethod = .none, requestTimeout: Duration = .seconds(30)) -> Deliverer {
    let configuration = UplinkConfiguration(baseURL: baseURL, mode: mode, subjectStyle: subject, batchSize: batchSize,
                                            export: FHIRExportConfiguration(gateway: hubIdentity))
    let http = HTTPClient(connectTimeout: .seconds(5), requestTimeout: requestTimeout, userAgent: "VitalGate-test")
    return Deliverer(configuration: configuration, http: http,
                     authenticator: Authenticator(method: auth, fhirBaseURL: baseURL, http: http))
}

/// What draining the Outbox did, for assertions.
struct DrainSummary {
    var rounds = 0
    var requests = 0
    var created = 0
    var alreadyThere = 0
    var retried = 0
    var retryReasons: [String] = []
    var rejected: [Int64: String] = [:]
}

/// Delivers everything due until nothing is pending, recording outcomes in the Outbox as the daemon does
/// (`OutboxWrite`) but without waiting out the backoff (a bounded number of rounds keeps a broken server from
/// hanging the test).
func drain(_ outbox: Outbox, _ deliverer: Deliverer, maximumRounds: Int = 500, expectDrained: Bool = true) throws -> DrainSummary {
    var summary = DrainSummary()
    while summary.rounds < maximumRounds {
        let due = try outbox.nextBatch(limit: 40, now: Date().addingTimeInterval(3600))
        if due.isEmpty { return summary }
        summary.rounds += 1
        let report = deliverer.deliver(due.map {
            DeliveryItem(id: $0.id.rawValue, reading: $0.reading, subject: $0.subject!, identifyByReceipt: $0.identifyByReceipt)
        })
        summary.requests += report.requests
        for (id, outcome) in report.outcomes {
            switch outcome {
            case .delivered(let status, _): if status == 201 { summary.created += 1 } else { summary.alreadyThere += 1 }
            case .retry(let reason, _, _):
                summary.retried += 1
                summary.retryReasons.append(reason)
            case .rejected(_, let reason, _): summary.rejected[id] = reason
            }
        }
        for write in OutboxWrite.plan(report, retryAt: { _, _ in Date() }) { try write.apply(to: outbox, at: Date()) }
    }
    if expectDrained { Issue.record("the Outbox did not drain in \(maximumRounds) rounds; last reasons: \(summary.retryReasons.suffix(3))") }
    return summary
}

/// The blood-pressure Observations of `device` on the server for the patient, by identifier value.
func observationCopies(_ server: LocalFHIRServer, patientID: String, device: EUI48) throws -> [String: Int] {
    let observations = try server.searchAll("Observation?subject=Patient/\(patientID)&code=150020&_count=200")
    var copies: [String: Int] = [:]
    for observation in observations {
        guard case .string(let value)? = observation["identifier"].flatMap({ if case .array(let items) = $0 { items.first } else { nil } })?["value"],
              value.hasPrefix(device.compactHex) else { continue }
        copies[value, default: 0] += 1
    }
    return copies
}
