/// Why a reading cannot be turned into FHIR, and what to do about it.
public struct ExportError: Error, Sendable, Hashable, CustomStringConvertible {
    public var problem: String
    public var hint: String

    public init(problem: String, hint: String) {
        self.problem = problem
        self.hint = hint
    }

    public var description: String { problem + ". " + hint }
}
