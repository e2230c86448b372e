import Foundation
import Testing
import VitalModel
import ProfileEngine
import FHIRExport
import VitalGateTestKit

let vietnam = IdentifierSystems.vietnam
let demoPatient = vietnam.demoPatient
let demoSubject = SubjectReference.identifier(demoPatient)
let gateway = GatewayIdentity(systemID: EUI64("00-00-5E-FF-FE-00-53-00")!, ethernetAddress: EUI48("00-00-5E-00-53-00"),
                              softwareVersion: "0.1.0", timeSync: .sntpv4)
let exporter = FHIRExporter(configuration: FHIRExportConfiguration(gateway: gateway))
let received = HubTimestamp(iso8601: "2025-06-01T07:35:00.250+07:00")!
let cuff = DeviceIdentity(bluetoothAddress: EUI48("C4:F3:12:53:F2:C9"), manufacturer: "A&D Medical", model: "UA-651BLE")

func context(_ device: DeviceIdentity = cuff, profile: String = "bluetooth-sig/blood-pressure") -> DecodeContext {
    DecodeContext(device: device, receivedAt: received, profileID: profile)
}

func bloodPressure(_ hex: String, device: DeviceIdentity = cuff) throws -> Reading {
    try BloodPressureMeasurementDecoder().decode(bytes(hex), context: context(device))
}

func heartRate(_ hex: String) throws -> Reading {
    try HeartRateMeasurementDecoder().decode(bytes(hex), context: context(profile: "bluetooth-sig/heart-rate"))
}


/// Sends `resource` to the independent validator and records every error it reports.
@discardableResult
func expectValid(_ resource: JSONValue, _ what: String, sourceLocation: Testing.SourceLocation = #_sourceLocation) throws -> ValidationResult {
    let result = try FHIRValidator.shared().validate(resource.serialized())
    #expect(result.valid, "\(what): \(result.errors.map(\.description).joined(separator: "; "))", sourceLocation: sourceLocation)
    return result
}

/// Observations of a Bundle, by MDC code.
func observations(_ bundle: JSONValue) -> [String: JSONValue] {
    guard case .array(let entries)? = bundle["entry"] else { return [:] }
    var result: [String: JSONValue] = [:]
    for entry in entries {
        guard let resource = entry["resource"], resource["resourceType"] == "Observation",
              case .array(let codings)? = resource["code"]?["coding"], case .string(let code)? = codings.first?["code"]
        else { continue }
        result[code] = resource
    }
    return result
}

/// The `fullUrl` of the Bundle entry whose Observation has MDC code `code`.
func fullURL(of code: String, in bundle: JSONValue) -> JSONValue? {
    guard case .array(let entries)? = bundle["entry"] else { return nil }
    return entries.first { at($0, "resource", "code", "coding", 0, "code") == .string(code) }?["fullUrl"]
}

/// A member of a JSON object along a path of keys and array indexes.
func at(_ value: JSONValue?, _ path: Any...) -> JSONValue? {
    var current = value
    for step in path {
        switch (current, step) {
        case (.object?, let key as String): current = current?[key]
        case (.array(let items)?, let index as Int): current = index < items.count ? items[index] : nil
        default: return nil
        }
    }
    return current
}

/// Replaces the member at `path` (keys and indexes) with `replacement`, or removes it when nil.
func editing(_ value: JSONValue, _ path: [Any], _ replacement: JSONValue?) -> JSONValue {
    guard let step = path.first else { return replacement ?? .null }
    let rest = Array(path.dropFirst())
    switch (value, step) {
    case (.object(let members), let key as String):
        if rest.isEmpty && replacement == nil { return .object(members.filter { $0.0 != key }) }
        return .object(members.map { $0.0 == key ? ($0.0, editing($0.1, rest, replacement)) : $0 })
    case (.array(var items), let index as Int):
        if rest.isEmpty && replacement == nil { items.remove(at: index); return .array(items) }
        items[index] = editing(items[index], rest, replacement)
        return .array(items)
    default:
        return value
    }
}
