import VitalModel

/// Decodes Temperature Measurement (0x2A1C; Bluetooth Health Thermometer Service; oesmith/gatt-xml
/// temperature_measurement.xml):
///
/// flags u8 · temperature FLOAT (°C, or °F with flag bit 0) · [Date Time 7 B] · [temperature type u8]
///
/// The temperature type becomes the reading's ``BodySite`` with the MDC site codes of fhir-mapping.md §1.4.
/// Type 2 ("body (general)") names no site and gives none; reserved type values give none either, rather
/// than failing a reading whose temperature is fine.
public struct TemperatureMeasurementDecoder: Sendable {
    public init() {}

    /// Temperature type value → body site.
    static let sites: [UInt8: BodySite] = [
        1: BodySite(code: MDCCode(188_452, "MDC_TEMP_AXILLA"), name: "armpit"),
        3: BodySite(code: MDCCode(188_428, "MDC_TEMP_EAR"), name: "ear"),
        4: BodySite(code: MDCCode(188_432, "MDC_TEMP_FINGER"), name: "finger"),
        5: BodySite(code: MDCCode(188_456, "MDC_TEMP_GIT"), name: "gastrointestinal-tract"),
        6: BodySite(code: MDCCode(188_424, "MDC_TEMP_ORAL"), name: "mouth"),
        7: BodySite(code: MDCCode(188_420, "MDC_TEMP_RECT"), name: "rectum"),
        8: BodySite(code: MDCCode(188_448, "MDC_TEMP_TOE"), name: "toe"),
        9: BodySite(code: MDCCode(150_392, "MDC_TEMP_TYMP"), name: "tympanum"),
    ]

    /// Decodes one Temperature Measurement indication.
    public func decode(_ bytes: [UInt8], context: DecodeContext) throws(DecodeError) -> Reading {
        let frame = "2A1C"
        var reader = ByteReader(bytes, frame: frame)
        let flags = try reader.measurementFlags("temperature measurement",
                                                smallest: "5 bytes: flags and a 4-byte FLOAT", definedBits: 0x07)
        let flagsText = ByteReader.describe(flags)
        let temperature = try reader.float("temperature", promisedBy: flagsText)
        let values = [MeasuredValue(.bodyTemperature, temperature, flags & 0x01 != 0 ? .fahrenheit : .celsius)]
        var deviceTime: DeviceTimestamp?
        if flags & 0x02 != 0 { deviceTime = try reader.timestamp(promisedBy: flagsText) }
        var site: BodySite?
        if flags & 0x04 != 0 { site = Self.sites[try reader.uint8("temperature type", promisedBy: flagsText)] }
        try reader.expectEnd(describedBy: flagsText)
        return Reading(kind: .bodyTemperature, values: values, deviceTime: deviceTime, receivedAt: context.receivedAt,
                       device: context.device, source: ReadingSource(profileID: context.profileID, frame: frame),
                       raw: bytes, bodySite: site)
    }
}
