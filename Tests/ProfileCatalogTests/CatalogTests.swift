import Foundation
import Testing
import VitalModel
import ProfileEngine
import VitalGateTestKit
@testable import ProfileCatalog

/// `DeviceProfiles/` of this checkout.
enum ShippedProfiles {
    static let directory = RepositoryPaths.root.appendingPathComponent("DeviceProfiles").path
    static let catalog = ProfileCatalog.load(directory: directory)
}

@Suite("Profile catalog and lint")
struct CatalogTests {
    /// A profile tree in a scratch directory: `test/good.json`, `test/broken.json` (bad-hex-sync.json with
    /// its id changed to fit its place), `other/good-ble.json`, and things that are not profiles.
    static func tree() throws -> TemporaryDirectory {
        let directory = try TemporaryDirectory()
        directory.write("test/good.json", BrokenProfiles.text("good.json"))
        directory.write("test/broken.json", BrokenProfiles.text("bad-hex-sync.json")
            .replacingOccurrences(of: #""id": "test/good""#, with: #""id": "test/broken""#))
        directory.write("other/good-ble.json", BrokenProfiles.text("good-ble.json")
            .replacingOccurrences(of: #""id": "test/good-ble""#, with: #""id": "other/good-ble""#))
        directory.write("schema/profile.schema.json", "{}")
        directory.write("test/good/capture.expected.json", "{}")
        directory.write("test/notes.txt", "not a profile")
        directory.write(".hidden/x.json", "{")
        directory.write("top-level.json", "{")
        return directory
    }

    @Test("a broken profile is skipped with its error; the others load")
    func brokenIsSkipped() throws {
        let directory = try Self.tree()
        defer { withExtendedLifetime(directory) {} }
        let catalog = ProfileCatalog.load(directory: directory.path)
        #expect(catalog.profiles.map(\.id) == ["other/good-ble", "test/good"])
        #expect(catalog.errors.count == 1)
        let error = try #require(catalog.errors.first)
        let expected = try #require(BrokenProfiles.cases.first { $0.file == "bad-hex-sync.json" })
        #expect(error.file == directory.path + "/test/broken.json")
        #expect(error.location?.description == expected.location)
        #expect(error.field == expected.field)
        #expect(catalog.profile("test/good")?.vendor == "Test Vendor")
        #expect(catalog.profile("test/broken") == nil)
    }

    @Test("only <vendor>/<model>.json files are profiles")
    func profileFiles() throws {
        let directory = try Self.tree()
        defer { withExtendedLifetime(directory) {} }
        #expect(ProfileCatalog.profileFiles(in: directory.path) == [
            directory.path + "/other/good-ble.json", directory.path + "/test/broken.json", directory.path + "/test/good.json",
        ])
        #expect(ProfileCatalog.profileFiles(in: directory.path + "/missing").isEmpty)
    }

    @Test("a profile's id comes from its place; its captures sit in a folder of the same name")
    func paths() throws {
        #expect(ProfileCatalog.expectedID(for: "/x/DeviceProfiles/contec/cms50d-plus.json") == "contec/cms50d-plus")
        let profile = try ProfileLoader.load(file: BrokenProfiles.path("good.json"), expectedID: "test/good")
        #expect(ProfileCatalog.captureDirectory(for: profile) == BrokenProfiles.path("good"))
        #expect(ProfileCatalog.expectedFile(for: "/p/v/m/session.capture") == "/p/v/m/session.expected.json")
    }

    /// A tree with `test/good.json` and, when asked, a capture, its expectation and SOURCES.md.
    static func lintTree(capture: String? = ReplayTests.exchange, expected: String? = ReplayTests.expectedText,
                         sources: Bool = true, profile: String = BrokenProfiles.text("good.json")) throws -> (TemporaryDirectory, String) {
        let directory = try TemporaryDirectory()
        let file = directory.write("test/good.json", profile)
        if let capture { directory.write("test/good/session.capture", capture) }
        if let expected { directory.write("test/good/session.expected.json", expected) }
        if sources { directory.write("test/good/SOURCES.md", "# Sources\n") }
        return (directory, file)
    }

    @Test("a profile with a capture, its expected readings and SOURCES.md lints clean")
    func lintClean() throws {
        let (directory, file) = try Self.lintTree()
        defer { withExtendedLifetime(directory) {} }
        #expect(ProfileLint.lint(file: file) == [])
    }

    @Test("lint reports what a shippable profile lacks")
    func lintFindings() throws {
        var keep: [TemporaryDirectory] = []
        defer { withExtendedLifetime(keep) {} }
        func lint(capture: String? = ReplayTests.exchange, expected: String? = ReplayTests.expectedText, sources: Bool = true,
                  profile: String = BrokenProfiles.text("good.json")) throws -> (String, [LintFinding]) {
            let (directory, file) = try Self.lintTree(capture: capture, expected: expected, sources: sources, profile: profile)
            keep.append(directory)
            return (directory.path, ProfileLint.lint(file: file))
        }

        let (noCaptures, findings1) = try lint(capture: nil, expected: nil, sources: false)
        #expect(findings1.map(\.error.problem) == ["no captures in \(noCaptures)/test/good/"])

        let (noExpected, findings2) = try lint(expected: nil)
        #expect(findings2.map(\.error.problem) == ["\(noExpected)/test/good/session.capture has no expected readings"])

        let (noSources, findings3) = try lint(sources: false)
        #expect(findings3.map(\.error.problem) == ["\(noSources)/test/good/SOURCES.md is missing"])

        let (_, findings4) = try lint(capture: "< 01\n< ZZ")
        #expect(findings4.map(\.error.location) == [SourceLocation(line: 2, column: 1)])

        let (_, findings5) = try lint(expected: "{\"readings\": []")
        #expect(findings5.map(\.error.problem).first?.hasPrefix("not valid JSON") == true)
        #expect(findings5.count == 1)

        // Declaring a kind that no message produces.
        let (_, findings6) = try lint(profile: BrokenProfiles.text("good.json")
            .replacingOccurrences(of: #""kinds": ["pulse-oximetry"]"#, with: #""kinds": ["pulse-oximetry", "heart-rate"]"#))
        #expect(findings6.map(\.error.field) == ["kinds"])

        // Hardware flow control with a hand-driven RTS line is a warning, not an error.
        let (_, findings7) = try lint(profile: BrokenProfiles.text("good.json")
            .replacingOccurrences(of: #""exclusive": true"#, with: #""exclusive": true, "flowControl": "rts-cts", "rts": "on""#))
        #expect(findings7.map(\.severity) == [.warning])

        // A profile that does not load is one error: the loader's.
        let (_, findings8) = try lint(profile: BrokenProfiles.text("format-2.json"))
        #expect(findings8.map(\.error.field) == ["format"])
    }

    @Test("two profiles claiming the same USB ids without telling them apart are a warning")
    func overlaps() throws {
        let directory = try Self.tree()
        defer { withExtendedLifetime(directory) {} }
        directory.write("test/twin.json", BrokenProfiles.text("good.json").replacingOccurrences(of: #""id": "test/good""#, with: #""id": "test/twin""#))
        let catalog = ProfileCatalog.load(directory: directory.path)
        #expect(ProfileLint.overlaps(in: catalog).map(\.error.problem) == ["10C4:EA60 is also claimed by test/good with the same strings"])
        directory.write("test/twin.json", BrokenProfiles.text("good.json")
            .replacingOccurrences(of: #""id": "test/good""#, with: #""id": "test/twin""#)
            .replacingOccurrences(of: #""product": "Test Oximeter""#, with: #""product": "Twin Oximeter""#))
        #expect(ProfileLint.overlaps(in: ProfileCatalog.load(directory: directory.path)).isEmpty)
    }

    // MARK: Shipped profiles

    @Test("every shipped profile loads")
    func shippedLoad() {
        #expect(ShippedProfiles.catalog.errors.map(\.description) == [])
        #expect(!ShippedProfiles.catalog.profiles.isEmpty)
        #expect(ShippedProfiles.catalog.profiles.map(\.id).contains("bluetooth-sig/blood-pressure"))
    }

    @Test("every shipped profile lints without errors")
    func shippedLint() {
        for file in ProfileCatalog.profileFiles(in: ShippedProfiles.directory) {
            let errors = ProfileLint.lint(file: file).filter { $0.severity == .error }
            #expect(errors.map(\.description) == [], "\(file)")
        }
    }

    @Test("every shipped capture replays to its expected readings")
    func shippedReplays() throws {
        var replayed = 0
        for profile in ShippedProfiles.catalog.profiles {
            for capture in ProfileCatalog.captures(for: profile) {
                let replay = Replay.run(try Capture.load(file: capture), profile: profile)
                let expected = try ExpectedReadings.load(file: ProfileCatalog.expectedFile(for: capture))
                #expect(replay.scriptDifferences + expected.differences(from: replay) == [], "\(capture)")
                replayed += 1
            }
        }
        #expect(replayed >= 2)
    }
}

@Suite("udev rules")
struct UdevRulesTests {
    static let committed = RepositoryPaths.root.appendingPathComponent("systemd/udev/\(UdevRules.fileName)").path

    @Test("the committed rules are what the shipped profiles generate")
    func committedRulesAreCurrent() {
        let generated = UdevRules.generate(ShippedProfiles.catalog)
        let committed = FileManager.default.contents(atPath: Self.committed).map { String(decoding: $0, as: UTF8.self) }
        #expect(committed == generated, """
            systemd/udev/\(UdevRules.fileName) differs from the rules DeviceProfiles/ generates. Regenerate it from the \
            repository root with `vitalgate profile udev-rules > systemd/udev/\(UdevRules.fileName)` and commit it.
            """)
    }

    static func catalog(_ files: [String: String]) throws -> ProfileCatalog {
        let directory = try TemporaryDirectory()
        defer { withExtendedLifetime(directory) {} }
        for (path, text) in files { directory.write(path, text) }
        return ProfileCatalog.load(directory: directory.path)
    }

    @Test("USB profiles become rules; glob characters in strings are quoted; Bluetooth profiles are skipped")
    func generator() throws {
        let serial = BrokenProfiles.text("good.json")
            .replacingOccurrences(of: #""product": "Test Oximeter""#, with: #""manufacturer": "Acme*[1]?|x", "product": "Say \"hi\" \\o/", "interface": 1"#)
        let hid = BrokenProfiles.text("good.json")
            .replacingOccurrences(of: #""id": "test/good""#, with: #""id": "test/hid""#)
            .replacingOccurrences(of: #""vendorId": "10C4", "productId": "EA60", "product": "Test Oximeter""#, with: #""vendorId": "0590", "productId": "0028""#)
            .replacingOccurrences(of: #""serial": { "baud": 19200, "parity": "odd", "exclusive": true }"#, with: #""hidraw": { "reportSize": 8 }"#)
        let ble = BrokenProfiles.text("good-ble.json").replacingOccurrences(of: "test/good-ble", with: "test/ble")
        let catalog = try Self.catalog(["test/good.json": serial, "test/hid.json": hid, "test/ble.json": ble])
        #expect(catalog.errors == [])
        #expect(catalog.profiles.count == 3)
        let rules = UdevRules.generate(catalog)
        let lines = rules.components(separatedBy: "\n")
        #expect(lines.first == "# Generated from DeviceProfiles/ by `vitalgate profile udev-rules`; do not edit by hand.")
        #expect(!rules.contains("test/ble"))
        // Each udev glob character is matched literally inside brackets; quotes and backslashes, which a
        // udev string cannot hold, match any one character.
        #expect(lines.contains("""
            ACTION!="remove", SUBSYSTEM=="tty", SUBSYSTEMS=="usb", ATTRS{idVendor}=="10c4", ATTRS{idProduct}=="ea60", \
            ATTRS{manufacturer}=="Acme[*][[]1[]][?][|]x", ATTRS{product}=="Say ?hi? ?o/", ATTRS{bInterfaceNumber}=="01", \
            GROUP="vitalgate", MODE="0660", TAG+="vitalgate", ENV{VITALGATE_PROFILE}="test/good"
            """), "\(rules)")
        #expect(lines.contains("""
            ACTION!="remove", SUBSYSTEM=="hidraw", SUBSYSTEMS=="usb", ATTRS{idVendor}=="0590", ATTRS{idProduct}=="0028", \
            GROUP="vitalgate", MODE="0660", TAG+="vitalgate", ENV{VITALGATE_PROFILE}="test/hid"
            """), "\(rules)")
        #expect(lines.contains("# test/good: Test Vendor Frames Oximeter, serial 19200 8O1"))
        #expect(lines.contains("# test/hid: Test Vendor Frames Oximeter, HID reports of 8 bytes"))
        // Sorted by id, and the same input gives the same text.
        #expect(rules.range(of: "test/good")!.lowerBound < rules.range(of: "test/hid")!.lowerBound)
        #expect(UdevRules.generate(catalog) == rules)
        #expect(UdevRules.generate(catalog, group: "plugdev").contains(#"GROUP="plugdev""#))
    }

    @Test("interface numbers are two hex digits, as the kernel writes bInterfaceNumber")
    func interfaceNumber() throws {
        let text = BrokenProfiles.text("good.json").replacingOccurrences(of: #""product": "Test Oximeter""#, with: #""interface": 10"#)
        let rules = UdevRules.generate(try Self.catalog(["test/good.json": text]))
        #expect(rules.contains(#"ATTRS{bInterfaceNumber}=="0a""#))
    }
}
