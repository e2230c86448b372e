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

    /// Why a patient identifier was refused.
    public struct Problem: Error, Sendable, CustomStringConvertible {
        public let description: String
    }

    /// Reads `cccd:NNNNNNNNNNNN`, `bhxh:NNNNNNNNNN` or `SYSTEM|VALUE`, and checks the format of the
    /// systems it knows. The message never repeats the value, so it can be logged.
    public func parse(_ text: String) throws(Problem) -> PatientIdentifier {
        let identifier: PatientIdentifier
        if let bar = text.firstIndex(of: "|") {
            identifier = PatientIdentifier(system: String(text[..<bar]), value: String(text[text.index(after: bar)...]))
        } else if text.hasPrefix("cccd:") {
            identifier = PatientIdentifier(system: citizenID, value: String(text.dropFirst(5)))
        } else if text.hasPrefix("bhxh:") {
            identifier = PatientIdentifier(system: socialInsurance, value: String(text.dropFirst(5)))
        } else {
            throw Problem(description: "a patient is given as cccd:<12 digits>, bhxh:<10 digits> or SYSTEM|VALUE")
        }
        try validate(identifier)
        return identifier
    }

    /// Checks a known system's format: 12 digits for a citizen ID, 10 for a social-insurance number.
    public func validate(_ identifier: PatientIdentifier) throws(Problem) {
        guard !identifier.system.isEmpty, !identifier.value.isEmpty else {
            throw Problem(description: "a patient identifier needs both a system and a value (SYSTEM|VALUE)")
        }
        guard !identifier.system.contains("|"), !identifier.value.contains("|") else {
            throw Problem(description: "a patient identifier contains more than one '|'")
        }
        let expectedDigits: (Int, String)? = switch identifier.system {
        case citizenID: (12, "citizen ID (CCCD)")
        case socialInsurance: (10, "social-insurance number (BHXH)")
        default: nil
        }
        if let (count, name) = expectedDigits {
            guard identifier.value.count == count, identifier.value.allSatisfy(\.isASCIIDigit) else {
                throw Problem(description: "a \(name) is exactly \(count) digits; the value given has "
                    + "\(identifier.value.count) characters\(identifier.value.allSatisfy(\.isASCIIDigit) ? "" : ", not all digits")")
            }
        }
    }

    /// The documented demo citizen: `099` is not a Vietnamese province code, so this can be no real person.
    public var demoPatient: PatientIdentifier { PatientIdentifier(system: citizenID, value: "099199000001") }
}
