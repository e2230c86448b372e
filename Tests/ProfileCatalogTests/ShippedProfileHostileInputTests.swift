import Foundation
import Testing
import VitalModel
import ProfileEngine
import VitalGateTestKit
@testable import ProfileCatalog

/// Every shipped profile, fed its own golden captures made hostile: each device chunk truncated at every
/// length, made over-long, with its last byte corrupted (a wrong checksum where the protocol has one),
/// and with garbage in front. Whatever happens, nothing traps, at least half of the damaged variants are
/// noticed (a problem, a script difference or a reading fewer), and no reading appears that the clean
/// capture does not hold: a damaged frame is never misread.
@Suite("Shipped profiles: truncated, over-long, wrong-checksum and garbage input")
struct ShippedProfileHostileInputTests {
    /// Cases: every capture of every shipped profile.
    static let captures: [(String, String)] = ShippedProfiles.catalog.profiles.flatMap { profile in
        ProfileCatalog.captures(for: profile).map { (profile.id, $0) }
    }

    /// What a reading says about the measurement, without when the hub received it.
    static func meaning(_ reading: Reading, withoutRR: Bool = false) -> String {
        var reading = reading
        // R-R intervals fill the rest of a heart-rate value with no count (Heart Rate Service 1.0), so a
        // value cut after a whole interval is indistinguishable from one with fewer intervals.
        if withoutRR { reading.values.removeAll { $0.type == .rrInterval } }
        var json = reading.json
        if case .object(let members) = json {
            json = .object(members.filter { !["receivedAt", "raw"].contains($0.0) })
        }
        return json.serialized()
    }

    struct Damage: Sendable {
        let name: String
        let apply: @Sendable ([UInt8]) -> [[UInt8]]
    }

    static let damages: [Damage] = [
        Damage(name: "truncated") { chunk in (0..<chunk.count).map { Array(chunk.prefix($0)) } },
        Damage(name: "over-long") { chunk in [chunk + [0x00], chunk + chunk.prefix(3)] },
        Damage(name: "last byte corrupted") { chunk in
            guard let last = chunk.last else { return [] }
            return [Array(chunk.dropLast()) + [last ^ 0x5A]]
        },
        Damage(name: "garbage in front") { chunk in [[0x00, 0xFF, 0x13] + chunk, [0x7E] + chunk] },
    ]

    @Test("damaged chunks never trap and never yield a reading the clean capture lacks", arguments: captures)
    func hostile(_ profileID: String, _ file: String) throws {
        let profile = try #require(ShippedProfiles.catalog.profile(profileID))
        let capture = try Capture.load(file: file)
        let clean = Replay.run(capture, profile: profile)
        let known = Set(clean.readings.map { Self.meaning($0) })
        let knownWithoutRR = Set(clean.readings.map { Self.meaning($0, withoutRR: true) })
        let chunkIndexes = capture.entries.indices.filter {
            if case .fromDevice = capture.entries[$0].line { true } else { false }
        }
        var variants = 0, reported = 0
        for index in chunkIndexes {
            guard case .fromDevice(let chunk, let channel) = capture.entries[index].line else { continue }
            for damage in Self.damages {
                for damaged in damage.apply(chunk) {
                    var copy = capture
                    copy.entries[index].line = .fromDevice(damaged, channel: channel)
                    let replay = Replay.run(copy, profile: profile)
                    variants += 1
                    let unknown = replay.readings.filter { reading in
                        !known.contains(Self.meaning(reading))
                            && !(damage.name == "truncated" && knownWithoutRR.contains(Self.meaning(reading, withoutRR: true)))
                    }.map { Self.meaning($0) }
                    // A corrupted last byte of a protocol without a checksum can be a different valid value
                    // (a status bit, a second): only protocols with a checksum or strict framing must reject it.
                    if damage.name != "last byte corrupted" || Self.hasChecksum(profile) {
                        #expect(unknown.isEmpty, "\(profileID) \(file) line \(capture.entries[index].lineNumber) \(damage.name): new reading \(unknown.first ?? "")")
                    }
                    if !replay.problems.isEmpty || !replay.scriptDifferences.isEmpty || replay.readings.count < clean.readings.count {
                        reported += 1
                    }
                }
            }
        }
        #expect(variants > 0)
        // Most damage must be noticed; the rest is damage a protocol cannot see (a cut in padding, say).
        #expect(reported * 2 >= variants, "\(profileID) \(file): only \(reported) of \(variants) damaged variants were noticed")
    }

    static func hasChecksum(_ profile: DeviceProfile) -> Bool {
        if let frames = profile.engine as? FramesEngine { return frames.spec.checksum != nil }
        return profile.engine.name == "omron-hem790"
    }
}
