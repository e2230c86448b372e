import Testing
import VitalModel
import VitalGateTestKit
@testable import ProfileEngine

@Suite("Glucose Measurement 0x2A18")
struct GlucoseMeasurementTests {
    let decoder = GlucoseMeasurementDecoder()

    /// Source type names → the MDC glucose type (fhir-mapping.md §1.4).
    static let typeNames: [String: MeasurementType] = [
        "capillary-whole-blood": .capillaryWholeBloodGlucose, "capillary-plasma": .capillaryPlasmaGlucose,
    ]

    @Test("public-suite vectors decode to the values their sources state", arguments: GATTVectors.glucose.vectors)
    func vector(_ vector: GlucoseVector) throws {
        let reading = try decoder.decode(bytes(vector.hex), context: testContext)
        let expected = vector.expected
        let comment = Comment(rawValue: "\(vector.name), source: \(vector.source.where)")
        #expect(reading.kind == .glucose, comment)
        #expect(reading.sequenceNumber == expected.sequenceNumber, comment)
        if let timestamp = expected.timestamp { #expect(reading.deviceTime?.time.description == timestamp, comment) }
        let value = reading.values.first
        if let concentration = expected.concentration, let unit = expected.concentrationUnit {
            // 1 kg/L = 10^6 mg per 10 dL = 10^5 mg/dL; 1 mol/L = 10^3 mmol/L.
            let (power, reported) = unit == "kg/L" ? (5, "mg/dL") : (3, "mmol/L")
            #expect(isNumber(value?.value, concentration, scaledBy: power), comment)
            #expect(value?.unit.ucum == reported, comment)
        }
        if let type = expected.type { #expect(value?.type == Self.typeNames[type], comment) }
        if let location = expected.location { #expect(reading.bodySite?.name == location, comment) }
        let field = reading.statusBits.first { $0.type == StatusBitField.glucoseMeterDeviceStatus }
        if let status = expected.status {
            // Bits 0-10 are in the field; bit 11 (time fault) is not.
            let word = (field?.bits ?? []).reduce(0) { $0 | ($1.isSet == true ? 1 << $1.bit : 0) }
            #expect(word == status & 0x07FF, comment)
            #expect(field?.isVerified == false, comment)
        }
        if let low = expected.deviceBatteryLow { #expect(field?.bits.first { $0.bit == 0 }?.isSet == low, comment) }
        if let fault = expected.generalDeviceFault { #expect(field?.bits.first { $0.bit == 10 }?.isSet == fault, comment) }
        if let follows = expected.contextInformationFollows {
            #expect(GlucoseMeasurementDecoder.contextInformationFollows(reading) == follows, comment)
        }
    }

    @Test("public malformed frames are errors naming the field and byte", arguments: GATTVectors.glucose.malformed)
    func malformed(_ vector: MalformedGATTVector) {
        let error = decodeError { () throws(DecodeError) in _ = try decoder.decode(bytes(vector.hex), context: testContext) }
        #expect(error?.field == vector.error.field, "\(vector.why): \(String(describing: error))")
        #expect(error?.offset == vector.error.offset)
    }

    // A record built on the field layout: flags 0x02 (concentration), sequence 7, 2024-03-05 08:09:10,
    // concentration SFLOAT, type/location byte.
    static func record(flags: UInt8 = 0x02, concentration: [UInt8], typeAndLocation: UInt8, extra: [UInt8] = []) -> [UInt8] {
        let hasOffset = flags & 0x01 != 0
        let header: [UInt8] = [flags, 0x07, 0x00, 0xE8, 0x07, 0x03, 0x05, 0x08, 0x09, 0x0A]
        let offset: [UInt8] = hasOffset ? Array(extra.prefix(2)) : []
        let rest: [UInt8] = hasOffset ? Array(extra.dropFirst(2)) : extra
        return header + offset + concentration + [typeAndLocation] + rest
    }

    @Test("concentrations convert exactly by moving the decimal point", arguments: [
        // 0xB05A: mantissa 90, exponent -5 → 0.00090 kg/L = 90 mg/dL
        ([0x5A, 0xB0], UInt8(0x02), "90", "mg/dL"),
        // 0xC037: mantissa 55, exponent -4 → 0.0055 mol/L = 5.5 mmol/L
        ([0x37, 0xC0], UInt8(0x06), "5.5", "mmol/L"),
        // 0xA3E8: mantissa 1000, exponent -6 → 0.001000 kg/L = 100.0 mg/dL, precision kept
        ([0xE8, 0xA3], UInt8(0x02), "100.0", "mg/dL"),
    ])
    func conversion(_ concentration: [UInt8], _ flags: UInt8, _ text: String, _ unit: String) throws {
        let reading = try decoder.decode(Self.record(flags: flags, concentration: concentration, typeAndLocation: 0x11),
                                         context: testContext)
        #expect(reading.values.first?.value.description == text)
        #expect(reading.values.first?.unit.ucum == unit)
        #expect(reading.deviceTime?.time.description == "2024-03-05T08:09:10")
        #expect(reading.sequenceNumber == 7)
    }

    @Test("special values survive the conversion")
    func specialConcentration() throws {
        let reading = try decoder.decode(Self.record(concentration: [0xFE, 0x07], typeAndLocation: 0x11), context: testContext)
        #expect(reading.values.first?.value == .special(.positiveInfinity))
    }

    @Test("every type nibble picks its MDC type; reserved types give the generic glucose code", arguments: Array(0...15))
    func types(_ nibble: Int) throws {
        let expected: [Int: MeasurementType] = [
            1: .capillaryWholeBloodGlucose, 2: .capillaryPlasmaGlucose, 3: .venousWholeBloodGlucose, 4: .venousPlasmaGlucose,
            5: .arterialWholeBloodGlucose, 6: .arterialPlasmaGlucose, 7: .undeterminedWholeBloodGlucose,
            8: .undeterminedPlasmaGlucose, 9: .interstitialFluidGlucose, 10: .controlSolutionGlucose,
        ]
        let reading = try decoder.decode(Self.record(concentration: [0x5A, 0xB0], typeAndLocation: 0x10 | UInt8(nibble)),
                                         context: testContext)
        let type = try #require(reading.values.first?.type)
        #expect(type == (expected[nibble] ?? .glucose))
        #expect(type.mdc != nil)
        #expect(reading.status.contains(.testData) == (nibble == 10), "control solution is a meter check")
    }

    @Test("sample locations become uncoded body sites; control solution marks test data", arguments: [
        (UInt8(1), "finger" as String?, false), (2, "alternate-site", false), (3, "earlobe", false), (4, nil, true),
        (15, nil, false), (0, nil, false), (9, nil, false),
    ])
    func locations(_ location: UInt8, _ name: String?, _ testData: Bool) throws {
        let reading = try decoder.decode(Self.record(concentration: [0x5A, 0xB0], typeAndLocation: location << 4 | 1),
                                         context: testContext)
        #expect(reading.bodySite?.name == name)
        #expect(reading.bodySite?.code == nil)
        #expect(reading.status.contains(.testData) == testData)
    }

    @Test("a time offset moves the base time; overrun and underrun leave the time unknown", arguments: [
        ([0x3C, 0x00], "2024-03-05T09:09:10" as String?), ([0xC4, 0xFF], "2024-03-05T07:09:10"),
        ([0xC8, 0xFB], "2024-03-04T14:09:10"), ([0xFF, 0x7F], nil), ([0x00, 0x80], nil),
    ])
    func timeOffset(_ offset: [UInt8], _ time: String?) throws {
        let raw = Self.record(flags: 0x03, concentration: [0x5A, 0xB0], typeAndLocation: 0x11, extra: offset)
        let reading = try decoder.decode(raw, context: testContext)
        #expect(reading.deviceTime?.time.description == time)
    }

    @Test("sensor status: failure bits make the reading questionable, a time fault marks the clock not set", arguments: [
        (UInt16(0x0001), false, DeviceClockState.unknown), (0x0002, true, .unknown), (0x0400, true, .unknown),
        (0x0800, false, .notSet), (0xF000, false, .unknown),
    ])
    func sensorStatus(_ word: UInt16, _ questionable: Bool, _ clock: DeviceClockState) throws {
        let raw = Self.record(flags: 0x0A, concentration: [0x5A, 0xB0], typeAndLocation: 0x11,
                              extra: [UInt8(word & 0xFF), UInt8(word >> 8)])
        let reading = try decoder.decode(raw, context: testContext)
        #expect(reading.status.contains(.questionable) == questionable)
        #expect(reading.deviceTime?.clock == clock)
        #expect(reading.statusBits.first?.bits.count == 11)
    }

    @Test("a record without a concentration keeps its sequence number and time, with no values")
    func noConcentration() throws {
        let reading = try decoder.decode([0x00, 0x2A, 0x01, 0xE8, 0x07, 0x03, 0x05, 0x08, 0x09, 0x0A], context: testContext)
        #expect(reading.values.isEmpty)
        #expect(reading.sequenceNumber == 298)
        #expect(reading.deviceTime?.time.description == "2024-03-05T08:09:10")
    }

    @Test("a year-0 base time gives no device time; an offset past year 9999 is an error naming the offset")
    func timeLimits() throws {
        let unknown = try decoder.decode([0x00, 0x01, 0x00, 0x00, 0x00, 0x03, 0x05, 0x08, 0x09, 0x0A], context: testContext)
        #expect(unknown.deviceTime == nil)
        let error = decodeError { () throws(DecodeError) in
            _ = try decoder.decode([0x01, 0x01, 0x00, 0x0F, 0x27, 0x0C, 0x1F, 0x17, 0x3B, 0x3B, 0xFE, 0x7F], context: testContext)
        }
        #expect(error?.field == "time offset")
        #expect(error?.offset == 10)
    }

    @Test("every truncation of every vector is an error", arguments: GATTVectors.glucose.vectors)
    func truncations(_ vector: GlucoseVector) {
        let full = bytes(vector.hex)
        for length in 0..<full.count {
            let error = decodeError { () throws(DecodeError) in
                _ = try decoder.decode(Array(full.prefix(length)), context: testContext)
            }
            #expect(error.map { $0.offset <= length } == true, "\(vector.name) cut to \(length)")
        }
    }

    @Test("bytes after the last field are an error", arguments: GATTVectors.glucose.vectors)
    func overlong(_ vector: GlucoseVector) {
        let raw = bytes(vector.hex) + [0x00]
        let error = decodeError { () throws(DecodeError) in _ = try decoder.decode(raw, context: testContext) }
        #expect(error?.field == "end of input")
        #expect(error?.offset == raw.count - 1)
    }

    @Test("reserved flags, empty input and garbage are errors", arguments: [
        ("200100E807030508090A", "flags", 0), ("", "flags", 0), ("FFFFFFFF", "flags", 0),
        ("000100E8070D0508090A", "time stamp", 3), ("0001", "sequence number", 1),
    ])
    func rejected(_ hex: String, _ field: String, _ offset: Int) {
        let error = decodeError { () throws(DecodeError) in _ = try decoder.decode(bytes(hex), context: testContext) }
        #expect(error?.field == field, "\(String(describing: error))")
        #expect(error?.offset == offset, "\(String(describing: error))")
    }
}
