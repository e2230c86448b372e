// Heart Rate Measurement 0x2A37: the whole input is one notification. Expectations are computed from the
// bytes per the layout in shared/reference/device-protocols.md §3.1
// (flags · u8 or u16 rate · [u16 energy kJ] · [u16 R-R, 1/1024 s, one or more]).
//
// fuzz-seed: 2A37
// fuzz-options: -max_len=64

import FuzzSupport
import ProfileEngine
import VitalModel

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = fuzzInput(data, size)
    let direct = Result { () throws(DecodeError) in try HeartRateMeasurementDecoder().decode(bytes, context: fuzzContext) }
    let viaTable = Result { () throws(DecodeError) in
        try StandardCharacteristics.decode("2A37", bytes, context: fuzzContext)
    }
    require(direct == viaTable, "the standard-characteristics table and the decoder disagree")

    switch direct {
    case .failure(let error):
        requireDecodeError(error, frame: "2A37", input: bytes)
    case .success(let reading):
        requireReading(reading, decodedFrom: bytes, kind: .heartRate, frame: "2A37")
        check(reading, bytes)
    }
    return 0
}

private func check(_ reading: Reading, _ bytes: [UInt8]) {
    let flags = bytes[0]
    require(flags & 0xE0 == 0, "decoded despite reserved flag bits 0x\(String(flags, radix: 16))")
    let wideRate = flags & 0x01 != 0, hasEnergy = flags & 0x08 != 0, hasIntervals = flags & 0x10 != 0
    var offset = 1
    let rate = wideRate ? Int(le16(bytes, 1) ?? 0) : Int(bytes.count > 1 ? bytes[1] : 0)
    offset += wideRate ? 2 : 1
    let energy = hasEnergy ? le16(bytes, offset) : nil
    if hasEnergy { offset += 2 }
    let intervalBytes = bytes.count - offset
    require(hasIntervals ? intervalBytes >= 2 && intervalBytes % 2 == 0 : intervalBytes == 0,
            "flags 0x\(String(flags, radix: 16)) do not describe \(bytes.count) bytes")

    let expectedTypes: [MeasurementType] = [.heartRate] + (hasEnergy ? [.energyExpended] : [])
        + Array(repeating: .rrInterval, count: hasIntervals ? intervalBytes / 2 : 0)
    require(reading.values.map(\.type) == expectedTypes, "values \(reading.values.map(\.type.key))")

    require(isExactly(reading.values[0].value, Int64(rate), over: 1) && reading.values[0].unit == .perMinute,
            "heart rate \(rate) decoded as \(reading.values[0].value) \(reading.values[0].unit.ucum)")
    var index = 1
    if let energy {
        require(isExactly(reading.values[1].value, Int64(energy), over: 1), "energy \(energy) decoded as \(reading.values[1].value)")
        index += 1
    }
    var position = offset
    while index < reading.values.count {
        let ticks = Int64(le16(bytes, position) ?? 0)
        require(isExactly(reading.values[index].value, ticks, over: 1024),
                "R-R \(ticks)/1024 s at byte \(position) decoded as \(reading.values[index].value)")
        index += 1
        position += 2
    }

    // Bits 1-2: sensor contact status. 3 detected, 2 not detected, 0 or 1 not supported.
    let contact: SensorContact = switch (flags >> 1) & 0x03 {
    case 3: .detected
    case 2: .notDetected
    default: .notSupported
    }
    require(reading.sensorContact == contact, "contact bits of 0x\(String(flags, radix: 16)) became \(String(describing: reading.sensorContact))")
    require(reading.status.contains(.questionable) == (contact == .notDetected), "status \(reading.status.names) with contact \(contact)")
    require(reading.deviceTime == nil && reading.userSlot == nil && reading.statusBits.isEmpty,
            "a heart-rate notification has no time, user or status word")
}

private func isExactly(_ value: NumericValue, _ numerator: Int64, over denominator: Int64) -> Bool {
    guard case .number(let number) = value else { return false }
    return decimal(number, equals: numerator, over: denominator)
}
