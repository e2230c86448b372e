import ProfileCatalog

/// Chooses the profile for a Bluetooth LE device from what it advertises (or, once connected, its GATT
/// services), by the profiles' `match.bluetooth`.
///
/// A profile with a `ble` transport claims a device when every criterion it states holds: one of its
/// `services` is among the device's service UUIDs, its name matches one of the `names` patterns, one of
/// its `manufacturerData` entries matches. A profile that states more kinds of criteria wins (the A&D
/// UA-651BLE profile, service and name, beats the generic Blood Pressure Service profile, service only);
/// equally specific claims are ambiguous, and an ambiguous or unclaimed device is never adopted.
public struct BLEProfileMatcher: Sendable {
    public let profiles: [DeviceProfile]

    /// Keeps the profiles with a `ble` transport and a `match.bluetooth` section.
    public init(profiles: [DeviceProfile]) {
        self.profiles = profiles.filter { profile in
            if case .ble = profile.transport { return profile.match.bluetooth != nil }
            return false
        }
    }

    public enum Decision: Sendable {
        case profile(DeviceProfile)
        case none
        /// The ids of the equally specific profiles that claim the device, sorted.
        case ambiguous([String])
    }

    public func match(_ device: BLEDeviceInfo) -> Decision {
        var best = 0
        var winners: [DeviceProfile] = []
        for profile in profiles {
            guard let criteria = profile.match.bluetooth, Self.claims(criteria, device) else { continue }
            let specificity = Self.specificity(criteria)
            if specificity > best {
                best = specificity
                winners = [profile]
            } else if specificity == best {
                winners.append(profile)
            }
        }
        switch winners.count {
        case 0: return .none
        case 1: return .profile(winners[0])
        default: return .ambiguous(winners.map(\.id).sorted())
        }
    }

    /// Why no single profile claims the device, for people; empty when one does.
    public func explanation(for device: BLEDeviceInfo) -> String {
        switch match(device) {
        case .profile: return ""
        case .ambiguous(let ids): return "ambiguous: " + ids.joined(separator: ", ")
        case .none:
            let services = device.serviceUUIDs.isEmpty ? "no services" : "services " + device.serviceUUIDs.joined(separator: ", ")
            var text = "no profile claims a device advertising \(services)"
            let misses = nearMisses(device)
            if !misses.isEmpty { text += " (" + misses.joined(separator: "; ") + ")" }
            return text
        }
    }

    /// Every service UUID some profile matches on: the scan filter for finding claimable devices.
    public var services: [String] {
        var seen: [String] = []
        for profile in profiles {
            for uuid in profile.match.bluetooth?.services ?? [] {
                if let canonical = BlueZUUID.canonical(uuid), !seen.contains(canonical) { seen.append(canonical) }
            }
        }
        return seen
    }

    /// Profiles that share a service with the device but want a different name or manufacturer data.
    func nearMisses(_ device: BLEDeviceInfo) -> [String] {
        profiles.compactMap { profile in
            guard let criteria = profile.match.bluetooth, Self.servicesMatch(criteria, device), !criteria.services.isEmpty else { return nil }
            if !Self.nameMatches(criteria, device) {
                return "\(profile.id) wants a name like " + criteria.names.joined(separator: " or ")
            }
            if !Self.manufacturerMatches(criteria, device) {
                return "\(profile.id) wants manufacturer data from company " + criteria.manufacturerData.map { Self.hex4($0.company) }.joined(separator: " or ")
            }
            return nil
        }
    }

    static func claims(_ criteria: BluetoothMatch, _ device: BLEDeviceInfo) -> Bool {
        servicesMatch(criteria, device) && nameMatches(criteria, device) && manufacturerMatches(criteria, device)
    }

    static func specificity(_ criteria: BluetoothMatch) -> Int {
        (criteria.services.isEmpty ? 0 : 1) + (criteria.names.isEmpty ? 0 : 1) + (criteria.manufacturerData.isEmpty ? 0 : 1)
    }

    static func servicesMatch(_ criteria: BluetoothMatch, _ device: BLEDeviceInfo) -> Bool {
        guard !criteria.services.isEmpty else { return true }
        let advertised = Set(device.serviceUUIDs.compactMap(BlueZUUID.canonical))
        return criteria.services.contains { BlueZUUID.canonical($0).map(advertised.contains) ?? false }
    }

    static func nameMatches(_ criteria: BluetoothMatch, _ device: BLEDeviceInfo) -> Bool {
        guard !criteria.names.isEmpty else { return true }
        guard let name = device.name else { return false }
        return criteria.matchesName(name)
    }

    static func manufacturerMatches(_ criteria: BluetoothMatch, _ device: BLEDeviceInfo) -> Bool {
        guard !criteria.manufacturerData.isEmpty else { return true }
        return criteria.manufacturerData.contains { entry in
            guard let data = device.manufacturerData[entry.company], data.count >= entry.prefix.count else { return false }
            return entry.prefix.indices.allSatisfy { index in
                let mask = entry.mask.map { index < $0.count ? $0[index] : 0xFF } ?? 0xFF
                return data[index] & mask == entry.prefix[index] & mask
            }
        }
    }

    static func hex4(_ value: UInt16) -> String {
        let digits = Array("0123456789ABCDEF")
        return String([12, 8, 4, 0].map { digits[Int(value >> UInt16($0)) & 0xF] })
    }
}
