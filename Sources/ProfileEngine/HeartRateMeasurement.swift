import VitalModel

/// Decodes Heart Rate Measurement (0x2A37; Bluetooth SIG Heart Rate Service; oesmith/gatt-xml
/// heart_rate_measurement.xml):
///
/// flags u8 · heart rate u8 or u16 · [energy expended u16 kJ] · [R-R intervals u16 × n, 1/1024 s]
public struct HeartRateMeasurementDecoder: Sendable {
    public init() {}

    public func decode(_ bytes: [UInt8], context: DecodeContext) throws(DecodeError) -> Reading {
        let frame = "2A37"
        var reader = ByteReader(bytes, frame: frame)
        let flags = try reader.measurementFlags("heart rate measurement", smallest: "2 bytes: flags and the rate",
                                                definedBits: 0x1F)
        let flagsText = ByteReader.describe(flags)
        let rate = flags & 0x01 != 0
            ? Int(try reader.uint16("heart rate (16-bit)", promisedBy: flagsText))
            : Int(try reader.uint8("heart rate (8-bit)", promisedBy: flagsText))
        var values = [MeasuredValue(.heartRate, .number(DecimalValue(mantissa: Int64(rate), exponent: 0)), .perMinute)]

        let contact: SensorContact = switch (flags >> 1) & 0x03 {
        case 0b11: .detected
        case 0b10: .notDetected
        default: .notSupported
        }
        if flags & 0x08 != 0 {
            let energy = try reader.uint16("energy expended", promisedBy: flagsText)
            values.append(MeasuredValue(.energyExpended, .number(DecimalValue(mantissa: Int64(energy), exponent: 0)), .kilojoule))
        }
        if flags & 0x10 != 0 {
            guard reader.remaining >= 2 else {
                throw DecodeError(frame: frame, field: "R-R intervals", offset: reader.offset,
                                  problem: "the flags promise R-R intervals but \(reader.remaining) byte\(reader.remaining == 1 ? "" : "s") remain",
                                  hint: "\(flagsText) sets bit 4 (R-R intervals present): at least one 2-byte interval must follow")
            }
            guard reader.remaining % 2 == 0 else {
                throw DecodeError(frame: frame, field: "R-R intervals", offset: reader.offset,
                                  problem: "\(reader.remaining) bytes remain, an odd count, but each interval is 2 bytes",
                                  hint: "check the capture is one whole notification")
            }
            while reader.remaining > 0 {
                let ticks = try reader.uint16("R-R interval", promisedBy: flagsText)
                values.append(MeasuredValue(.rrInterval, .number(Self.seconds(fromTicks: ticks)), .second))
            }
        }
        try reader.expectEnd(describedBy: flagsText)

        // A sensor that can tell it has lost skin contact and says so makes the rate doubtful.
        let status: MeasurementStatus = contact == .notDetected ? .questionable : []
        return Reading(kind: .heartRate, values: values, receivedAt: context.receivedAt, device: context.device,
                       status: status, sensorContact: contact,
                       source: ReadingSource(profileID: context.profileID, frame: frame), raw: bytes)
    }

    /// 1/1024 s ticks as exact seconds: 1/1024 = 0.0009765625 has a finite decimal expansion.
    static func seconds(fromTicks ticks: UInt16) -> DecimalValue {
        DecimalValue(mantissa: Int64(ticks) * 9_765_625, exponent: -10)
    }
}
