import VitalModel

/// Decodes Weight Measurement (0x2A9D; Bluetooth Weight Scale Service; oesmith/gatt-xml
/// weight_measurement.xml):
///
/// flags u8 · weight u16 · [Date Time 7 B] · [user id u8, 0xFF unknown] · [BMI u16 · height u16]
///
/// The field resolutions are fixed by the characteristic (the Weight Scale Feature only says how finely the
/// scale really measures): weight 0.005 kg or 0.01 lb, BMI 0.1 kg/m², height 0.001 m or 0.1 in. Each becomes
/// an exact decimal; height is reported in centimetres (0.1 cm steps), the unit the R4 `bodyheight` profile
/// takes. A weight of 0xFFFF means "measurement unsuccessful" and becomes the special value NaN.
public struct WeightMeasurementDecoder: Sendable {
    public init() {}

    /// Decodes one Weight Measurement indication.
    public func decode(_ bytes: [UInt8], context: DecodeContext) throws(DecodeError) -> Reading {
        let frame = "2A9D"
        var reader = ByteReader(bytes, frame: frame)
        let flags = try reader.measurementFlags("weight measurement", smallest: "3 bytes: flags and the weight",
                                                definedBits: 0x0F)
        let flagsText = ByteReader.describe(flags)
        let imperial = flags & 0x01 != 0
        let raw = try reader.uint16("weight", promisedBy: flagsText)
        let weight: NumericValue = if raw == 0xFFFF {
            .special(.notANumber)
        } else if imperial {
            .number(DecimalValue(mantissa: Int64(raw), exponent: -2))
        } else {
            .number(DecimalValue(mantissa: Int64(raw) * 5, exponent: -3))
        }
        var values = [MeasuredValue(.bodyWeight, weight, imperial ? .pound : .kilogram)]

        var deviceTime: DeviceTimestamp?
        if flags & 0x02 != 0 { deviceTime = try reader.timestamp(promisedBy: flagsText) }
        var userSlot: Int?
        if flags & 0x04 != 0 {
            let user = try reader.uint8("user id", promisedBy: flagsText)
            userSlot = Int(user)  // 0xFF stays 255, "unknown user": the assignment rules hold it
        }
        if flags & 0x08 != 0 {
            let bmi = try reader.uint16("BMI", promisedBy: flagsText)
            let height = try reader.uint16("height", promisedBy: flagsText)
            values.append(MeasuredValue(.bodyMassIndex, .number(DecimalValue(mantissa: Int64(bmi), exponent: -1)),
                                        .kilogramPerSquareMetre))
            // 0.001 m is 0.1 cm, and the imperial field counts 0.1 in: both are tenths of the reported unit.
            values.append(MeasuredValue(.bodyHeight, .number(DecimalValue(mantissa: Int64(height), exponent: -1)),
                                        imperial ? .inch : .centimetre))
        }
        try reader.expectEnd(describedBy: flagsText)
        return Reading(kind: .bodyWeight, values: values, deviceTime: deviceTime, receivedAt: context.receivedAt,
                       device: context.device, userSlot: userSlot,
                       source: ReadingSource(profileID: context.profileID, frame: frame), raw: bytes)
    }
}
