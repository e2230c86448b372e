import VitalModel

/// The Bluetooth SIG measurement characteristics the `gatt-standard` engine decodes: the entry point the
/// profile engine calls with a characteristic's 16-bit UUID and the bytes of one notification or indication.
public enum StandardCharacteristics {
    /// Measurement characteristics with a built-in decoder (16-bit UUIDs, upper-case hex).
    public static let measurementUUIDs: [String] = ["2A35", "2A36", "2A37", "2A5E", "2A5F", "2A9D", "2A1C", "2A18"]

    static let names: [String: String] = [
        "2A35": "Blood Pressure Measurement", "2A36": "Intermediate Cuff Pressure", "2A37": "Heart Rate Measurement",
        "2A5E": "PLX Spot-check Measurement", "2A5F": "PLX Continuous Measurement", "2A9D": "Weight Measurement",
        "2A1C": "Temperature Measurement", "2A18": "Glucose Measurement",
        RACP.uuid: "Record Access Control Point", CurrentTime.uuid: "Current Time",
        DateTimeCharacteristic.uuid: "Date Time", LocalTimeInformation.uuid: "Local Time Information",
    ]

    /// The Bluetooth name of a characteristic VitalGate handles (measurements and the control and time
    /// characteristics beside them), for `2A9D`, `2a9d` or `0x2A9D`; nil for any other.
    public static func name(_ uuid: String) -> String? { names[normalized(uuid)] }

    /// Decodes one notification or indication of measurement characteristic `uuid` into a reading.
    ///
    /// Unknown characteristics, including the non-measurement ones ``name(_:)`` knows, are an error that
    /// lists the supported ones.
    public static func decode(_ uuid: String, _ bytes: [UInt8], context: DecodeContext) throws(DecodeError) -> Reading {
        let key = normalized(uuid)
        switch key {
        case "2A35", "2A36": return try BloodPressureMeasurementDecoder().decode(bytes, frame: key, context: context)
        case "2A37": return try HeartRateMeasurementDecoder().decode(bytes, context: context)
        case "2A5E": return try PLXMeasurementDecoder().decodeSpotCheck(bytes, context: context)
        case "2A5F": return try PLXMeasurementDecoder().decodeContinuous(bytes, context: context)
        case "2A9D": return try WeightMeasurementDecoder().decode(bytes, context: context)
        case "2A1C": return try TemperatureMeasurementDecoder().decode(bytes, context: context)
        case "2A18": return try GlucoseMeasurementDecoder().decode(bytes, context: context)
        default:
            let known = names[key].map { " (\($0) is not a measurement)" } ?? ""
            throw DecodeError(frame: uuid, field: "characteristic", offset: 0,
                              problem: "no measurement decoder for characteristic \(uuid)\(known)",
                              hint: "supported: " + measurementUUIDs.map { "\($0) \(names[$0] ?? "")" }.joined(separator: ", ")
                                  + "; check the profile names a 16-bit UUID such as 2A35")
        }
    }

    /// `0x2a35`, `2a35` and the full base UUID `00002A35-0000-1000-8000-00805F9B34FB` all become `2A35`.
    static func normalized(_ uuid: String) -> String {
        var text = uuid.uppercased()
        if text.hasPrefix("0X") { text.removeFirst(2) }
        if text.count == 36, text.hasPrefix("0000"), text.hasSuffix("-0000-1000-8000-00805F9B34FB") {
            text = String(text.dropFirst(4).prefix(4))
        }
        return text
    }
}
