// The built-in Bluetooth SIG decoders, by characteristic: the first input byte is the low byte of a 16-bit
// UUID 0x2Axx (0x35 → 2A35, 0x9D → 2A9D, …), the rest is the value. Measurements go through
// StandardCharacteristics.decode; Current Time, Date Time, Local Time Information and the RACP through
// their own decoders; every other UUID must be refused with an error naming the characteristic.
//
// fuzz-seed: 2A35 35
// fuzz-seed: 2A36 36
// fuzz-seed: 2A37 37
// fuzz-seed: 2A5E 5E
// fuzz-seed: 2A5F 5F
// fuzz-seed: 2A9D 9D
// fuzz-seed: 2A1C 1C
// fuzz-seed: 2A18 18
// fuzz-seed: 2A52 52
// fuzz-seed: 2A2B 2B
// fuzz-seed: 2A08 08
// fuzz-seed: 2A0F 0F
// fuzz-options: -max_len=128

import FuzzSupport
import ProfileEngine
import VitalModel

/// The kind each measurement characteristic yields (Bluetooth SIG service of each UUID).
private let kinds: [String: MeasurementKind] = [
    "2A35": .bloodPressure, "2A36": .bloodPressure, "2A37": .heartRate, "2A5E": .pulseOximetry,
    "2A5F": .pulseOximetry, "2A9D": .bodyWeight, "2A1C": .bodyTemperature, "2A18": .glucose,
]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = fuzzInput(data, size)
    guard let low = input.first else { return 0 }
    let uuid = "2A" + hexString([low], separator: "")
    let bytes = Array(input.dropFirst())

    switch uuid {
    case RACP.uuid:
        if case .failure(let error) = Result(catching: { () throws(DecodeError) in try RACP.decodeResponse(bytes) }) {
            requireDecodeError(error, frame: uuid, input: bytes)
        }
    case CurrentTime.uuid:
        switch Result(catching: { () throws(DecodeError) in try CurrentTime(decoding: bytes) }) {
        case .failure(let error): requireDecodeError(error, frame: uuid, input: bytes)
        case .success(let value):
            require(bytes.count == 10, "Current Time is 10 bytes, decoded from \(bytes.count)")
            // A known time encodes back to the same Date Time bytes.
            if let time = value.time, let encoded = CurrentTime.encode(time, adjustReason: value.adjustReason) {
                require(Array(encoded.prefix(7)) == Array(bytes.prefix(7)) && encoded.last == bytes.last,
                        "Current Time \(time) encodes as \(hexString(encoded, separator: ""))")
            }
        }
    case DateTimeCharacteristic.uuid:
        switch Result(catching: { () throws(DecodeError) in try DateTimeCharacteristic.decode(bytes) }) {
        case .failure(let error): requireDecodeError(error, frame: uuid, input: bytes)
        case .success(let time):
            if let time {
                require(DateTimeCharacteristic.encode(time) == bytes, "Date Time \(time) does not encode back to the input")
            }
        }
    case LocalTimeInformation.uuid:
        switch Result(catching: { () throws(DecodeError) in try LocalTimeInformation(decoding: bytes) }) {
        case .failure(let error): requireDecodeError(error, frame: uuid, input: bytes)
        case .success(let value):
            require(value.timeZoneQuarterHours.map { (-48...56).contains($0) } ?? true, "time zone \(String(describing: value.timeZoneQuarterHours))")
        }
    default:
        let result = Result(catching: { () throws(DecodeError) in try StandardCharacteristics.decode(uuid, bytes, context: fuzzContext) })
        guard let kind = kinds[uuid] else {
            require(!StandardCharacteristics.measurementUUIDs.contains(uuid), "\(uuid) is a measurement: add its kind to this target")
            guard case .failure(let error) = result else { return reject(uuid) }
            require(error.field == "characteristic", "an unsupported characteristic failed on \(error.field)")
            return 0
        }
        switch result {
        case .failure(let error): requireDecodeError(error, frame: uuid, input: bytes)
        case .success(let reading): requireReading(reading, decodedFrom: bytes, kind: kind, frame: uuid)
        }
    }
    return 0
}

private func reject(_ uuid: String) -> CInt {
    require(false, "characteristic \(uuid) has no decoder, yet a reading came out")
    return 0
}
