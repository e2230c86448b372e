import VitalModel

/// The `gatt-standard` engine: Bluetooth SIG health characteristics, decoded by built-in decoders.
///
/// Each notification or indication is one complete value, so there is no framing and nothing to
/// resynchronise: a value that does not decode is reported and the next one is decoded afresh.
public struct GATTStandardEngine: DeviceEngine {
    /// Departures from the specification that real devices make, repaired before decoding.
    public enum Quirk: String, Sendable, Hashable, CaseIterable {
        /// Blood pressure: the pulse rate SFLOAT is sent big-endian (Beurer BM85 family).
        case pulseBigEndian = "pulse-big-endian"
        /// Blood pressure: the measurement status word is sent big-endian (Beurer BM85 family).
        case statusBigEndian = "status-big-endian"
        /// Blood pressure: the user id byte is sent although flag bit 3 is clear (Beurer BM85 family).
        case userIDWithoutFlag = "user-id-without-flag"
        /// Blood pressure: reserved flag bits 5-7 are set and carry no data (Beurer sets bit 6).
        case reservedFlagsSet = "reserved-flags-set"
        /// Blood pressure: the mean arterial pressure is always sent as 0x0000 because the device does not
        /// measure it (Beurer BM85 family); read as NaN, so no record claims a mean pressure of 0.
        case meanPressureAlwaysZero = "mean-pressure-always-zero"
    }

    /// Characteristic UUIDs (16-bit, upper-case hex) the profile subscribes to and decodes.
    public let characteristics: [String]
    public let quirks: Set<Quirk>
    public var name: String { "gatt-standard" }
    public var inputs: [String] { characteristics }

    public init(characteristics: [String], quirks: Set<Quirk> = []) {
        self.characteristics = characteristics
        self.quirks = quirks
    }

    /// Characteristics this engine can decode.
    public static var supported: [String] { standardMeasurementUUIDs }

    public func makeSession(device: DeviceIdentity, profileID: String) -> any EngineSession {
        GATTStandardSession(engine: self, device: device, profileID: profileID)
    }

    /// The value as the specification lays it out, for a device with `quirks`; the reading keeps the
    /// bytes the device sent.
    func repaired(_ bytes: [UInt8], characteristic: String) -> [UInt8] {
        guard !quirks.isEmpty, characteristic == "2A35" || characteristic == "2A36", var flags = bytes.first else { return bytes }
        var out = bytes
        var offset = 7
        if flags & 0x02 != 0 { offset += 7 }
        if flags & 0x04 != 0 {
            if quirks.contains(.pulseBigEndian), offset + 2 <= out.count { out.swapAt(offset, offset + 1) }
            offset += 2
        }
        // Any byte after the pulse is taken as the user byte. A value that follows the specification (no
        // user byte, status present) then lacks a status byte and is rejected: it fails closed. Guessing
        // from the exact length instead would let a value cut short by one byte decode with its user byte
        // read as status.
        if flags & 0x08 != 0 || (quirks.contains(.userIDWithoutFlag) && out.count > offset) {
            if quirks.contains(.userIDWithoutFlag) { flags |= 0x08 }
            offset += 1
        }
        if flags & 0x10 != 0, quirks.contains(.statusBigEndian), offset + 2 <= out.count { out.swapAt(offset, offset + 1) }
        if quirks.contains(.reservedFlagsSet) { flags &= 0x1F }
        if quirks.contains(.meanPressureAlwaysZero), out.count >= 7, out[5] == 0, out[6] == 0 { (out[5], out[6]) = (0xFF, 0x07) }
        out[0] = flags
        return out
    }
}

struct GATTStandardSession: EngineSession {
    let engine: GATTStandardEngine
    let device: DeviceIdentity
    let profileID: String

    var timeoutMilliseconds: Int? { nil }

    mutating func start(at time: HubTimestamp) -> [EngineEvent] { [] }

    mutating func receive(_ bytes: [UInt8], channel: String?, at time: HubTimestamp) -> [EngineEvent] {
        guard let channel, engine.characteristics.contains(channel) else {
            return [.problem(DecodeError(frame: channel ?? "(none)", field: "characteristic", offset: 0,
                                         problem: "a value arrived on a characteristic the profile does not decode",
                                         hint: "this profile decodes " + engine.characteristics.joined(separator: ", ")))]
        }
        let context = DecodeContext(device: device, receivedAt: time, profileID: profileID)
        do {
            var reading = try decodeStandardMeasurement(channel, engine.repaired(bytes, characteristic: channel), context: context)
            reading.raw = bytes
            return [.reading(reading)]
        } catch {
            return [.problem(error)]
        }
    }

    mutating func timeout(at time: HubTimestamp) -> [EngineEvent] { [] }
}
