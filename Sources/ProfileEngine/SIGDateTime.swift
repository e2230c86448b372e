import VitalModel

/// The Bluetooth SIG Date Time field (0x2A08 layout, 7 bytes): year u16, month, day, hours, minutes,
/// seconds. Local time without zone. Year, month or day 0 means "not known".
enum SIGDateTime {
    enum Value {
        case known(LocalDateTime)
        /// The device said it does not know the date (a zero field).
        case unknown
    }

    static func read(_ reader: inout ByteReader, promisedBy flags: String) throws(DecodeError) -> Value {
        let start = reader.offset
        let year = Int(try reader.uint16("time stamp year", promisedBy: flags))
        let fields = try reader.take(5, "time stamp month..seconds", promisedBy: flags).map(Int.init)
        let (month, day, hour, minute, second) = (fields[0], fields[1], fields[2], fields[3], fields[4])
        if year == 0 || month == 0 || day == 0 { return .unknown }
        guard (1582...9999).contains(year),
              let time = LocalDateTime(year: year, month: month, day: day, hour: hour, minute: minute, second: second)
        else {
            throw DecodeError(frame: reader.frame, field: "time stamp", offset: start,
                              problem: "\(year)-\(month)-\(day) \(hour):\(minute):\(second) is not a valid date and time",
                              hint: "the device clock sent an impossible value; check the byte order (year is little-endian) or set the device clock")
        }
        return .known(time)
    }
}
