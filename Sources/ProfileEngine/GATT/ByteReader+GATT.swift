import VitalModel

/// Field readers the health characteristics beyond blood pressure and heart rate need.
extension ByteReader {
    mutating func int16(_ field: String, promisedBy: String) throws(DecodeError) -> Int16 {
        Int16(bitPattern: try uint16(field, promisedBy: promisedBy))
    }

    mutating func uint24(_ field: String, promisedBy: String) throws(DecodeError) -> UInt32 {
        let slice = try take(3, field, promisedBy: promisedBy)
        return slice.reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
    }

    /// An IEEE 11073 16-bit SFLOAT, precision and special values kept.
    mutating func sfloat(_ field: String, promisedBy: String) throws(DecodeError) -> NumericValue {
        IEEE11073Number.sfloat(try uint16(field, promisedBy: promisedBy))
    }

    /// An IEEE 11073 32-bit FLOAT, precision and special values kept.
    mutating func float(_ field: String, promisedBy: String) throws(DecodeError) -> NumericValue {
        IEEE11073Number.float(try uint32(field, promisedBy: promisedBy))
    }

    /// A Date Time field as a device timestamp; nil when the device said the date is not known (a zero year,
    /// month or day), which places the reading on no timeline.
    mutating func timestamp(promisedBy flagsText: String, clock: DeviceClockState = .unknown) throws(DecodeError) -> DeviceTimestamp? {
        guard case .known(let time) = try SIGDateTime.read(&self, promisedBy: flagsText) else { return nil }
        return DeviceTimestamp(time: time, resolution: .second, clock: clock)
    }
}

extension NumericValue {
    /// The value with its decimal exponent moved by `places`: an exact unit conversion by a power of ten
    /// (kg/L to mg/dL is 10^5). Special values stay as they are.
    func scaled(byPowerOfTen places: Int) -> NumericValue {
        guard case .number(let value) = self else { return self }
        return .number(DecimalValue(mantissa: value.mantissa, exponent: value.exponent + places))
    }
}
