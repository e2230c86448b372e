import VitalModel

/// Turns stored readings into FHIR R4 resources: PHD IG 2.0 profiles plus the R4 vital-signs profiles
/// where one exists (fhir-mapping.md §0, §6). A pure function of the reading and the configuration.
public struct FHIRExporter: Sendable {
    public let configuration: FHIRExportConfiguration

    public init(configuration: FHIRExportConfiguration) {
        self.configuration = configuration
    }

    /// The hub's PhgDevice, referenced by every Observation's gateway-device extension.
    public var gatewayDevice: FHIREntry { DeviceResources.phg(configuration) }

    /// The device and Observations for one reading about `subject`. With `forTransaction`, a subject given by
    /// identifier becomes a conditional reference the server resolves; otherwise a logical reference.
    /// `identifyByReceipt` makes the observation identifiers use the hub's receive time (see `ReadingTiming`).
    /// `performer` is the health worker who measured for the citizen during a visit (`Observation.performer`, a
    /// logical reference by identifier, which needs no Practitioner resource on the server).
    public func resources(for reading: Reading, subject: SubjectReference, performer: PerformerIdentifier? = nil,
                          forTransaction: Bool = true, identifyByReceipt: Bool = false) throws(ExportError) -> ReadingResources {
        if let id = subject.logicalID, !Self.isValidLogicalID(id) {
            throw ExportError(problem: "the Patient logical id is not a FHIR id",
                              hint: "a logical id is 1-64 characters of A-Z, a-z, 0-9, '-' and '.'")
        }
        let device = try DeviceResources.phd(reading.device, kind: reading.kind, configuration: configuration,
                                             claimProfile: configuration.claimProfiles)
        guard let devicePart = PHDObservationIdentifier.devicePart(reading.device) else {
            throw ExportError(problem: "the device has no identity for the observation identifier",
                              hint: "give the device a System ID, Bluetooth address or USB serial number")
        }
        let timing = ReadingTiming(reading, identifyByReceipt: identifyByReceipt)
        var builder = ObservationBuilder(
            reading: reading, timing: timing, subject: subject, devicePart: devicePart, deviceURL: device.fullUrl,
            gatewayURL: gatewayDevice.fullUrl, claimProfiles: configuration.claimProfiles,
            subjectReference: subject.reference(conditional: forTransaction))
        builder.performer = performer
        return ReadingResources(device: device, observations: builder.build())
    }

    /// A `collection` Bundle of the readings: what `vitalgate decode --fhir` shows.
    public func collectionBundle(_ readings: [Reading], subject: SubjectReference) throws(ExportError) -> JSONValue {
        try bundle(.collection, readings.map { ($0, subject) })
    }

    /// A `transaction` Bundle in which every entry is a conditional create: what the Uplink sends.
    public func transactionBundle(_ items: [(Reading, SubjectReference)]) throws(ExportError) -> JSONValue {
        try bundle(.transaction, items)
    }

    func bundle(_ kind: BundleBuilder.Kind, _ items: [(Reading, SubjectReference)]) throws(ExportError) -> JSONValue {
        var builder = BundleBuilder(kind: kind)
        try builder.add(gatewayDevice)
        for (reading, subject) in items {
            try builder.add(try resources(for: reading, subject: subject, forTransaction: kind == .transaction))
        }
        return builder.build()
    }

    static func isValidLogicalID(_ id: String) -> Bool {
        (1...64).contains(id.count) && id.unicodeScalars.allSatisfy {
            ("A"..."Z").contains($0) || ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" || $0 == "."
        }
    }
}

/// Assembles the Observations of one reading.
struct ObservationBuilder {
    let reading: Reading
    let timing: ReadingTiming
    let subject: SubjectReference
    let devicePart: String
    let deviceURL: String
    let gatewayURL: String
    let claimProfiles: Bool
    let subjectReference: JSONValue
    var coincidentURL: String?
    var performer: PerformerIdentifier?

    init(reading: Reading, timing: ReadingTiming, subject: SubjectReference, devicePart: String, deviceURL: String,
         gatewayURL: String, claimProfiles: Bool, subjectReference: JSONValue) {
        self.subjectReference = subjectReference
        self.reading = reading
        self.timing = timing
        self.subject = subject
        self.devicePart = devicePart
        self.deviceURL = deviceURL
        self.gatewayURL = gatewayURL
        self.claimProfiles = claimProfiles
    }

    /// Vital-signs profiles by the measurement types that carry them, with the units each profile allows.
    static let vitalSigns: [MeasurementType: (profile: String, units: Set<String>)] = [
        .noninvasiveBloodPressure: ("bp", ["mm[Hg]"]),
        .pulseRate: ("heartrate", ["/min"]), .oximeterPulseRate: ("heartrate", ["/min"]), .heartRate: ("heartrate", ["/min"]),
        .oxygenSaturation: ("oxygensat", ["%"]),
        .bodyWeight: ("bodyweight", ["kg", "g", "[lb_av]"]),
        .bodyTemperature: ("bodytemp", ["Cel", "[degF]"]),
        .bodyHeight: ("bodyheight", ["cm", "[in_i]"]),
        .bodyMassIndex: ("bmi", ["kg/m2"]),
    ]

    mutating func build() -> [FHIREntry] {
        var entries: [FHIREntry] = []
        if let check = timing.coincident {
            let coincident = coincidentTimestamp(check)
            coincidentURL = coincident.fullUrl
            entries.append(coincident)
        }
        var remaining = reading.values.filter { $0.type.mdc != nil }
        if reading.kind == .bloodPressure {
            let parts: [MeasurementType] = [.systolic, .diastolic, .meanArterialPressure]
            let components = parts.compactMap { part in remaining.first { $0.type == part } }
            remaining.removeAll { parts.contains($0.type) }
            if !components.isEmpty { entries.append(compound(.noninvasiveBloodPressure, components)) }
        }
        for value in remaining { entries.append(numeric(value)) }
        let measured = entries.first { $0.fullUrl != coincidentURL }
        // A field whose code no trusted source confirms stays in the reading but is not uploaded.
        for field in reading.statusBits where field.isVerified {
            entries.append(bits(field, derivedFrom: measured?.fullUrl))
        }
        return entries
    }

    // MARK: Shapes

    func numeric(_ value: MeasuredValue) -> FHIREntry {
        let vital = Self.vitalSigns[value.type].flatMap { $0.units.contains(value.unit.ucum) ? $0.profile : nil }
        return observation(type: value.type, profile: "PhdNumericObservation", vitalProfile: vital,
                           bodySite: reading.bodySite, unit: value.unit) { members in
            members += valueMembers(value)
            let statistics = windowStatistics(for: value, hasValue: members.contains { $0.0 == "valueQuantity" })
            if !statistics.isEmpty { members.append(("component", .array(statistics))) }
        }
    }

    func compound(_ type: MeasurementType, _ components: [MeasuredValue]) -> FHIREntry {
        let allowed = Self.vitalSigns[type]
        let vital = components.allSatisfy { allowed?.units.contains($0.unit.ucum) ?? false } ? allowed?.profile : nil
        return observation(type: type, profile: "PhdCompoundNumericObservation", vitalProfile: vital,
                           bodySite: reading.bodySite) { members in
            members.append(("component", .array(components.map { value in
                .object([("code", code(value.type))] + valueMembers(value))
            })))
        }
    }

    /// A PhdBitsEnumerationObservation: one component per bit, `Y` or `N` (v2-0136), derived from the
    /// measurement it describes. Bits the device left undefined are not reported.
    func bits(_ field: StatusBitField, derivedFrom: String?) -> FHIREntry {
        let type = MeasurementType(key: "status", mdc: field.type, loinc: nil, units: [])
        return observation(type: type, profile: "PhdBitsEnumerationObservation", vitalProfile: nil) { members in
            if let derivedFrom { members.append(("derivedFrom", [FHIRJSON.reference(derivedFrom)])) }
            members.append(("component", .array(field.bits.compactMap { bit in
                guard let isSet = bit.isSet else { return nil }
                return ["code": FHIRJSON.concept([FHIRJSON.coding(FHIRSystems.asn1ToHL7, "\(field.type.code).\(bit.bit)")], text: bit.name),
                        "valueCodeableConcept": FHIRJSON.concept([FHIRJSON.coding(FHIRSystems.yesNo, isSet ? "Y" : "N")])]
            })))
        }
    }

    /// A PhdCoincidentTimeStampObservation: the device clock (`value`) at a hub instant (`effective`).
    func coincidentTimestamp(_ check: DeviceClockCheck) -> FHIREntry {
        let hubTime = ReadingTiming.render(check.hubTime.localTime, offsetSeconds: check.hubTime.utcOffsetSeconds)
        var members: [(String, JSONValue)] = [("resourceType", "Observation")]
        if claimProfiles {
            members.append(("meta", ["profile": [.string(FHIRSystems.phd + "PhdCoincidentTimeStampObservation")]]))
        }
        // The IG gives this resource no identifier; VitalGate adds one under its own system so that a re-sent
        // transaction cannot create it twice.
        let identifierValue = devicePart + "-" + PHDObservationIdentifier.timestamp(receivedAt: check.hubTime)
        members += [
            ("identifier", [["system": .string(Self.coincidentIdentifierSystem), "value": .string(identifierValue)]]),
            ("status", "final"),
            ("code", FHIRJSON.concept([FHIRJSON.mdc(MDCCode(67975, "MDC_ATTR_TIME_ABS"))])),
            ("subject", FHIRJSON.reference(deviceURL)),
            ("effectiveDateTime", .string(hubTime)),
        ]
        if let deviceTime = check.deviceTime {
            members.append(("valueDateTime", .string(ReadingTiming.render(deviceTime, offsetSeconds: check.hubTime.utcOffsetSeconds))))
        } else {
            members.append(("dataAbsentReason", FHIRJSON.concept([FHIRJSON.coding(FHIRSystems.dataAbsentReason, "unknown")])))
        }
        members.append(("device", FHIRJSON.reference(gatewayURL)))
        let query = identifierMatchQuery(system: Self.coincidentIdentifierSystem, value: identifierValue)
        return FHIREntry(fullUrl: StableUUID(name: "Observation|" + query).urn, resourceType: "Observation",
                         resource: .object(members), ifNoneExist: query)
    }

    static let coincidentIdentifierSystem = "urn:vitalgate:coincident-timestamp"

    /// The members every measurement Observation shares, in FHIR's element order, with `body` adding the
    /// value, components or derivation.
    func observation(type: MeasurementType, profile: String, vitalProfile: String?, bodySite: BodySite? = nil,
                     unit: MeasurementUnit? = nil, body: (inout [(String, JSONValue)]) -> Void) -> FHIREntry {
        let status = reading.status
        let identifier = PHDObservationIdentifier(device: devicePart, patient: subject.identifierPart, type: type.mdc!,
                                                  timestamp: timing.identifierTimestamp,
                                                  duration: timing.identifierDuration).description
        var members: [(String, JSONValue)] = [("resourceType", "Observation")]
        var meta: [(String, JSONValue)] = []
        if claimProfiles {
            var profiles: [JSONValue] = [.string(FHIRSystems.phd + profile)]
            if let vitalProfile { profiles.append(.string(FHIRSystems.vitalSignsProfile + vitalProfile)) }
            meta.append(("profile", .array(profiles)))
        }
        if !status.isDisjoint(with: [.testData, .demoData]) {
            meta.append(("security", [FHIRJSON.coding(FHIRSystems.actReason, "HTEST", display: "test health data")]))
        }
        if !meta.isEmpty { members.append(("meta", .object(meta))) }

        var extensions: [JSONValue] = [["url": .string(FHIRSystems.gatewayDeviceExtension),
                                        "valueReference": FHIRJSON.reference(gatewayURL)]]
        if let coincidentURL {
            extensions.append(["url": .string(FHIRSystems.coincidentTimeStampExtension),
                               "valueReference": FHIRJSON.reference(coincidentURL)])
        }
        members.append(("extension", .array(extensions)))
        members.append(("identifier", [["system": .string(FHIRSystems.phdObservationIdentifier), "value": .string(identifier)]]))
        members.append(("status", .string(observationStatus)))

        var categories: [JSONValue] = []
        if vitalProfile != nil {
            categories.append(FHIRJSON.concept([FHIRJSON.coding(FHIRSystems.observationCategory, "vital-signs", display: "Vital Signs")]))
        }
        categories.append(FHIRJSON.concept([FHIRJSON.coding(FHIRSystems.phdCategory, "phd")]))
        members.append(("category", .array(categories)))
        members.append(("code", code(type, unit: unit)))
        members.append(("subject", subjectReference))
        if let end = timing.periodEnd {
            members.append(("effectivePeriod", ["start": .string(timing.effective), "end": .string(end)]))
        } else {
            members.append(("effectiveDateTime", .string(timing.effective)))
        }
        if let performer {
            members.append(("performer", [logicalReference("Practitioner", system: performer.system, value: performer.value)]))
        }
        let interpretations = interpretationCodes
        if !interpretations.isEmpty {
            members.append(("interpretation", .array(interpretations.map {
                FHIRJSON.concept([FHIRJSON.coding(FHIRSystems.measurementStatus, $0)])
            })))
        }
        if let note = timing.note { members.append(("note", [["text": .string(note)]])) }
        // Only a coded site is sent: a site without an MDC code from fhir-mapping.md stays in the reading.
        if let site = bodySite, let code = site.code {
            members.append(("bodySite", FHIRJSON.concept([FHIRJSON.mdc(code)], text: site.name)))
        }
        members.append(("device", FHIRJSON.reference(deviceURL)))
        body(&members)

        let query = identifierMatchQuery(system: FHIRSystems.phdObservationIdentifier, value: identifier)
        return FHIREntry(fullUrl: StableUUID(name: "Observation|" + query).urn, resourceType: "Observation",
                         resource: .object(members), ifNoneExist: query)
    }

    func code(_ type: MeasurementType, unit: MeasurementUnit? = nil) -> JSONValue {
        var codings = [FHIRJSON.mdc(type.mdc!)]
        if let loinc = Self.loinc(type, unit: unit) { codings.append(FHIRJSON.coding(LOINCCode.system, loinc.code, display: loinc.display)) }
        return FHIRJSON.concept(codings)
    }

    /// A LOINC code names a property, mass or moles per volume, so the glucometer code follows the unit
    /// (fhir-mapping.md §1.4: 41653-7 for mg/dL, 14743-9 for mmol/L).
    static func loinc(_ type: MeasurementType, unit: MeasurementUnit?) -> LOINCCode? {
        if type == .capillaryWholeBloodGlucose, unit == .millimolePerLitre {
            return LOINCCode("14743-9", "Glucose [Moles/volume] in Capillary blood by Glucometer")
        }
        return type.loinc
    }

    /// `valueQuantity`, or `dataAbsentReason` for a special value or a reading the device marked invalid or
    /// not available (fhir-mapping.md §1.7).
    func valueMembers(_ value: MeasuredValue) -> [(String, JSONValue)] {
        let absent: String? = if reading.status.contains(.invalid) {
            "error"
        } else if reading.status.contains(.notAvailable) {
            "not-performed"
        } else if case .special(let special) = value.value {
            switch special {
            case .notANumber: "not-a-number"
            case .positiveInfinity: "positive-infinity"
            case .negativeInfinity: "negative-infinity"
            case .notAtThisResolution, .reserved: "error"
            }
        } else {
            nil
        }
        if let absent {
            return [("dataAbsentReason", FHIRJSON.concept([FHIRJSON.coding(FHIRSystems.dataAbsentReason, absent)]))]
        }
        guard case .number(let number) = value.value else { return [] }
        return [("valueQuantity", ["value": .decimal(number), "unit": .string(value.unit.display),
                                   "system": .string(MeasurementUnit.ucumSystem), "code": .string(value.unit.ucum)])]
    }

    var observationStatus: String {
        if reading.status.contains(.invalid) { return "entered-in-error" }
        if !reading.status.isDisjoint(with: [.earlyEstimate, .ongoing]) { return "preliminary" }
        return "final"
    }

    /// Measurement-status interpretation codes (PHD IG measurement-status table).
    var interpretationCodes: [String] {
        let table: [(MeasurementStatus, String)] = [
            (.questionable, "questionable"), (.calibrating, "calibration-ongoing"), (.validated, "validated-data"),
            (.earlyEstimate, "early-indication"), (.ongoing, "msmt-ongoing"),
        ]
        return table.filter { reading.status.contains($0.0) }.map(\.1)
    }
}
