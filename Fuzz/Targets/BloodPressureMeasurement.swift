// Blood Pressure Measurement 0x2A35 and Intermediate Cuff Pressure 0x2A36 (one layout). The first input byte
// picks the characteristic (bit 0: 0 → 2A35, 1 → 2A36); the rest is the notification.
// Expected lengths and fields below are computed from the bytes, per the layout in
// shared/reference/device-protocols.md §3.1 (flags · 3 SFLOAT · [7 B time] · [SFLOAT pulse] · [u8 user] · [u16 status]).
//
// fuzz-seed: 2A35 00
// fuzz-seed: 2A35 01
// fuzz-seed: 2A36 01
// fuzz-options: -max_len=64

import FuzzSupport
import ProfileEngine
import VitalModel

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = fuzzInput(data, size)
    guard let selector = input.first else { return 0 }
    let frame = selector & 1 == 0 ? "2A35" : "2A36"
    let bytes = Array(input.dropFirst())

    let direct = Result { () throws(DecodeError) in
        try BloodPressureMeasurementDecoder().decode(bytes, frame: frame, context: fuzzContext)
    }
    // The standard-characteristics table (what profiles use) must give exactly what the decoder gives.
    let viaTable = Result { () throws(DecodeError) in
        try StandardCharacteristics.decode(frame, bytes, context: fuzzContext)
    }
    require(direct == viaTable, "the standard-characteristics table and the decoder disagree")

    switch direct {
    case .failure(let error):
        requireDecodeError(error, frame: frame, input: bytes)
    case .success(let reading):
        requireReading(reading, decodedFrom: bytes, kind: .bloodPressure, frame: frame)
        check(reading, bytes, frame: frame)
    }
    return 0
}

private func check(_ reading: Reading, _ bytes: [UInt8], frame: String) {
    let flags = bytes[0]
    require(flags & 0xE0 == 0, "decoded despite reserved flag bits 0x\(String(flags, radix: 16))")
    let hasTime = flags & 0x02 != 0, hasPulse = flags & 0x04 != 0
    let hasUser = flags & 0x08 != 0, hasStatus = flags & 0x10 != 0
    let length = 7 + (hasTime ? 7 : 0) + (hasPulse ? 2 : 0) + (hasUser ? 1 : 0) + (hasStatus ? 2 : 0)
    require(bytes.count == length, "flags 0x\(String(flags, radix: 16)) describe \(length) bytes, input has \(bytes.count)")

    let unit: MeasurementUnit = flags & 0x01 != 0 ? .kilopascal : .millimetreOfMercury
    let expectedTypes: [MeasurementType] = [.systolic, .diastolic, .meanArterialPressure] + (hasPulse ? [.pulseRate] : [])
    require(reading.values.map(\.type) == expectedTypes, "values \(reading.values.map(\.type.key))")
    for (index, value) in reading.values.prefix(3).enumerated() {
        require(value.unit == unit, "\(value.type.key) in \(value.unit.ucum), flags say \(unit.ucum)")
        requireSFLOAT(value.value, encodes: le16(bytes, 1 + 2 * index) ?? 0, value.type.key)
    }
    var offset = 7
    if hasTime {
        let year = Int(le16(bytes, offset) ?? 0), month = Int(bytes[offset + 2]), day = Int(bytes[offset + 3])
        if year == 0 || month == 0 || day == 0 {
            require(reading.deviceTime == nil, "a time stamp with an unknown date became \(String(describing: reading.deviceTime))")
        } else if let time = reading.deviceTime?.time {
            let fields = [time.year, time.month, time.day, time.hour, time.minute, time.second]
            let sent = [year, month, day, Int(bytes[offset + 4]), Int(bytes[offset + 5]), Int(bytes[offset + 6])]
            require(fields == sent && time.millisecond == 0, "time stamp \(sent) decoded as \(time)")
        } else {
            require(false, "the known date \(year)-\(month)-\(day) was dropped")
        }
        offset += 7
    } else {
        require(reading.deviceTime == nil, "a time stamp without the time-stamp flag")
    }
    if hasPulse {
        require(reading.values[3].unit == .perMinute, "pulse rate in \(reading.values[3].unit.ucum)")
        requireSFLOAT(reading.values[3].value, encodes: le16(bytes, offset) ?? 0, "pulse rate")
        offset += 2
    }
    if hasUser {
        let user = bytes[offset]
        // 0xFF is the "unknown user" and stays 255: the assignment rules hold it rather than give it to anyone.
        require(reading.userSlot == Int(user), "user id \(user) became \(String(describing: reading.userSlot))")
        offset += 1
    } else {
        require(reading.userSlot == nil, "a user slot without the user-id flag")
    }
    if hasStatus {
        let status = le16(bytes, offset) ?? 0
        require(reading.statusBits.count == 1 && reading.statusBits[0].type == StatusBitField.bloodPressureMeasurementStatus,
                "status word 0x\(String(status, radix: 16)) gave \(reading.statusBits)")
        let bits = reading.statusBits[0].bits
        func isSet(_ bit: Int) -> Bool? { bits.first { $0.bit == bit }?.isSet }
        // Single-bit flags keep their bit numbers (body movement 0, cuff fit 1, irregular pulse 2, position 5).
        for bit in [0, 1, 2, 5] {
            require(isSet(bit) == (status & (1 << bit) != 0),
                    "status bit \(bit) of 0x\(String(status, radix: 16)) became \(String(describing: isSet(bit)))")
        }
        // The two-bit pulse-rate range can never claim both over and under range.
        require(!(isSet(3) == true && isSet(4) == true), "pulse rate both over and under range")
    } else {
        require(reading.statusBits.isEmpty, "status bits without the status flag")
    }
    // Intermediate Cuff Pressure is a measurement in progress; a 2A35 result is not.
    require(reading.status.contains(.ongoing) == (frame == "2A36"), "status \(reading.status.names) for \(frame)")
}
