import VitalModel

// The gatt-standard engine decodes through the table of built-in characteristic decoders.
let standardMeasurementUUIDs = StandardCharacteristics.measurementUUIDs

func decodeStandardMeasurement(_ uuid: String, _ bytes: [UInt8], context: DecodeContext) throws(DecodeError) -> Reading {
    try StandardCharacteristics.decode(uuid, bytes, context: context)
}
