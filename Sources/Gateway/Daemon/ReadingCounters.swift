import Outbox
import Synchronization

/// What happened to readings in this process, for the metrics file: counted where readings arrive (device
/// sessions, the ingest socket), where the Outbox takes them, and where the uplink records an outcome.
///
/// The counts live as long as the process and start at zero when `vitalgated` starts (the metrics file's
/// `vitalgate_start_time_seconds` says when), which Prometheus' `rate()` and `increase()` read as a counter
/// reset. Totals that outlive a restart are the Outbox's own, and the metrics file shows them as gauges.
///
/// For every source, `received = decoded + rejected as unreadable or malformed`, and over all sources
/// `decoded = stored + duplicates + rejected as not stored`. Holding the lock only to add a few integers,
/// it never makes a session wait on I/O.
final class ReadingCounters: Sendable {
    /// The daemon's counters: the ones the metrics file shows. Components take them as a default, and tests
    /// pass their own.
    static let daemon = ReadingCounters()

    /// Where readings came from. Device sessions of every transport are `device`; `vitalgate ingest` and other
    /// senders on the ingest socket are `ingest`.
    enum Source: String, Sendable, CaseIterable {
        case device
        case ingest
    }

    /// Why readings were not stored.
    enum Rejection: String, Sendable, CaseIterable {
        /// A frame or value from a device that could not be decoded (counted when its session ends).
        case unreadable
        /// An ingest request, or a reading in it, that could not be parsed; a request that is not JSON, or has
        /// no readings array, counts as one. Nothing of such a request is stored.
        case malformed
        /// Decoded, but the Outbox refused to store it (a full disk, a database error): the device was not
        /// acknowledged, the sender was told to retry.
        case notStored = "not-stored"
    }

    /// A copy of the counts at one instant.
    struct Values: Sendable, Hashable {
        var received: [Source: Int] = [:]
        var decoded: [Source: Int] = [:]
        var rejected: [Rejection: Int] = [:]
        /// New rows in the Outbox.
        var stored = 0
        /// Readings the Outbox already held (a device re-sending its memory); nothing was written.
        var duplicates = 0
        /// Readings the server accepted, as recorded in the Outbox by the uplink.
        var uploaded = 0
        /// Readings the server refused for good, moved to the dead letters by the uplink.
        var deadLettered = 0

        init() {}
    }

    private let values = Mutex(Values())

    init() {}

    /// The counts now.
    var current: Values { values.withLock { $0 } }

    /// Readings a session or a sender handed over, before the Outbox sees them.
    func decoded(_ count: Int, from source: Source) {
        guard count > 0 else { return }
        values.withLock {
            $0.received[source, default: 0] += count
            $0.decoded[source, default: 0] += count
        }
    }

    /// Frames or values a device sent that could not be decoded.
    func unreadable(_ count: Int) {
        guard count > 0 else { return }
        values.withLock {
            $0.received[.device, default: 0] += count
            $0.rejected[.unreadable, default: 0] += count
        }
    }

    /// Ingest entries (or a whole request) that could not be parsed.
    func malformed(_ count: Int) {
        guard count > 0 else { return }
        values.withLock {
            $0.received[.ingest, default: 0] += count
            $0.rejected[.malformed, default: 0] += count
        }
    }

    /// Decoded readings the Outbox refused to store.
    func notStored(_ count: Int) {
        guard count > 0 else { return }
        values.withLock { $0.rejected[.notStored, default: 0] += count }
    }

    /// What the Outbox did with decoded readings.
    func ingested(_ outcomes: [IngestOutcome]) {
        let new = outcomes.count(where: { if case .stored = $0 { true } else { false } })
        values.withLock {
            $0.stored += new
            $0.duplicates += outcomes.count - new
        }
    }

    /// Counts `count` decoded readings from `source`, then what `store` (the Outbox's ingest) did with them; a
    /// throw counts them as not stored and is passed on.
    func storing(_ count: Int, from source: Source, _ store: () throws -> [IngestOutcome]) rethrows -> [IngestOutcome] {
        decoded(count, from: source)
        do {
            let outcomes = try store()
            ingested(outcomes)
            return outcomes
        } catch {
            notStored(count)
            throw error
        }
    }

    /// An uplink outcome the Outbox has committed.
    func recorded(_ write: OutboxWrite) {
        switch write {
        case .delivered(let records, _): values.withLock { $0.uploaded += records.count }
        case .dead: values.withLock { $0.deadLettered += 1 }
        case .retry: break
        }
    }
}
