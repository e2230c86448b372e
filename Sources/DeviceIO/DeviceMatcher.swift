import ProfileCatalog

/// Chooses the profile for an attached USB node, from what udev says about it alone.
///
/// A profile's `match.usb` entry claims a node when the vendor and product ids are equal and every
/// optional field the entry states (interface number, manufacturer string, product string) is equal too;
/// the profile's transport must fit the node (`serial` ↔ `tty`, `hidraw` ↔ `hidraw`). Among the claims, the
/// entry that states more optional fields wins: a CP210x profile naming the vendor's product string beats
/// one that names only the bridge's ids. Claims equally specific are ambiguous, and an ambiguous or
/// unclaimed node is never opened: guessing would send one device's protocol to another.
public struct DeviceMatcher: Sendable {
    public let profiles: [DeviceProfile]

    public init(profiles: [DeviceProfile]) {
        self.profiles = profiles
    }

    public enum Decision: Sendable {
        case profile(DeviceProfile)
        /// No profile claims the node.
        case none
        /// The ids of the equally specific profiles that claim the node, sorted.
        case ambiguous([String])
    }

    public func match(_ device: AttachedDevice) -> Decision {
        let claims = self.claims(device)
        guard let best = claims.map(\.specificity).max() else { return .none }
        var winners: [DeviceProfile] = []
        for claim in claims where claim.specificity == best && !winners.contains(where: { $0.id == claim.profile.id }) {
            winners.append(claim.profile)
        }
        return winners.count == 1 ? .profile(winners[0]) : .ambiguous(winners.map(\.id).sorted())
    }

    /// Why a node is not given to a profile, for people: `no profile claims 1234:5678`, or
    /// `ambiguous: a/b, c/d`, with the near misses that explain it. Empty when a profile claims it.
    public func explanation(for device: AttachedDevice) -> String {
        switch match(device) {
        case .profile: return ""
        case .ambiguous(let ids): return "ambiguous: " + ids.joined(separator: ", ")
        case .none:
            var text = "no profile claims \(device.vendorProduct)"
            let misses = nearMisses(device)
            if !misses.isEmpty { text += " (" + misses.joined(separator: "; ") + ")" }
            return text
        }
    }

    /// A profile's best claim on a node and how many optional fields it stated.
    struct Claim {
        var profile: DeviceProfile
        var specificity: Int
    }

    func claims(_ device: AttachedDevice) -> [Claim] {
        guard let vendor = device.vendorID, let product = device.productID else { return [] }
        var claims: [Claim] = []
        for profile in profiles where Self.transportFits(profile.transport, device.subsystem) {
            let matching = profile.match.usb.filter { entry in
                entry.vendorID == vendor && entry.productID == product && Self.mismatches(entry, device).isEmpty
            }
            if let specificity = matching.map(Self.specificity).max() {
                claims.append(Claim(profile: profile, specificity: specificity))
            }
        }
        return claims
    }

    /// Profiles that name the node's ids but want something else, each with the first difference.
    func nearMisses(_ device: AttachedDevice) -> [String] {
        guard let vendor = device.vendorID, let product = device.productID else { return ["udev gave no USB ids"] }
        var misses: [String] = []
        for profile in profiles {
            let entries = profile.match.usb.filter { $0.vendorID == vendor && $0.productID == product }
            guard !entries.isEmpty else { continue }
            if !Self.transportFits(profile.transport, device.subsystem) {
                misses.append("\(profile.id) wants a \(profile.transport.name) device, this is a \(device.subsystem.rawValue) node")
            } else if let difference = entries.lazy.compactMap({ Self.mismatches($0, device).first }).first {
                misses.append("\(profile.id) wants \(difference)")
            }
        }
        return misses
    }

    static func transportFits(_ transport: Transport, _ subsystem: AttachedDevice.Subsystem) -> Bool {
        switch (transport, subsystem) {
        case (.serial, .tty), (.hidraw, .hidraw): true
        default: false
        }
    }

    /// The USB match entries of `profile` this node satisfies (ids and every string or interface they name).
    public static func satisfiedEntries(of profile: DeviceProfile, for device: AttachedDevice) -> [USBMatch] {
        profile.match.usb.filter {
            $0.vendorID == device.vendorID && $0.productID == device.productID && mismatches($0, device).isEmpty
        }
    }

    /// The optional fields of `entry` the node does not have, as text (`product "CP2102 …"`).
    static func mismatches(_ entry: USBMatch, _ device: AttachedDevice) -> [String] {
        var differences: [String] = []
        if let interface = entry.interface, device.interfaceNumber != interface {
            differences.append("interface \(interface)")
        }
        if let manufacturer = entry.manufacturer, !stringMatches(manufacturer, device.manufacturer) {
            differences.append("manufacturer \"\(manufacturer)\"")
        }
        if let product = entry.product, !stringMatches(product, device.product) {
            differences.append("product \"\(product)\"")
        }
        return differences
    }

    static func specificity(_ entry: USBMatch) -> Int {
        (entry.interface == nil ? 0 : 1) + (entry.manufacturer == nil ? 0 : 1) + (entry.product == nil ? 0 : 1)
    }

    /// Exact, except that trailing blanks some devices pad their strings with are ignored unless the
    /// profile's string has them too (as udev rules compare `ATTRS{}`).
    static func stringMatches(_ wanted: String, _ actual: String?) -> Bool {
        guard let actual else { return false }
        if actual == wanted { return true }
        if wanted.last?.isWhitespace == true { return false }
        var trimmed = Substring(actual)
        while trimmed.last?.isWhitespace == true { trimmed = trimmed.dropLast() }
        return trimmed == wanted
    }
}
