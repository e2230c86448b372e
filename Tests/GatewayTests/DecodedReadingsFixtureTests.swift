import Foundation
import Testing
import VitalGateTestKit
@testable import Gateway

/// The decoded-readings fixture that seeds the ReadingJSON fuzz target must stay what the decoder prints.
@Suite("decoded readings fixture")
struct DecodedReadingsFixtureTests {
    static let captures = [
        ("bluetooth-sig/blood-pressure", "derdilla-and-boso"), ("bluetooth-sig/heart-rate", "polar-and-wahoo"),
        ("bluetooth-sig/glucose", "nordic-suite"), ("viatom/pc-60fw", "pedasmith-example-data"),
        ("omron/hem-790it", "790it-two-readings"),
    ]

    @Test("Tests/Fixtures/readings/decoded-captures.jsonl equals the decoder's output")
    func fixtureIsCurrent() throws {
        var output = ""
        for (profile, capture) in Self.captures {
            let path = RepositoryPaths.root.appendingPathComponent("DeviceProfiles/\(profile)/\(capture).capture").path
            let result = CommandLineTool.run(["decode", "--profile", profile, "--profiles", RepositoryPaths.root.appendingPathComponent("DeviceProfiles").path,
                                              "--capture", path, "--received-at", "2025-06-01T07:35:00+07:00"])
            #expect(result.exitCode == 0, "\(result.stderr)")
            output += result.stdout
        }
        let fixture = try String(contentsOf: RepositoryPaths.fixture("readings/decoded-captures.jsonl"), encoding: .utf8)
        #expect(output == fixture, "regenerate: for each capture in this test, vitalgate decode --profile P --capture C --received-at 2025-06-01T07:35:00+07:00")
        #expect(output.split(separator: "\n").count >= 10)
    }
}
