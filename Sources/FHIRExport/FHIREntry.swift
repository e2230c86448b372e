import VitalModel

/// One resource ready to go into a Bundle: its `urn:uuid:` full URL and, for a transaction, the
/// conditional-create query that makes re-sending it harmless.
public struct FHIREntry: Sendable, Hashable {
    public let fullUrl: String
    public let resourceType: String
    public let resource: JSONValue
    /// `identifier=SYSTEM|VALUE`, percent-encoded, for `request.ifNoneExist`.
    public let ifNoneExist: String?

    public init(fullUrl: String, resourceType: String, resource: JSONValue, ifNoneExist: String?) {
        self.fullUrl = fullUrl
        self.resourceType = resourceType
        self.resource = resource
        self.ifNoneExist = ifNoneExist
    }
}

/// The resources one reading becomes: the device that measured it and its Observations (a Coincident
/// Timestamp first when the device clock was read).
public struct ReadingResources: Sendable, Hashable {
    public let device: FHIREntry
    public let observations: [FHIREntry]
}

/// Builds Bundles from entries, dropping repeats of the same resource (the same device for many readings).
public struct BundleBuilder: Sendable {
    public enum Kind: String, Sendable {
        /// For showing and saving: no requests.
        case collection
        /// For upload: every entry is a conditional create, all-or-nothing on the server.
        case transaction
    }

    public let kind: Kind
    private(set) var entries: [FHIREntry] = []
    private var seen: Set<String> = []

    public init(kind: Kind) { self.kind = kind }

    public mutating func add(_ entry: FHIREntry) {
        guard seen.insert(entry.fullUrl).inserted else { return }
        entries.append(entry)
    }

    public mutating func add(_ resources: ReadingResources) {
        add(resources.device)
        resources.observations.forEach { add($0) }
    }

    public var count: Int { entries.count }

    public func build() -> JSONValue {
        let items: [JSONValue] = entries.map { entry in
            var members: [(String, JSONValue)] = [("fullUrl", .string(entry.fullUrl)), ("resource", entry.resource)]
            if kind == .transaction {
                var request: [(String, JSONValue)] = [("method", "POST"), ("url", .string(entry.resourceType))]
                if let query = entry.ifNoneExist { request.append(("ifNoneExist", .string(query))) }
                members.append(("request", .object(request)))
            }
            return .object(members)
        }
        return ["resourceType": "Bundle", "type": .string(kind.rawValue), "entry": .array(items)]
    }
}
