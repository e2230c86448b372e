import Foundation

/// Who performed a measurement for someone else: the community health worker of a visit, sent as the
/// Observation's `performer`. Contains an identifier of a person: never log it.
public struct PerformerIdentifier: Sendable, Hashable, CustomStringConvertible {
    public let system: String
    public let value: String

    public init(system: String, value: String) {
        self.system = system
        self.value = value
    }

    /// `system|value`. Contains the identifier: never log it.
    public var description: String { system + "|" + value }
}

/// How the hub decided whose reading this is, kept beside the reading so that operators see why a reading is
/// held and the upload can name the health worker of a visit. Its text never holds an identifier or a value.
public struct Attribution: Sendable, Hashable {
    /// The rule that decided.
    public enum Rule: String, Sendable, Hashable, CaseIterable {
        /// The only member of a one-person household (or the configured `owner`), for a device bound to no one.
        case owner
        /// A household device bound to one member.
        case householdDevice = "household-device"
        /// A user slot of a multi-user device, bound to a member.
        case householdSlot = "household-slot"
        /// The citizen of the open visit, measured with a kit device during it.
        case visit
        /// The reading came with its citizen (`vitalgate ingest --patient`, an ingest request naming one).
        case given
        /// An operator assigned it (`vitalgate assign`).
        case `operator`
        /// No rule could say whose it is: held, never uploaded, until an operator assigns it.
        case unassigned
    }

    public var rule: Rule
    /// Why a reading is held unassigned (and how to resolve it), or nil.
    public var reason: String?
    /// The Outbox id of the visit that attributed it.
    public var visitID: Int64?

    public init(rule: Rule, reason: String? = nil, visitID: Int64? = nil) {
        self.rule = rule
        self.reason = reason
        self.visitID = visitID
    }

    public static func unassigned(_ reason: String) -> Attribution { Attribution(rule: .unassigned, reason: reason) }
}

extension IdentifierSystems {
    /// Reads a health worker's `SYSTEM|VALUE` (the configuration's `healthWorker.identifier`, `visit start
    /// --performer`). A value in a citizen-ID or social-insurance system is checked like a citizen's. The message
    /// never repeats the value.
    public func parsePerformer(_ text: String) throws(Problem) -> PerformerIdentifier {
        // The same reading of SYSTEM|VALUE as a citizen's (trimmed halves, digit groups of the known systems joined).
        guard let (system, typed) = Self.systemAndValue(text.trimmingWhitespace), !system.isEmpty, !typed.isEmpty,
              !typed.contains("|") else {
            throw Problem(description: "a health worker is identified as SYSTEM|VALUE: the naming system of the "
                + "practitioner's identifier, '|', and the identifier")
        }
        let value = typedValue(typed, in: system)
        if system == citizenID || system == socialInsurance {
            try validate(PatientIdentifier(system: system, value: value))
        }
        return PerformerIdentifier(system: system, value: value)
    }
}
