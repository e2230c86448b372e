import VitalModel

/// The standard Bluetooth SIG profiles built into VitalGate, by profile id.
///
/// Issue #3 turns these into profile files under `DeviceProfiles/bluetooth-sig/`; the ids stay the same.
public struct BuiltInProfile: Sendable {
    public let id: String
    public let title: String
    /// Characteristic UUIDs (16-bit, upper-case hex) this profile decodes.
    public let characteristics: [String]
    let decode: @Sendable (_ characteristic: String, _ bytes: [UInt8], _ context: DecodeContext) throws(DecodeError) -> Reading

    /// Decodes `bytes` received on `characteristic`.
    public func decode(characteristic: String, bytes: [UInt8], context: DecodeContext) throws(DecodeError) -> Reading {
        try decode(characteristic, bytes, context)
    }

    public static let bloodPressure = BuiltInProfile(
        id: "bluetooth-sig/blood-pressure", title: "Bluetooth SIG Blood Pressure Service",
        characteristics: ["2A35", "2A36"]
    ) { (characteristic: String, bytes: [UInt8], context: DecodeContext) throws(DecodeError) -> Reading in
        try BloodPressureMeasurementDecoder().decode(bytes, frame: characteristic, context: context)
    }

    public static let heartRate = BuiltInProfile(
        id: "bluetooth-sig/heart-rate", title: "Bluetooth SIG Heart Rate Service", characteristics: ["2A37"]
    ) { (_: String, bytes: [UInt8], context: DecodeContext) throws(DecodeError) -> Reading in
        try HeartRateMeasurementDecoder().decode(bytes, context: context)
    }

    public static let all: [BuiltInProfile] = [.bloodPressure, .heartRate]

    public static func named(_ id: String) -> BuiltInProfile? { all.first { $0.id == id } }
}
