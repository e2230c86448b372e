/// The JSON form of readings that `vitalgate decode` prints, one object per line, and the form the Outbox
/// stores. Other tools build on it: keep member names and meanings stable, and keep
/// `Reading(json:)` (ReadingJSONDecoding.swift) its exact inverse.
extension Reading {
    public var json: JSONValue {
        var members: [(String, JSONValue)] = [
            ("profile", .string(source.profileID)),
            ("frame", .string(source.frame)),
            ("kind", .string(kind.rawValue)),
            ("values", .array(values.map(Self.json))),
            ("deviceTime", deviceTime.map(Self.json) ?? .null),
            ("receivedAt", .string(receivedAt.localTime.iso8601(includeMilliseconds: true)
                + formatUTCOffset(seconds: receivedAt.utcOffsetSeconds))),
            ("userSlot", userSlot.map { .int($0) } ?? .null),
            ("status", .array(status.names.map(JSONValue.string))),
        ]
        if let sensorContact { members.append(("sensorContact", .string(sensorContact.rawValue))) }
        if let sequenceNumber { members.append(("sequenceNumber", .int(sequenceNumber))) }
        if let window { members.append(("window", Self.json(window))) }
        if let bodySite {
            var site: [(String, JSONValue)] = [("name", .string(bodySite.name))]
            if let code = bodySite.code { site += [("code", .int(code.code)), ("referenceID", .string(code.referenceID))] }
            members.append(("bodySite", .object(site)))
        }
        if !statusBits.isEmpty {
            members.append(("statusBits", .array(statusBits.map { field in
                var members: [(String, JSONValue)] = [
                    ("type", .int(field.type.code)), ("name", .string(field.type.referenceID)),
                    ("bits", .array(field.bits.map { bit in
                        ["bit": .int(bit.bit), "name": .string(bit.name), "set": bit.isSet.map(JSONValue.bool) ?? .null]
                    })),
                ]
                // Said only when false, so the JSON of verified fields is unchanged.
                if !field.isVerified { members.append(("verified", false)) }
                return .object(members)
            })))
        }
        if let clockCheck {
            members.append(("clockCheck", [
                "hubTime": .string(clockCheck.hubTime.localTime.iso8601(includeMilliseconds: true)
                    + formatUTCOffset(seconds: clockCheck.hubTime.utcOffsetSeconds)),
                "deviceTime": clockCheck.deviceTime.map { .string($0.description) } ?? .null,
            ]))
        }
        members.append(("device", Self.json(device)))
        members.append(("raw", .string(hexString(raw, separator: ""))))
        return .object(members)
    }

    static func json(_ value: MeasuredValue) -> JSONValue {
        var members: [(String, JSONValue)] = [("type", .string(value.type.key))]
        switch value.value {
        case .number(let number): members.append(("value", .decimal(number)))
        case .special(let special): members += [("value", .null), ("special", .string(special.rawValue))]
        }
        members.append(("unit", .string(value.unit.ucum)))
        // `120` is both 120 × 10^0 and 12 × 10^1; the device's precision is in the exponent, so a positive
        // one is said (only then, so the JSON of every other value is unchanged) for a lossless round trip.
        if case .number(let number) = value.value, number.exponent > 0 { members.append(("exponent", .int(number.exponent))) }
        return .object(members)
    }

    static func json(_ window: MeasurementWindow) -> JSONValue {
        [
            "start": json(window.start), "end": json(window.end),
            "samples": .int(window.sampleCount), "excluded": .int(window.excludedSampleCount),
            "minimum": json(window.minimum), "maximum": json(window.maximum),
        ]
    }

    /// The form every hub time takes: local time with milliseconds and the offset, `2025-06-01T07:35:00.250+07:00`.
    static func json(_ stamp: HubTimestamp) -> JSONValue {
        .string(stamp.localTime.iso8601(includeMilliseconds: true) + formatUTCOffset(seconds: stamp.utcOffsetSeconds))
    }

    static func json(_ stamp: DeviceTimestamp) -> JSONValue {
        var members: [(String, JSONValue)] = [
            ("time", .string(stamp.time.iso8601(includeMilliseconds: stamp.resolution == .millisecond))),
            ("clock", .string(stamp.clock.rawValue)),
        ]
        if let quarters = stamp.utcOffsetQuarterHours { members.append(("utcOffset", .string(formatUTCOffset(seconds: quarters * 900)))) }
        return .object(members)
    }

    static func json(_ device: DeviceIdentity) -> JSONValue {
        var members: [(String, JSONValue)] = []
        if let systemID = device.systemID { members.append(("systemID", .string(systemID.description))) }
        if let address = device.bluetoothAddress { members.append(("bluetoothAddress", .string(address.description))) }
        if let usb = device.usb {
            members.append(("usb", .string(usb.vendorProduct + (usb.serial.map { ":" + $0 } ?? ""))))
        }
        for (key, value) in [("manufacturer", device.manufacturer), ("model", device.model), ("serialNumber", device.serialNumber),
                             ("firmware", device.firmwareRevision), ("hardware", device.hardwareRevision),
                             ("software", device.softwareRevision)] {
            if let value { members.append((key, .string(value))) }
        }
        return .object(members)
    }
}
