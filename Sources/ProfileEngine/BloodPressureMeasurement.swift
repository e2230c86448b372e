import VitalModel

/// Decodes Blood Pressure Measurement (0x2A35) and Intermediate Cuff Pressure (0x2A36), which share one
/// layout (Bluetooth SIG Blood Pressure Service 1.1.1; oesmith/gatt-xml blood_pressure_measurement.xml):
///
/// flags u8 · systolic SFLOAT · diastolic SFLOAT · MAP SFLOAT · [Date Time 7 B] · [pulse rate SFLOAT] ·
/// [user id u8, 0xFF unknown] · [measurement status u16]
public struct BloodPressureMeasurementDecoder: Sendable {
    public init() {}

    /// Bits of the measurement-status field, with the names of MDC_BLOOD_PRESSURE_MEASUREMENT_STATUS bits.
    static let statusBits: [(bit: Int, name: String)] = [
        (0, "body-movement"), (1, "cuff-too-loose"), (2, "irregular-pulse"), (5, "improper-body-position"),
    ]

    /// Decodes one notification or indication. `frame` is `2A35` or `2A36` and only names errors.
    public func decode(_ bytes: [UInt8], frame: String = "2A35", context: DecodeContext) throws(DecodeError) -> Reading {
        var reader = ByteReader(bytes, frame: frame)
        let flags = try reader.measurementFlags("blood pressure measurement",
                                                smallest: "7 bytes: flags and three SFLOAT pressures", definedBits: 0x1F)
        let flagsText = ByteReader.describe(flags)
        let unit: MeasurementUnit = flags & 0x01 != 0 ? .kilopascal : .millimetreOfMercury
        let systolic = IEEE11073Number.sfloat(try reader.uint16("systolic", promisedBy: flagsText))
        let diastolic = IEEE11073Number.sfloat(try reader.uint16("diastolic", promisedBy: flagsText))
        let mean = IEEE11073Number.sfloat(try reader.uint16("mean arterial pressure", promisedBy: flagsText))
        var values = [MeasuredValue(.systolic, systolic, unit), MeasuredValue(.diastolic, diastolic, unit),
                      MeasuredValue(.meanArterialPressure, mean, unit)]

        var deviceTime: DeviceTimestamp?
        if flags & 0x02 != 0, case .known(let time) = try SIGDateTime.read(&reader, promisedBy: flagsText) {
            deviceTime = DeviceTimestamp(time: time, resolution: .second)
        }
        if flags & 0x04 != 0 {
            let pulse = IEEE11073Number.sfloat(try reader.uint16("pulse rate", promisedBy: flagsText))
            values.append(MeasuredValue(.pulseRate, pulse, .perMinute))
        }
        var userSlot: Int?
        if flags & 0x08 != 0 {
            let user = try reader.uint8("user id", promisedBy: flagsText)
            userSlot = Int(user)  // 0xFF stays 255, "unknown user": the assignment rules hold it
        }
        var statusBits: [StatusBitField] = []
        if flags & 0x10 != 0 {
            let status = try reader.uint16("measurement status", promisedBy: flagsText)
            statusBits.append(Self.statusField(status))
        }
        try reader.expectEnd(describedBy: flagsText)

        // Intermediate Cuff Pressure is the live cuff pressure while a measurement runs, not a result.
        let status: MeasurementStatus = frame == "2A36" ? .ongoing : []
        return Reading(kind: .bloodPressure, values: values, deviceTime: deviceTime, receivedAt: context.receivedAt,
                       device: context.device, userSlot: userSlot, status: status, statusBits: statusBits,
                       source: ReadingSource(profileID: context.profileID, frame: frame), raw: bytes)
    }

    /// Maps the status word onto MDC_BLOOD_PRESSURE_MEASUREMENT_STATUS bits (fhir-mapping.md §1.4). The
    /// two-bit pulse-rate range (bits 3-4: 0 in range, 1 above the upper limit, 2 below the lower limit)
    /// becomes MDC bits 3 (pulse over range) and 4 (pulse under range); the reserved value 3 leaves both
    /// unknown rather than guessing. Bits 6-15 are reserved and ignored, as the specification requires.
    static func statusField(_ status: UInt16) -> StatusBitField {
        var bits = statusBits.map { StatusBit(bit: $0.bit, name: $0.name, isSet: status & (1 << $0.bit) != 0) }
        let range = (status >> 3) & 0x03
        bits.append(StatusBit(bit: 3, name: "pulse-over-range", isSet: range == 3 ? nil : range == 1))
        bits.append(StatusBit(bit: 4, name: "pulse-under-range", isSet: range == 3 ? nil : range == 2))
        bits.sort { $0.bit < $1.bit }
        return StatusBitField(type: StatusBitField.bloodPressureMeasurementStatus, bits: bits)
    }
}
