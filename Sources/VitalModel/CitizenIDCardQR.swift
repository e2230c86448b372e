/// The citizen ID read from the QR code printed on a Vietnamese chip-based citizen ID card: the căn cước công
/// dân issued from 2021 (QR on the front, top right) and the căn cước issued from 1 July 2024 (QR on the back,
/// Circular 16/2024/TT-BCA art. 6).
///
/// The code holds `|`-separated text (public descriptions; sources next to the tests' tables):
///
///     citizen ID | old 9-digit CMND (may be empty) | full name | birth date ddMMyyyy | Nam/Nữ | address | issue date ddMMyyyy
///
/// Some cards and readers give a 6-field form without the CMND field. The 2024 card may carry more after the
/// issue date (a cancelled ID number, parents' names): fields after the issue date are accepted and ignored,
/// so newer cards keep working, and are never kept.
///
/// Only the citizen ID and two facts for cross-checks, birth date and sex, are kept. The name and address are
/// skipped while parsing and are never stored or exposed; ``description`` withholds everything, so a value that
/// reaches a log line by accident tells nothing.
///
/// Checks: the citizen ID passes ``IdentifierSystems/validate(_:currentYear:)``; both dates exist, the birth
/// date is not after `today` and the issue date lies between the two; and the ID's sex-and-century digit and year
/// digits agree with the birth date and sex on the card, since a disagreement means a misread or a different card.
/// What a keyboard-wedge scanner adds is tolerated: a UTF-8 byte order mark, surrounding whitespace, trailing
/// CR/LF, and whitespace around a field.
public struct CitizenIDCardQR: Sendable, Hashable, CustomStringConvertible {
    /// The sex printed on the card (`Nam` or `Nữ`).
    public enum Sex: String, Sendable, Hashable {
        case male, female
    }

    /// The citizen ID under ``IdentifierSystems/citizenID``.
    public let citizen: PatientIdentifier
    public let birthDate: CalendarDate
    public let sex: Sex

    /// The most a QR code can hold (version 40, byte mode, lowest error correction: 2,953 bytes).
    /// Anything longer did not come from one scan of a card, and is refused before it is looked at.
    public static let maximumPayloadBytes = 2953

    /// Why a scan was refused: what is wrong and how to fix it. Never repeats the scanned content.
    public struct Problem: Error, Sendable, CustomStringConvertible {
        public enum Reason: Sendable, Hashable {
            /// Longer than any QR code can hold.
            case tooLong
            /// The bytes are not UTF-8 text.
            case notUTF8
            /// Empty, a web address, a bank payment code, another card's code, a bare number...
            case notACitizenIDCardCode
            /// The layout is a card's, but a field is missing or unreadable.
            case unreadableField
            /// The citizen ID fails ``IdentifierSystems/validate(_:currentYear:)``.
            case invalidCitizenID
            /// The citizen ID's digits disagree with the birth date or sex on the card.
            case disagreement
        }

        public let reason: Reason
        public let description: String
    }

    /// Withholds the contents: interpolating this into a log line reveals nothing about the citizen.
    public var description: String { "a citizen ID card QR code (contents withheld)" }

    /// Parses text as a scanner delivers it (keyboard wedge, serial or camera library).
    /// - Parameters:
    ///   - systems: where the citizen ID's system URI comes from.
    ///   - today: the latest possible birth and issue date; its year bounds the birth year the ID may encode.
    public init(scannedText text: String, systems: IdentifierSystems = .vietnam,
                today: CalendarDate = .today) throws(Problem) {
        // Bounded before any other work: the byte count of a native string is stored, not counted.
        guard text.utf8.count <= Self.maximumPayloadBytes + Self.scannerSlackBytes else { throw Self.tooLong }
        try self.init(trimmed: text.trimmingWhitespace, systems: systems, today: today)
    }

    /// Parses the raw bytes a scanner delivers: UTF-8, with or without a byte order mark.
    public init(scannedBytes bytes: some Collection<UInt8>, systems: IdentifierSystems = .vietnam,
                today: CalendarDate = .today) throws(Problem) {
        guard bytes.count <= Self.maximumPayloadBytes + Self.scannerSlackBytes else { throw Self.tooLong }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw Problem(reason: .notUTF8, description: "the scanned bytes are not UTF-8 text, which is what a citizen "
                + "ID card's QR code holds — Fix: set the scanner to send UTF-8 (Unicode), then scan the card again")
        }
        try self.init(trimmed: text.trimmingWhitespace, systems: systems, today: today)
    }

    /// Room for what a scanner adds around a full code: a byte order mark and CR LF.
    private static let scannerSlackBytes = 8

    private static let tooLong = Problem(reason: .tooLong, description: "the scan is longer than any QR code can hold "
        + "(\(maximumPayloadBytes) bytes), so it is not one citizen ID card's code — Fix: scan only the QR code on the card")

    private static let howToScan = "scan the QR code on the citizen ID card (front, top right, on cards issued from "
        + "2021; back on căn cước cards issued from July 2024)"

    private static func notACardCode(_ why: String, fix: String = howToScan) -> Problem {
        Problem(reason: .notACitizenIDCardCode,
                description: "this is not the QR code of a citizen ID card: \(why) — Fix: \(fix)")
    }

    private static func unreadable(_ what: String) -> Problem {
        Problem(reason: .unreadableField, description: "\(what), so the code was misread or damaged — Fix: scan again; "
            + "if it keeps failing, type the 12-digit number printed on the card as cccd:<12 digits>")
    }

    private init(trimmed text: Substring, systems: IdentifierSystems, today: CalendarDate) throws(Problem) {
        guard text.utf8.count <= Self.maximumPayloadBytes else { throw Self.tooLong }
        guard !text.isEmpty else { throw Self.notACardCode("the scan is empty") }
        if text.contains("://") || text.dropPrefix(caseInsensitive: "www.") != nil {
            throw Self.notACardCode("it is a web address")
        }
        // EMVCo merchant-presented codes, VietQR among them, open with payload format indicator 00, length 02, "01".
        if text.hasPrefix("000201") {
            throw Self.notACardCode("it is a bank payment code (VietQR)")
        }
        guard text.contains("|") else {
            let allDigits = text.allSatisfy(\.isASCIIDigit)
            if allDigits && text.count == 9 {
                throw Self.notACardCode("it is a 9-digit old identity card (CMND) number, which is not accepted",
                                        fix: "scan the QR code on the citizen ID card, or type its 12-digit number as cccd:<12 digits>")
            }
            if allDigits && text.count == 12 {
                throw Self.notACardCode("it is a bare 12-digit number, not the card's fields",
                                        fix: "if this is the citizen ID, give it as cccd:<12 digits>; otherwise \(Self.howToScan)")
            }
            throw Self.notACardCode("it has no '|'-separated fields")
        }

        let fields = text.split(separator: "|", omittingEmptySubsequences: false).map { $0.trimmingWhitespace }
        let id = String(fields[0])
        if IdentifierSystems.looksLikeHealthInsuranceCardNumber(id) {
            throw Self.notACardCode("it is the code of a health-insurance card",
                                    fix: "the last 10 digits of the health-insurance card number are the social-insurance "
                                        + "number, to give as bhxh:<10 digits>; or \(Self.howToScan)")
        }
        guard id.count == 12, id.allSatisfy(\.isASCIIDigit) else {
            let digitsOnly = id.allSatisfy(\.isASCIIDigit)
            throw Self.notACardCode("its first field should be the 12-digit citizen ID and has \(id.count) characters"
                + (digitsOnly ? "" : ", not all digits"))
        }

        // With the CMND field, the second field is empty or digits; without it, the second field is the name.
        let offset = fields[1].allSatisfy(\.isASCIIDigit) ? 1 : 0
        guard fields.count >= 6 + offset else {
            throw Self.unreadable("the code has \(fields.count) fields, fewer than the \(6 + offset) of a citizen ID card "
                + "(it may have been cut off)")
        }
        guard let birthDate = CalendarDate(ddMMyyyy: fields[2 + offset]) else {
            throw Self.unreadable("the date of birth (field \(3 + offset)) is not a real date written ddMMyyyy")
        }
        let sex: Sex
        switch fields[3 + offset].lowercased() {
        case "nam": sex = .male
        case "nữ": sex = .female
        default:
            throw Problem(reason: .unreadableField, description: "the sex (field \(4 + offset)) is neither Nam nor Nữ — "
                + "Fix: if the scanner types what it reads as key presses, set it to send Unicode (UTF-8) so that "
                + "Vietnamese letters arrive intact, then scan again")
        }
        guard let issueDate = CalendarDate(ddMMyyyy: fields[5 + offset]) else {
            throw Self.unreadable("the issue date (field \(6 + offset)) is not a real date written ddMMyyyy")
        }
        guard birthDate <= today else { throw Self.unreadable("the date of birth is after today") }
        guard birthDate <= issueDate, issueDate <= today else {
            throw Self.unreadable("the issue date is before the date of birth or after today")
        }

        let citizen = PatientIdentifier(system: systems.citizenID, value: id)
        do { try systems.validate(citizen, currentYear: today.year) } catch {
            throw Problem(reason: .invalidCitizenID, description: "the citizen ID in the QR code fails VitalGate's "
                + "check (\(error.description)) — Fix: scan again and compare with the number printed on the card; "
                + "a genuine card's code passes this check, so if it keeps failing, report the case")
        }
        let digits = CitizenIDDigits(twelveDigits: id)
        guard digits.birthYear == birthDate.year, digits.isFemale == (sex == .female) else {
            throw Problem(reason: .disagreement, description: "the citizen ID in the QR code does not agree with the "
                + "card's date of birth or sex (digits 4-6 of a citizen ID give the sex and year of birth), so the code "
                + "was misread or belongs to another card — Fix: scan again; if it keeps failing, compare the card with "
                + "its holder and type the number printed on it as cccd:<12 digits>")
        }
        self.citizen = citizen
        self.birthDate = birthDate
        self.sex = sex
    }
}
