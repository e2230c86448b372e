import Foundation
import Testing
import VitalModel
import VitalGateTestKit
@testable import ProfileEngine

let testContext = DecodeContext(
    device: DeviceIdentity(bluetoothAddress: EUI48("00:00:5E:00:53:01")),
    receivedAt: HubTimestamp(instant: Date(timeIntervalSince1970: 1_748_738_100), utcOffsetSeconds: 25_200),
    profileID: "bluetooth-sig/blood-pressure")

@Suite("Blood Pressure Measurement 0x2A35 and Intermediate Cuff Pressure 0x2A36")
struct BloodPressureMeasurementTests {
    let decoder = BloodPressureMeasurementDecoder()

    @Test("real-device and public-suite vectors decode to the values their sources state",
          arguments: SIGVectors.bloodPressure.vectors)
    func vector(_ vector: BloodPressureVector) throws {
        let reading = try decoder.decode(bytes(vector.hex), frame: "2A35", context: testContext)
        check(reading, against: vector)
        #expect(reading.status.isEmpty)
    }

    @Test("Intermediate Cuff Pressure vectors decode, marked as an ongoing measurement",
          arguments: SIGVectors.bloodPressure.intermediateCuffPressure.vectors)
    func intermediateCuffPressure(_ vector: BloodPressureVector) throws {
        let reading = try decoder.decode(bytes(vector.hex), frame: "2A36", context: testContext)
        check(reading, against: vector)
        #expect(reading.status == .ongoing)
    }

    func check(_ reading: Reading, against vector: BloodPressureVector) {
        let expected = vector.expected
        let comment = Comment(rawValue: "\(vector.name), source: \(vector.source.where)")
        #expect(reading.kind == .bloodPressure, comment)
        if let unit = expected.unit {
            #expect(reading.value(.systolic)?.unit.display == unit, comment)
        }
        for (type, text) in [(MeasurementType.systolic, expected.systolic), (.diastolic, expected.diastolic),
                             (.meanArterialPressure, expected.meanArterialPressure), (.pulseRate, expected.pulseRate)] {
            if let text { #expect(reading.value(type)?.value.description == text, comment) }
        }
        if expected.pulseRate == nil, let stated = expected.timestamp, stated == nil {
            // A vector that states "no time stamp" with no pulse has no pulse field either.
            #expect(reading.value(.pulseRate) == nil, comment)
        }
        switch expected.timestamp {
        case .none: break
        case .some(.none): #expect(reading.deviceTime == nil, comment)
        case .some(.some(let text)) where text.hasPrefix("0000-"):
            // Year 0 means "not known": the time cannot be placed on any timeline, so it is not kept.
            #expect(reading.deviceTime == nil, comment)
        case .some(.some(let text)):
            #expect(reading.deviceTime?.time.description == text, comment)
        }
        if let user = expected.userID { #expect(reading.userSlot == user, comment) }
        if let status = expected.status {
            let bits = reading.statusBits.first?.bits ?? []
            func bit(_ index: Int) -> Bool?? { bits.first { $0.bit == index }.map(\.isSet) }
            if let value = status.bodyMovement { #expect(bit(0) == value, comment) }
            if let value = status.cuffTooLoose { #expect(bit(1) == value, comment) }
            if let value = status.irregularPulse { #expect(bit(2) == value, comment) }
            if let value = status.improperPosition { #expect(bit(5) == value, comment) }
            switch status.pulseRateRange {
            case "inRange": #expect(bit(3) == false && bit(4) == false, comment)
            case "aboveUpper": #expect(bit(3) == true && bit(4) == false, comment)
            case "belowLower": #expect(bit(3) == false && bit(4) == true, comment)
            case "reserved": #expect(bit(3) == .some(nil) && bit(4) == .some(nil), comment)
            default: break
            }
        }
    }

    @Test("malformed captures from public sources are rejected with a decode error",
          arguments: SIGVectors.bloodPressure.malformed)
    func malformed(_ vector: MalformedVector) {
        #expect(throws: DecodeError.self, "\(vector.why)") {
            try decoder.decode(bytes(vector.hex), context: testContext)
        }
    }

    @Test("every truncation of every valid vector is an error naming the field that is cut",
          arguments: SIGVectors.bloodPressure.vectors)
    func truncations(_ vector: BloodPressureVector) {
        let full = bytes(vector.hex)
        for length in 0..<full.count {
            do {
                _ = try decoder.decode(Array(full.prefix(length)), context: testContext)
                Issue.record("\(vector.name) cut to \(length) bytes decoded")
            } catch {
                #expect(error.offset <= length, "\(error)")
                #expect(error.description.contains("2A35"))
            }
        }
    }

    @Test("bytes after the last field are an error, not silently ignored", arguments: SIGVectors.bloodPressure.vectors)
    func overlong(_ vector: BloodPressureVector) {
        do {
            _ = try decoder.decode(bytes(vector.hex) + [0x00], context: testContext)
            Issue.record("\(vector.name) with a trailing byte decoded")
        } catch {
            #expect(error.field == "end of input")
            #expect(error.offset == bytes(vector.hex).count)
        }
    }

    @Test("errors say what, where and how to fix")
    func errorText() throws {
        let error = try #require(throws: DecodeError.self) {
            try decoder.decode(bytes("1E780050005D00"), context: testContext)
        }
        #expect(error.field == "time stamp year")
        #expect(error.offset == 7)
        #expect(error.description == "2A35: time stamp year at byte 7: needs 2 bytes but the input ends after 0 "
            + "(input is 7 bytes). flags 0x1E promises this field; check the capture holds the whole notification "
            + "and was not cut short")
    }

    @Test("reserved flag bits and impossible dates are rejected with the field named", arguments: [
        ("2078005000500000", "flags"),                     // reserved bit 5 set
        ("02780050005D00E9070D01071E00", "time stamp"),   // month 13
        ("02780050005D00E907021E071E00", "time stamp"),   // 30 February
        ("02780050005D00E90701011800", "time stamp"),     // hour 24 (and short): the range check comes first
    ])
    func rejected(_ hex: String, _ field: String) throws {
        let error = try #require(throws: DecodeError.self) { try decoder.decode(bytes(hex), context: testContext) }
        #expect(error.field.hasPrefix(field), "\(error)")
    }

    @Test("a valid date beside those rows decodes: 2025-02-28 07:30:00")
    func validDate() throws {
        let reading = try decoder.decode(bytes("02780050005D00E907021C071E00"), context: testContext)
        #expect(reading.deviceTime?.time.description == "2025-02-28T07:30:00")
    }

    @Test("a user id of 0xFF means unknown user; the pulse-rate range value 3 is reserved")
    func unknownUserAndReservedRange() throws {
        // flags 0x18: user id and status; status 0x0018 sets both pulse-range bits.
        let reading = try decoder.decode(bytes("18780050005D00FF1800"), context: testContext)
        #expect(reading.userSlot == Reading.unknownUserSlot)
        let bits = try #require(reading.statusBits.first).bits
        #expect(bits.filter { $0.isSet == nil }.map(\.bit) == [3, 4])
    }
}
