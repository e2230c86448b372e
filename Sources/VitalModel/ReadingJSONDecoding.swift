import Foundation

/// Why a reading's JSON could not be turned back into a ``Reading``: the member path and the problem.
///
/// Messages name members, kinds and codes, never a measured value or other text from the reading, so they
/// can go to logs.
public struct ReadingJSONError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Where the problem is, such as `values[1].unit` or `device.usb`; empty for the document itself.
    public var path: String
    public var problem: String

    public init(path: String, problem: String) {
        self.path = path
        self.problem = problem
    }

    public var description: String {
        path.isEmpty ? "reading JSON: \(problem)" : "reading JSON member \(path): \(problem)"
    }
}

/// The inverse of ``Reading/json``: the Outbox stores readings as that JSON and rebuilds them from it, so
/// everything FHIR export uses must come back exactly (see the round-trip tests).
extension Reading {
    /// Rebuilds a reading from the JSON ``Reading/json`` writes. Unknown members are refused rather than
    /// ignored, so nothing a newer writer added is dropped without notice.
    public init(json: JSONValue) throws(ReadingJSONError) {
        var object = try JSONObjectReader(json, path: "")
        let profile = try object.string("profile")
        let frame = try object.string("frame")
        let kindText = try object.string("kind")
        guard let kind = MeasurementKind(rawValue: kindText) else {
            throw object.error("kind", "'\(kindText)' is not a measurement kind (\(MeasurementKind.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        let values = try object.array("values").enumerated().map { (index, item) throws(ReadingJSONError) in
            try Self.measuredValue(item, path: "values[\(index)]")
        }
        let deviceTime = try object.optional("deviceTime").map { value throws(ReadingJSONError) in
            try Self.deviceTimestamp(value, path: "deviceTime")
        }
        let receivedAt = try Self.hubTimestamp(try object.required("receivedAt"), path: "receivedAt")
        let userSlot = try object.optionalInteger("userSlot")
        var status: MeasurementStatus = []
        for (index, item) in try object.array("status").enumerated() {
            guard case .string(let name) = item else { throw object.error("status[\(index)]", "expected a string, found \(kindName(of: item))") }
            guard let flag = MeasurementStatus.names.first(where: { $0.1 == name })?.0 else {
                throw object.error("status[\(index)]", "'\(name)' is not a measurement-status name")
            }
            status.insert(flag)
        }
        let sensorContact = try object.optionalString("sensorContact").map { text throws(ReadingJSONError) in
            guard let contact = SensorContact(rawValue: text) else {
                throw object.error("sensorContact", "'\(text)' is not one of not-supported, not-detected, detected")
            }
            return contact
        }
        let sequenceNumber = try object.optionalInteger("sequenceNumber")
        let window = try object.optional("window").map { value throws(ReadingJSONError) in try Self.measurementWindow(value) }
        let bodySite = try object.optional("bodySite").map { value throws(ReadingJSONError) in try Self.bodySite(value) }
        var statusBits: [StatusBitField] = []
        if let value = object.optional("statusBits") {
            guard case .array(let fields) = value else { throw object.error("statusBits", "expected an array, found \(kindName(of: value))") }
            for (index, field) in fields.enumerated() { statusBits.append(try Self.statusBitField(field, path: "statusBits[\(index)]")) }
        }
        let clockCheck = try object.optional("clockCheck").map { value throws(ReadingJSONError) in try Self.clockCheck(value) }
        let device = try Self.deviceIdentity(try object.required("device"))
        let rawText = try object.string("raw")
        guard let raw = hexBytes(rawText) else { throw object.error("raw", "expected hex digits in pairs") }
        try object.finish()
        self.init(kind: kind, values: values, deviceTime: deviceTime, receivedAt: receivedAt, device: device,
                  userSlot: userSlot, status: status, statusBits: statusBits, sensorContact: sensorContact,
                  clockCheck: clockCheck, source: ReadingSource(profileID: profile, frame: frame), raw: raw,
                  bodySite: bodySite, sequenceNumber: sequenceNumber, window: window)
    }

    /// Rebuilds a reading from JSON text, as the Outbox stores it.
    public init(jsonText: String) throws(ReadingJSONError) {
        let value: JSONValue
        do {
            value = try JSONValue.parse(jsonText)
        } catch {
            throw ReadingJSONError(path: "", problem: "not valid JSON at \(error.location): \(error.problem)")
        }
        try self.init(json: value)
    }

    /// The exponents a stored value may have: those of IEEE 11073 FLOAT (8 signed bits), the widest any
    /// device sends. A bound, so that text built from a value (FHIR decimals) cannot grow without limit.
    static let exponentRange = -128...127

    static func measuredValue(_ json: JSONValue, path: String) throws(ReadingJSONError) -> MeasuredValue {
        var object = try JSONObjectReader(json, path: path)
        let key = try object.string("type")
        guard let type = MeasurementType.named(key) else { throw object.error("type", "'\(key)' is not a measurement type") }
        let ucum = try object.string("unit")
        // The type's own units first; a unit outside its list is still one of the code table's.
        guard let unit = type.units.first(where: { $0.ucum == ucum })
            ?? MeasurementType.all.lazy.flatMap(\.units).first(where: { $0.ucum == ucum }) else {
            throw object.error("unit", "'\(ucum)' is not a unit of the code table")
        }
        let exponent = try object.optionalInteger("exponent")
        let numeric: NumericValue
        switch try object.required("value") {
        case .null:
            guard exponent == nil else { throw object.error("exponent", "only a number has an exponent") }
            let name = try object.string("special")
            guard let special = SpecialValue(rawValue: name) else {
                throw object.error("special", "'\(name)' is not one of \(SpecialValue.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            numeric = .special(special)
        case .number(let text):
            guard object.optional("special") == nil else { throw object.error("special", "a value with a number has no special value") }
            if let exponent {
                if exponent <= 0 { throw object.error("exponent", "is written only when positive") }
                if exponent > Self.exponentRange.upperBound {
                    throw object.error("exponent", "must be at most \(Self.exponentRange.upperBound) (exponents are \(Self.exponentRange))")
                }
            }
            // The message does not repeat the number: it is a measured value.
            guard let decimal = DecimalValue(text, positiveExponent: exponent) else {
                throw object.error("value", exponent == nil
                    ? "expected a plain decimal number (digits, optional '-' and fraction) within 64 bits"
                    : "expected a whole number ending in as many zeros as the exponent says")
            }
            guard decimal.exponent >= Self.exponentRange.lowerBound else {
                throw object.error("value", "has more than \(-Self.exponentRange.lowerBound) fraction digits (exponents are \(Self.exponentRange))")
            }
            numeric = .number(decimal)
        case let other:
            throw object.error("value", "expected a number or null, found \(kindName(of: other))")
        }
        try object.finish()
        return MeasuredValue(type, numeric, unit)
    }

    static func deviceTimestamp(_ json: JSONValue, path: String) throws(ReadingJSONError) -> DeviceTimestamp {
        var object = try JSONObjectReader(json, path: path)
        let text = try object.string("time")
        // The writer shows milliseconds exactly when the clock counts them.
        let resolution: ClockResolution
        switch text.count {
        case 19: resolution = .second
        case 23: resolution = .millisecond
        default: throw object.error("time", "expected YYYY-MM-DDTHH:MM:SS or YYYY-MM-DDTHH:MM:SS.fff")
        }
        guard let time = LocalDateTime(iso8601: text) else { throw object.error("time", "is not a possible date and time") }
        let clockName = try object.string("clock")
        guard let clock = DeviceClockState(rawValue: clockName) else {
            throw object.error("clock", "'\(clockName)' is not one of unknown, set, notSet")
        }
        var quarters: Int?
        if let offsetText = try object.optionalString("utcOffset") {
            guard let seconds = parseWrittenUTCOffset(offsetText), seconds % 900 == 0 else {
                throw object.error("utcOffset", "expected ±HH:MM in whole quarter hours")
            }
            quarters = seconds / 900
        }
        try object.finish()
        return DeviceTimestamp(time: time, resolution: resolution, utcOffsetQuarterHours: quarters, clock: clock)
    }

    /// The writer's form, `YYYY-MM-DDTHH:MM:SS.fff±HH:MM` (always milliseconds, always a numeric offset),
    /// then ``HubTimestamp/init(iso8601:)``'s own checks: a year from 1970 to 9998 and an offset within ±18 h.
    static func hubTimestamp(_ json: JSONValue, path: String) throws(ReadingJSONError) -> HubTimestamp {
        let problem = "expected YYYY-MM-DDTHH:MM:SS.fff±HH:MM, a possible date and time in the years 1970 to 9998 "
            + "with an offset within ±18:00"
        guard case .string(let text) = json else {
            throw ReadingJSONError(path: path, problem: "\(problem), found \(kindName(of: json))")
        }
        let characters = Array(text)
        guard characters.count == 29, characters[19] == ".", characters[23] == "+" || characters[23] == "-",
              characters[26] == ":", let stamp = HubTimestamp(iso8601: text) else {
            throw ReadingJSONError(path: path, problem: problem)
        }
        return stamp
    }

    static func measurementWindow(_ json: JSONValue) throws(ReadingJSONError) -> MeasurementWindow {
        var object = try JSONObjectReader(json, path: "window")
        let start = try hubTimestamp(try object.required("start"), path: "window.start")
        let end = try hubTimestamp(try object.required("end"), path: "window.end")
        guard end.unixMilliseconds >= start.unixMilliseconds else { throw object.error("end", "is before window.start") }
        let samples = try object.integer("samples")
        guard samples >= 1 else { throw object.error("samples", "must be 1 or more: a window without samples is never stored") }
        let excluded = try object.integer("excluded")
        guard excluded >= 0 else { throw object.error("excluded", "must not be negative") }
        let minimum = try measuredValue(try object.required("minimum"), path: "window.minimum")
        let maximum = try measuredValue(try object.required("maximum"), path: "window.maximum")
        guard minimum.type == maximum.type, minimum.unit == maximum.unit else {
            throw object.error("maximum", "must have the type and unit of window.minimum")
        }
        try object.finish()
        return MeasurementWindow(start: start, end: end, sampleCount: samples, excludedSampleCount: excluded,
                                 minimum: minimum, maximum: maximum)
    }

    static func bodySite(_ json: JSONValue) throws(ReadingJSONError) -> BodySite {
        var object = try JSONObjectReader(json, path: "bodySite")
        let name = try object.string("name")
        let code = try object.optionalInteger("code")
        let referenceID = try object.optionalString("referenceID")
        try object.finish()
        switch (code, referenceID) {
        case (nil, nil): return BodySite(code: nil, name: name)
        case let (code?, referenceID?):
            guard let value = UInt32(exactly: code) else { throw object.error("code", "expected a 32-bit MDC code") }
            return BodySite(code: MDCCode(value, referenceID), name: name)
        case (nil, _): throw object.error("code", "missing; referenceID is given without it")
        case (_, nil): throw object.error("referenceID", "missing; code is given without it")
        }
    }

    static func statusBitField(_ json: JSONValue, path: String) throws(ReadingJSONError) -> StatusBitField {
        var object = try JSONObjectReader(json, path: path)
        let code = try object.integer("type")
        guard let type = UInt32(exactly: code) else { throw object.error("type", "expected a 32-bit MDC code") }
        let name = try object.string("name")
        let bits = try object.array("bits").enumerated().map { (index, item) throws(ReadingJSONError) in
            var bit = try JSONObjectReader(item, path: "\(path).bits[\(index)]")
            let number = try bit.integer("bit")
            let bitName = try bit.string("name")
            let isSet: Bool?
            switch try bit.required("set") {
            case .bool(let flag): isSet = flag
            case .null: isSet = nil
            case let other: throw bit.error("set", "expected true, false or null, found \(kindName(of: other))")
            }
            try bit.finish()
            return StatusBit(bit: number, name: bitName, isSet: isSet)
        }
        var verified = true
        if let flag = object.optional("verified") {
            guard case .bool(let value) = flag else { throw object.error("verified", "expected true or false, found \(kindName(of: flag))") }
            verified = value
        }
        try object.finish()
        return StatusBitField(type: MDCCode(type, name), bits: bits, isVerified: verified)
    }

    static func clockCheck(_ json: JSONValue) throws(ReadingJSONError) -> DeviceClockCheck {
        var object = try JSONObjectReader(json, path: "clockCheck")
        let hubTime = try hubTimestamp(try object.required("hubTime"), path: "clockCheck.hubTime")
        var deviceTime: LocalDateTime?
        if let text = try object.optionalString("deviceTime") {
            guard let time = LocalDateTime(iso8601: text), text.count == 19 || text.count == 23 else {
                throw object.error("deviceTime", "expected YYYY-MM-DDTHH:MM:SS[.fff], a possible date and time")
            }
            deviceTime = time
        }
        try object.finish()
        return DeviceClockCheck(hubTime: hubTime, deviceTime: deviceTime)
    }

    static func deviceIdentity(_ json: JSONValue) throws(ReadingJSONError) -> DeviceIdentity {
        var object = try JSONObjectReader(json, path: "device")
        var device = DeviceIdentity()
        if let text = try object.optionalString("systemID") {
            guard let id = EUI64(text) else { throw object.error("systemID", "expected 8 hex bytes such as 00-1B-2C-FF-FE-3D-4E-5F") }
            device.systemID = id
        }
        if let text = try object.optionalString("bluetoothAddress") {
            guard let address = EUI48(text) else { throw object.error("bluetoothAddress", "expected 6 hex bytes such as C4-F3-12-53-F2-C9") }
            device.bluetoothAddress = address
        }
        if let text = try object.optionalString("usb") {
            // VVVV:PPPP, then ':' and the iSerial string (which may itself hold ':') when there is one.
            let parts = text.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count >= 2, let vendor = parseHex16(parts[0]), let product = parseHex16(parts[1]) else {
                throw object.error("usb", "expected VVVV:PPPP or VVVV:PPPP:SERIAL with 4 hex digits each")
            }
            device.usb = USBIdentity(vendorID: vendor, productID: product, serial: parts.count == 3 ? String(parts[2]) : nil)
        }
        device.manufacturer = try object.optionalString("manufacturer")
        device.model = try object.optionalString("model")
        device.serialNumber = try object.optionalString("serialNumber")
        device.firmwareRevision = try object.optionalString("firmware")
        device.hardwareRevision = try object.optionalString("hardware")
        device.softwareRevision = try object.optionalString("software")
        try object.finish()
        return device
    }
}

/// Reads one JSON object's members, remembering which were read so that unknown ones are reported.
struct JSONObjectReader {
    let path: String
    private let members: [(String, JSONValue)]
    private var read: Set<String> = []

    init(_ json: JSONValue, path: String) throws(ReadingJSONError) {
        guard case .object(let members) = json else {
            throw ReadingJSONError(path: path, problem: "expected an object, found \(kindName(of: json))")
        }
        var seen: Set<String> = []
        for (key, _) in members where !seen.insert(key).inserted {
            throw ReadingJSONError(path: Self.join(path, key), problem: "appears twice")
        }
        self.path = path
        self.members = members
    }

    static func join(_ path: String, _ key: String) -> String { path.isEmpty ? key : path + "." + key }

    func error(_ key: String, _ problem: String) -> ReadingJSONError {
        ReadingJSONError(path: Self.join(path, key), problem: problem)
    }

    /// The member, or nil when it is absent or null.
    mutating func optional(_ key: String) -> JSONValue? {
        read.insert(key)
        guard let value = members.first(where: { $0.0 == key })?.1, value != .null else { return nil }
        return value
    }

    mutating func required(_ key: String) throws(ReadingJSONError) -> JSONValue {
        read.insert(key)
        guard let value = members.first(where: { $0.0 == key })?.1 else { throw error(key, "missing") }
        return value
    }

    mutating func string(_ key: String) throws(ReadingJSONError) -> String {
        let value = try required(key)
        guard case .string(let text) = value else { throw error(key, "expected a string, found \(kindName(of: value))") }
        return text
    }

    mutating func optionalString(_ key: String) throws(ReadingJSONError) -> String? {
        guard let value = optional(key) else { return nil }
        guard case .string(let text) = value else { throw error(key, "expected a string, found \(kindName(of: value))") }
        return text
    }

    mutating func integer(_ key: String) throws(ReadingJSONError) -> Int {
        try integer(try required(key), key: key)
    }

    mutating func optionalInteger(_ key: String) throws(ReadingJSONError) -> Int? {
        guard let value = optional(key) else { return nil }
        return try integer(value, key: key)
    }

    private func integer(_ value: JSONValue, key: String) throws(ReadingJSONError) -> Int {
        guard case .number(let text) = value else { throw error(key, "expected an integer, found \(kindName(of: value))") }
        guard let number = Int(text) else { throw error(key, "expected a whole number without fraction or exponent") }
        return number
    }

    mutating func array(_ key: String) throws(ReadingJSONError) -> [JSONValue] {
        let value = try required(key)
        guard case .array(let items) = value else { throw error(key, "expected an array, found \(kindName(of: value))") }
        return items
    }

    /// Refuses members that were not read: a newer writer's addition must not vanish on a round trip.
    func finish() throws(ReadingJSONError) {
        if let unknown = members.first(where: { !read.contains($0.0) }) {
            throw error(unknown.0, "is not a member this version of VitalGate knows")
        }
    }
}

func kindName(of value: JSONValue) -> String { value.kindName }

/// Parses exactly the form ``formatUTCOffset(seconds:)`` writes, `±HH:MM` (more hour digits allowed), so
/// any offset a device reported comes back, not only the ±18 h a time zone can have.
func parseWrittenUTCOffset(_ text: String) -> Int? {
    guard let sign = text.first, sign == "+" || sign == "-" else { return nil }
    let parts = text.dropFirst().split(separator: ":", omittingEmptySubsequences: false)
    guard parts.count == 2, parts[0].count >= 2, parts[0].count <= 6, parts[1].count == 2,
          parts[0].allSatisfy(\.isASCIIDigit), parts[1].allSatisfy(\.isASCIIDigit),
          let hours = Int(parts[0]), let minutes = Int(parts[1]), minutes < 60 else { return nil }
    return (sign == "-" ? -1 : 1) * (hours * 3600 + minutes * 60)
}

func parseHex16(_ text: Substring) -> UInt16? {
    guard text.count == 4, text.allSatisfy(\.isHexDigit) else { return nil }
    return UInt16(text, radix: 16)
}

