import VitalModel

/// What a decoder needs besides the bytes: who sent them, when they arrived, which profile is decoding.
public struct DecodeContext: Sendable {
    public var device: DeviceIdentity
    public var receivedAt: HubTimestamp
    public var profileID: String

    public init(device: DeviceIdentity, receivedAt: HubTimestamp, profileID: String) {
        self.device = device
        self.receivedAt = receivedAt
        self.profileID = profileID
    }
}
