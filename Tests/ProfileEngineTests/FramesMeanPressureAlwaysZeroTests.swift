import Foundation
import Testing
import VitalModel
import VitalGateTestKit
@testable import ProfileEngine

/// The `mean-pressure-always-zero` quirk of the gatt-standard engine (Beurer BM85 family).
@Suite("gatt-standard quirk mean-pressure-always-zero")
struct FramesMeanPressureAlwaysZeroTests {
    static let beurer: [GATTStandardEngine.Quirk] = [.pulseBigEndian, .statusBigEndian, .userIDWithoutFlag, .reservedFlagsSet]
    let time = HubTimestamp(iso8601: "2026-08-11T20:00:00+02:00")!
    let device = DeviceIdentity(bluetoothAddress: EUI48("00:00:5E:00:53:01"))

    /// Fixture bytes written with spaces, as the sources print them.
    func wire(_ hex: String) -> [UInt8] { bytes(hex.replacingOccurrences(of: " ", with: "")) }

    func decode(_ hex: String, quirks: [GATTStandardEngine.Quirk]) -> Reading? {
        let engine = GATTStandardEngine(characteristics: ["2A35"], quirks: Set(quirks))
        let events = engine.decodeOnce(wire(hex), channel: "2A35", device: device, profileID: "test/quirk", at: time)
        for case .reading(let reading) in events { return reading }
        return nil
    }

    // derdilla/blood-pressure-monitor-fl ble_measurement_data_test.dart @ 17aba3d0: "Recorded from a
    // Beurer BM85", 106/71 mmHg, pulse 63; its MAP field is 00 00.
    static let bm85 = "56 6A 00 47 00 00 00 EA 07 08 0B 12 1F 00 00 3F 00 00 00"

    @Test("a 00 00 mean pressure becomes NaN, the other values are untouched")
    func zeroBecomesNaN() throws {
        let reading = try #require(decode(Self.bm85, quirks: Self.beurer + [.meanPressureAlwaysZero]))
        #expect(reading.value(.meanArterialPressure)?.value == .special(.notANumber))
        #expect(reading.value(.systolic)?.value == .number(DecimalValue(mantissa: 106, exponent: 0)))
        #expect(reading.value(.pulseRate)?.value == .number(DecimalValue(mantissa: 63, exponent: 0)))
        // The reading keeps the bytes the device sent, not the repaired ones.
        #expect(reading.raw == wire(Self.bm85))
    }

    @Test("without the quirk the same bytes give a mean pressure of 0")
    func withoutQuirk() throws {
        let reading = try #require(decode(Self.bm85, quirks: Self.beurer))
        #expect(reading.value(.meanArterialPressure)?.value == .number(DecimalValue(mantissa: 0, exponent: 0)))
    }

    // HEADS-project/ThingML-BLE Documentation/AND_Medical_UA651BLE.md line 133: MAP field 66 00 (102).
    @Test("a measured mean pressure is kept")
    func measuredMeanKept() throws {
        let reading = try #require(decode("16 7D 00 50 00 66 00 E1 07 01 10 0C 27 36 40 00 00 00", quirks: [.meanPressureAlwaysZero]))
        #expect(reading.value(.meanArterialPressure)?.value == .number(DecimalValue(mantissa: 102, exponent: 0)))
    }

    @Test("values too short to hold a mean pressure are reported, not trapped on", arguments: [0, 1, 5, 6])
    func short(_ count: Int) {
        let engine = GATTStandardEngine(characteristics: ["2A35"], quirks: Set(Self.beurer + [.meanPressureAlwaysZero]))
        let events = engine.decodeOnce(Array(wire(Self.bm85).prefix(count)), channel: "2A35", device: device, profileID: "test/quirk", at: time)
        #expect(events.count == 1)
        if case .problem = events.first {} else { Issue.record("expected a problem for \(count) bytes, got \(events)") }
    }
}
