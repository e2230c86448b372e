import VitalModel

/// Canonical URLs and code systems FHIR output uses (fhir-mapping.md §1–§2).
enum FHIRSystems {
    static let phd = "http://hl7.org/fhir/uv/phd/StructureDefinition/"
    static let phdObservationIdentifier = phd + "PhdBaseObservation"
    static let phdCategory = "http://hl7.org/fhir/uv/phd/CodeSystem/PhdObservationCategories"
    static let observationCategory = "http://terminology.hl7.org/CodeSystem/observation-category"
    /// R4 StatisticsCode (`average`, `minimum`, `maximum`, `count`...), as `Observation/$stats` uses it.
    static let observationStatistics = "http://terminology.hl7.org/CodeSystem/observation-statistics"
    static let gatewayDeviceExtension = "http://hl7.org/fhir/StructureDefinition/observation-gatewayDevice"
    static let coincidentTimeStampExtension = phd + "CoincidentTimeStampReference"
    static let dataAbsentReason = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
    static let measurementStatus = "http://hl7.org/fhir/uv/pocd/CodeSystem/measurement-status"
    static let actReason = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
    static let asn1ToHL7 = "http://terminology.hl7.org/CodeSystem/ASN1ToHL7"
    static let yesNo = "http://terminology.hl7.org/CodeSystem/v2-0136"
    static let continuaDeviceIdentifiers = "http://terminology.hl7.org/CodeSystem/ContinuaDeviceIdentifiers"
    static let systemIDIdentifier = "urn:oid:1.2.840.10004.1.1.1.0.0.1.0.0.1.2680"
    static let bluetoothAddressIdentifier = "http://hl7.org/fhir/sid/eui-48/bluetooth"
    static let ethernetAddressIdentifier = "http://hl7.org/fhir/sid/eui-48/ethernet"
    static let vitalSignsProfile = "http://hl7.org/fhir/StructureDefinition/"
}

/// Small builders for the JSON shapes that recur in every resource.
enum FHIRJSON {
    static func coding(_ system: String, _ code: String, display: String? = nil) -> JSONValue {
        var members: [(String, JSONValue)] = [("system", .string(system)), ("code", .string(code))]
        if let display { members.append(("display", .string(display))) }
        return .object(members)
    }

    static func concept(_ codings: [JSONValue], text: String? = nil) -> JSONValue {
        var members: [(String, JSONValue)] = [("coding", .array(codings))]
        if let text { members.append(("text", .string(text))) }
        return .object(members)
    }

    static func mdc(_ code: MDCCode) -> JSONValue { coding(MDCCode.system, code.description, display: code.referenceID) }

    static func reference(_ target: String) -> JSONValue { ["reference": .string(target)] }
}
