import Testing
import VitalModel
import ProfileEngine
import FHIRExport
import VitalGateTestKit

/// FHIR output for the readings of the pulse-oximeter, scale, thermometer and glucose-meter characteristics:
/// every Bundle passes the independent validator, and codes, units and body sites are the ones
/// fhir-mapping.md §1.4 and §2 give.
@Suite("FHIR export of PLX, weight, temperature and glucose readings")
struct StandardCharacteristicsFHIRTests {
    static func reading(_ uuid: String, _ hex: String) throws -> Reading {
        try StandardCharacteristics.decode(uuid, bytes(hex), context: context(profile: "bluetooth-sig/test"))
    }

    /// Vectors from Tests/Fixtures/bluetooth-sig (sources in SOURCES.md), plus one glucose record built on the
    /// field layout with a realistic value (90 mg/dL capillary whole blood, finger).
    static let cases: [(String, String)] = [
        ("2A5E", "0FACF3BEF5E8070B1D170839204022000066E3"),
        ("2A5F", "1FDEF3CAF3CAF35AF5D4F3B2F220010000007AE3"),
        ("2A9D", "0E205CEA07070E1729200140018007"),
        ("2A9D", "0EFFFFEA07050C12353601EE002607"),
        ("2A9D", "095046F000BC02"),
        ("2A1C", "06B00E00FEDC070C050B321B04"),
        ("2A18", "1B0100E307021B0B0A1EFBFF1E00120501"),
        ("2A18", "020700E807030508090A5AB011"),
    ]

    @Test("collection and transaction Bundles validate with no errors", arguments: cases)
    func validates(_ uuid: String, _ hex: String) throws {
        let reading = try Self.reading(uuid, hex)
        try expectValid(try exporter.collectionBundle([reading], subject: demoSubject), "collection of \(uuid) \(hex)")
        try expectValid(try exporter.transactionBundle([(reading, demoSubject)]), "transaction of \(uuid) \(hex)")
        let collection = try exporter.collectionBundle([reading], subject: .resolved(logicalID: "p1", identifier: demoPatient))
        guard case .array(let entries)? = collection["entry"] else { Issue.record("no entries"); return }
        for entry in entries { try expectValid(try #require(entry["resource"]), "resource of \(uuid) \(hex)") }
    }

    @Test("pulse oximetry: SpO2 and pulse rate upload; fast/slow, PAI and the unverified device status do not")
    func pulseOximetry() throws {
        let bundle = try exporter.collectionBundle([try Self.reading("2A5F", Self.cases[1].1)], subject: demoSubject)
        let found = observations(bundle)
        #expect(Set(found.keys) == ["150456", "149530"])
        let spo2 = try #require(found["150456"])
        #expect(at(spo2, "code", "coding", 1, "code") == "2708-6")
        #expect(at(spo2, "valueQuantity", "code") == "%")
        #expect(at(spo2, "valueQuantity", "value") == .number("99.0"))
        #expect(at(spo2, "meta", "profile", 1) == "http://hl7.org/fhir/StructureDefinition/oxygensat")
        #expect(at(found["149530"], "valueQuantity", "code") == "/min")
        // Measurement status "ongoing" makes it preliminary with the msmt-ongoing interpretation.
        #expect(at(spo2, "status") == "preliminary")
        #expect(at(spo2, "interpretation", 0, "coding", 0, "code") == "msmt-ongoing")

        let spot = observations(try exporter.collectionBundle([try Self.reading("2A5E", Self.cases[0].1)], subject: demoSubject))
        #expect(Set(spot.keys) == ["150456", "149530"], "no PhdBitsEnumerationObservation for the unverified 150604 field")
    }

    @Test("weight with BMI and height: three vital-sign Observations with their LOINC codes and units")
    func weight() throws {
        let found = observations(try exporter.collectionBundle([try Self.reading("2A9D", Self.cases[2].1)], subject: demoSubject))
        let expected: [(mdc: String, loinc: String, unit: String, value: String, profile: String)] = [
            ("188736", "29463-7", "kg", "117.920", "bodyweight"), ("188752", "39156-5", "kg/m2", "32.0", "bmi"),
            ("188740", "8302-2", "cm", "192.0", "bodyheight"),
        ]
        #expect(found.count == 3)
        for entry in expected {
            let observation = try #require(found[entry.mdc], "\(entry.mdc)")
            #expect(at(observation, "code", "coding", 1, "code") == .string(entry.loinc))
            #expect(at(observation, "valueQuantity", "code") == .string(entry.unit))
            #expect(at(observation, "valueQuantity", "value") == .number(entry.value))
            #expect(at(observation, "meta", "profile", 1) == .string("http://hl7.org/fhir/StructureDefinition/" + entry.profile))
            #expect(at(observation, "effectiveDateTime") == "2026-07-14T23:41:32+07:00")
        }
    }

    /// The validator must be able to say no to the new profiles too: broken copies of our own output.
    @Test("the validator rejects a BMI or height in a unit its vital-signs profile does not allow", arguments: [
        ("188752", "kg"), ("188740", "m"),
    ])
    func catchesWrongUnits(_ code: String, _ unit: String) throws {
        let found = observations(try exporter.collectionBundle([try Self.reading("2A9D", Self.cases[2].1)],
                                                               subject: .resolved(logicalID: "p1", identifier: demoPatient)))
        let good = try #require(found[code])
        try expectValid(good, "unbroken \(code)")
        let broken = editing(good, ["valueQuantity", "code"], .string(unit))
        #expect(try !FHIRValidator.shared().validate(broken.serialized()).valid, "\(code) in \(unit) was accepted")
    }

    @Test("an unsuccessful weighing uploads a data-absent reason, not a number")
    func unsuccessfulWeight() throws {
        let found = observations(try exporter.collectionBundle([try Self.reading("2A9D", Self.cases[3].1)], subject: demoSubject))
        let weight = try #require(found["188736"])
        #expect(at(weight, "valueQuantity") == nil)
        #expect(at(weight, "dataAbsentReason", "coding", 0, "code") == "not-a-number")
    }

    @Test("imperial height is sent in [in_i]")
    func imperialHeight() throws {
        let found = observations(try exporter.collectionBundle([try Self.reading("2A9D", Self.cases[4].1)], subject: demoSubject))
        #expect(at(found["188740"], "valueQuantity", "code") == "[in_i]")
        #expect(at(found["188736"], "valueQuantity", "code") == "[lb_av]")
    }

    @Test("temperature carries the thermometer's site as bodySite")
    func temperature() throws {
        let found = observations(try exporter.collectionBundle([try Self.reading("2A1C", Self.cases[5].1)], subject: demoSubject))
        let observation = try #require(found["150364"])
        #expect(at(observation, "valueQuantity", "value") == .number("37.60"))
        #expect(at(observation, "valueQuantity", "code") == "Cel")
        #expect(at(observation, "bodySite", "coding", 0, "system") == "urn:iso:std:iso:11073:10101")
        #expect(at(observation, "bodySite", "coding", 0, "code") == "188432")
        #expect(at(observation, "bodySite", "text") == "finger")
        #expect(at(observation, "meta", "profile", 1) == "http://hl7.org/fhir/StructureDefinition/bodytemp")
    }

    @Test("glucose: MDC type by sample, converted unit, no vital-signs claim, no uncoded bodySite")
    func glucose() throws {
        let found = observations(try exporter.collectionBundle([try Self.reading("2A18", Self.cases[7].1)], subject: demoSubject))
        let observation = try #require(found["160184"])
        #expect(at(observation, "valueQuantity", "value") == .number("90"))
        #expect(at(observation, "valueQuantity", "code") == "mg/dL")
        #expect(at(observation, "bodySite") == nil, "glucose sites have no verified code")
        #expect(at(observation, "meta", "profile", 1) == nil)
        #expect(at(observation, "category", 0, "coding", 0, "code") == "phd")

        let nordic = observations(try exporter.collectionBundle([try Self.reading("2A18", Self.cases[6].1)], subject: demoSubject))
        let plasma = try #require(nordic["160188"])
        #expect(at(plasma, "valueQuantity", "value") == .number("3000000"))
        #expect(at(plasma, "interpretation", 0, "coding", 0, "code") == "questionable")
        #expect(nordic.count == 1, "the unverified glucose status field is not uploaded")
    }

    @Test("the glucometer LOINC code follows the unit: 41653-7 for mg/dL, 14743-9 for mmol/L")
    func glucoseLOINCFollowsUnit() throws {
        let massPerVolume = observations(try exporter.collectionBundle([try Self.reading("2A18", Self.cases[7].1)], subject: demoSubject))
        let mass = try #require(massPerVolume["160184"])
        #expect(at(mass, "code", "coding", 1, "code") == "41653-7")
        // Built on the field layout: flags 0x06 (concentration, mol/L), 5 × 10^-3 mol/L, capillary whole blood, finger.
        let molesPerVolume = try Self.reading("2A18", "060700E807030508090A05D011")
        let bundle = try exporter.collectionBundle([molesPerVolume], subject: demoSubject)
        try expectValid(bundle, "mmol/L glucose")
        let observation = try #require(observations(bundle)["160184"])
        #expect(at(observation, "valueQuantity", "code") == "mmol/L")
        #expect(at(observation, "valueQuantity", "value") == .number("5"))
        #expect(at(observation, "code", "coding", 1, "code") == "14743-9")
    }
}
