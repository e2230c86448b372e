import Testing
import VitalModel
import VitalGateTestKit
@testable import ProfileEngine

@Suite("Weight Measurement 0x2A9D")
struct WeightMeasurementTests {
    let decoder = WeightMeasurementDecoder()

    @Test("real-device and public-suite vectors decode to the values their sources state",
          arguments: GATTVectors.weight.vectors)
    func vector(_ vector: WeightVector) throws {
        let reading = try decoder.decode(bytes(vector.hex), context: testContext)
        let expected = vector.expected
        let comment = Comment(rawValue: "\(vector.name), source: \(vector.source.where)")
        #expect(reading.kind == .bodyWeight, comment)
        let weight = reading.value(.bodyWeight)
        if let unit = expected.unit { #expect(weight?.unit.display == unit, comment) }
        switch expected.weight {
        case nil: break
        case "unsuccessful"?: #expect(weight?.value == .special(.notANumber), comment)
        case let text?: #expect(isNumber(weight?.value, text), comment)
        }
        switch expected.timestamp {
        case .none: break
        case .some(.none): #expect(reading.deviceTime == nil, comment)
        case .some(.some(let text)): #expect(reading.deviceTime?.time.description == text, comment)
        }
        switch expected.userID {
        case .none: break
        case .some(let user): #expect(reading.userSlot == user, comment)
        }
        if let bmi = expected.bmi {
            #expect(isNumber(reading.value(.bodyMassIndex)?.value, bmi), comment)
            #expect(reading.value(.bodyMassIndex)?.unit.ucum == "kg/m2", comment)
        }
        if let height = expected.heightCentimetres {
            #expect(isNumber(reading.value(.bodyHeight)?.value, height), comment)
            #expect(reading.value(.bodyHeight)?.unit.ucum == "cm", comment)
        }
    }

    @Test("public malformed frames are errors naming the field and byte", arguments: GATTVectors.weight.malformed)
    func malformed(_ vector: MalformedGATTVector) {
        let error = decodeError { () throws(DecodeError) in _ = try decoder.decode(bytes(vector.hex), context: testContext) }
        #expect(error?.field == vector.error.field, "\(vector.why): \(String(describing: error))")
        #expect(error?.offset == vector.error.offset, "\(vector.why): \(String(describing: error))")
        #expect(error?.frame == "2A9D")
    }

    @Test("the weight is an exact decimal in the field's 0.005 kg steps, 0.01 lb in pounds")
    func exactResolution() throws {
        // 0x3E78 = 15992 steps of 0.005 kg (gatt-xml: multiplier 5, exponent -3).
        let si = try decoder.decode(bytes("00783E"), context: testContext)
        #expect(si.value(.bodyWeight)?.value.description == "79.960")
        let odd = try decoder.decode(bytes("000100"), context: testContext)
        #expect(odd.value(.bodyWeight)?.value.description == "0.005")
        let pounds = try decoder.decode(bytes("01FEFF"), context: testContext)
        #expect(pounds.value(.bodyWeight)?.value.description == "655.34")
        #expect(pounds.value(.bodyWeight)?.unit == .pound)
    }

    @Test("imperial height is in 0.1 in steps and BMI in 0.1 kg/m2 steps")
    func imperialHeight() throws {
        // flags 0x09: pounds, BMI and height; BMI 0x00F0 = 24.0; height 0x02BC = 700 → 70.0 in.
        let reading = try decoder.decode(bytes("095046F000BC02"), context: testContext)
        #expect(reading.value(.bodyHeight)?.value.description == "70.0")
        #expect(reading.value(.bodyHeight)?.unit == .inch)
        #expect(reading.value(.bodyMassIndex)?.value.description == "24.0")
    }

    @Test("user id 0xFF means unknown user")
    func unknownUser() throws {
        let reading = try decoder.decode(bytes("04783EFF"), context: testContext)
        #expect(reading.userSlot == Reading.unknownUserSlot)
    }

    @Test("every truncation of every vector is an error naming a field inside the input",
          arguments: GATTVectors.weight.vectors)
    func truncations(_ vector: WeightVector) {
        let full = bytes(vector.hex)
        for length in 0..<full.count {
            let error = decodeError { () throws(DecodeError) in
                _ = try decoder.decode(Array(full.prefix(length)), context: testContext)
            }
            #expect(error.map { $0.offset <= length } == true, "\(vector.name) cut to \(length)")
        }
    }

    @Test("bytes after the last field are an error", arguments: GATTVectors.weight.vectors)
    func overlong(_ vector: WeightVector) {
        let raw = bytes(vector.hex) + [0xAA]
        let error = decodeError { () throws(DecodeError) in _ = try decoder.decode(raw, context: testContext) }
        #expect(error?.field == "end of input")
        #expect(error?.offset == raw.count - 1)
    }

    @Test("reserved flags, empty input, garbage and impossible dates are errors", arguments: [
        ("10783E", "flags", 0), ("", "flags", 0), ("F0FFFF", "flags", 0),
        ("02783EEA070D0C123536", "time stamp", 3),  // month 13
        ("02783EEA07050C183536", "time stamp", 3),  // hour 24
    ])
    func rejected(_ hex: String, _ field: String, _ offset: Int) {
        let error = decodeError { () throws(DecodeError) in _ = try decoder.decode(bytes(hex), context: testContext) }
        #expect(error?.field == field, "\(String(describing: error))")
        #expect(error?.offset == offset, "\(String(describing: error))")
    }
}
