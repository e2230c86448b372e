import Synchronization
import VitalModel

/// Patient logical ids found by identifier search, cached for the life of the process: a citizen's record
/// does not move, and a stale id would fail loudly (404) rather than misattribute.
final class PatientResolver: Sendable {
    private let cache = Mutex<[PatientIdentifier: String]>([:])

    func cached(_ patient: PatientIdentifier) -> String? { cache.withLock { $0[patient] } }

    func remember(_ patient: PatientIdentifier, id: String) { cache.withLock { $0[patient] = id } }

    /// The ids of the Patients in a search-set Bundle, or nil when the body is not one.
    static func ids(inSearchSet body: [UInt8]) -> [String]? {
        guard let bundle = try? JSONValue.parse(bytes: body), case .string("Bundle")? = bundle["resourceType"] else { return nil }
        guard case .array(let entries)? = bundle["entry"] else { return [] }
        return entries.compactMap { entry in
            guard case .string("Patient")? = entry["resource"]?["resourceType"],
                  case .string(let id)? = entry["resource"]?["id"] else { return nil }
            // Search mode `include` entries are not matches.
            if case .string(let mode)? = entry["search"]?["mode"], mode != "match" { return nil }
            return id
        }
    }
}
