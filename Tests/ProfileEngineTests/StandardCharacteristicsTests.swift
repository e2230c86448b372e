import Testing
import VitalModel
import VitalGateTestKit
@testable import ProfileEngine

@Suite("StandardCharacteristics: the gatt-standard entry point")
struct StandardCharacteristicsTests {
    @Test("the measurement list is exactly the eight characteristics with decoders")
    func list() {
        #expect(StandardCharacteristics.measurementUUIDs == ["2A35", "2A36", "2A37", "2A5E", "2A5F", "2A9D", "2A1C", "2A18"])
        for uuid in StandardCharacteristics.measurementUUIDs {
            #expect(StandardCharacteristics.name(uuid) != nil, "\(uuid) has a name")
        }
    }

    @Test("names, whatever way the UUID is written", arguments: [
        ("2A9D", "Weight Measurement" as String?), ("2a1c", "Temperature Measurement"), ("0x2A18", "Glucose Measurement"),
        ("00002A5F-0000-1000-8000-00805F9B34FB", "PLX Continuous Measurement"), ("2A52", "Record Access Control Point"),
        ("2A2B", "Current Time"), ("2A08", "Date Time"), ("2A0F", "Local Time Information"), ("2A19", nil), ("", nil),
    ])
    func names(_ uuid: String, _ name: String?) {
        #expect(StandardCharacteristics.name(uuid) == name)
    }

    @Test("every vector decodes through the entry point to the same reading as through its decoder")
    func dispatch() throws {
        for (uuid, name, hex) in GATTVectors.measurements {
            let direct: Reading = switch uuid {
            case "2A5E": try PLXMeasurementDecoder().decodeSpotCheck(bytes(hex), context: testContext)
            case "2A5F": try PLXMeasurementDecoder().decodeContinuous(bytes(hex), context: testContext)
            case "2A9D": try WeightMeasurementDecoder().decode(bytes(hex), context: testContext)
            case "2A1C": try TemperatureMeasurementDecoder().decode(bytes(hex), context: testContext)
            default: try GlucoseMeasurementDecoder().decode(bytes(hex), context: testContext)
            }
            let viaEntry = try StandardCharacteristics.decode(uuid.lowercased(), bytes(hex), context: testContext)
            #expect(viaEntry == direct, "\(name)")
            #expect(viaEntry.source.frame == uuid)
        }
        for vector in SIGVectors.bloodPressure.vectors {
            let reading = try StandardCharacteristics.decode("2A35", bytes(vector.hex), context: testContext)
            #expect(reading == (try BloodPressureMeasurementDecoder().decode(bytes(vector.hex), context: testContext)))
        }
        for vector in SIGVectors.bloodPressure.intermediateCuffPressure.vectors {
            let reading = try StandardCharacteristics.decode("2A36", bytes(vector.hex), context: testContext)
            #expect(reading.status == .ongoing, "2A36 is dispatched as Intermediate Cuff Pressure")
        }
        for vector in SIGVectors.heartRate.vectors {
            let reading = try StandardCharacteristics.decode("0x2A37", bytes(vector.hex), context: testContext)
            #expect(reading.kind == .heartRate)
        }
    }

    @Test("an unknown or non-measurement characteristic is an error that lists the supported ones",
          arguments: ["2A19", "2A52", "not-a-uuid"])
    func unknown(_ uuid: String) {
        let error = decodeError { () throws(DecodeError) in
            _ = try StandardCharacteristics.decode(uuid, [0x00], context: testContext)
        }
        #expect(error?.field == "characteristic")
        for supported in StandardCharacteristics.measurementUUIDs {
            #expect(error?.hint.contains(supported) == true, "\(String(describing: error))")
        }
    }

    @Test("readings' JSON gains sequenceNumber, bodySite and 'verified: false' only where they apply")
    func json() throws {
        let glucose = try StandardCharacteristics.decode("2A18", bytes(GATTVectors.glucose.vectors[0].hex), context: testContext).json
        #expect(glucose["sequenceNumber"] == .number("1"))
        #expect(glucose["bodySite"] == ["name": "finger"], "a site without a code has only its name")
        guard case .array(let fields)? = glucose["statusBits"] else { Issue.record("no statusBits"); return }
        #expect(fields.first?["verified"] == false)
        #expect(fields.first?["type"] == .number("8417752"))

        let temperature = try StandardCharacteristics.decode("2A1C", bytes(GATTVectors.temperature.vectors[0].hex),
                                                            context: testContext).json
        #expect(temperature["bodySite"] == ["name": "finger", "code": 188432, "referenceID": "MDC_TEMP_FINGER"])
        #expect(temperature["sequenceNumber"] == nil)

        let pressure = try StandardCharacteristics.decode("2A35", bytes(SIGVectors.bloodPressure.vectors[2].hex), context: testContext).json
        guard case .array(let pressureFields)? = pressure["statusBits"] else { Issue.record("no statusBits"); return }
        #expect(pressureFields.first?["verified"] == nil, "verified fields keep their JSON unchanged")
        #expect(pressure["bodySite"] == nil && pressure["sequenceNumber"] == nil)
    }

    @Test("no byte string traps any decoder: every input gives a reading or a decode error")
    func garbage() {
        // A fixed xorshift sequence, so a failure reproduces.
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> UInt8 {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return UInt8(truncatingIfNeeded: state)
        }
        var decoded = 0
        var rejected = 0
        for uuid in StandardCharacteristics.measurementUUIDs {
            for length in 0..<24 {
                for _ in 0..<60 {
                    let input = (0..<length).map { _ in next() }
                    do {
                        _ = try StandardCharacteristics.decode(uuid, input, context: testContext)
                        decoded += 1
                    } catch {
                        rejected += 1
                        #expect(error.offset <= input.count, "\(uuid) \(hexString(input, separator: "")): \(error)")
                    }
                }
            }
        }
        for length in 0..<12 {
            for _ in 0..<60 {
                let input = (0..<length).map { _ in next() }
                _ = try? RACP.decodeResponse(input)
                _ = try? CurrentTime(decoding: input)
                _ = try? DateTimeCharacteristic.decode(input)
                _ = try? LocalTimeInformation(decoding: input)
            }
        }
        #expect(rejected > 0 && decoded > 0, "the corpus reaches both outcomes")
    }
}
