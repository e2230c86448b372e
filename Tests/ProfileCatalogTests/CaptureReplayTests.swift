import Foundation
import Testing
import VitalModel
import ProfileEngine
import VitalGateTestKit
@testable import ProfileCatalog

@Suite("Capture files")
struct CaptureTests {
    static func parse(_ text: String) -> Result<Capture, ProfileError> {
        Result { () throws(ProfileError) in try Capture.parse(text, file: "test.capture") }
    }

    static func error(_ text: String) -> ProfileError? {
        if case .failure(let error) = parse(text) { return error }
        return nil
    }

    static let sample = """
        # Comments and blank lines are skipped.

        @received-at 2024-06-23T14:40:00+07:00
        @device usb 10C4:EA60:SN42
        > AA 55 01
          < 16:7C:00
        < 2a35: 16 7C 00
        < 0x2A37:0601
        @wait 1500
        @timeout
        <aabb
        """

    @Test("lines, channels, directives and their line numbers")
    func parses() throws {
        let capture = try Self.parse(Self.sample).get()
        #expect(capture.file == "test.capture")
        #expect(capture.receivedAt == HubTimestamp(iso8601: "2024-06-23T14:40:00+07:00"))
        #expect(capture.device == DeviceIdentity(usb: USBIdentity(vendorID: 0x10C4, productID: 0xEA60, serial: "SN42")))
        #expect(capture.entries.map(\.line) == [
            .toDevice([0xAA, 0x55, 0x01], channel: nil),
            .fromDevice([0x16, 0x7C, 0x00], channel: nil),  // colons between bytes are separators, not a channel
            .fromDevice([0x16, 0x7C, 0x00], channel: "2A35"),
            .fromDevice([0x06, 0x01], channel: "2A37"),
            .wait(milliseconds: 1500),
            .timeout,
            .fromDevice([0xAA, 0xBB], channel: nil),
        ])
        #expect(capture.entries.map(\.lineNumber) == [5, 6, 7, 8, 9, 10, 11])
    }

    @Test("CRLF line endings parse the same, with the same line numbers")
    func crlf() throws {
        let crlf = try Self.parse(Self.sample.replacingOccurrences(of: "\n", with: "\r\n")).get()
        let lf = try Self.parse(Self.sample).get()
        #expect(crlf.entries == lf.entries)
        #expect(crlf.device == lf.device)
        #expect(crlf.receivedAt == lf.receivedAt)
    }

    @Test("a byte-order mark at the start is not part of the first line")
    func byteOrderMark() throws {
        #expect(try Self.parse("\u{FEFF}" + Self.sample).get().entries == Self.parse(Self.sample).get().entries)
    }

    @Test("defaults: the documented receive time and no device")
    func defaults() throws {
        let capture = try Self.parse("< 01").get()
        #expect(capture.receivedAt == HubTimestamp(iso8601: "2025-01-01T08:00:00+07:00"))
        #expect(capture.device == nil)
        #expect(try Self.parse("@device bluetooth 00:00:5E:00:53:01\n< 01").get().device
                == DeviceIdentity(bluetoothAddress: EUI48("00:00:5E:00:53:01")))
    }

    struct ErrorCase: Sendable, CustomTestStringConvertible {
        var text: String
        var line: Int
        var phrase: String
        var testDescription: String { text.debugDescription }
    }

    static let errorCases: [ErrorCase] = [
        ErrorCase(text: "< 01\n@wiat 100", line: 2, phrase: "unknown directive @wiat"),
        ErrorCase(text: "< 01\n\n@wait soon", line: 3, phrase: "@wait needs milliseconds"),
        ErrorCase(text: "@wait -5\n< 01", line: 1, phrase: "@wait needs milliseconds"),
        ErrorCase(text: "@wait 100 200\n< 01", line: 1, phrase: "@wait needs milliseconds"),
        ErrorCase(text: "@timeout 500\n< 01", line: 1, phrase: "@timeout takes no value"),
        ErrorCase(text: "@received-at 2024-06-23T14:40:00\n< 01", line: 1, phrase: "@received-at needs a time with offset"),
        ErrorCase(text: "@received-at\n< 01", line: 1, phrase: "@received-at needs a time with offset"),
        ErrorCase(text: "@device usb 0C45\n< 01", line: 1, phrase: "@device needs"),
        ErrorCase(text: "@device usb 0C45:74066\n< 01", line: 1, phrase: "@device needs"),
        ErrorCase(text: "@device serial /dev/ttyUSB0\n< 01", line: 1, phrase: "@device needs"),
        ErrorCase(text: "@device bluetooth 00:00:5E:00:53\n< 01", line: 1, phrase: "@device needs"),
        ErrorCase(text: "< 01\n= AA", line: 2, phrase: "a line must start with '<'"),
        ErrorCase(text: "AA 55", line: 1, phrase: "a line must start with '<'"),
        ErrorCase(text: "< 01\n< ZZ", line: 2, phrase: "\"ZZ\" is not hex bytes"),
        ErrorCase(text: "< 01\n< A", line: 2, phrase: "\"A\" is not hex bytes"),
        ErrorCase(text: "< 01\n<", line: 2, phrase: "\"\" is not hex bytes"),
        ErrorCase(text: "< 2A3G: 01", line: 1, phrase: "2A3G is not a characteristic UUID"),
        ErrorCase(text: "< 2A35:", line: 1, phrase: "\"\" is not hex bytes"),
    ]

    @Test("errors name the line and what to write", arguments: errorCases)
    func errors(_ testCase: ErrorCase) {
        let error = Self.error(testCase.text)
        #expect(error?.file == "test.capture")
        #expect(error?.location == SourceLocation(line: testCase.line, column: 1), "\(String(describing: error))")
        #expect(error?.problem.contains(testCase.phrase) == true, "\(String(describing: error))")
        #expect(error?.fix.isEmpty == false)
    }

    @Test("a capture with nothing from the device is an error")
    func nothingFromDevice() {
        for text in ["", "# only a comment", "> AA\n@timeout"] {
            let error = Self.error(text)
            #expect(error?.problem == "the capture has no bytes from the device", "\(text)")
            #expect(error?.location == nil)
        }
    }

    @Test("files: missing, not UTF-8, and good")
    func files() throws {
        let directory = try TemporaryDirectory()
        defer { withExtendedLifetime(directory) {} }
        #expect(throws: ProfileError.self) { try Capture.load(file: directory.path + "/missing.capture") }
        let binary = directory.write("binary.capture", Data([0x3C, 0x20, 0xFF, 0xFE]))
        do {
            _ = try Capture.load(file: binary)
            Issue.record("a non-UTF-8 capture loaded")
        } catch {
            #expect(error.problem == "the capture is not UTF-8 text")
        }
        let good = directory.write("good.capture", Data("< 01 02\n".utf8))
        #expect(try Capture.load(file: good).entries.map(\.line) == [.fromDevice([0x01, 0x02], channel: nil)])
    }
}

/// A scratch directory removed when the value is released.
final class TemporaryDirectory {
    let path: String

    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("vitalgate-cattests-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    @discardableResult
    func write(_ relative: String, _ data: Data) -> String {
        let file = path + "/" + relative
        try? FileManager.default.createDirectory(atPath: (file as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: file, contents: data)
        return file
    }

    @discardableResult
    func write(_ relative: String, _ text: String) -> String { write(relative, Data(text.utf8)) }
}

@Suite("Replay and expected readings")
struct ReplayTests {
    /// good.json: `AA 55 LEN TYPE payload SUM8`, frame length LEN + 4, sum8 over every byte before it.
    static func profile() throws -> DeviceProfile {
        try ProfileLoader.load(file: BrokenProfiles.path("good.json"), expectedID: "test/good")
    }

    /// A made-up exchange in good.json's layout (test input, not a device capture). Sums worked by hand:
    /// AA+55 = FF; FF+01+01 = 101 → 01; FF+02+01+02 = 104 → 04; FF+02+02+01 = 104 → 04;
    /// FF+03+02+62+48 = 1AE → AE; FF+02+02+02 = 105 → 05; FF+03+02+61+FF = 264 → 64.
    static let exchange = """
        # test input
        @received-at 2024-06-23T14:40:00+07:00
        > AA 55 01 01 01
        < AA 55 02 01 02 04
        > AA 55 02 02 01 04
        < AA 55 03 02 62 48 AE
        > AA 55 02 02 02 05
        < AA 55 03 02 61 FF 64
        """

    static func replay(_ text: String) throws -> Replay {
        Replay.run(try Capture.parse(text, file: "test.capture"), profile: try profile())
    }

    static let expectedText = """
        {
          "source": "worked by hand from good.json's layout",
          "readings": [
            { "frame": "record", "kind": "pulse-oximetry",
              "values": [
                { "type": "oxygen-saturation", "value": 98, "unit": "%" },
                { "type": "oximeter-pulse-rate", "value": 72, "unit": "/min" }
              ],
              "receivedAt": "2024-06-23T14:40:00.001+07:00", "userSlot": null },
            { "values": [
                { "type": "oxygen-saturation", "value": 97, "unit": "%" },
                { "type": "oximeter-pulse-rate", "value": null, "special": "NaN", "unit": "/min" }
              ],
              "device": { "usb": "10C4:EA60" } }
          ],
          "problems": []
        }
        """

    static func expected(_ text: String = expectedText) throws -> ExpectedReadings {
        let directory = try TemporaryDirectory()
        defer { withExtendedLifetime(directory) {} }
        return try ExpectedReadings.load(file: directory.write("test.expected.json", text))
    }

    @Test("a replay that matches its expectation has no differences")
    func matches() throws {
        let replay = try Self.replay(Self.exchange)
        #expect(replay.scriptDifferences.isEmpty, "\(replay.scriptDifferences)")
        #expect(replay.problems.isEmpty)
        #expect(replay.readings.count == 2)
        #expect(try Self.expected().differences(from: replay) == [])
    }

    @Test("the device defaults to the profile's USB ids; a capture's @device wins")
    func device() throws {
        #expect(try Self.replay(Self.exchange).readings.first?.device
                == DeviceIdentity(usb: USBIdentity(vendorID: 0x10C4, productID: 0xEA60, serial: nil)))
        let named = try Self.replay("@device usb 10C4:EA60:SN42\n" + Self.exchange)
        #expect(named.readings.first?.device.usb?.serial == "SN42")
        #expect(try Self.expected().differences(from: named).count == 1)  // the device member differs
    }

    @Test("each difference is one line naming the path and both values")
    func differences() throws {
        let replay = try Self.replay(Self.exchange)
        func diff(_ from: String, _ to: String) throws -> [String] {
            let text = Self.expectedText.replacingOccurrences(of: from, with: to)
            #expect(text != Self.expectedText, "the replacement \(from) did not apply")
            return try Self.expected(text).differences(from: replay)
        }
        // Numbers compare by their exact text: 98.0 claims a precision the device did not send.
        #expect(try diff(#""value": 98,"#, #""value": 98.0,"#) == ["readings[0].values[0].value: expected 98.0, got 98"])
        #expect(try diff(#""frame": "record""#, #""frame": "count""#) == [#"readings[0].frame: expected "count", got "record""#])
        // Values are complete: one missing value is a difference even though members are partial.
        #expect(try diff(#"{ "type": "oxygen-saturation", "value": 98, "unit": "%" },"#, "")
                .first?.hasPrefix("readings[0].values: expected 1 entries, got 2") == true)
        // A member the reading does not have.
        #expect(try diff(#""userSlot": null"#, #""userSlot": null, "sensorContact": "detected""#)
                == [#"readings[0].sensorContact: expected "detected", the reading has no such member"#])
        #expect(try diff(#""receivedAt": "2024-06-23T14:40:00.001+07:00""#, #""receivedAt": "2024-06-23T14:40:00+07:00""#)
                == [#"readings[0].receivedAt: expected "2024-06-23T14:40:00+07:00", got "2024-06-23T14:40:00.001+07:00""#])
        // Problems compare by field, in order.
        let problems = try diff(#""problems": []"#, #""problems": ["checksum"]"#)
        #expect(problems == ["expected problems [checksum], the replay reported []"])
    }

    @Test("a different number of readings is reported, and the common ones still compared")
    func readingCount() throws {
        let oneReading = try Self.replay(Self.exchange.components(separatedBy: "\n").dropLast(2).joined(separator: "\n"))
        let differences = try Self.expected().differences(from: oneReading)
        #expect(differences == ["expected 2 readings, the replay produced 1"])
    }

    @Test("the engine's requests are checked against the capture's host lines")
    func scriptDifferences() throws {
        let wrong = try Self.replay(Self.exchange.replacingOccurrences(of: "> AA 55 02 02 01 04", with: "> AA 55 02 02 01 05"))
        #expect(wrong.scriptDifferences == ["line 5: the engine sent AA 55 02 02 01 04 where the capture shows AA 55 02 02 01 05"])
        let extra = try Self.replay(Self.exchange + "\n> FF")
        #expect(extra.scriptDifferences == ["line 9: the capture shows the host sending FF, but the engine sent nothing"])
        let unshown = try Self.replay(Self.exchange.replacingOccurrences(of: "> AA 55 02 02 02 05\n", with: ""))
        #expect(unshown.scriptDifferences == ["after the last line: the engine sent AA 55 02 02 02 05, which the capture does not show"])
    }

    @Test("@wait moves the clock; device lines are 1 ms apart")
    func waiting() throws {
        let replay = try Self.replay(Self.exchange.replacingOccurrences(of: "< AA 55 03 02 62 48 AE", with: "@wait 1000\n< AA 55 03 02 62 48 AE"))
        #expect(replay.readings.map { $0.json["receivedAt"] } == ["2024-06-23T14:40:01.001+07:00", "2024-06-23T14:40:01.002+07:00"])
    }

    @Test("@timeout lets the engine retry and then give up")
    func timeouts() throws {
        // good.json's first request has "retries": 1: one resend, then the problem "response".
        let replay = try Self.replay("""
            > AA 55 01 01 01
            @timeout
            > AA 55 01 01 01
            @timeout
            < 00
            """)
        #expect(replay.scriptDifferences.isEmpty, "\(replay.scriptDifferences)")
        #expect(replay.problems.map(\.field) == ["response"])
        #expect(try Self.expected(#"{"readings": [], "problems": ["response"]}"#).differences(from: replay) == [])
    }

    struct LoadErrorCase: Sendable, CustomTestStringConvertible {
        var text: String
        var location: String?
        var field: String
        var phrase: String
        var testDescription: String { text }
    }

    static let loadErrors: [LoadErrorCase] = [
        LoadErrorCase(text: #"{"readings": [{"frame": "x"}]}"#, location: "1:15", field: "readings[0]", phrase: #"needs "values""#),
        LoadErrorCase(text: #"{"readings": [1]}"#, location: "1:15", field: "readings[0]", phrase: #"needs "values""#),
        LoadErrorCase(text: #"{"reading": []}"#, location: "1:1", field: "", phrase: #""readings" is missing"#),
        LoadErrorCase(text: #"{"readings": [], "problem": []}"#, location: "1:18", field: "problem", phrase: #"did you mean "problems"?"#),
        LoadErrorCase(text: #"{"readings": [], "problems": [1]}"#, location: "1:31", field: "problems[0]", phrase: "expected a non-empty string"),
        LoadErrorCase(text: #"{"readings": [],}"#, location: "1:17", field: "", phrase: "not valid JSON"),
        LoadErrorCase(text: "[]", location: "1:1", field: "", phrase: "expected an object"),
    ]

    @Test("expected-readings files with mistakes are errors at the spot", arguments: loadErrors)
    func loadError(_ testCase: LoadErrorCase) throws {
        let directory = try TemporaryDirectory()
        defer { withExtendedLifetime(directory) {} }
        do {
            _ = try ExpectedReadings.load(file: directory.write("test.expected.json", testCase.text))
            Issue.record("loaded")
        } catch {
            #expect(error.location?.description == testCase.location, "\(error)")
            #expect(error.field == testCase.field, "\(error)")
            #expect(error.problem.contains(testCase.phrase), "\(error)")
        }
    }
}
