import Foundation
import Testing
import VitalModel
import VitalGateTestKit
@testable import ProfileEngine

/// Fixtures of the `gatt-standard` characteristics beyond blood pressure and heart rate
/// (`Tests/Fixtures/bluetooth-sig/*.json`, sources in SOURCES.md there). `expected` holds only what the
/// source states; `error` in malformed entries is VitalGate's own contract (which field, which byte).

/// Decodes a key that may be absent (outer nil: the source states nothing) or null (inner nil: the source
/// states there is none).
extension KeyedDecodingContainer {
    func stated<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T?? {
        guard contains(key) else { return nil }
        return .some(try decodeNil(forKey: key) ? nil : try decode(T.self, forKey: key))
    }
}

struct ExpectedError: Decodable, Sendable {
    let field: String
    let offset: Int
}

struct MalformedGATTVector: Decodable, Sendable, CustomTestStringConvertible {
    let hex: String
    let source: VectorSource
    let why: String
    let error: ExpectedError
    var testDescription: String { hex.isEmpty ? "(empty)" : hex }
}

struct PLXVector: Decodable, Sendable, CustomTestStringConvertible {
    struct Pair: Decodable, Sendable {
        let oxygenSaturation: String
        let pulseRate: String
    }

    struct Expected: Decodable, Sendable {
        let oxygenSaturation: String
        let pulseRate: String
        let timestamp: String?
        let fast: Pair?
        let slow: Pair?
        let measurementStatus: [String]?
        let deviceAndSensorStatus: [String]?
        let pulseAmplitudeIndex: String?
    }

    let name: String
    let hex: String
    let source: VectorSource
    let expected: Expected
    var testDescription: String { name }
}

struct WeightVector: Decodable, Sendable, CustomTestStringConvertible {
    struct Expected: Decodable, Sendable {
        let unit: String?
        let weight: String?
        let timestamp: String??
        let userID: Int??
        let bmi: String?
        let heightCentimetres: String?

        enum CodingKeys: String, CodingKey { case unit, weight, timestamp, userID, bmi, heightCentimetres }

        init(from decoder: Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            unit = try container.decodeIfPresent(String.self, forKey: .unit)
            weight = try container.decodeIfPresent(String.self, forKey: .weight)
            timestamp = try container.stated(String.self, forKey: .timestamp)
            userID = try container.stated(Int.self, forKey: .userID)
            bmi = try container.decodeIfPresent(String.self, forKey: .bmi)
            heightCentimetres = try container.decodeIfPresent(String.self, forKey: .heightCentimetres)
        }
    }

    let name: String
    let hex: String
    let source: VectorSource
    let expected: Expected
    var testDescription: String { name }
}

struct TemperatureVector: Decodable, Sendable, CustomTestStringConvertible {
    struct Expected: Decodable, Sendable {
        let unit: String
        let temperature: String
        let timestamp: String??
        let temperatureType: Int?

        enum CodingKeys: String, CodingKey { case unit, temperature, timestamp, temperatureType }

        init(from decoder: Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            unit = try container.decode(String.self, forKey: .unit)
            temperature = try container.decode(String.self, forKey: .temperature)
            timestamp = try container.stated(String.self, forKey: .timestamp)
            temperatureType = try container.decodeIfPresent(Int.self, forKey: .temperatureType)
        }
    }

    let name: String
    let hex: String
    let source: VectorSource
    let expected: Expected
    var testDescription: String { name }
}

struct GlucoseVector: Decodable, Sendable, CustomTestStringConvertible {
    struct Expected: Decodable, Sendable {
        let sequenceNumber: Int
        let timestamp: String?
        let concentration: String?
        let concentrationUnit: String?
        let type: String?
        let location: String?
        let status: Int?
        let deviceBatteryLow: Bool?
        let generalDeviceFault: Bool?
        let contextInformationFollows: Bool?
    }

    let name: String
    let hex: String
    let source: VectorSource
    let expected: Expected
    var testDescription: String { name }
}

struct RACPResponseVector: Decodable, Sendable, CustomTestStringConvertible {
    struct Expected: Decodable, Sendable {
        let requestOpcode: Int?
        let responseCode: Int?
        let numberOfRecords: Int?
    }

    let name: String
    let hex: String
    let source: VectorSource
    let expected: Expected
    var testDescription: String { name }
}

struct RACPRequestVector: Decodable, Sendable, CustomTestStringConvertible {
    let name: String
    let request: String
    let sequenceNumber: UInt16?
    let hex: String
    let source: VectorSource
    var testDescription: String { name }
}

struct TimeVector: Decodable, Sendable, CustomTestStringConvertible {
    struct Expected: Decodable, Sendable {
        let time: String?
        let dayOfWeek: Int?
        let fractions256: Int?
        let adjustReason: Int?
    }

    let name: String
    let hex: String
    let source: VectorSource
    let expected: Expected
    var testDescription: String { name }
}

struct ByteFieldVector: Decodable, Sendable, CustomTestStringConvertible {
    let name: String
    let byte: UInt8
    let source: VectorSource
    /// Nil: the source says "unknown".
    let expectedMinutes: Int?
    var testDescription: String { name }
}

struct MalformedByteFieldVector: Decodable, Sendable, CustomTestStringConvertible {
    let byte: UInt8
    let source: VectorSource
    let why: String
    let error: ExpectedError
    var testDescription: String { String(byte) }
}

struct DayOfWeekVector: Decodable, Sendable, CustomTestStringConvertible {
    let date: String
    let dayOfWeek: UInt8
    let source: VectorSource
    var testDescription: String { date }
}

enum GATTVectors {
    struct PLXFile: Decodable {
        let spotCheck: [PLXVector]
        let continuous: [PLXVector]
    }

    struct WeightFile: Decodable {
        let vectors: [WeightVector]
        let malformed: [MalformedGATTVector]
    }

    struct TemperatureFile: Decodable {
        let vectors: [TemperatureVector]
        let malformed: [MalformedGATTVector]
    }

    struct GlucoseFile: Decodable {
        let vectors: [GlucoseVector]
        let malformed: [MalformedGATTVector]
    }

    struct RACPFile: Decodable {
        let responses: [RACPResponseVector]
        let requests: [RACPRequestVector]
        let malformed: [MalformedGATTVector]
    }

    struct TimeFile: Decodable {
        let currentTime: [TimeVector]
        let dateTime: [TimeVector]
        let dateTimeMalformed: [MalformedGATTVector]
        let timeZone: [ByteFieldVector]
        let timeZoneMalformed: [MalformedByteFieldVector]
        let dstOffset: [ByteFieldVector]
        let dstOffsetMalformed: [MalformedByteFieldVector]
        let daysOfWeek: [DayOfWeekVector]
    }

    static let plx = SIGVectors.load("plx-measurement.json", as: PLXFile.self)
    static let weight = SIGVectors.load("weight-measurement.json", as: WeightFile.self)
    static let temperature = SIGVectors.load("temperature-measurement.json", as: TemperatureFile.self)
    static let glucose = SIGVectors.load("glucose-measurement.json", as: GlucoseFile.self)
    static let racp = SIGVectors.load("record-access-control-point.json", as: RACPFile.self)
    static let time = SIGVectors.load("time-characteristics.json", as: TimeFile.self)

    /// Every valid measurement vector with its characteristic, for the tests every decoder must pass.
    static var measurements: [(uuid: String, name: String, hex: String)] {
        plx.spotCheck.map { ("2A5E", $0.name, $0.hex) } + plx.continuous.map { ("2A5F", $0.name, $0.hex) }
            + weight.vectors.map { ("2A9D", $0.name, $0.hex) } + temperature.vectors.map { ("2A1C", $0.name, $0.hex) }
            + glucose.vectors.map { ("2A18", $0.name, $0.hex) }
    }
}

/// Whether `value` is the number `text` states, whatever precision either writes it with (`100` = `100.0`).
func isNumber(_ value: NumericValue?, _ text: String, scaledBy powerOfTen: Int = 0) -> Bool {
    guard case .number(let number)? = value, let stated = DecimalValue(text) else { return false }
    return reduced(number) == reduced(DecimalValue(mantissa: stated.mantissa, exponent: stated.exponent + powerOfTen))
}

/// A decimal with trailing zeros of the mantissa moved into the exponent, so equal numbers compare equal.
func reduced(_ value: DecimalValue) -> DecimalValue {
    var (mantissa, exponent) = (value.mantissa, value.exponent)
    if mantissa == 0 { return DecimalValue(mantissa: 0, exponent: 0) }
    while mantissa % 10 == 0 { mantissa /= 10; exponent += 1 }
    return DecimalValue(mantissa: mantissa, exponent: exponent)
}

/// Runs `body` and returns the decode error it throws, recording an issue when it throws none.
func decodeError(_ body: () throws(DecodeError) -> Void, sourceLocation: Testing.SourceLocation = #_sourceLocation) -> DecodeError? {
    do {
        try body()
        Issue.record("decoded, but an error was expected", sourceLocation: sourceLocation)
        return nil
    } catch {
        return error
    }
}
