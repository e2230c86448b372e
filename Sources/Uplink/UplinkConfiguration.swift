import FHIRExport
import VitalModel

/// How the Uplink talks to the FHIR server: where, in which style, and how patiently.
public struct UplinkConfiguration: Sendable {
    /// How readings are sent.
    public enum Mode: String, Sendable, Hashable, CaseIterable {
        /// Transaction Bundles of conditional creates: all of a batch or nothing, the subject as a conditional
        /// reference the server resolves. What the PHD IG recommends.
        case transaction
        /// One POST per resource with `If-None-Exist`, for servers without transactions. The Patient is resolved
        /// by a search first, because conditional references only work inside transactions.
        case singleRequests = "single-requests"
    }

    /// How an Observation names its subject in transaction mode.
    public enum SubjectStyle: String, Sendable, Hashable, CaseIterable {
        /// `Patient?identifier=SYSTEM|VALUE`, resolved by the server in the transaction.
        case conditional
        /// `Patient/<id>`, found once by a search and cached.
        case resolved
    }

    /// The FHIR base URL, e.g. `https://fhir.example.vn/r4` (no trailing slash needed).
    public var baseURL: String
    public var mode: Mode
    public var subjectStyle: SubjectStyle
    /// Readings per transaction Bundle.
    public var batchSize: Int
    public var backoff: Backoff
    public var export: FHIRExportConfiguration

    public init(baseURL: String, mode: Mode = .transaction, subjectStyle: SubjectStyle = .conditional,
                batchSize: Int = 50, backoff: Backoff = Backoff(), export: FHIRExportConfiguration) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.mode = mode
        self.subjectStyle = subjectStyle
        self.batchSize = max(1, batchSize)
        self.backoff = backoff
        self.export = export
    }
}

/// Capped exponential backoff with jitter, for everything worth retrying: network errors, 408, 429, 5xx.
/// Retries never stop: a reading waits as long as the server is away (ARCHITECTURE §7.3).
public struct Backoff: Sendable, Hashable {
    /// The delay after the first failure.
    public var initial: Duration
    /// No delay is longer than this, however many failures came before.
    public var maximum: Duration
    /// A server's `Retry-After` is honoured up to this long; beyond it the hub would look dead.
    public var maximumRetryAfter: Duration

    public init(initial: Duration = .seconds(1), maximum: Duration = .seconds(300),
                maximumRetryAfter: Duration = .seconds(3600)) {
        self.initial = initial
        self.maximum = max(initial, maximum)
        self.maximumRetryAfter = maximumRetryAfter
    }

    /// The wait after `failures` consecutive failures (1 for the first): `initial · 2^(failures-1)` capped at
    /// `maximum`, then a random point in its upper half, so that many hubs coming back after an outage do not
    /// all knock at once. A server's `Retry-After` takes precedence when given, but never below `initial`: a
    /// `Retry-After: 0`, or a date in the past on a hub whose clock is not yet set, must not make a tight loop.
    public func delay(afterFailures failures: Int, retryAfter: Duration?,
                      using generator: inout some RandomNumberGenerator) -> Duration {
        if let retryAfter { return min(max(retryAfter, initial), maximumRetryAfter) }
        var ceiling = initial
        for _ in 1..<max(1, min(failures, 64)) where ceiling < maximum { ceiling *= 2 }
        ceiling = min(ceiling, maximum)
        let milliseconds = max(1, ceiling.wholeMilliseconds)
        return .milliseconds(Int64.random(in: (milliseconds / 2)...milliseconds, using: &generator))
    }
}
