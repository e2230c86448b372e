import Testing
import VitalModel
import VitalGateTestKit
@testable import ProfileEngine

@Suite("PLX Spot-check 0x2A5E and Continuous 0x2A5F Measurement")
struct PLXMeasurementTests {
    let decoder = PLXMeasurementDecoder()

    /// PLX measurement-status bit names (as Spezi spells them) → the condition VitalGate records. From the
    /// Bluetooth bit meanings (gatt-xml plx_spot_check_measurement.xml); nil: no counterpart.
    static let statusNames: [String: MeasurementStatus?] = [
        "measurementIsOngoing": .ongoing, "earlyEstimatedData": .earlyEstimate, "validatedData": .validated,
        "fullyQualifiedData": nil, "dataFromMeasurementStorage": .fromStorage, "dataForDemonstration": .demoData,
        "dataForTesting": .testData, "calibrationOngoing": .calibrating, "measurementUnavailable": .notAvailable,
        "questionableMeasurementDetected": .questionable, "invalidMeasurementDetected": .invalid,
    ]

    /// Device-and-sensor-status names used by the vectors → the IEEE 11073-10404 bit and name the HL7 PHD
    /// IG's ASN1ToHL7 table gives for the same condition.
    static let deviceStatusNames: [String: (bit: Int, name: String)] = [
        "equipmentMalfunctionDetected": (14, "device-equipment-malfunction"),
        "lowPerfusionDetected": (10, "signal-low-perfusion"),
    ]

    @Test("spot-check vectors decode to the values their source states", arguments: GATTVectors.plx.spotCheck)
    func spotCheck(_ vector: PLXVector) throws {
        let reading = try decoder.decodeSpotCheck(bytes(vector.hex), context: testContext)
        check(reading, against: vector)
        #expect(reading.source.frame == "2A5E")
    }

    @Test("continuous vectors decode to the values their source states", arguments: GATTVectors.plx.continuous)
    func continuous(_ vector: PLXVector) throws {
        let reading = try decoder.decodeContinuous(bytes(vector.hex), context: testContext)
        check(reading, against: vector)
        #expect(reading.deviceTime == nil)
        #expect(reading.source.frame == "2A5F")
    }

    func check(_ reading: Reading, against vector: PLXVector) {
        let expected = vector.expected
        let comment = Comment(rawValue: "\(vector.name), source: \(vector.source.where)")
        #expect(reading.kind == .pulseOximetry, comment)
        #expect(isNumber(reading.value(.oxygenSaturation)?.value, expected.oxygenSaturation), comment)
        #expect(reading.value(.oxygenSaturation)?.unit == .percent, comment)
        #expect(isNumber(reading.value(.oximeterPulseRate)?.value, expected.pulseRate), comment)
        #expect(reading.value(.oximeterPulseRate)?.unit == .perMinute, comment)
        if let fast = expected.fast {
            #expect(isNumber(reading.value(.oxygenSaturationFast)?.value, fast.oxygenSaturation), comment)
            #expect(isNumber(reading.value(.oximeterPulseRateFast)?.value, fast.pulseRate), comment)
        }
        if let slow = expected.slow {
            #expect(isNumber(reading.value(.oxygenSaturationSlow)?.value, slow.oxygenSaturation), comment)
            #expect(isNumber(reading.value(.oximeterPulseRateSlow)?.value, slow.pulseRate), comment)
        }
        if let pai = expected.pulseAmplitudeIndex {
            #expect(isNumber(reading.value(.pulseAmplitudeIndex)?.value, pai), comment)
        }
        if let timestamp = expected.timestamp {
            #expect(reading.deviceTime?.time.description == timestamp, comment)
        }
        if let names = expected.measurementStatus {
            for name in names {
                guard let mapped = Self.statusNames[name] else { Issue.record("unknown status name \(name)"); continue }
                if let mapped { #expect(reading.status.contains(mapped), "\(name): \(comment)") }
            }
        }
        if let names = expected.deviceAndSensorStatus {
            let field = reading.statusBits.first { $0.type == StatusBitField.pulseOximeterDeviceStatus }
            #expect(field?.isVerified == false, comment)
            let setBits = Set(field?.bits.filter { $0.isSet == true }.map(\.bit) ?? [])
            #expect(setBits == Set(names.compactMap { Self.deviceStatusNames[$0]?.bit }), comment)
            for name in names {
                guard let entry = Self.deviceStatusNames[name] else { Issue.record("unknown status name \(name)"); continue }
                #expect(field?.bits.first { $0.bit == entry.bit }?.name == entry.name, comment)
            }
        }
        // Conditions neither status field states must not appear.
        if let names = expected.measurementStatus, expected.deviceAndSensorStatus?.isEmpty == true {
            let stated = names.compactMap { Self.statusNames[$0] ?? nil }.reduce(MeasurementStatus()) { $0.union($1) }
            #expect(reading.status == stated, comment)
        }
    }

    @Test("a device-and-sensor condition that makes the signal doubtful marks the spot check questionable")
    func equipmentMalfunctionIsQuestionable() throws {
        // The Spezi spot-check vector with its measurement status cleared (bytes 12-13): only the device
        // status (equipment malfunction, low perfusion) remains to make it questionable.
        var raw = bytes(GATTVectors.plx.spotCheck[0].hex)
        raw[12] = 0
        raw[13] = 0
        let reading = try decoder.decodeSpotCheck(raw, context: testContext)
        #expect(reading.status == .questionable)
    }

    @Test("device status bits that are not about signal quality, and reserved bits 16-23, change nothing", arguments: [
        "0460005800010000", // bit 0: extended display update ongoing
        "0460005800000200", // bit 9: signal analysis ongoing
        "04600058000000FF", // bits 16-23 reserved
    ])
    func harmlessDeviceStatus(_ hex: String) throws {
        let reading = try decoder.decodeSpotCheck(bytes(hex), context: testContext)
        #expect(reading.status.isEmpty)
    }

    @Test("every Bluetooth device-status bit lands on the 11073 bit of the same condition (reversed order)")
    func deviceStatusBitOrder() throws {
        for bluetoothBit in 0..<16 {
            let word = UInt32(1) << UInt32(bluetoothBit)
            let hex = "0460005800" + hexString([UInt8(word & 0xFF), UInt8(word >> 8 & 0xFF), 0], separator: "")
            let reading = try decoder.decodeSpotCheck(bytes(hex), context: testContext)
            let set = reading.statusBits.first?.bits.filter { $0.isSet == true }.map(\.bit)
            #expect(set == [15 - bluetoothBit], "Bluetooth bit \(bluetoothBit)")
        }
    }

    @Test("every measurement-status bit maps to its condition; bits 0-4 (reserved) and 8 (fully qualified) to none")
    func measurementStatusBits() throws {
        let table: [(bit: Int, status: MeasurementStatus)] = [
            (0, []), (1, []), (2, []), (3, []), (4, []), (5, .ongoing), (6, .earlyEstimate), (7, .validated), (8, []),
            (9, .fromStorage), (10, .demoData), (11, .testData), (12, .calibrating), (13, .notAvailable),
            (14, .questionable), (15, .invalid),
        ]
        for (bit, status) in table {
            let word = UInt16(1) << UInt16(bit)
            let reading = try decoder.decodeContinuous(
                [0x04, 0x60, 0x00, 0x58, 0x00, UInt8(word & 0xFF), UInt8(word >> 8)], context: testContext)
            #expect(reading.status == status, "bit \(bit)")
        }
    }

    @Test("the 'device clock not set' flag reaches the device timestamp")
    func clockNotSet() throws {
        var raw = bytes(GATTVectors.plx.spotCheck[0].hex)
        #expect(try decoder.decodeSpotCheck(raw, context: testContext).deviceTime?.clock == .set)
        raw[0] |= 0x10
        let reading = try decoder.decodeSpotCheck(raw, context: testContext)
        #expect(reading.deviceTime?.clock == .notSet)
        #expect(reading.deviceTime?.time.description == "2024-11-29T23:08:57")
    }

    @Test("a time stamp with year 0 (date not known) gives no device time")
    func unknownDate() throws {
        let reading = try decoder.decodeSpotCheck(bytes("016000580000000B1D170839"), context: testContext)
        #expect(reading.deviceTime == nil)
    }

    @Test("special SFLOAT values are kept: a NaN SpO2 is not a number")
    func specialValues() throws {
        let reading = try decoder.decodeContinuous(bytes("00FF07FE07"), context: testContext)
        #expect(reading.value(.oxygenSaturation)?.value == .special(.notANumber))
        #expect(reading.value(.oximeterPulseRate)?.value == .special(.positiveInfinity))
    }

    @Test("precision is kept: 0xF3E8 is 100.0, not 100")
    func precision() throws {
        let reading = try decoder.decodeContinuous(bytes(GATTVectors.plx.continuous[1].hex), context: testContext)
        #expect(reading.value(.oxygenSaturation)?.value.description == "100.0")
    }

    @Test("every truncation of every vector is an error naming a field inside the input")
    func truncations() {
        let cases = GATTVectors.plx.spotCheck.map { ($0.hex, true) } + GATTVectors.plx.continuous.map { ($0.hex, false) }
        for (hex, spot) in cases {
            let full = bytes(hex)
            for length in 0..<full.count {
                let error = decodeError { () throws(DecodeError) in
                    let cut = Array(full.prefix(length))
                    _ = spot ? try decoder.decodeSpotCheck(cut, context: testContext)
                        : try decoder.decodeContinuous(cut, context: testContext)
                }
                #expect(error.map { $0.offset <= length } == true, "\(hex) cut to \(length): \(String(describing: error))")
                #expect(error?.frame == (spot ? "2A5E" : "2A5F"))
            }
        }
    }

    @Test("bytes after the last field are an error", arguments: GATTVectors.plx.spotCheck + GATTVectors.plx.continuous)
    func overlong(_ vector: PLXVector) {
        let raw = bytes(vector.hex) + [0x00]
        let error = decodeError { () throws(DecodeError) in
            _ = GATTVectors.plx.spotCheck.contains { $0.name == vector.name }
                ? try decoder.decodeSpotCheck(raw, context: testContext)
                : try decoder.decodeContinuous(raw, context: testContext)
        }
        #expect(error?.field == "end of input")
        #expect(error?.offset == raw.count - 1)
    }

    @Test("reserved flags, empty input and garbage are errors with the field and byte named", arguments: [
        ("2A5E", "2064006400", "flags", 0), // bit 5 reserved
        ("2A5E", "", "flags", 0),
        ("2A5F", "E0", "flags", 0),
        ("2A5F", "80FFFFFFFF", "flags", 0),
        ("2A5F", "0064", "SpO2 (normal)", 1),
        ("2A5E", "01640064", "pulse rate", 3),
        ("2A5F", "0264005A0064", "SpO2 (slow)", 5),
    ])
    func rejected(_ uuid: String, _ hex: String, _ field: String, _ offset: Int) {
        let error = decodeError { () throws(DecodeError) in
            _ = uuid == "2A5E" ? try decoder.decodeSpotCheck(bytes(hex), context: testContext)
                : try decoder.decodeContinuous(bytes(hex), context: testContext)
        }
        #expect(error?.field == field, "\(String(describing: error))")
        #expect(error?.offset == offset, "\(String(describing: error))")
    }
}
