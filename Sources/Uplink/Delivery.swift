import FHIRExport
import VitalModel

/// One stored reading to deliver, with the citizen it belongs to.
public struct DeliveryItem: Sendable, Hashable {
    /// The Outbox's id for the reading; outcomes are keyed by it.
    public var id: Int64
    public var reading: Reading
    public var subject: PatientIdentifier
    /// The reading's device time collided with a different reading's: identify it by the hub's receive time.
    public var identifyByReceipt: Bool
    /// The health worker who measured during a visit: the Observations' performer.
    public var performer: PerformerIdentifier?

    public init(id: Int64, reading: Reading, subject: PatientIdentifier, identifyByReceipt: Bool = false,
                performer: PerformerIdentifier? = nil) {
        self.id = id
        self.reading = reading
        self.subject = subject
        self.identifyByReceipt = identifyByReceipt
        self.performer = performer
    }
}

/// What became of one reading's delivery attempt.
public enum DeliveryOutcome: Sendable, Hashable {
    /// The server holds it: 201 (created now) or 200 (it was already there; conditional create matched).
    case delivered(status: Int, locations: [String])
    /// Not delivered this time for a reason that passes (network, 408, 429, 5xx, an unreadable reply, refused
    /// credentials): try again later, after `retryAfter` when the server said so. `reason` is for the operator
    /// (it may quote the server, and so the patient); `cause` is safe for the journal.
    case retry(reason: String, cause: RetryCause, retryAfter: Duration?)
    /// The server refused this reading itself (a 4xx isolated to it, or it cannot be expressed in FHIR): it goes
    /// to the dead letters with the server's reason, and the rest of the queue moves on.
    case rejected(status: Int?, reason: String, outcome: String?)
}

/// Why a reading waits for another attempt, in words the journal may carry (never the server's text).
public enum RetryCause: String, Sendable, Hashable {
    case network = "network"
    case accessToken = "no access token"
    case serverError = "server error or overload"
    case unreadableReply = "a reply that is not FHIR"
    case authorization = "credentials refused"
    case redirect = "redirected"
    case wrongAddress = "no FHIR endpoint at the base URL"
    case notFHIR = "a refusal that is not a FHIR OperationOutcome"
    case entryFailed = "an entry failed"
    case notAttempted = "not attempted"
}

/// The outcomes of one `deliver` call and what it cost on the wire.
public struct DeliveryReport: Sendable {
    public var outcomes: [Int64: DeliveryOutcome] = [:]
    /// The server, or the way to it, failed as a whole (network, 5xx, credentials, wrong address): the caller
    /// should back off before the next call. Failures of single readings do not set it.
    public var serverUnavailable = false
    /// The longest `Retry-After` the server asked for.
    public var retryAfter: Duration?
    public var requests = 0
    public var bytesSent = 0
    public var bytesReceived = 0
}

/// Delivers readings to the FHIR server exactly once in effect: conditional creates keyed by the PHD IG
/// identifier make every re-send harmless, so anything uncertain is simply sent again (ARCHITECTURE §7).
///
/// Blocking: call from the uplink's own thread.
public final class Deliverer: Sendable {
    public let configuration: UplinkConfiguration
    let http: HTTPClient
    let authenticator: Authenticator
    let exporter: FHIRExporter
    let resolver: PatientResolver

    public init(configuration: UplinkConfiguration, http: HTTPClient, authenticator: Authenticator) {
        self.configuration = configuration
        self.http = http
        self.authenticator = authenticator
        exporter = FHIRExporter(configuration: configuration.export)
        resolver = PatientResolver()
    }

    /// Sends `items` (at most `batchSize` per request) and says what became of each.
    public func deliver(_ items: [DeliveryItem]) -> DeliveryReport {
        var report = DeliveryReport()
        var session = Session(deliverer: self)
        var start = 0
        while start < items.count {
            let batch = Array(items[start..<min(items.count, start + configuration.batchSize)])
            switch configuration.mode {
            case .transaction: session.transaction(batch)
            case .singleRequests: for item in batch { session.single(item) }
            }
            start += batch.count
            // Once the server is unreachable or overloaded, the rest of this call would fail the same way.
            if session.serverUnavailable {
                for item in items[start...] {
                    session.outcomes[item.id] = .retry(reason: "not attempted: the server was unavailable", cause: .notAttempted,
                                                       retryAfter: session.retryAfter)
                }
                break
            }
        }
        report.outcomes = session.outcomes
        report.serverUnavailable = session.serverUnavailable
        report.retryAfter = session.retryAfter
        report.requests = session.requests
        report.bytesSent = session.bytesSent
        report.bytesReceived = session.bytesReceived
        return report
    }
}

/// How one HTTP exchange ended, from the delivery's point of view.
enum Exchange {
    case response(HTTPResponse)
    /// Nothing usable came back (network, no token); retry everything in the request.
    case transient(String, cause: RetryCause, retryAfter: Duration?)
}

/// What an answer means for the readings in the request (ARCHITECTURE §7.3), decided in one place for
/// transactions, single creates and Patient searches alike.
enum Verdict {
    case accepted
    /// The server or the way to it failed as a whole: retry everything, back off.
    case unavailable(String, cause: RetryCause, retryAfter: Duration?)
    /// The FHIR server refused the content with an OperationOutcome: split, and alone a dead letter.
    case refused(String, body: String?)
    /// A 4xx that is not the FHIR server speaking (a gateway's page): split, and alone a retry, never a dead
    /// letter, because nothing says the reading is at fault.
    case unexplained(String)

    init(_ response: HTTPResponse, baseURL: String) {
        let status = response.status
        let reason = ServerReply.reason(status: status, body: response.body)
        switch StatusClass(status) {
        case .success:
            self = .accepted
        case .transient:
            var after: Duration?
            if status == 429 || status == 503, let value = response.header("retry-after") { after = retryAfter(value, now: Date()) }
            self = .unavailable(reason, cause: .serverError, retryAfter: after)
        case .authorization:
            self = .unavailable(reason + ". Fix: check the server credentials in the configuration (auth) and the client's scopes",
                                cause: .authorization, retryAfter: nil)
        case .redirect:
            let target = response.header("location").map { " to \($0)" } ?? ""
            self = .unavailable("HTTP \(status): the server redirected\(target). Fix: set server.baseURL to the FHIR base itself",
                                cause: .redirect, retryAfter: nil)
        case .rejected where ServerReply.isOperationOutcome(response.body):
            self = .refused(reason, body: ServerReply.keptBody(response.body))
        case .rejected where status == 404 || status == 405:
            self = .unavailable("HTTP \(status) without a FHIR OperationOutcome: nothing at \(baseURL) answers as a FHIR server. "
                + "Fix: check server.baseURL, or set server.mode to single-requests for a server without transactions",
                                cause: .wrongAddress, retryAfter: nil)
        case .rejected:
            self = .unexplained(reason + ", not a FHIR OperationOutcome. Fix: check what stands between the hub and the FHIR server (proxy, gateway)")
        }
    }
}

/// The state of one `deliver` call: outcomes so far and request counters.
struct Session {
    let deliverer: Deliverer
    var outcomes: [Int64: DeliveryOutcome] = [:]
    var serverUnavailable = false
    var retryAfter: Duration?
    var requests = 0
    var bytesSent = 0
    var bytesReceived = 0
    /// In single-requests mode: the server's references for the devices already sent in this call.
    var deviceReferences: [String: String] = [:]

    init(deliverer: Deliverer) { self.deliverer = deliverer }

    /// Records that the server failed as a whole, for every reading in `ids`.
    mutating func unavailable(_ ids: [Int64], _ reason: String, cause: RetryCause, retryAfter after: Duration?) {
        serverUnavailable = true
        if let after { retryAfter = max(retryAfter ?? .zero, after) }
        for id in ids { outcomes[id] = .retry(reason: reason, cause: cause, retryAfter: after) }
    }

    var configuration: UplinkConfiguration { deliverer.configuration }

    // MARK: Transactions

    /// Sends `items` as one transaction; a rejected transaction is split in halves until the bad reading is
    /// alone, so one bad entry never blocks the rest.
    mutating func transaction(_ items: [DeliveryItem]) {
        var prepared: [(item: DeliveryItem, resources: ReadingResources)] = []
        var builder = BundleBuilder(kind: .transaction)
        do { try builder.add(deliverer.exporter.gatewayDevice) } catch { preconditionFailure("an empty bundle accepts the gateway") }
        for item in items {
            let subject: SubjectReference
            switch configuration.subjectStyle {
            case .conditional: subject = .identifier(item.subject)
            case .resolved:
                switch resolvePatient(item) {
                case .found(let id): subject = .resolved(logicalID: id, identifier: item.subject)
                case .failed: continue
                }
            }
            do {
                let resources = try deliverer.exporter.resources(for: item.reading, subject: subject, performer: item.performer, forTransaction: true,
                                                                 identifyByReceipt: item.identifyByReceipt)
                var trial = builder
                try trial.add(resources)
                builder = trial
                prepared.append((item, resources))
            } catch {
                outcomes[item.id] = .rejected(status: nil, reason: "cannot be expressed in FHIR: \(error)", outcome: nil)
            }
        }
        guard !prepared.isEmpty else { return }
        let bundle = builder.build()

        switch post(path: "", body: bundle, extraHeaders: []) {
        case .transient(let reason, let cause, let retryAfter):
            unavailable(prepared.map(\.item.id), reason, cause: cause, retryAfter: retryAfter)
        case .response(let response):
            settle(response, prepared: prepared, bundle: bundle)
        }
    }

    /// Reads a transaction's answer into outcomes, splitting on a rejection.
    mutating func settle(_ response: HTTPResponse, prepared: [(item: DeliveryItem, resources: ReadingResources)],
                         bundle: JSONValue) {
        let items = prepared.map(\.item)
        switch Verdict(response, baseURL: configuration.baseURL) {
        case .accepted:
            guard let entries = ServerReply.entryResponses(response.body), case .array(let sent)? = bundle["entry"],
                  entries.count == sent.count else {
                // The server may have stored it; conditional create makes sending it again safe.
                unavailable(items.map(\.id), "HTTP \(response.status) with a reply that is not a transaction-response for this Bundle",
                            cause: .unreadableReply, retryAfter: nil)
                return
            }
            var responseByURL: [String: ServerReply.EntryResponse] = [:]
            for (entry, answer) in zip(sent, entries) {
                if case .string(let url)? = entry["fullUrl"] { responseByURL[url] = answer }
            }
            for (item, resources) in prepared {
                let mine = [resources.device] + resources.observations
                let answers = mine.compactMap { responseByURL[$0.fullUrl] }
                outcomes[item.id] = outcome(entries: answers, expected: mine.count)
            }
        case .unavailable(let reason, let cause, let retryAfter):
            unavailable(items.map(\.id), reason, cause: cause, retryAfter: retryAfter)
        case .refused where items.count > 1, .unexplained where items.count > 1:
            let half = items.count / 2
            transaction(Array(items[..<half]))
            transaction(Array(items[half...]))
        case .refused(let reason, let body):
            outcomes[items[0].id] = .rejected(status: response.status, reason: reason, outcome: body)
        case .unexplained(let reason):
            outcomes[items[0].id] = .retry(reason: reason, cause: .notFHIR, retryAfter: nil)
        }
    }

    /// One reading's outcome from its entries' answers in a 2xx transaction-response.
    func outcome(entries: [ServerReply.EntryResponse], expected: Int) -> DeliveryOutcome {
        guard entries.count == expected else {
            return .retry(reason: "the server's reply lacks entries for this reading", cause: .entryFailed, retryAfter: nil)
        }
        if let bad = entries.first(where: { !(200...299).contains($0.status) }) {
            let reason = "entry answered \(bad.status)" + (bad.outcome.flatMap(ServerReply.issueText).map { ": " + $0 } ?? "")
            let kept = bad.outcome.flatMap { ServerReply.keptBody(Array($0.serialized().utf8)) }
            switch StatusClass(bad.status) {
            case .rejected: return .rejected(status: bad.status, reason: reason, outcome: kept)
            default: return .retry(reason: reason, cause: .entryFailed, retryAfter: nil)
            }
        }
        let observations = entries.dropFirst()
        let created = observations.contains { $0.status == 201 }
        return .delivered(status: created ? 201 : 200, locations: observations.compactMap(\.location))
    }

    // MARK: Single requests

    /// Sends one reading as single conditional creates: the devices (once per call), then its Observations with
    /// references rewritten to the ids the server gave.
    mutating func single(_ item: DeliveryItem) {
        let patientID: String
        switch resolvePatient(item) {
        case .found(let id): patientID = id
        case .failed: return
        }
        let resources: ReadingResources
        do {
            resources = try deliverer.exporter.resources(for: item.reading,
                                                         subject: .resolved(logicalID: patientID, identifier: item.subject),
                                                         performer: item.performer, forTransaction: false,
                                                         identifyByReceipt: item.identifyByReceipt)
        } catch {
            outcomes[item.id] = .rejected(status: nil, reason: "cannot be expressed in FHIR: \(error)", outcome: nil)
            return
        }
        var references = deviceReferences
        var locations: [String] = []
        var created = false
        for entry in [deliverer.exporter.gatewayDevice, resources.device] + resources.observations
        where references[entry.fullUrl] == nil {
            let resource = Self.rewritingReferences(entry.resource, references)
            let headers = entry.ifNoneExist.map { [(name: "If-None-Exist", value: $0)] } ?? []
            let response: HTTPResponse
            switch post(path: "/" + entry.resourceType, body: resource, extraHeaders: headers) {
            case .transient(let reason, let cause, let retryAfter):
                unavailable([item.id], reason, cause: cause, retryAfter: retryAfter)
                return
            case .response(let answer):
                response = answer
            }
            switch Verdict(response, baseURL: configuration.baseURL) {
            case .accepted:
                guard let location = response.header("location") ?? Self.locationFromBody(response.body),
                      let reference = ServerReply.reference(fromLocation: location, resourceType: entry.resourceType) else {
                    outcomes[item.id] = .retry(reason: "HTTP \(response.status) without a Location for the new \(entry.resourceType)",
                                               cause: .unreadableReply, retryAfter: nil)
                    return
                }
                references[entry.fullUrl] = reference
                if entry.resourceType == "Device" { deviceReferences[entry.fullUrl] = reference }
                if entry.resourceType == "Observation" {
                    locations.append(location)
                    created = created || response.status == 201
                }
            case .unavailable(let reason, let cause, let retryAfter):
                unavailable([item.id], reason, cause: cause, retryAfter: retryAfter)
                return
            case .refused(let reason, let body):
                outcomes[item.id] = .rejected(status: response.status, reason: reason, outcome: body)
                return
            case .unexplained(let reason):
                outcomes[item.id] = .retry(reason: reason, cause: .notFHIR, retryAfter: nil)
                return
            }
        }
        outcomes[item.id] = .delivered(status: created ? 201 : 200, locations: locations)
    }

    /// A server that answers a create with the resource but no Location header still says where it is.
    static func locationFromBody(_ body: [UInt8]) -> String? {
        guard let resource = try? JSONValue.parse(bytes: body), case .string(let type)? = resource["resourceType"],
              case .string(let id)? = resource["id"] else { return nil }
        return type + "/" + id
    }

    /// Replaces `urn:uuid:` references with the server's ids, everywhere in the resource.
    static func rewritingReferences(_ value: JSONValue, _ references: [String: String]) -> JSONValue {
        guard !references.isEmpty else { return value }
        switch value {
        case .object(let members):
            return .object(members.map { key, member in
                if key == "reference", case .string(let url) = member, let replacement = references[url] {
                    return (key, .string(replacement))
                }
                return (key, rewritingReferences(member, references))
            })
        case .array(let items): return .array(items.map { rewritingReferences($0, references) })
        default: return value
        }
    }

    // MARK: Patients

    enum Resolution {
        case found(String)
        /// The reading's outcome is recorded.
        case failed
    }

    mutating func resolvePatient(_ item: DeliveryItem) -> Resolution {
        if let id = deliverer.resolver.cached(item.subject) { return .found(id) }
        let query = "/Patient?" + identifierMatchQuery(system: item.subject.system, value: item.subject.value) + "&_elements=id"
        let response: HTTPResponse
        switch get(path: query) {
        case .transient(let reason, let cause, let retryAfter):
            unavailable([item.id], reason, cause: cause, retryAfter: retryAfter)
            return .failed
        case .response(let answer):
            response = answer
        }
        switch Verdict(response, baseURL: configuration.baseURL) {
        case .accepted:
            switch PatientResolver.ids(inSearchSet: response.body) {
            case .some(let ids) where ids.count == 1:
                deliverer.resolver.remember(item.subject, id: ids[0])
                return .found(ids[0])
            case .some(let ids) where ids.isEmpty:
                outcomes[item.id] = .rejected(status: 404, reason: "the server has no Patient with this reading's identifier. Fix: "
                    + "register the citizen on the server, then retry the dead letter", outcome: nil)
            case .some:
                outcomes[item.id] = .rejected(status: 412, reason: "the server has several Patients with this reading's "
                    + "identifier, so it cannot be attributed safely. Fix: merge them on the server, then retry", outcome: nil)
            case .none:
                unavailable([item.id], "HTTP \(response.status) with a reply that is not a search Bundle", cause: .unreadableReply,
                            retryAfter: nil)
            }
        case .unavailable(let reason, let cause, let retryAfter):
            unavailable([item.id], reason, cause: cause, retryAfter: retryAfter)
        case .refused(let reason, let body):
            outcomes[item.id] = .rejected(status: response.status, reason: reason, outcome: body)
        case .unexplained(let reason):
            outcomes[item.id] = .retry(reason: reason, cause: .notFHIR, retryAfter: nil)
        }
        return .failed
    }

    // MARK: HTTP

    mutating func post(path: String, body: JSONValue, extraHeaders: [(name: String, value: String)]) -> Exchange {
        let bytes = Array(body.serialized().utf8)
        return exchange(method: "POST", path: path, body: bytes,
                        headers: [("Content-Type", "application/fhir+json"), ("Prefer", "return=minimal")] + extraHeaders)
    }

    mutating func get(path: String) -> Exchange {
        exchange(method: "GET", path: path, body: nil, headers: [])
    }

    /// One request with authorization; after a 401 the token is renewed and the request sent once more.
    mutating func exchange(method: String, path: String, body: [UInt8]?, headers: [(name: String, value: String)]) -> Exchange {
        var renewed = false
        while true {
            var request = HTTPRequest(method: method, url: configuration.baseURL + path,
                                      headers: [(name: "Accept", value: "application/fhir+json")] + headers, body: body)
            do {
                if let authorization = try deliverer.authenticator.authorization() {
                    request.headers.append((name: "Authorization", value: authorization))
                }
            } catch {
                return .transient("cannot get an access token: \(error)", cause: .accessToken, retryAfter: error.retryAfter)
            }
            requests += 1
            bytesSent += body?.count ?? 0
            let response: HTTPResponse
            do {
                response = try deliverer.http.send(request)
            } catch {
                return .transient("\(error)", cause: .network, retryAfter: nil)
            }
            bytesReceived += response.body.count
            if response.status == 401, !renewed {
                deliverer.authenticator.invalidate()
                renewed = true
                continue
            }
            return .response(response)
        }
    }

}

/// What a status means for delivery (ARCHITECTURE §7.3).
enum StatusClass {
    case success
    /// Network-like: 408, 429, 5xx. Retry forever.
    case transient
    /// 401 (after one renewal) and 403: a configuration problem, not the reading's fault. Retry and report.
    case authorization
    /// 3xx: the base URL is wrong. Retry and report.
    case redirect
    /// Any other 4xx: the request itself is refused. Split, then dead-letter the reading alone.
    case rejected

    init(_ status: Int) {
        switch status {
        case 200...299: self = .success
        case 408, 429, 500...599: self = .transient
        case 401, 403, 407: self = .authorization
        case 300...399: self = .redirect
        case 400...499: self = .rejected
        default: self = .transient
        }
    }
}

import Foundation
