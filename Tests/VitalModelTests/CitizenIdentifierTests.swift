import Testing
@testable import VitalModel

/// The rules of ``IdentifierSystems/validate(_:currentYear:)`` and ``IdentifierSystems/parse(_:currentYear:)``.
/// Every citizen ID here uses 099, VitalGate's test province, unless the province code itself is under test;
/// those use a zero random part, which no public source documents as issued.
@Suite("citizen and social-insurance identifiers")
struct CitizenIdentifierTests {
    let systems = IdentifierSystems.vietnam
    /// Fixed, so that the century rule is tested against a known year rather than the clock.
    static let year = 2026

    /// Appendix 1 of Circular 07/2016/TT-BCA as published by thuvienphapluat.vn ("Tra cứu mã 63 tỉnh thành trên
    /// thẻ Căn cước công dân") and lawnet.vn ("12 chữ số trên thẻ căn cước công dân có ý nghĩa gì?"), transcribed
    /// here independently of the implementation's table: Hà Nội 001 ... Cà Mau 096.
    static let publishedProvinceCodes = [
        "001", "002", "004", "006", "008", "010", "011", "012", "014", "015", "017", "019", "020", "022", "024", "025",
        "026", "027", "030", "031", "033", "034", "035", "036", "037", "038", "040", "042", "044", "045", "046", "048",
        "049", "051", "052", "054", "056", "058", "060", "062", "064", "066", "067", "068", "070", "072", "074", "075",
        "077", "079", "080", "082", "083", "084", "086", "087", "089", "091", "092", "093", "094", "095", "096",
    ]

    func refusal(_ text: String, year: Int = Self.year) throws -> String {
        let problem = try #require(throws: IdentifierSystems.Problem.self) { try systems.parse(text, currentYear: year) }
        // The message may be logged: it never repeats the number, nor its six digits after the province.
        let digits = text.filter(\.isASCIIDigit)
        if digits.count >= 6 {
            #expect(!problem.description.contains(digits), "\(problem)")
            #expect(!problem.description.contains(digits.dropFirst(3).prefix(6)), "\(problem)")
        }
        return problem.description
    }

    @Test("exactly the 63 published province codes and the test province 099 are accepted")
    func provinceCodes() throws {
        #expect(Self.publishedProvinceCodes.count == 63)
        var accepted: [String] = []
        for code in 0...999 {
            let prefix = String(repeating: "0", count: 3 - String(code).count) + String(code)
            let value = prefix + "085000000"
            if (try? systems.validate(PatientIdentifier(system: systems.citizenID, value: value), currentYear: Self.year)) != nil {
                accepted.append(prefix)
            }
        }
        #expect(accepted == (Self.publishedProvinceCodes + ["099"]).sorted())
    }

    @Test("accepted, with the value the record is stored under", arguments: [
        ("cccd:099199000001", "099199000001"),              // the demo citizen: female, 1999
        ("cccd:099085000002", "099085000002"),              // digit 4 = 0: male, 1900s
        ("cccd:099200000003", "099200000003"),              // digit 4 = 2: male, 2000
        ("cccd:099326000004", "099326000004"),              // digit 4 = 3: female, 2026, the current year
        ("  cccd:099199000001\r\n", "099199000001"),        // pasted with whitespace and a line break
        ("CCCD: 099199000001", "099199000001"),             // prefix in capitals, space after the colon
        ("cccd:099 199 000 001", "099199000001"),           // typed in groups of three
        ("cccd:099.199.000.001", "099199000001"),
        ("cccd:0991-9900-0001", "099199000001"),
        ("http://fhir.hl7.org.vn/core/sid/cccd | 099 199 000 001", "099199000001"),
        ("bhxh:0990000001", "0990000001"),
        ("Bhxh:099 000 0001", "0990000001"),
        ("http://fhir.hl7.org.vn/core/sid/bhyt|0990000001", "0990000001"),
    ])
    func accepted(_ text: String, _ stored: String) throws {
        let identifier = try systems.parse(text, currentYear: Self.year)
        #expect(identifier.value == stored)
        #expect(identifier.system == (text.lowercased().contains("bhxh") || text.contains("bhyt")
            ? systems.socialInsurance : systems.citizenID))
    }

    @Test("the demo patient is valid under the default current year")
    func demoPatient() throws {
        try systems.validate(systems.demoPatient)
        #expect(try systems.parse("cccd:099199000001") == systems.demoPatient)
    }

    @Test("other systems keep their value as given, without the surrounding whitespace")
    func otherSystems() throws {
        let identifier = try systems.parse(" urn:oid:2.999 | abc 1.2 ", currentYear: Self.year)
        #expect(identifier == PatientIdentifier(system: "urn:oid:2.999", value: "abc 1.2"))
    }

    @Test("a health worker's SYSTEM|VALUE is read like a citizen's: halves trimmed (CR LF, BOM too), digit groups of a known system joined")
    func performers() throws {
        let plain = try systems.parsePerformer("\u{FEFF}urn:example:chw | CHW-42\r\n")
        #expect(plain == PerformerIdentifier(system: "urn:example:chw", value: "CHW-42"))
        let citizen = try systems.parsePerformer("http://fhir.hl7.org.vn/core/sid/cccd|099 085 000 009")
        #expect(citizen == PerformerIdentifier(system: "http://fhir.hl7.org.vn/core/sid/cccd", value: "099085000009"))
        for text in ["CHW-42", "urn:example:chw|", " |CHW-42", "a|b|c", "http://fhir.hl7.org.vn/core/sid/cccd|099085000"] {
            #expect(throws: IdentifierSystems.Problem.self, "\(text)") { try systems.parsePerformer(text) }
        }
    }

    @Test("validate checks the value as given: separators are only removed while parsing typed text")
    func validateIsExact() throws {
        let spaced = PatientIdentifier(system: systems.citizenID, value: "099 199 000 001")
        #expect(throws: IdentifierSystems.Problem.self) { try systems.validate(spaced, currentYear: Self.year) }
        try systems.validate(PatientIdentifier(system: systems.citizenID, value: "099199000001"), currentYear: Self.year)
    }

    @Test("digit 4 and digits 5-6 give a birth year that must not be after the current year", arguments: [
        ("099226000001", 2026, true), ("099227000001", 2026, false), ("099227000001", 2027, true),
        ("099399000001", 2026, false), ("099399000001", 2099, true),   // 3: female, 2000s
        ("099400000001", 2099, false), ("099400000001", 2100, true),   // 4: male, 2100s
        ("099599000001", 2199, true), ("099600000001", 2199, false),   // 5: female 2100s, 6: male 2200s
        ("099700000001", 2200, true), ("099800000001", 2299, false),   // 7: female 2200s, 8: male 2300s
        ("099999000001", 2399, true), ("099999000001", 2398, false),   // 9: female 2300s
        ("099000000001", 1900, true), ("099100000001", 1899, false),
    ])
    func centuryAndYear(_ value: String, _ year: Int, _ valid: Bool) throws {
        if valid {
            #expect(try systems.parse("cccd:" + value, currentYear: year).value == value)
        } else {
            let message = try refusal("cccd:" + value, year: year)
            #expect(message.contains("birth year after \(year)"), "\(message)")
            #expect(message.contains("digits 4-6"), "\(message)")
        }
    }

    @Test("typos are refused with a message that says what is wrong and how to fix it", arguments: [
        ("cccd:09919900001", ["exactly 12 digits", "has 11 characters", "typo"]),
        ("cccd:0991990000012", ["exactly 12 digits", "has 13 characters"]),
        ("cccd:09919900000O", ["exactly 12 digits", "not all digits"]),
        ("cccd:099199000001x", ["not all digits"]),
        ("cccd:099000001", ["old identity card (CMND)", "12-digit number"]),
        ("cccd:0990000001", ["social-insurance number", "bhxh:"]),
        ("cccd:099  199000001", ["not all digits"]),              // two separators in a row are not a grouping
        ("cccd:.099199000001", ["not all digits"]),
        ("cccd:099199000001.", ["not all digits"]),
        ("cccd:000199000001", ["province code", "63", "first 3 digits"]),
        ("cccd:003199000001", ["province code"]),
        ("cccd:097199000001", ["province code"]),
        ("cccd:098199000001", ["province code"]),
        ("cccd:100199000001", ["province code"]),
        ("cccd:999199000001", ["province code"]),
        ("bhxh:099000000", ["exactly 10 digits", "has 9 characters"]),
        ("bhxh:09900000011", ["exactly 10 digits", "has 11 characters"]),
        ("bhxh:099000000A", ["not all digits"]),
        ("bhxh:099199000001", ["citizen ID", "cccd:"]),
        ("bhxh:DN4990990000001", ["health-insurance card number", "last 10 digits"]),
        ("bhxh:DN 4 99 099 000 0001", ["health-insurance card number", "last 10 digits"]),
        ("099199000001", ["cccd:<12 digits>"]),                     // a bare number names no system
        ("cccd:", ["both a system and a value"]),
        ("|x", ["both a system and a value"]),
        ("a|", ["both a system and a value"]),
        ("a|b|c", ["more than one '|'"]),
    ])
    func refused(_ text: String, _ phrases: [String]) throws {
        let message = try refusal(text)
        for phrase in phrases { #expect(message.contains(phrase), "\(message)") }
    }

    @Test("a health-insurance card number is recognised only as 2 letters and 13 digits", arguments: [
        ("DN4990990000001", true), ("dn4990990000001", true), ("DN499099000000", false), ("D14990990000001", false),
        ("ĐN4990990000001", false), ("DN499099000000X", false),
    ])
    func healthInsuranceCardShape(_ value: String, _ expected: Bool) {
        #expect(IdentifierSystems.looksLikeHealthInsuranceCardNumber(value) == expected)
    }
}
