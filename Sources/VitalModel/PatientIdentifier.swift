/// A citizen's identifier in a naming system: what a reading's subject is resolved by on the server.
public struct PatientIdentifier: Sendable, Hashable, CustomStringConvertible {
    public let system: String
    public let value: String

    public init(system: String, value: String) {
        self.system = system
        self.value = value
    }

    /// `system|value`, the FHIR token form. Contains the identifier: never log it.
    public var description: String { system + "|" + value }
}

/// The identifier systems VitalGate knows, with the URIs they are sent under. Configuration can replace
/// the URIs (the national endpoint's choice is not public; fhir-mapping.md §4.2).
public struct IdentifierSystems: Sendable, Hashable {
    /// 12-digit citizen identity number (CCCD / số định danh cá nhân).
    public var citizenID: String
    /// 10-digit social-insurance number (mã số BHXH), also the health-insurance card key.
    public var socialInsurance: String

    public init(citizenID: String, socialInsurance: String) {
        self.citizenID = citizenID
        self.socialInsurance = socialInsurance
    }

    /// The HL7 Vietnam community IG's naming systems.
    public static let vietnam = IdentifierSystems(
        citizenID: "http://fhir.hl7.org.vn/core/sid/cccd",
        socialInsurance: "http://fhir.hl7.org.vn/core/sid/bhyt")

    /// Why a patient identifier was refused. The message never repeats the identifier, so it can be logged.
    public struct Problem: Error, Sendable, CustomStringConvertible {
        public let description: String
    }

    /// The year of ``CalendarDate/today`` (the hub's clock, never before 2025): the default latest birth year a
    /// citizen ID may encode.
    public static var currentYear: Int { CalendarDate.today.year }

    /// Reads `cccd:NNNNNNNNNNNN`, `bhxh:NNNNNNNNNN` or `SYSTEM|VALUE`, and checks the format of the
    /// systems it knows (see ``validate(_:currentYear:)``). The message never repeats the value, so it can be logged.
    ///
    /// Typed input from health workers is tidied before the check, and only in ways that cannot change
    /// which number is meant:
    /// - whitespace around the whole text, around `SYSTEM` and around `VALUE` is dropped;
    /// - the `cccd:` and `bhxh:` prefixes are matched in any letter case, with optional spaces after the colon;
    /// - for the two known systems, single spaces, dots or hyphens between digit groups are removed,
    ///   so `cccd:001 085 012 345` and `cccd:001.085.012.345` both give `001085012345`. A separator at either
    ///   end, or two in a row, is left in place and the value is refused as not all digits.
    ///
    /// A bare number without a prefix is refused: a 12-digit value could be meant for either system's
    /// naming, and guessing would put a reading on the wrong record.
    public func parse(_ text: String, currentYear: Int = IdentifierSystems.currentYear) throws(Problem) -> PatientIdentifier {
        let text = text.trimmingWhitespace
        var identifier: PatientIdentifier
        if let (system, value) = Self.systemAndValue(text) {
            identifier = PatientIdentifier(system: system, value: value)
        } else if let value = text.dropPrefix(caseInsensitive: "cccd:") {
            identifier = PatientIdentifier(system: citizenID, value: String(value.trimmingWhitespace))
        } else if let value = text.dropPrefix(caseInsensitive: "bhxh:") {
            identifier = PatientIdentifier(system: socialInsurance, value: String(value.trimmingWhitespace))
        } else {
            throw Problem(description: "a patient is given as cccd:<12 digits>, bhxh:<10 digits> or SYSTEM|VALUE")
        }
        identifier = PatientIdentifier(system: identifier.system, value: typedValue(identifier.value, in: identifier.system))
        try validate(identifier, currentYear: currentYear)
        return identifier
    }

    /// `SYSTEM|VALUE` split at the first `|`, each half without surrounding whitespace; nil without a `|`.
    static func systemAndValue<Text: StringProtocol>(_ text: Text) -> (system: String, value: String)? {
        guard let bar = text.firstIndex(of: "|") else { return nil }
        return (String(text[..<bar].trimmingWhitespace), String(text[text.index(after: bar)...].trimmingWhitespace))
    }

    /// A value as typed, with the digit-group separators of the two known systems removed.
    func typedValue(_ value: String, in system: String) -> String {
        system == citizenID || system == socialInsurance ? Self.withoutGroupSeparators(value) : value
    }

    /// Checks a known system's format so a typo is refused before a reading is stored under it.
    ///
    /// - Citizen ID (CCCD, số định danh cá nhân; Decree 137/2015/NĐ-CP art. 13, Circular 07/2016/TT-BCA art. 7):
    ///   exactly 12 ASCII digits; digits 1-3 one of the 63 province codes of birth registration, or `099`,
    ///   which is **not** a province: VitalGate reserves it for test and demo citizens (``demoPatient``,
    ///   `099199000001`, is valid so that examples and tests can never name a real person); digit 4 the sex
    ///   and century of birth (0/1 male/female 1900s, 2/3 2000s, 4/5 2100s, 6/7 2200s, 8/9 2300s) and digits
    ///   5-6 the year within it, which together must not be after `currentYear`.
    /// - Social-insurance number (mã số BHXH): exactly 10 ASCII digits. A 15-character health-insurance
    ///   card number (2 letters and 13 digits) is refused with the hint that its last 10 digits are the
    ///   social-insurance number.
    /// - Other systems: a system and a value without `|`.
    ///
    /// Values are checked as given: ``parse(_:currentYear:)`` is where typed separators are removed.
    public func validate(_ identifier: PatientIdentifier, currentYear: Int = IdentifierSystems.currentYear) throws(Problem) {
        guard !identifier.system.isEmpty, !identifier.value.isEmpty else {
            throw Problem(description: "a patient identifier needs both a system and a value (SYSTEM|VALUE)")
        }
        guard !identifier.system.contains("|"), !identifier.value.contains("|") else {
            throw Problem(description: "a patient identifier contains more than one '|'")
        }
        switch identifier.system {
        case citizenID: try Self.checkCitizenID(identifier.value, currentYear: currentYear)
        case socialInsurance: try Self.checkSocialInsurance(identifier.value)
        default: break
        }
    }

    /// How ``parse(_:currentYear:)`` reads a system: `cccd:`, `bhxh:`, or the system and `|`.
    public func typedPrefix(of system: String) -> String {
        system == citizenID ? "cccd:" : system == socialInsurance ? "bhxh:" : system + "|"
    }

    /// An identifier as an operator types it (`cccd:…`, `bhxh:…`, `SYSTEM|VALUE`): the inverse of parsing. Holds the
    /// identifier: for terminals, never for logs.
    public func typedText(_ identifier: PatientIdentifier) -> String { typedPrefix(of: identifier.system) + identifier.value }

    /// The documented demo citizen: `099` is not a Vietnamese province code, so this can be no real person.
    public var demoPatient: PatientIdentifier { PatientIdentifier(system: citizenID, value: "099199000001") }

    /// The first three digits of test and demo citizen IDs. Not a province: VitalGate's reservation, so that
    /// fixtures, examples and the demo patient can never match a real citizen.
    public static let testProvinceCode = 99

    /// The 63 province codes of birth registration, Appendix 1 of Circular 07/2016/TT-BCA, as reproduced by
    /// thuvienphapluat.vn ("Tra cứu mã 63 tỉnh thành trên thẻ Căn cước công dân") and lawnet.vn; the same
    /// 63 codes appear in the province tables of several public CCCD validators. The 2025 merger of provinces
    /// does not renumber citizen IDs already issued, so the pre-merger table stays the one to check against.
    /// Decree 137/2015/NĐ-CP art. 13 also allows a country code here for a birth registered abroad; no public
    /// source shows such an ID, so none is accepted until one is documented.
    static let provinceCodes: Set<Int> = [
        1, 2, 4, 6, 8, 10, 11, 12, 14, 15, 17, 19, 20, 22, 24, 25, 26, 27, 30, 31, 33, 34, 35, 36, 37, 38,
        40, 42, 44, 45, 46, 48, 49, 51, 52, 54, 56, 58, 60, 62, 64, 66, 67, 68, 70, 72, 74, 75, 77, 79,
        80, 82, 83, 84, 86, 87, 89, 91, 92, 93, 94, 95, 96,
    ]

    private static func checkCitizenID(_ value: String, currentYear: Int) throws(Problem) {
        let allDigits = value.allSatisfy(\.isASCIIDigit)
        guard value.count == 12, allDigits else {
            let hint = if allDigits && value.count == 9 {
                "; a 9-digit number is an old identity card (CMND), which is not accepted: use the 12-digit number "
                    + "on the citizen ID card or in the VNeID app"
            } else if allDigits && value.count == 10 {
                "; a 10-digit number is usually a social-insurance number: give it as bhxh:<10 digits>"
            } else { " — check for a typo" }
            throw Problem(description: "a citizen ID (CCCD) is exactly 12 digits; the value given has \(value.count) "
                + "characters\(allDigits ? "" : ", not all digits")\(hint)")
        }
        let digits = CitizenIDDigits(twelveDigits: value)
        guard provinceCodes.contains(digits.provinceCode) || digits.provinceCode == testProvinceCode else {
            throw Problem(description: "the first 3 digits of a citizen ID (CCCD) are the province code of birth "
                + "registration, and these are not one of the 63 codes (nor 099, VitalGate's test province) — "
                + "check the first 3 digits for a typo")
        }
        guard digits.birthYear <= currentYear else {
            throw Problem(description: "digit 4 of a citizen ID (CCCD) gives the century of birth and sex, and digits "
                + "5-6 the year: together they give a birth year after \(currentYear) — check digits 4-6 for a typo")
        }
    }

    private static func checkSocialInsurance(_ value: String) throws(Problem) {
        let allDigits = value.allSatisfy(\.isASCIIDigit)
        guard value.count == 10, allDigits else {
            if looksLikeHealthInsuranceCardNumber(value) {
                throw Problem(description: "a social-insurance number (BHXH) is exactly 10 digits; the value given looks "
                    + "like a 15-character health-insurance card number (2 letters and 13 digits), whose last 10 digits "
                    + "are the social-insurance number: give those 10 digits")
            }
            let hint = allDigits && value.count == 12
                ? "; a 12-digit number is usually a citizen ID: give it as cccd:<12 digits>" : " — check for a typo"
            throw Problem(description: "a social-insurance number (BHXH) is exactly 10 digits; the value given has "
                + "\(value.count) characters\(allDigits ? "" : ", not all digits")\(hint)")
        }
    }

    /// Two ASCII letters then 13 digits: the health-insurance card number in use before 2021, still printed on
    /// many cards (fhir-mapping.md §4.2).
    static func looksLikeHealthInsuranceCardNumber(_ value: String) -> Bool {
        let characters = Array(value)
        return characters.count == 15 && characters.prefix(2).allSatisfy { $0.isASCII && $0.isLetter }
            && characters.dropFirst(2).allSatisfy(\.isASCIIDigit)
    }

    /// `value` without the single spaces, dots or hyphens that people type between groups of a number.
    /// Unchanged unless every separator stands alone between two ASCII letters or digits.
    static func withoutGroupSeparators(_ value: String) -> String {
        let characters = Array(value)
        let isSeparator: (Character) -> Bool = { $0 == " " || $0 == "." || $0 == "-" }
        let isAlphanumeric: (Character) -> Bool = { $0.isASCII && ($0.isLetter || $0.isNumber) }
        for (index, character) in characters.enumerated() where isSeparator(character) {
            guard index > 0, index < characters.count - 1, isAlphanumeric(characters[index - 1]),
                  isAlphanumeric(characters[index + 1]) else { return value }
        }
        return String(characters.filter { !isSeparator($0) })
    }
}

/// What the digits of a well-formed 12-digit citizen ID encode (Circular 07/2016/TT-BCA art. 7).
struct CitizenIDDigits {
    /// Digits 1-3.
    let provinceCode: Int
    /// Digit 4 is even for men and odd for women.
    let isFemale: Bool
    /// Digit 4 halved gives the century from 1900; digits 5-6 the year within it.
    let birthYear: Int

    /// `value` must be 12 ASCII digits.
    init(twelveDigits value: String) {
        let digits = value.utf8.map { Int($0 - UInt8(ascii: "0")) }
        provinceCode = digits[0] * 100 + digits[1] * 10 + digits[2]
        isFemale = digits[3] % 2 == 1
        birthYear = 1900 + 100 * (digits[3] / 2) + digits[4] * 10 + digits[5]
    }
}

extension StringProtocol {
    /// Without leading and trailing whitespace and line breaks (a scanner's CR LF, a pasted tab).
    var trimmingWhitespace: SubSequence {
        let isBlank: (Character) -> Bool = { $0.isWhitespace || $0 == "\u{FEFF}" }
        guard let first = firstIndex(where: { !isBlank($0) }), let last = lastIndex(where: { !isBlank($0) }) else {
            return self[endIndex...]
        }
        return self[first...last]
    }

    /// The rest after `prefix`, matched ignoring ASCII letter case; nil when `self` does not start with it.
    func dropPrefix(caseInsensitive prefix: String) -> SubSequence? {
        guard count >= prefix.count, self.prefix(prefix.count).lowercased() == prefix.lowercased() else { return nil }
        return dropFirst(prefix.count)
    }
}
