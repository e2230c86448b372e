import VitalModel

/// Decodes Glucose Measurement (0x2A18; Bluetooth Glucose Service; oesmith/gatt-xml glucose_measurement.xml):
///
/// flags u8 · sequence number u16 · base time (Date Time 7 B) · [time offset s16 minutes] ·
/// [concentration SFLOAT · type (low nibble) and sample location (high nibble) u8] ·
/// [sensor status annunciation u16]
///
/// - The sequence number is the meter's record number (``Reading/sequenceNumber``), which Record Access
///   Control Point requests count from.
/// - The device time is base time plus the offset. An offset of 0x7FFF (overrun) or 0x8000 (underrun) leaves
///   the time unknown.
/// - The concentration comes in kg/L or mol/L and is converted exactly, by moving the decimal exponent, to
///   mg/dL (× 10^5) or mmol/L (× 10^3).
/// - The type picks the MDC glucose type; a reserved type gives the generic MDC_CONC_GLU_GEN. The sample
///   location becomes a ``BodySite`` without a code (fhir-mapping.md gives none for glucose sites), so it
///   is kept but not uploaded. A control-solution type or location marks the reading `testData`: it checks
///   the meter, not a person.
/// - The sensor status annunciation is kept as an unverified ``StatusBitField/glucoseMeterDeviceStatus``
///   field (bits 0-10, which IEEE 11073-10417 numbers the same way). Bits 1-10 say the result cannot be
///   trusted and make the reading `questionable`; bit 11 (time fault) marks the device clock `notSet`.
/// - "Context information follows" (flag bit 4) does not change the reading: a Glucose Measurement Context
///   (0x2A34) with the same sequence number follows. See ``contextInformationFollows(_:)``.
public struct GlucoseMeasurementDecoder: Sendable {
    public init() {}

    static let types: [UInt8: MeasurementType] = [
        1: .capillaryWholeBloodGlucose, 2: .capillaryPlasmaGlucose, 3: .venousWholeBloodGlucose,
        4: .venousPlasmaGlucose, 5: .arterialWholeBloodGlucose, 6: .arterialPlasmaGlucose,
        7: .undeterminedWholeBloodGlucose, 8: .undeterminedPlasmaGlucose, 9: .interstitialFluidGlucose,
        10: .controlSolutionGlucose,
    ]

    static let locations: [UInt8: String] = [1: "finger", 2: "alternate-site", 3: "earlobe"]

    /// Sensor status annunciation bits 0-10 with their IEEE 11073-10417 names (HL7/phd ASN1ToHL7Codes.md).
    static let statusBits: [(bit: Int, name: String)] = [
        (0, "device-battery-low"), (1, "sensor-malfunction"), (2, "sensor-sample-size-insufficient"),
        (3, "sensor-strip-insertion"), (4, "sensor-strip-type-incorrect"), (5, "sensor-result-too-high"),
        (6, "sensor-result-too-low"), (7, "sensor-temp-too-high"), (8, "sensor-temp-too-low"),
        (9, "sensor-read-interrupt"), (10, "device-gen-fault"),
    ]

    /// Decodes one Glucose Measurement notification (a live result or a stored record sent after an RACP
    /// request).
    public func decode(_ bytes: [UInt8], context: DecodeContext) throws(DecodeError) -> Reading {
        let frame = "2A18"
        var reader = ByteReader(bytes, frame: frame)
        let flags = try reader.measurementFlags("glucose measurement",
                                                smallest: "10 bytes: flags, sequence number and base time",
                                                definedBits: 0x1F)
        let flagsText = ByteReader.describe(flags)
        let sequence = try reader.uint16("sequence number", promisedBy: "every glucose measurement")
        let baseTime = try SIGDateTime.read(&reader, promisedBy: "every glucose measurement (base time)")

        var offsetMinutes: Int16?
        let offsetStart = reader.offset
        if flags & 0x01 != 0 { offsetMinutes = try reader.int16("time offset", promisedBy: flagsText) }

        var values: [MeasuredValue] = []
        var status: MeasurementStatus = []
        var site: BodySite?
        if flags & 0x02 != 0 {
            let concentration = try reader.sfloat("glucose concentration", promisedBy: flagsText)
            let typeAndLocation = try reader.uint8("type and sample location", promisedBy: flagsText)
            let (type, location) = (typeAndLocation & 0x0F, typeAndLocation >> 4)
            let molar = flags & 0x04 != 0
            values.append(MeasuredValue(Self.types[type] ?? .glucose,
                                        concentration.scaled(byPowerOfTen: molar ? 3 : 5),
                                        molar ? .millimolePerLitre : .milligramPerDecilitre))
            if type == 10 || location == 4 { status.insert(.testData) }
            site = Self.locations[location].map { BodySite(code: nil, name: $0) }
        }
        var statusBits: [StatusBitField] = []
        var timeFault = false
        if flags & 0x08 != 0 {
            let word = try reader.uint16("sensor status annunciation", promisedBy: flagsText)
            statusBits.append(StatusBitField(
                type: StatusBitField.glucoseMeterDeviceStatus,
                bits: Self.statusBits.map { StatusBit(bit: $0.bit, name: $0.name, isSet: word & (1 << $0.bit) != 0) },
                isVerified: false))
            if word & 0x07FE != 0 { status.insert(.questionable) }
            timeFault = word & 0x0800 != 0
        }
        try reader.expectEnd(describedBy: flagsText)

        var deviceTime: DeviceTimestamp?
        if case .known(let base) = baseTime, offsetMinutes != Int16.max, offsetMinutes != Int16.min {
            guard let time = base.adding(milliseconds: Int64(offsetMinutes ?? 0) * 60_000) else {
                throw DecodeError(frame: frame, field: "time offset", offset: offsetStart,
                                  problem: "base time \(base) moved by \(offsetMinutes ?? 0) minutes leaves the years 1-9999",
                                  hint: "the meter's clock or offset is corrupt; check the record and set the meter's clock")
            }
            deviceTime = DeviceTimestamp(time: time, resolution: .second, clock: timeFault ? .notSet : .unknown)
        }
        return Reading(kind: .glucose, values: values, deviceTime: deviceTime, receivedAt: context.receivedAt,
                       device: context.device, status: status, statusBits: statusBits,
                       source: ReadingSource(profileID: context.profileID, frame: frame), raw: bytes,
                       bodySite: site, sequenceNumber: Int(sequence))
    }

    /// Whether the meter said a Glucose Measurement Context (0x2A34) with the same sequence number follows
    /// the measurement `reading` was decoded from.
    public static func contextInformationFollows(_ reading: Reading) -> Bool {
        reading.source.frame == "2A18" && (reading.raw.first ?? 0) & 0x10 != 0
    }
}
