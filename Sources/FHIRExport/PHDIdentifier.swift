import VitalModel

/// The HL7 PHD IG 2.0 conditional-create identifier of a measurement Observation
/// (`StructureDefinition-PhdBaseObservation-notes.md`, `GeneratingtheTimeStampPartIdentifier.md`):
///
/// `DEVICE-PATIENT-TYPE-TIMESTAMP[..DURATION][-SUPPLEMENTAL...]`
///
/// - DEVICE: the PHD's EUI-64 System ID (16 hex digits) or else its Bluetooth address (12), upper case, no dashes.
/// - PATIENT: `value-system` of the patient identifier, or the server's Patient logical id.
/// - TYPE: the Observation's MDC code in decimal.
/// - TIMESTAMP: the device's own time as seconds since 2000-01-01T00:00:00 at the device's resolution
///   (3 decimals for milliseconds), then the device-reported offset from UTC in 15-minute units with its
///   sign (`+28` for UTC+7). The IG's own example (`690897360.567`) is 30 s off; the rule is followed.
public struct PHDObservationIdentifier: Sendable, Hashable, CustomStringConvertible {
    public var device: String
    public var patient: String
    public var type: MDCCode
    public var timestamp: String
    public var duration: String?
    public var supplementalTypes: [MDCCode]

    public init(device: String, patient: String, type: MDCCode, timestamp: String, duration: String? = nil,
                supplementalTypes: [MDCCode] = []) {
        self.device = device
        self.patient = patient
        self.type = type
        self.timestamp = timestamp
        self.duration = duration
        self.supplementalTypes = supplementalTypes
    }

    public var description: String {
        var text = device + "-" + patient + "-" + type.description + "-" + timestamp
        if let duration { text += ".." + duration }
        for code in supplementalTypes { text += "-" + code.description }
        return text
    }

    /// The timestamp part for a device time: `secondsSince2000[.mmm][±quarterHours]`.
    ///
    /// For a device that reports an offset (UTC time plus offset), `time` is the UTC time.
    public static func timestamp(_ time: LocalDateTime, resolution: ClockResolution, utcOffsetQuarterHours: Int?) -> String {
        var text = String(time.secondsSince2000)
        if resolution == .millisecond {
            let ms = String(time.millisecond)
            text += "." + String(repeating: "0", count: 3 - ms.count) + ms
        }
        if let offset = utcOffsetQuarterHours { text += (offset < 0 ? "-" : "+") + String(abs(offset)) }
        return text
    }

    /// The timestamp part for a reading that carries no device time: the hub's receive time, in UTC with
    /// millisecond resolution and the hub's offset. A VitalGate choice, so that retries of a stored reading
    /// stay idempotent; the IG would omit the identifier for such "real-time" data.
    public static func timestamp(receivedAt hub: HubTimestamp) -> String {
        timestamp(LocalDateTime(hub.instant, utcOffsetSeconds: 0), resolution: .millisecond,
                  utcOffsetQuarterHours: hub.utcOffsetSeconds / 900)
    }

    /// The duration part for a measurement over a period, at the millisecond resolution of hub times:
    /// `60.000` for a minute (`GeneratingtheTimeStampPartIdentifier.md`: "..1.000" for 1 s in milliseconds).
    public static func duration(milliseconds: Int64) -> String {
        let (seconds, remainder) = max(0, milliseconds).quotientAndRemainder(dividingBy: 1000)
        let fraction = String(remainder)
        return String(seconds) + "." + String(repeating: "0", count: 3 - fraction.count) + fraction
    }

    /// The device part for `device`, or nil when the device has no identity the recipe can use.
    public static func devicePart(_ device: DeviceIdentity) -> String? {
        if let systemID = device.systemID { return systemID.compactHex }
        if let address = device.bluetoothAddress { return address.compactHex }
        // Not covered by the IG: a USB device's serial, hex-encoded so the part stays in [0-9A-F].
        if let usb = device.usb, let serial = usb.serial, !serial.isEmpty {
            return hexString(Array((usb.vendorProduct + ":" + serial).utf8), separator: "")
        }
        return nil
    }
}
