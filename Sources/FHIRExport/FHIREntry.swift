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

/// Builds Bundles from entries. A resource that comes again (the same device for many readings, the same
/// stored record downloaded twice) is sent once; two different Observations under one identifier are an
/// error, because the server would keep only one of them.
public struct BundleBuilder: Sendable {
    public enum Kind: String, Sendable {
        /// For showing and saving: no requests.
        case collection
        /// For upload: every entry is a conditional create, all-or-nothing on the server.
        case transaction
    }

    public let kind: Kind
    private(set) var entries: [FHIREntry] = []
    private var seen: [String: Int] = [:]

    public init(kind: Kind) { self.kind = kind }

    public mutating func add(_ entry: FHIREntry) throws(ExportError) {
        if let index = seen[entry.fullUrl] {
            // Devices may differ in detail between readings (another firmware string); the first stands.
            guard entry.resourceType == "Device" || entries[index].resource == entry.resource else {
                throw ExportError(
                    problem: "two different readings map to the same observation identifier (\(entry.ifNoneExist ?? entry.fullUrl))",
                    hint: "the device gave them the same time stamp; the server would keep only one. Check the device clock, "
                        + "or give each reading its own receive time")
            }
            return
        }
        seen[entry.fullUrl] = entries.count
        entries.append(entry)
    }

    public mutating func add(_ resources: ReadingResources) throws(ExportError) {
        try add(resources.device)
        for observation in resources.observations { try add(observation) }
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
