import Foundation
import Testing
import VitalGateTestKit

/// Golden vectors from real devices and public test suites, in `Tests/Fixtures/bluetooth-sig/`. Each one
/// names its source; `expected` holds only what that source states (see SOURCES.md there).
struct VectorSource: Decodable, Sendable {
    let kind: String
    let `where`: String
    let what: String
}

struct BloodPressureVector: Decodable, Sendable, CustomTestStringConvertible {
    struct Status: Decodable, Sendable {
        let bodyMovement: Bool?
        let cuffTooLoose: Bool?
        let irregularPulse: Bool?
        let improperPosition: Bool?
        let pulseRateRange: String?
    }

    struct Expected: Decodable, Sendable {
        let unit: String?
        let systolic: String?
        let diastolic: String?
        let meanArterialPressure: String?
        /// Outer nil: the source states nothing; inner nil: the source says there is no time stamp.
        let timestamp: String??
        let pulseRate: String?
        let userID: Int?
        let status: Status?

        enum CodingKeys: String, CodingKey {
            case unit, systolic, diastolic, meanArterialPressure, timestamp, pulseRate, userID, status
        }

        init(from decoder: Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            unit = try container.decodeIfPresent(String.self, forKey: .unit)
            systolic = try container.decodeIfPresent(String.self, forKey: .systolic)
            diastolic = try container.decodeIfPresent(String.self, forKey: .diastolic)
            meanArterialPressure = try container.decodeIfPresent(String.self, forKey: .meanArterialPressure)
            timestamp = container.contains(.timestamp) ? .some(try container.decodeNil(forKey: .timestamp)
                ? nil : try container.decode(String.self, forKey: .timestamp)) : nil
            pulseRate = try container.decodeIfPresent(String.self, forKey: .pulseRate)
            userID = try container.decodeIfPresent(Int.self, forKey: .userID)
            status = try container.decodeIfPresent(Status.self, forKey: .status)
        }
    }

    let name: String
    let hex: String
    let source: VectorSource
    let expected: Expected
    var testDescription: String { name }
}

struct HeartRateVector: Decodable, Sendable, CustomTestStringConvertible {
    struct Expected: Decodable, Sendable {
        let heartRate: Int?
        let sensorContact: String?
        let energyExpended: Int?
        let rrIntervals: [Int]?
    }

    let name: String
    let hex: String
    let source: VectorSource
    let expected: Expected
    var testDescription: String { name }
}

struct MalformedVector: Decodable, Sendable, CustomTestStringConvertible {
    let hex: String
    let source: VectorSource
    let why: String
    var testDescription: String { hex }
}

struct NumberVector: Decodable, Sendable, CustomTestStringConvertible {
    /// The value most significant nibble first, as the sources print it.
    let hex: String
    let expected: String
    let source: VectorSource
    var testDescription: String { hex + " = " + expected }
}

enum SIGVectors {
    struct BloodPressureFile: Decodable {
        struct Section: Decodable { let vectors: [BloodPressureVector] }
        let vectors: [BloodPressureVector]
        let intermediateCuffPressure: Section
        let malformed: [MalformedVector]
    }

    struct HeartRateFile: Decodable {
        let vectors: [HeartRateVector]
        let malformed: [MalformedVector]
    }

    struct NumberFile: Decodable {
        let sfloat: [NumberVector]
        let float: [NumberVector]
    }

    static func load<T: Decodable>(_ name: String, as type: T.Type) -> T {
        let url = RepositoryPaths.fixture("bluetooth-sig/" + name)
        do {
            return try JSONDecoder().decode(T.self, from: Data(contentsOf: url))
        } catch {
            fatalError("cannot read fixture \(url.path): \(error)")
        }
    }

    static let bloodPressure = load("blood-pressure-measurement.json", as: BloodPressureFile.self)
    static let heartRate = load("heart-rate-measurement.json", as: HeartRateFile.self)
    static let numbers = load("ieee11073-float.json", as: NumberFile.self)
}

