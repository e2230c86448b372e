import Testing
import VitalModel
import ProfileEngine
import FHIRExport
import VitalGateTestKit

/// Every resource built from every golden vector goes through the independent validator (HL7 R4 core
/// package and R4 vital-signs profiles, scripts/fhir-validator), as a collection and as a transaction.
@Suite("FHIR validation of everything the vectors produce")
struct ValidationTests {
    static let bloodPressureHex = [
        "16FF07FF07FF07E80706170E230AFF070000", "167C0056006100E807060F11111B33000000", "167C0056006100E807060F11111B33002700",
        "167C0056006100E807060F11111B33000800", "167C0056006100E807060F11111B33001000",
        "1E8A00580078000000041114293B3C00012700", "15BDF00B009FF03C001200", "00BDF00B009FF0",
    ]

    @Test("blood pressure vectors: every resource of the collection and transaction Bundles", arguments: bloodPressureHex)
    func bloodPressureBundles(_ hex: String) throws {
        let reading = try bloodPressure(hex)
        let collection = try exporter.collectionBundle([reading], subject: demoSubject)
        try expectValid(collection, "collection of \(hex)")
        try expectValid(try exporter.transactionBundle([(reading, demoSubject)]), "transaction of \(hex)")
        guard case .array(let entries)? = collection["entry"] else { Issue.record("no entries"); return }
        for entry in entries { try expectValid(entry["resource"]!, "resource of \(hex)") }
    }

    @Test("heart-rate vectors", arguments: ["164D1603", "164E1B031203", "044A", "1843D0077203", "1F0101320101000201FFFF", "018080"])
    func heartRateBundles(_ hex: String) throws {
        let reading = try heartRate(hex)
        try expectValid(try exporter.collectionBundle([reading], subject: demoSubject), "collection of \(hex)")
        try expectValid(try exporter.transactionBundle([(reading, demoSubject)]), "transaction of \(hex)")
    }

    @Test("a transaction of many readings and two patients; repeated devices appear once")
    func manyReadings() throws {
        let other = SubjectReference.identifier(try vietnam.parse("bhxh:0990000001"))
        let items: [(Reading, SubjectReference)] = [
            (try bloodPressure("167C0056006100E807060F11111B33000000"), demoSubject),
            (try bloodPressure("167C0056006100E807060F11111B33002700"), other),
            (try heartRate("164D1603"), demoSubject),
        ]
        let bundle = try exporter.transactionBundle(items)
        try expectValid(bundle, "three readings")
        guard case .array(let entries)? = bundle["entry"] else { Issue.record("no entries"); return }
        let devices = entries.filter { at($0, "resource", "resourceType") == "Device" }
        #expect(devices.count == 2)  // the hub and the cuff; the strap shares the cuff's address in this test
    }

    /// The validator must be able to say no: deliberately broken copies of our own output.
    @Test("the validator catches broken resources", arguments: [
        ("diastolic component removed", ["component", 1] as [any Sendable], nil as JSONValue?),
        ("systolic unit mmHg instead of mm[Hg]", ["component", 0, "valueQuantity", "code"], .string("mmHg")),
        ("no subject", ["subject"], nil),
        ("no effective time", ["effectiveDateTime"], nil),
        ("impossible date", ["effectiveDateTime"], .string("2024-13-15T17:17:27+07:00")),
        ("status not in the value set", ["status"], .string("done")),
        ("systolic value as a string", ["component", 0, "valueQuantity", "value"], .string("124")),
        ("vital-signs category removed", ["category", 0], nil),
    ])
    func catchesMistakes(_ what: String, _ path: [any Sendable], _ replacement: JSONValue?) throws {
        let reading = try bloodPressure("167C0056006100E807060F11111B33000000")
        let good = try #require(observations(try exporter.collectionBundle([reading], subject: .resolved(logicalID: "p1", identifier: demoPatient)))["150020"])
        try expectValid(good, "unbroken control")
        let broken = editing(good, path.map { $0 as Any }, replacement)
        #expect(broken != good, "the edit must change the resource")
        let result = try FHIRValidator.shared().validate(broken.serialized())
        #expect(!result.valid, "\(what) was accepted")
    }
}
