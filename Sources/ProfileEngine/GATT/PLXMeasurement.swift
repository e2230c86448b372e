import VitalModel

/// Decodes PLX Spot-check Measurement (0x2A5E) and PLX Continuous Measurement (0x2A5F) of the Bluetooth
/// Pulse Oximeter Service (oesmith/gatt-xml plx_spot_check_measurement.xml, plx_continuous_measurement.xml):
///
/// - 2A5E: flags u8 · SpO2 SFLOAT % · pulse rate SFLOAT /min · [Date Time 7 B] · [measurement status u16] ·
///   [device and sensor status u24] · [pulse amplitude index SFLOAT %]; flag bit 4 says the device clock is
///   not set.
/// - 2A5F: flags u8 · SpO2 and pulse rate (normal) · [fast pair] · [slow pair] · [measurement status u16] ·
///   [device and sensor status u24] · [pulse amplitude index SFLOAT %].
///
/// The reading's values are SpO2 and pulse rate (uploaded), then the fast and slow averages and the pulse
/// amplitude index (kept, not uploaded: no verified type codes). Measurement-status bits 5-15 become
/// ``MeasurementStatus`` (they are the IEEE 11073-10206 conditions); "fully qualified data" (bit 8) has no
/// counterpart and is dropped. The device and sensor status is kept as an unverified
/// ``StatusBitField/pulseOximeterDeviceStatus`` field, and its bits that say the signal or sensor cannot be
/// trusted make the reading `questionable`.
public struct PLXMeasurementDecoder: Sendable {
    public init() {}

    /// Decodes one PLX Spot-check Measurement indication.
    public func decodeSpotCheck(_ bytes: [UInt8], context: DecodeContext) throws(DecodeError) -> Reading {
        var reader = ByteReader(bytes, frame: "2A5E")
        let flags = try reader.measurementFlags("PLX spot-check measurement",
                                                smallest: "5 bytes: flags, SpO2 and pulse rate", definedBits: 0x1F)
        let flagsText = ByteReader.describe(flags)
        var values = [
            MeasuredValue(.oxygenSaturation, try reader.sfloat("SpO2", promisedBy: flagsText), .percent),
            MeasuredValue(.oximeterPulseRate, try reader.sfloat("pulse rate", promisedBy: flagsText), .perMinute),
        ]
        var deviceTime: DeviceTimestamp?
        if flags & 0x01 != 0 {
            deviceTime = try reader.timestamp(promisedBy: flagsText, clock: flags & 0x10 != 0 ? .notSet : .set)
        }
        let (status, statusBits) = try Self.readTail(&reader, flags: flags, measurementStatus: 0x02, deviceStatus: 0x04,
                                                     pulseAmplitude: 0x08, into: &values)
        return Reading(kind: .pulseOximetry, values: values, deviceTime: deviceTime, receivedAt: context.receivedAt,
                       device: context.device, status: status, statusBits: statusBits,
                       source: ReadingSource(profileID: context.profileID, frame: "2A5E"), raw: bytes)
    }

    /// Decodes one PLX Continuous Measurement notification. It has no time stamp: the reading is dated by
    /// its receive time.
    public func decodeContinuous(_ bytes: [UInt8], context: DecodeContext) throws(DecodeError) -> Reading {
        var reader = ByteReader(bytes, frame: "2A5F")
        let flags = try reader.measurementFlags("PLX continuous measurement",
                                                smallest: "5 bytes: flags, SpO2 and pulse rate", definedBits: 0x1F)
        let flagsText = ByteReader.describe(flags)
        var values = [
            MeasuredValue(.oxygenSaturation, try reader.sfloat("SpO2 (normal)", promisedBy: flagsText), .percent),
            MeasuredValue(.oximeterPulseRate, try reader.sfloat("pulse rate (normal)", promisedBy: flagsText), .perMinute),
        ]
        if flags & 0x01 != 0 {
            values.append(MeasuredValue(.oxygenSaturationFast, try reader.sfloat("SpO2 (fast)", promisedBy: flagsText), .percent))
            values.append(MeasuredValue(.oximeterPulseRateFast, try reader.sfloat("pulse rate (fast)", promisedBy: flagsText),
                                        .perMinute))
        }
        if flags & 0x02 != 0 {
            values.append(MeasuredValue(.oxygenSaturationSlow, try reader.sfloat("SpO2 (slow)", promisedBy: flagsText), .percent))
            values.append(MeasuredValue(.oximeterPulseRateSlow, try reader.sfloat("pulse rate (slow)", promisedBy: flagsText),
                                        .perMinute))
        }
        let (status, statusBits) = try Self.readTail(&reader, flags: flags, measurementStatus: 0x04, deviceStatus: 0x08,
                                                     pulseAmplitude: 0x10, into: &values)
        return Reading(kind: .pulseOximetry, values: values, receivedAt: context.receivedAt, device: context.device,
                       status: status, statusBits: statusBits,
                       source: ReadingSource(profileID: context.profileID, frame: "2A5F"), raw: bytes)
    }

    /// The fields both PLX measurements end with, each present when its flag bit is set: measurement status
    /// u16, device and sensor status u24, pulse amplitude index SFLOAT; then nothing may follow.
    static func readTail(_ reader: inout ByteReader, flags: UInt8, measurementStatus: UInt8, deviceStatus: UInt8,
                         pulseAmplitude: UInt8, into values: inout [MeasuredValue]) throws(DecodeError) -> (MeasurementStatus, [StatusBitField]) {
        let flagsText = ByteReader.describe(flags)
        var status: MeasurementStatus = []
        var statusBits: [StatusBitField] = []
        if flags & measurementStatus != 0 {
            status.formUnion(Self.measurementStatus(try reader.uint16("measurement status", promisedBy: flagsText)))
        }
        if flags & deviceStatus != 0 {
            let word = try reader.uint24("device and sensor status", promisedBy: flagsText)
            statusBits.append(Self.deviceAndSensorStatus(word))
            if word & Self.untrustworthySignalBits != 0 { status.insert(.questionable) }
        }
        if flags & pulseAmplitude != 0 {
            values.append(MeasuredValue(.pulseAmplitudeIndex, try reader.sfloat("pulse amplitude index", promisedBy: flagsText),
                                        .percent))
        }
        try reader.expectEnd(describedBy: flagsText)
        return (status, statusBits)
    }

    /// PLX measurement-status bits 5-15 and the measurement-status conditions they are. Bits 0-4 are
    /// reserved and ignored, as the specification requires; bit 8 (fully qualified data) has no counterpart.
    static let measurementStatusBits: [(bit: Int, status: MeasurementStatus)] = [
        (5, .ongoing), (6, .earlyEstimate), (7, .validated), (9, .fromStorage), (10, .demoData), (11, .testData),
        (12, .calibrating), (13, .notAvailable), (14, .questionable), (15, .invalid),
    ]

    static func measurementStatus(_ word: UInt16) -> MeasurementStatus {
        var status: MeasurementStatus = []
        for entry in measurementStatusBits where word & (1 << entry.bit) != 0 { status.insert(entry.status) }
        return status
    }

    /// Device and sensor status bits, Bluetooth bit → IEEE 11073-10404 bit and name (HL7/phd
    /// ASN1ToHL7Codes.md). The two standards number the same conditions in opposite order. Bits 16-23 are
    /// reserved and ignored.
    static let deviceStatusBits: [(bluetooth: Int, mder: Int, name: String)] = [
        (0, 15, "device-extended-update"), (1, 14, "device-equipment-malfunction"),
        (2, 13, "signal-processing-irregularity"), (3, 12, "signal-inadequate"), (4, 11, "signal-poor"),
        (5, 10, "signal-low-perfusion"), (6, 9, "signal-erratic"), (7, 8, "signal-non-pulsatile"),
        (8, 7, "signal-pulse-questionable"), (9, 6, "signal-searching"), (10, 5, "sensor-interference"),
        (11, 4, "sensor-off"), (12, 3, "sensor-unsupported"), (13, 2, "sensor-displaced"),
        (14, 1, "sensor-malfunction"), (15, 0, "sensor-disconnected"),
    ]

    /// Every condition except "extended display update ongoing" (bit 0) and "signal analysis ongoing" (bit 9)
    /// says the sensor or its signal cannot be trusted.
    static let untrustworthySignalBits: UInt32 = 0xFDFE

    static func deviceAndSensorStatus(_ word: UInt32) -> StatusBitField {
        let bits = deviceStatusBits
            .map { StatusBit(bit: $0.mder, name: $0.name, isSet: word & (1 << UInt32($0.bluetooth)) != 0) }
            .sorted { $0.bit < $1.bit }
        return StatusBitField(type: StatusBitField.pulseOximeterDeviceStatus, bits: bits, isVerified: false)
    }
}
