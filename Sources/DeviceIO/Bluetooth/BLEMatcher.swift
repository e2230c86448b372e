import ProfileCatalog

/// Chooses the profile for a Bluetooth LE device from what it advertises (or, once connected, the services
/// its GATT tree has): the Bluetooth counterpart of ``DeviceMatcher``.
///
/// A profile with a `ble` transport claims a device when every part of its `match.bluetooth` that it states
/// holds: one of its service UUIDs is among the device's, its name patterns match the device's name, and one of
/// its manufacturer-data entries matches. A claim stating more parts wins (a vendor profile naming the model's
/// advertised name beats the generic Blood Pressure Service profile); equally specific claims are ambiguous,
/// and an ambiguous or unclaimed device is never connected to.
public struct BLEMatcher: Sendable {
    public let profiles: [DeviceProfile]

    public init(profiles: [DeviceProfile]) {
        self.profiles = profiles.filter { profile in
            if case .ble = profile.transport, profile.match.bluetooth != nil { return true }
            return false
        }
    }

    /// Every service UUID some profile claims devices by: what a scan filters on.
    public var services: [String] {
        var seen: Set<String> = []
        return profiles.flatMap { $0.match.bluetooth?.services ?? [] }.map(Self.normalized).filter { seen.insert($0).inserted }
    }

    public func match(_ device: BLEDeviceInfo) -> DeviceMatcher.Decision {
        let claims = profiles.compactMap { profile in specificity(profile, device).map { (profile, $0) } }
        guard let best = claims.map(\.1).max() else { return .none }
        let winners = claims.filter { $0.1 == best }.map(\.0)
        return winners.count == 1 ? .profile(winners[0]) : .ambiguous(winners.map(\.id).sorted())
    }

    /// Why no profile is chosen, for people; empty when one is.
    public func explanation(for device: BLEDeviceInfo) -> String {
        switch match(device) {
        case .profile: return ""
        case .ambiguous(let ids): return "ambiguous: " + ids.joined(separator: ", ")
        case .none:
            let services = device.serviceUUIDs.isEmpty ? "no services" : "services " + device.serviceUUIDs.joined(separator: ", ")
            return "no profile claims a device advertising " + services + (device.name.map { " named \"\($0)\"" } ?? " without a name")
        }
    }

    /// How many parts of the profile's match the device satisfies, or nil when one it states fails.
    func specificity(_ profile: DeviceProfile, _ device: BLEDeviceInfo) -> Int? {
        guard let match = profile.match.bluetooth else { return nil }
        var score = 0
        if !match.services.isEmpty {
            let have = Set(device.serviceUUIDs.map(Self.normalized))
            guard match.services.contains(where: { have.contains(Self.normalized($0)) }) else { return nil }
            score += 1
        }
        if !match.names.isEmpty {
            guard let name = device.name, match.matchesName(name) else { return nil }
            score += 1
        }
        if !match.manufacturerData.isEmpty {
            guard match.manufacturerData.contains(where: { Self.matches($0, device.manufacturerData) }) else { return nil }
            score += 1
        }
        return score > 0 ? score : nil
    }

    static func matches(_ entry: ManufacturerDataMatch, _ data: [UInt16: [UInt8]]) -> Bool {
        guard let bytes = data[entry.company], bytes.count >= entry.prefix.count else { return false }
        for (index, wanted) in entry.prefix.enumerated() {
            let mask = entry.mask.flatMap { index < $0.count ? $0[index] : nil } ?? 0xFF
            if bytes[index] & mask != wanted & mask { return false }
        }
        return true
    }

    /// `0000180d-0000-1000-8000-00805f9b34fb` and `180d` → `180D`; any other UUID upper-cased.
    public static func normalized(_ uuid: String) -> String {
        let upper = uuid.uppercased()
        if upper.count == 36, upper.hasPrefix("0000"), upper.hasSuffix("-0000-1000-8000-00805F9B34FB") {
            return String(upper.dropFirst(4).prefix(4))
        }
        return upper
    }
}
