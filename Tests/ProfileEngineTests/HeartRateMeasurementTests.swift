import Testing
import VitalModel
import VitalGateTestKit
@testable import ProfileEngine

@Suite("Heart Rate Measurement 0x2A37")
struct HeartRateMeasurementTests {
    let decoder = HeartRateMeasurementDecoder()

    @Test("real straps and public-suite vectors decode to the values their sources state",
          arguments: SIGVectors.heartRate.vectors)
    func vector(_ vector: HeartRateVector) throws {
        let reading = try decoder.decode(bytes(vector.hex), context: testContext)
        let comment = Comment(rawValue: "\(vector.name), source: \(vector.source.where)")
        let expected = vector.expected
        if let rate = expected.heartRate { #expect(reading.value(.heartRate)?.value.description == String(rate), comment) }
        if let contact = expected.sensorContact {
            let names = ["notSupported": SensorContact.notSupported, "notDetected": .notDetected, "detected": .detected]
            #expect(reading.sensorContact == names[contact], comment)
            #expect(reading.status.contains(.questionable) == (contact == "notDetected"), comment)
        }
        if let energy = expected.energyExpended {
            #expect(reading.value(.energyExpended)?.value.description == String(energy), comment)
        }
        if let intervals = expected.rrIntervals {
            // Back to 1/1024 s ticks through Double: an independent check of the exact-decimal conversion.
            let ticks: [Int] = reading.values.filter { $0.type == .rrInterval }.compactMap {
                guard case .number(let seconds) = $0.value else { return nil }
                return Int((seconds.doubleValue * 1024).rounded())
            }
            #expect(ticks == intervals, comment)
        }
    }

    @Test("R-R intervals are exact seconds: 1/1024 s has a finite decimal expansion")
    func rrSeconds() {
        #expect(HeartRateMeasurementDecoder.seconds(fromTicks: 1024).description == "1.0000000000")
        #expect(HeartRateMeasurementDecoder.seconds(fromTicks: 790).description == "0.7714843750")  // 790/1024
        #expect(HeartRateMeasurementDecoder.seconds(fromTicks: 795).description == "0.7763671875")  // 795/1024
        #expect(HeartRateMeasurementDecoder.seconds(fromTicks: 65535).description == "63.9990234375")
    }

    @Test("malformed captures from public sources are rejected", arguments: SIGVectors.heartRate.malformed)
    func malformed(_ vector: MalformedVector) {
        #expect(throws: DecodeError.self, "\(vector.why)") { try decoder.decode(bytes(vector.hex), context: testContext) }
    }

    @Test("every truncation of every vector either fails or is itself a shorter valid frame",
          arguments: SIGVectors.heartRate.vectors)
    func truncations(_ vector: HeartRateVector) {
        let full = bytes(vector.hex)
        let flags = full[0]
        let headerLength = 1 + (flags & 0x01 != 0 ? 2 : 1) + (flags & 0x08 != 0 ? 2 : 0)
        for length in 0..<full.count {
            let cut = Array(full.prefix(length))
            let result = Result { try decoder.decode(cut, context: testContext) }
            // Dropping whole R-R intervals (but not all of them) still leaves a well-formed frame.
            let stillValid = length >= headerLength + 2 && (length - headerLength) % 2 == 0 && flags & 0x10 != 0
            if stillValid {
                #expect(throws: Never.self) { try result.get() }
            } else {
                #expect(throws: DecodeError.self, "\(vector.name) cut to \(length)") { try result.get() }
            }
        }
    }

    @Test("a byte after the rate of a frame without R-R intervals is an error")
    func overlong() throws {
        let error = try #require(throws: DecodeError.self) { try decoder.decode([0x00, 0x48, 0x01], context: testContext) }
        #expect(error.field == "end of input")
        #expect(error.offset == 2)
    }
}

@Suite("garbage input")
struct GarbageInputTests {
    @Test("100,000 random byte strings per standard characteristic decode to a reading or a DecodeError, never a trap",
          arguments: StandardCharacteristics.measurementUUIDs)
    func random(_ characteristic: String) {
        var generator = SeededGenerator(seed: 0x5EED)
        var decoded = 0, rejected = 0
        for round in 0..<100_000 {
            let length = Int.random(in: 0...24, using: &generator)
            var input = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            // Every other string gets plausible flags and a plausible date after them, so the generator also
            // reaches the paths behind the flag and date checks (a Date Time at bytes 3-9, where glucose has it), not only the early rejections.
            if round % 2 == 1, !input.isEmpty {
                input[0] &= 0x07
                if input.count >= 10 { input[3] = 0xE8; input[4] = 0x07; input[5] = 1 + input[5] % 12; input[6] = 1 + input[6] % 28
                    input[7] %= 24; input[8] %= 60; input[9] %= 60 }
            }
            do {
                let reading = try StandardCharacteristics.decode(characteristic, input, context: testContext)
                #expect(reading.raw == input)
                decoded += 1
            } catch {
                #expect(!error.description.isEmpty)
                rejected += 1
            }
        }
        // Both outcomes must occur, or the generator is not reaching the decoder's paths.
        #expect(decoded > 100 && rejected > 1000, "decoded \(decoded), rejected \(rejected)")
    }
}
