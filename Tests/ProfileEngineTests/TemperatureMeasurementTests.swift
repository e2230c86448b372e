import Testing
import VitalModel
import VitalGateTestKit
@testable import ProfileEngine

@Suite("Temperature Measurement 0x2A1C")
struct TemperatureMeasurementTests {
    let decoder = TemperatureMeasurementDecoder()

    @Test("public-suite vectors decode to the values their sources state", arguments: GATTVectors.temperature.vectors)
    func vector(_ vector: TemperatureVector) throws {
        let reading = try decoder.decode(bytes(vector.hex), context: testContext)
        let expected = vector.expected
        let comment = Comment(rawValue: "\(vector.name), source: \(vector.source.where)")
        #expect(reading.kind == .bodyTemperature, comment)
        let value = reading.value(.bodyTemperature)
        #expect(value?.unit.ucum == expected.unit, comment)
        #expect(isNumber(value?.value, expected.temperature), comment)
        switch expected.timestamp {
        case .none: break
        case .some(.none): #expect(reading.deviceTime == nil, comment)
        case .some(.some(let text)): #expect(reading.deviceTime?.time.description == text, comment)
        }
        if let type = expected.temperatureType {
            #expect(reading.bodySite == Self.expectedSites[type], comment)
        }
    }

    /// Bluetooth temperature types → the site fhir-mapping.md §1.4 lists (written out here, independently of
    /// the decoder's table).
    static let expectedSites: [Int: BodySite?] = [
        1: BodySite(code: MDCCode(188452, "MDC_TEMP_AXILLA"), name: "armpit"),
        2: nil,  // "body (general)" names no site
        3: BodySite(code: MDCCode(188428, "MDC_TEMP_EAR"), name: "ear"),
        4: BodySite(code: MDCCode(188432, "MDC_TEMP_FINGER"), name: "finger"),
        5: BodySite(code: MDCCode(188456, "MDC_TEMP_GIT"), name: "gastrointestinal-tract"),
        6: BodySite(code: MDCCode(188424, "MDC_TEMP_ORAL"), name: "mouth"),
        7: BodySite(code: MDCCode(188420, "MDC_TEMP_RECT"), name: "rectum"),
        8: BodySite(code: MDCCode(188448, "MDC_TEMP_TOE"), name: "toe"),
        9: BodySite(code: MDCCode(150392, "MDC_TEMP_TYMP"), name: "tympanum"),
        0: nil, 10: nil, 255: nil,  // reserved: no site, and no error
    ]

    @Test("every temperature type gives its site", arguments: Array(expectedSites.keys).sorted())
    func sites(_ type: Int) throws {
        // 37.0 °C (FLOAT 0xFF000172) with only the type.
        let reading = try decoder.decode([0x04, 0x72, 0x01, 0x00, 0xFF, UInt8(type)], context: testContext)
        #expect(reading.bodySite == Self.expectedSites[type] ?? nil)
        #expect(reading.value(.bodyTemperature)?.value.description == "37.0")
    }

    @Test("public malformed frames are errors naming the field and byte", arguments: GATTVectors.temperature.malformed)
    func malformed(_ vector: MalformedGATTVector) {
        let error = decodeError { () throws(DecodeError) in _ = try decoder.decode(bytes(vector.hex), context: testContext) }
        #expect(error?.field == vector.error.field, "\(vector.why): \(String(describing: error))")
        #expect(error?.offset == vector.error.offset)
    }

    @Test("FLOAT special values are kept", arguments: [
        ("00FFFF7F00", SpecialValue.notANumber), ("0000008000", .notAtThisResolution),
        ("00FEFF7F00", .positiveInfinity), ("0002008000", .negativeInfinity),
    ])
    func specials(_ hex: String, _ special: SpecialValue) throws {
        let reading = try decoder.decode(bytes(hex), context: testContext)
        #expect(reading.value(.bodyTemperature)?.value == .special(special))
    }

    @Test("every truncation of every vector is an error", arguments: GATTVectors.temperature.vectors)
    func truncations(_ vector: TemperatureVector) {
        let full = bytes(vector.hex)
        for length in 0..<full.count {
            let error = decodeError { () throws(DecodeError) in
                _ = try decoder.decode(Array(full.prefix(length)), context: testContext)
            }
            #expect(error.map { $0.offset <= length } == true, "\(vector.name) cut to \(length)")
        }
    }

    @Test("bytes after the last field are an error", arguments: GATTVectors.temperature.vectors)
    func overlong(_ vector: TemperatureVector) {
        let raw = bytes(vector.hex) + [0x01]
        let error = decodeError { () throws(DecodeError) in _ = try decoder.decode(raw, context: testContext) }
        #expect(error?.field == "end of input")
        #expect(error?.offset == raw.count - 1)
    }

    @Test("reserved flags, empty input and garbage are errors", arguments: [
        ("08B00E00FE", "flags", 0), ("", "flags", 0), ("FFFFFFFFFF", "flags", 0), ("00B00E", "temperature", 1),
        ("02B00E00FEDC070C", "time stamp month..seconds", 7),
    ])
    func rejected(_ hex: String, _ field: String, _ offset: Int) {
        let error = decodeError { () throws(DecodeError) in _ = try decoder.decode(bytes(hex), context: testContext) }
        #expect(error?.field == field, "\(String(describing: error))")
        #expect(error?.offset == offset, "\(String(describing: error))")
    }
}
