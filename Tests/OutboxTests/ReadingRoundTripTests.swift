import Foundation
import Testing
import VitalGateTestKit
import VitalModel
@testable import Outbox

/// What the Outbox stores is what it gives back: `Reading(json: r.json) == r` for every reading the
/// shipped captures decode to and for random readings that set every member.
@Suite("Stored readings round-trip")
struct ReadingRoundTripTests {
    @Test("random readings come back equal, through JSON and through the Outbox", arguments: [1, 2, 3] as [UInt64])
    func random(seed: UInt64) throws {
        var random = RandomReadings(seed: seed)
        let readings = (0..<700).map { _ in random.reading() }
        for reading in readings {
            let text = reading.json.serialized()
            let decoded = try Reading(jsonText: text)
            #expect(decoded == reading, "seed \(seed): \(text)")
            #expect(decoded.json.serialized() == text)
        }
        let directory = TemporaryDirectory()
        let outbox = try Outbox(path: directory.database, options: options(reserve: 0))
        let outcomes = try outbox.ingest(readings.map { incoming($0) })
        for (reading, outcome) in zip(readings, outcomes) {
            // Random readings may collide on their keys; a duplicate must then hold the same values.
            let stored = try #require(try outbox.reading(outcome.id))
            if case .stored = outcome { #expect(stored.reading == reading) } else { #expect(stored.reading.values == reading.values) }
        }
    }

    /// Every shipped capture, decoded by the real `vitalgate decode` with identity, clock check and
    /// strings set, so the readings are exactly what a session would hand to the Outbox.
    @Test("every reading the shipped captures decode to round-trips")
    func shippedCaptures() throws {
        let binary = vitalgateBinary()
        try #require(FileManager.default.isExecutableFile(atPath: binary.path), "build the vitalgate product first (swift build)")
        let profiles = RepositoryPaths.root.appendingPathComponent("DeviceProfiles")
        let captures = try #require(FileManager.default.enumerator(atPath: profiles.path)).compactMap { $0 as? String }
            .filter { $0.hasSuffix(".capture") }.sorted()
        #expect(captures.count >= 20)
        let directory = TemporaryDirectory()
        let outbox = try Outbox(path: directory.database, options: options(reserve: 0))
        var total = 0
        for capture in captures {
            let profile = (capture as NSString).deletingLastPathComponent
            let process = Process()
            process.executableURL = binary
            process.arguments = ["decode", "--profile", profile, "--profiles", profiles.path, "--capture", profiles.path + "/" + capture,
                                 "--system-id", "00-1B-2C-FF-FE-3D-4E-5F", "--manufacturer", "Maker \"M\"", "--model", "Model/1",
                                 "--received-at", "2025-06-01T07:35:00.123+07:00", "--device-clock", "2025-06-01T07:34:58"]
            let output = Pipe()
            process.standardOutput = output
            process.standardError = Pipe()
            try process.run()
            let data = output.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            let lines = String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init)
            // Captures of rejected frames may decode to nothing; those that decode must round-trip.
            var readings: [Reading] = []
            for line in lines {
                let reading = try Reading(jsonText: line)
                #expect(reading.json.serialized() == line, "\(capture)")
                #expect(try Reading(json: reading.json) == reading, "\(capture)")
                readings.append(reading)
            }
            let outcomes = try outbox.ingest(readings.map { incoming($0) })
            for (reading, outcome) in zip(readings, outcomes) {
                if case .stored(let id) = outcome { #expect(try outbox.reading(id)?.reading == reading, "\(capture)") }
            }
            total += readings.count
        }
        #expect(total >= 100, "the shipped captures decode to \(total) readings")
    }
}
