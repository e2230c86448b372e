import Foundation
import Testing
@testable import VitalModel

/// ``CitizenIDCardQR`` on the layouts public sources describe, built with fictional citizens in VitalGate's test
/// province 099 and made-up names and addresses.
///
/// Layout sources (the order of the fields; no payload is copied from them):
/// - 7 fields, `ID|old CMND|name|birth date|sex|permanent address|issue date`: README.md of
///   github.com/dangbaokhoa/identity-card ("Số CCCD, Số CMND cũ, Họ tên, Ngày sinh, Giới tính, Địa chỉ thường trú,
///   Ngày cấp"), and baobariavungtau.com.vn/phap-luat/202212/nguoi-dan-dung-giay-to-gi-thay-the-so-ho-khau-968058/,
///   which lists what a QR reader gets from the card in the same order. The old CMND number is there only "if any".
/// - 6 fields without the CMND field, `ID|name|birth date|sex|address|issue date`:
///   docs/QR_SCANNER.md of github.com/phalconsupply/phongkham.
/// - The căn cước issued from July 2024 (Circular 16/2024/TT-BCA, as summarised by afamily.vn and truyenhinhvov.vn)
///   puts the QR on the back and adds a cancelled ID number and the parents' names when there are any; no public
///   source gives their order, so fields after the issue date are accepted and ignored.
/// - Where the code is: front top right on the 2021 card (mylaw.vn, "Mã QR trên thẻ CCCD gắn chíp dùng để làm gì?"),
///   back on the 2024 card (baogiaothong.vn, "Vì sao Công an TP.HCM tạm dừng cấp căn cước công dân").
@Suite("citizen ID card QR code")
struct CitizenIDCardQRTests {
    static let today = CalendarDate(year: 2026, month: 11, day: 22)!
    static let name = "Nguyễn Thị Mẫu Thử"
    static let address = "Số 1 đường Thử Nghiệm, phường Mẫu, tỉnh Không Có"

    static func scan(_ payload: String) throws(CitizenIDCardQR.Problem) -> CitizenIDCardQR {
        try CitizenIDCardQR(scannedText: payload, today: today)
    }

    struct Expected: Sendable, CustomTestStringConvertible {
        let label: String
        let payload: String
        let id: String
        let birth: (Int, Int, Int)
        let sex: CitizenIDCardQR.Sex
        var testDescription: String { label }
    }

    @Test("the published layouts and what scanners add around them", arguments: [
        Expected(label: "7 fields with the old CMND number",
                 payload: "099201000002|099000002|Trần Văn Thử|02022001|Nam|\(address)|10102022",
                 id: "099201000002", birth: (2001, 2, 2), sex: .male),
        Expected(label: "7 fields, empty CMND",
                 payload: "099199000001||\(name)|15061999|Nữ|\(address)|01072021",
                 id: "099199000001", birth: (1999, 6, 15), sex: .female),
        Expected(label: "6 fields, no CMND field",
                 payload: "099304000003|Lê Thị Thử|29022004|Nữ|\(address)|05052024",
                 id: "099304000003", birth: (2004, 2, 29), sex: .female),
        Expected(label: "trailing CR LF from a keyboard-wedge scanner",
                 payload: "099199000001||\(name)|15061999|Nữ|\(address)|01072021\r\n",
                 id: "099199000001", birth: (1999, 6, 15), sex: .female),
        Expected(label: "byte order mark, surrounding whitespace",
                 payload: "\u{FEFF}  099199000001||\(name)|15061999|Nữ|\(address)|01072021 \n",
                 id: "099199000001", birth: (1999, 6, 15), sex: .female),
        Expected(label: "whitespace around fields",
                 payload: " 099085000005 | 099000005 |Phạm Văn Thử| 31121985 | Nam |\(address)| 01012022 ",
                 id: "099085000005", birth: (1985, 12, 31), sex: .male),
        Expected(label: "2024 card: more fields after the issue date",
                 payload: "099199000001||\(name)|15061999|Nữ|\(address)|01072024|099199000009|Nguyễn Văn Cha|Trần Thị Mẹ",
                 id: "099199000001", birth: (1999, 6, 15), sex: .female),
        Expected(label: "sex in capitals",
                 payload: "099199000001||\(name)|15061999|NỮ|\(address)|01072021",
                 id: "099199000001", birth: (1999, 6, 15), sex: .female),
        Expected(label: "Nữ in decomposed Unicode (u, horn, tilde)",
                 payload: "099199000001||\(name)|15061999|Nu\u{031B}\u{0303}|\(address)|01072021",
                 id: "099199000001", birth: (1999, 6, 15), sex: .female),
        Expected(label: "born and issued today",
                 payload: "099226000006||Bé Thử|22112026|Nam|\(address)|22112026",
                 id: "099226000006", birth: (2026, 11, 22), sex: .male),
    ])
    func accepted(_ expected: Expected) throws {
        let card = try Self.scan(expected.payload)
        #expect(card.citizen == PatientIdentifier(system: IdentifierSystems.vietnam.citizenID, value: expected.id))
        #expect(card.birthDate == CalendarDate(year: expected.birth.0, month: expected.birth.1, day: expected.birth.2))
        #expect(card.sex == expected.sex)
        // The parsed ID passes the same rules as a typed one.
        #expect(try IdentifierSystems.vietnam.parse("cccd:" + expected.id, currentYear: 2026) == card.citizen)
    }

    @Test("bytes: UTF-8 with or without a byte order mark; anything else is refused")
    func bytes() throws {
        let payload = Array("099199000001||\(Self.name)|15061999|Nữ|\(Self.address)|01072021\r\n".utf8)
        let plain = try CitizenIDCardQR(scannedBytes: payload, today: Self.today)
        let marked = try CitizenIDCardQR(scannedBytes: [0xEF, 0xBB, 0xBF] + payload, today: Self.today)
        #expect(plain == marked)
        #expect(plain.citizen.value == "099199000001")

        // Windows-1258 and Latin-1 scanners send "ữ" as a single byte above 0x7F, which is not UTF-8.
        var latin = Array("099199000001||Nguyen Thi Mau|15061999|N".utf8) + [0xFF] + Array("|x|01072021".utf8)
        var problem = try #require(throws: CitizenIDCardQR.Problem.self) {
            try CitizenIDCardQR(scannedBytes: latin, today: Self.today)
        }
        #expect(problem.reason == .notUTF8)
        #expect(problem.description.contains("UTF-8"))
        #expect(!problem.description.contains("099199000001"))

        latin = [UInt8](repeating: UInt8(ascii: "9"), count: 100_000)
        problem = try #require(throws: CitizenIDCardQR.Problem.self) {
            try CitizenIDCardQR(scannedBytes: latin, today: Self.today)
        }
        #expect(problem.reason == .tooLong)
    }

    struct Malformed: Sendable, CustomTestStringConvertible {
        let label: String
        let payload: String
        let reason: CitizenIDCardQR.Problem.Reason
        let phrase: String
        var testDescription: String { label }
    }

    static let fullCode = "099199000001||\(name)|15061999|Nữ|\(address)|01072021"

    @Test("malformed scans get a reason and a message that says how to fix it, never the content", arguments: [
        Malformed(label: "empty", payload: "", reason: .notACitizenIDCardCode, phrase: "empty"),
        Malformed(label: "only a line break", payload: " \r\n", reason: .notACitizenIDCardCode, phrase: "empty"),
        Malformed(label: "no '|'", payload: "Nguyễn Thị Mẫu Thử", reason: .notACitizenIDCardCode, phrase: "no '|'"),
        Malformed(label: "a bare citizen ID", payload: "099199000001", reason: .notACitizenIDCardCode, phrase: "cccd:<12 digits>"),
        Malformed(label: "an old 9-digit CMND alone", payload: "099000002", reason: .notACitizenIDCardCode, phrase: "CMND"),
        Malformed(label: "a URL", payload: "https://example.invalid/verify?id=099199000001|x",
                  reason: .notACitizenIDCardCode, phrase: "web address"),
        Malformed(label: "a URL without a scheme", payload: "www.example.invalid/099199000001",
                  reason: .notACitizenIDCardCode, phrase: "web address"),
        Malformed(label: "a VietQR bank payment code",
                  payload: "00020101021238540010A00000072701240006970999011009900000015303704540410005802VN6304ABCD",
                  reason: .notACitizenIDCardCode, phrase: "bank payment"),
        Malformed(label: "a health-insurance card's code",
                  payload: "DN4990990000001|4e677579e1bb856e|15/06/1999|2|x|99 - 001|01/01/2026|31/12/2026",
                  reason: .notACitizenIDCardCode, phrase: "last 10 digits"),
        Malformed(label: "11-digit ID", payload: "09919900001||\(name)|15061999|Nữ|\(address)|01072021",
                  reason: .notACitizenIDCardCode, phrase: "has 11 characters"),
        Malformed(label: "13-digit ID", payload: "0991990000012||\(name)|15061999|Nữ|\(address)|01072021",
                  reason: .notACitizenIDCardCode, phrase: "has 13 characters"),
        Malformed(label: "letters in the ID", payload: "09919900000I||\(name)|15061999|Nữ|\(address)|01072021",
                  reason: .notACitizenIDCardCode, phrase: "not all digits"),
        Malformed(label: "only bars", payload: "|||||", reason: .notACitizenIDCardCode, phrase: "has 0 characters"),
        Malformed(label: "31 February", payload: "099100000001||\(name)|31022000|Nữ|\(address)|01072021",
                  reason: .unreadableField, phrase: "date of birth"),
        Malformed(label: "birth date with slashes", payload: "099199000001||\(name)|15/06/1999|Nữ|\(address)|01072021",
                  reason: .unreadableField, phrase: "ddMMyyyy"),
        Malformed(label: "issue date missing", payload: "099199000001||\(name)|15061999|Nữ|\(address)|",
                  reason: .unreadableField, phrase: "issue date"),
        Malformed(label: "cut off after the address", payload: "099199000001||\(name)|15061999|Nữ|\(address)",
                  reason: .unreadableField, phrase: "fewer than the 7"),
        Malformed(label: "6-field form cut off", payload: "099199000001|\(name)|15061999|Nữ|\(address)",
                  reason: .unreadableField, phrase: "fewer than the 6"),
        Malformed(label: "sex mangled by a keyboard layout", payload: "099199000001||\(name)|15061999|N?|\(address)|01072021",
                  reason: .unreadableField, phrase: "Unicode"),
        Malformed(label: "born after today", payload: "099226000001||\(name)|23112026|Nam|\(address)|23112026",
                  reason: .unreadableField, phrase: "after today"),
        Malformed(label: "issued before birth", payload: "099199000001||\(name)|15061999|Nữ|\(address)|01011990",
                  reason: .unreadableField, phrase: "issue date"),
        Malformed(label: "issued after today", payload: "099199000001||\(name)|15061999|Nữ|\(address)|01012027",
                  reason: .unreadableField, phrase: "issue date"),
        Malformed(label: "not a province", payload: "097199000001||\(name)|15061999|Nữ|\(address)|01072021",
                  reason: .invalidCitizenID, phrase: "province code"),
        Malformed(label: "sex disagrees with digit 4", payload: "099199000001||\(name)|15061999|Nam|\(address)|01072021",
                  reason: .disagreement, phrase: "does not agree"),
        Malformed(label: "year disagrees with digits 5-6", payload: "099199000001||\(name)|15061998|Nữ|\(address)|01072021",
                  reason: .disagreement, phrase: "does not agree"),
        Malformed(label: "century disagrees with digit 4", payload: "099301000001||\(name)|15061901|Nữ|\(address)|01072021",
                  reason: .disagreement, phrase: "does not agree"),
        Malformed(label: "longer than a QR code holds", payload: String(repeating: "9", count: 3_000),
                  reason: .tooLong, phrase: "2953 bytes"),
        Malformed(label: "a valid code padded past the limit", payload: fullCode + String(repeating: "|", count: 3_000),
                  reason: .tooLong, phrase: "longer than any QR code"),
        Malformed(label: "a megabyte", payload: String(repeating: "099199000001|", count: 80_000),
                  reason: .tooLong, phrase: "longer than any QR code"),
    ])
    func refused(_ malformed: Malformed) throws {
        let problem = try #require(throws: CitizenIDCardQR.Problem.self) { try Self.scan(malformed.payload) }
        #expect(problem.reason == malformed.reason, "\(problem)")
        #expect(problem.description.contains(malformed.phrase), "\(problem)")
        #expect(problem.description.contains("Fix:") || problem.description.contains("check"), "\(problem)")
        // Never the content: neither the ID (nor its digits after the province), the name nor the address.
        for secret in ["199000001", "100000001", "226000001", "301000001", "0991990000", Self.name, "Nguyễn", "Thử"] {
            #expect(!problem.description.contains(secret), "\(problem)")
        }
    }

    @Test("a parsed card never shows its contents when interpolated or dumped")
    func withheld() throws {
        let card = try Self.scan(Self.fullCode)
        for text in ["\(card)", String(reflecting: card), String(describing: card)] {
            #expect(!text.contains("099199000001"), "\(text)")
            #expect(!text.contains("1999"), "\(text)")
            #expect(text.contains("withheld"), "\(text)")
        }
    }

    @Test("calendar dates: real dates only, ISO 8601 text, ordered")
    func calendarDates() throws {
        #expect(CalendarDate(year: 2024, month: 2, day: 29)?.description == "2024-02-29")
        #expect(CalendarDate(year: 2023, month: 2, day: 29) == nil)
        #expect(CalendarDate(year: 1900, month: 2, day: 29) == nil)
        #expect(CalendarDate(year: 2000, month: 2, day: 29) != nil)
        #expect(CalendarDate(year: 2026, month: 13, day: 1) == nil)
        #expect(CalendarDate(year: 2026, month: 4, day: 31) == nil)
        #expect(CalendarDate(year: 0, month: 1, day: 1) == nil)
        #expect(CalendarDate(year: 7, month: 1, day: 2)?.description == "0007-01-02")
        #expect(CalendarDate(ddMMyyyy: "15061999") == CalendarDate(year: 1999, month: 6, day: 15))
        for text in ["1506199", "150619999", "15-06-99", "1506199x", "00061999", "15001999", "١٥٠٦١٩٩٩"] {
            #expect(CalendarDate(ddMMyyyy: Substring(text)) == nil, "\(text)")
        }
        let earlier = try #require(CalendarDate(year: 1999, month: 12, day: 31))
        let later = try #require(CalendarDate(year: 2000, month: 1, day: 1))
        #expect(earlier < later && !(later < earlier))
        // The hub's clock, floored so that an unset clock (1970) cannot put real birth dates in the future.
        #expect(CalendarDate.today(at: HubTimestamp(instant: Date(timeIntervalSince1970: 0), utcOffsetSeconds: 0))
                == CalendarDate(year: 2025, month: 1, day: 1))
        // 2026-11-21T20:00:00Z is already the 22nd at +07:00.
        #expect(CalendarDate.today(at: HubTimestamp(instant: Date(timeIntervalSince1970: 1_795_291_200), utcOffsetSeconds: 25_200))
                == CalendarDate(year: 2026, month: 11, day: 22))
    }
}
