import Foundation
import Outbox
import ProfileCatalog
#if canImport(Glibc)
import Glibc
#endif

/// The `metrics` section of the daemon's configuration: a Prometheus text file for node_exporter's textfile
/// collector. Without the section no file is written: the collector's directory differs between
/// installations, and the service's sandbox must be opened for it (`ReadWritePaths=`), so writing one is
/// something the operator asks for.
///
/// ```json
/// "metrics": { "textfile": "/var/lib/prometheus/node-exporter/vitalgate.prom", "intervalSeconds": 15 }
/// ```
public struct MetricsSettings: Sendable, Hashable {
    /// The file to write; node_exporter reads only names ending in `.prom`.
    public var textfile: String
    /// How often it is rewritten (and once more when the daemon stops).
    public var interval: Duration

    static let defaultIntervalSeconds = 15

    static func parse(_ top: inout ProfileObject) throws(ProfileError) -> MetricsSettings? {
        guard var section = try top.object("metrics") else { return nil }
        let example = "\"/var/lib/prometheus/node-exporter/vitalgate.prom\""
        let textfile = try section.string("textfile", required: true, example: example)!
        guard textfile.hasPrefix("/") else {
            throw section.error("textfile", "\"\(textfile)\" is not an absolute path",
                                fix: "write the full path into node_exporter's textfile directory, e.g. \(example)")
        }
        let name = textfile.split(separator: "/").last.map(String.init) ?? ""
        guard name.hasSuffix(".prom"), name.count > ".prom".count, !textfile.hasSuffix("/") else {
            throw section.error("textfile", "node_exporter's textfile collector reads only files whose names end in .prom",
                                fix: "name a file such as \(example)")
        }
        let seconds = try section.int("intervalSeconds", in: 1...3600) ?? defaultIntervalSeconds
        try section.finish()
        return MetricsSettings(textfile: textfile, interval: .seconds(seconds))
    }
}

/// What the metrics file shows, taken at one instant: the process's counters and the Outbox's figures.
struct MetricsSnapshot: Sendable, Hashable {
    /// The Outbox's figures; they outlive restarts.
    struct Queue: Sendable, Hashable {
        var depth: [ReadingState: Int]
        /// When the oldest pending or in-flight reading was stored.
        var oldestUnsentStoredAt: Date?
        var lastDeliveryAt: Date?
        var quarantined: Int

        init(depth: [ReadingState: Int], oldestUnsentStoredAt: Date?, lastDeliveryAt: Date?, quarantined: Int) {
            self.depth = depth
            self.oldestUnsentStoredAt = oldestUnsentStoredAt
            self.lastDeliveryAt = lastDeliveryAt
            self.quarantined = quarantined
        }

        init(_ summary: QueueSummary) {
            self.init(depth: summary.counts, oldestUnsentStoredAt: summary.oldestPendingStoredAt,
                      lastDeliveryAt: summary.lastDeliveryAt, quarantined: summary.quarantined)
        }
    }

    var counters: ReadingCounters.Values
    /// Nil when the Outbox could not be read: its families are left out rather than shown as zero.
    var queue: Queue?
    var startedAt: Date
    var takenAt: Date
    var version: String
}

/// One metric family of the Prometheus text format: its HELP and TYPE lines, then its samples.
struct MetricFamily: Sendable, Hashable {
    enum Kind: String, Sendable {
        case counter
        case gauge
    }

    struct Label: Sendable, Hashable {
        var name: String
        var value: String
    }

    struct Sample: Sendable, Hashable {
        var labels: [Label]
        var value: Double
    }

    var name: String
    var help: String
    var kind: Kind
    var samples: [Sample]

    init(_ name: String, _ kind: Kind, _ help: String, _ samples: [Sample]) {
        self.name = name
        self.help = help
        self.kind = kind
        self.samples = samples
    }

    init(_ name: String, _ kind: Kind, _ help: String, value: Double) {
        self.init(name, kind, help, [Sample(labels: [], value: value)])
    }

    /// One sample per value of a label.
    init(_ name: String, _ kind: Kind, _ help: String, label: String, _ values: [(String, Int)]) {
        self.init(name, kind, help, values.map { Sample(labels: [Label(name: label, value: $0.0)], value: Double($0.1)) })
    }
}

/// The Prometheus text exposition format (version 0.0.4), as node_exporter's textfile collector reads it.
///
/// Labels say only where a reading came from, why it was refused or which state it is in: never a patient
/// identifier, a device serial, a name or a measured value.
enum MetricsText {
    /// The queue states shown as depth: the readings still waiting for something.
    static let queueStates: [ReadingState] = [.pending, .inFlight, .unassigned, .dead]

    /// The file's text for `snapshot`.
    static func render(_ snapshot: MetricsSnapshot) -> String { render(families(snapshot)) }

    static func families(_ snapshot: MetricsSnapshot) -> [MetricFamily] {
        let counts = snapshot.counters
        let lifetime = " since vitalgated started"
        var families = [
            MetricFamily("vitalgate_readings_received_total", .counter,
                         "Readings offered to the daemon\(lifetime): decoded by device sessions or sent to the ingest socket, "
                            + "with the device frames and ingest entries that could not be read",
                         label: "source", ReadingCounters.Source.allCases.map { ($0.rawValue, counts.received[$0] ?? 0) }),
            MetricFamily("vitalgate_readings_decoded_total", .counter, "Readings produced from what was received\(lifetime)",
                         label: "source", ReadingCounters.Source.allCases.map { ($0.rawValue, counts.decoded[$0] ?? 0) }),
            MetricFamily("vitalgate_readings_rejected_total", .counter,
                         "Readings not stored\(lifetime): unreadable device frames, malformed ingest requests, "
                            + "and readings the Outbox refused (not-stored; the sender was not acknowledged)",
                         label: "reason", ReadingCounters.Rejection.allCases.map { ($0.rawValue, counts.rejected[$0] ?? 0) }),
            MetricFamily("vitalgate_readings_stored_total", .counter, "Readings stored as new rows in the Outbox\(lifetime)",
                         value: Double(counts.stored)),
            MetricFamily("vitalgate_readings_duplicate_total", .counter,
                         "Readings the Outbox already held, re-sent by a device or sender\(lifetime); nothing was written",
                         value: Double(counts.duplicates)),
            MetricFamily("vitalgate_readings_uploaded_total", .counter, "Readings the FHIR server accepted\(lifetime)",
                         value: Double(counts.uploaded)),
            MetricFamily("vitalgate_readings_dead_lettered_total", .counter,
                         "Readings the FHIR server refused for good, moved to the dead letters\(lifetime)",
                         value: Double(counts.deadLettered)),
            MetricFamily("vitalgate_start_time_seconds", .gauge,
                         "When vitalgated started, in Unix seconds; the counters start at zero then",
                         value: seconds(snapshot.startedAt)),
            MetricFamily("vitalgate_build_info", .gauge, "The running VitalGate version (always 1)",
                         [MetricFamily.Sample(labels: [MetricFamily.Label(name: "version", value: snapshot.version)], value: 1)]),
            MetricFamily("vitalgate_outbox_readable", .gauge,
                         "1 when the Outbox answered for this file, 0 when it did not (then the queue figures are absent)",
                         value: snapshot.queue == nil ? 0 : 1),
        ]
        guard let queue = snapshot.queue else { return families }
        let age = queue.oldestUnsentStoredAt.map { max(0, snapshot.takenAt.timeIntervalSince($0)) } ?? 0
        families += [
            MetricFamily("vitalgate_queue_readings", .gauge, "Readings held in the Outbox by state (totals kept across restarts)",
                         label: "state", queueStates.map { ($0.rawValue, queue.depth[$0] ?? 0) }),
            MetricFamily("vitalgate_oldest_unsent_reading_age_seconds", .gauge,
                         "Age of the oldest pending or in-flight reading, in seconds; 0 when none waits",
                         value: (age * 1000).rounded() / 1000),
            MetricFamily("vitalgate_last_upload_timestamp_seconds", .gauge,
                         "When the FHIR server last accepted a reading the Outbox still holds, in Unix seconds; 0 when none",
                         value: queue.lastDeliveryAt.map(seconds) ?? 0),
            MetricFamily("vitalgate_quarantined_rows", .gauge,
                         "Outbox rows that failed their checksum and were set aside (`vitalgate queue` shows them)",
                         value: Double(queue.quarantined)),
        ]
        return families
    }

    /// Unix seconds with millisecond precision.
    static func seconds(_ date: Date) -> Double { (date.timeIntervalSince1970 * 1000).rounded() / 1000 }

    /// The text of `families`: for each, one HELP and one TYPE line, then its samples; ends with a newline.
    static func render(_ families: [MetricFamily]) -> String {
        var text = ""
        for family in families {
            text += "# HELP \(family.name) \(escapeHelp(family.help))\n"
            text += "# TYPE \(family.name) \(family.kind.rawValue)\n"
            for sample in family.samples {
                text += family.name
                if !sample.labels.isEmpty {
                    text += "{" + sample.labels.map { "\($0.name)=\"\(escapeLabelValue($0.value))\"" }.joined(separator: ",") + "}"
                }
                text += " \(format(sample.value))\n"
            }
        }
        return text
    }

    /// HELP text: backslash and line feed escaped.
    static func escapeHelp(_ text: String) -> String {
        text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\n", with: "\\n")
    }

    /// A label value: backslash, double quote and line feed escaped.
    static func escapeLabelValue(_ text: String) -> String {
        escapeHelp(text).replacingOccurrences(of: "\"", with: "\\\"")
    }

    /// A sample value as the format spells it: whole numbers without a fraction, `+Inf`, `-Inf`, `NaN`.
    static func format(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return "\(value)"
    }
}

/// Why the metrics file could not be written. Never fatal: readings are taken and delivered all the same.
struct MetricsFileError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The metrics file.
    var path: String
    /// What failed: `create`, `write`, `fsync`, `close` (the temporary file) or `rename` (over `path`).
    var operation: String
    var code: Int32

    var directory: String { (path as NSString).deletingLastPathComponent }

    var description: String {
        let target = operation == "rename" ? "replace \(path)" : "\(operation) a temporary file beside \(path)"
        return "cannot \(target): \(String(cString: strerror(code))) (errno \(code)). Fix: \(fix)"
    }

    var fix: String {
        switch code {
        case ENOENT, ENOTDIR:
            "create \(directory) (node_exporter's --collector.textfile.directory), or set metrics.textfile to a file in it"
        case EACCES, EPERM:
            "let the vitalgate user write to \(directory), e.g. `setfacl -m u:vitalgate:rwx \(directory)`"
        case EROFS:
            "the service's sandbox keeps \(directory) read-only: add ReadWritePaths=\(directory) with `systemctl edit vitalgated`"
        case ENOSPC, EDQUOT:
            "free space on the file system that holds \(directory)"
        default:
            "check that \(path) names a file in a writable directory"
        }
    }
}

/// Replaces the metrics file atomically: node_exporter never reads half a file.
enum MetricsFileWriter {
    /// Beside the file, hidden and not ending in `.prom`, so the collector never reads it.
    static func temporaryPath(for path: String) -> String {
        let url = URL(fileURLWithPath: path)
        return url.deletingLastPathComponent().appendingPathComponent("." + url.lastPathComponent + ".tmp").path
    }

    /// Writes `text` to a temporary file in the same directory, with mode 0644 (node_exporter runs as another
    /// user) whatever the service's umask, flushes it to disk, then renames it over `path`. The directory is
    /// not synced: after a power cut an older file, or none, is harmless, and the next interval writes anew.
    static func write(_ text: String, to path: String) throws(MetricsFileError) {
        let temporary = temporaryPath(for: path)
        // O_NOFOLLOW: the collector's directory may be writable by others; a planted link is not followed.
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o644)
        guard fd >= 0 else { throw MetricsFileError(path: path, operation: "create", code: errno) }
        func failed(_ operation: String, closing: Bool = true) -> MetricsFileError {
            let code = errno
            if closing { close(fd) }
            unlink(temporary)
            return MetricsFileError(path: path, operation: operation, code: code)
        }
        guard fchmod(fd, 0o644) == 0 else { throw failed("create") }
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if written < 0, errno == EINTR { continue }
            guard written > 0 else {
                if written == 0 { errno = EIO }
                throw failed("write")
            }
            offset += written
        }
        guard fsync(fd) == 0 else { throw failed("fsync") }
        guard close(fd) == 0 else { throw failed("close", closing: false) }
        guard rename(temporary, path) == 0 else { throw failed("rename", closing: false) }
    }
}

/// Writes the metrics file every interval and once more at stop, on a thread of its own. A failure is logged
/// as a warning once, and again only when it changes; the file is never a reason to stop.
final class MetricsFile: Sendable {
    let settings: MetricsSettings
    private let log: DaemonLog
    private let snapshot: @Sendable () -> (MetricsSnapshot, outboxProblem: String?)
    private let stopped = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)

    init(settings: MetricsSettings, log: DaemonLog, snapshot: @escaping @Sendable () -> (MetricsSnapshot, outboxProblem: String?)) {
        self.settings = settings
        self.log = log
        self.snapshot = snapshot
    }

    /// The daemon's metrics file, started; nil when the configuration has none.
    ///
    /// The Outbox's figures are read through a connection of their own (as `vitalgate queue` reads them), so that
    /// taking them never waits for, or holds up, a session's ingest on the daemon's connection; in WAL mode a
    /// reader does not block the writer.
    static func start(_ settings: MetricsSettings?, outbox: Outbox, startedAt: Date, log: DaemonLog,
                      counters: ReadingCounters = .daemon) -> MetricsFile? {
        guard let settings else { return nil }
        let reader = outbox.companion(OutboxOptions(deadLettersInSummary: 0), for: "metrics", log: log)
        let file = MetricsFile(settings: settings, log: log) {
            let queue: MetricsSnapshot.Queue?, problem: String?
            do {
                queue = MetricsSnapshot.Queue(try reader.summary())
                problem = nil
            } catch {
                queue = nil
                problem = "\(error)"
            }
            return (MetricsSnapshot(counters: counters.current, queue: queue, startedAt: startedAt, takenAt: Date(),
                                    version: VitalGateVersion.current), problem)
        }
        log.info("metrics: writing \(settings.textfile) every \(settings.interval.components.seconds) s")
        file.start()
        return file
    }

    func start() {
        let thread = Thread { [self] in run() }
        thread.name = "vitalgate-metrics"
        thread.start()
    }

    /// Writes the file a last time and returns; after `limit` at most, should the disk hang.
    func stop(waitingUpTo limit: Duration = .seconds(3)) {
        stopped.signal()
        _ = finished.wait(timeout: .now() + limit.dispatchInterval)
    }

    private func run() {
        defer { finished.signal() }
        var writing = RepeatedProblem(), reading = RepeatedProblem()
        let period = settings.interval.dispatchInterval
        repeat {
            writeOnce(&writing, &reading)
        } while stopped.wait(timeout: .now() + period) == .timedOut
        writeOnce(&writing, &reading)
    }

    private func writeOnce(_ writing: inout RepeatedProblem, _ reading: inout RepeatedProblem) {
        let (snapshot, outboxProblem) = snapshot()
        switch reading.note(outboxProblem) {
        case .appeared(let problem)?: log.warning("metrics: the Outbox did not answer, so the queue figures are left out: \(problem)")
        case .cleared?: log.info("metrics: the Outbox answers again")
        case nil: break
        }
        var problem: String?
        do { try MetricsFileWriter.write(MetricsText.render(snapshot), to: settings.textfile) } catch { problem = error.description }
        switch writing.note(problem) {
        case .appeared(let problem)?: log.warning("metrics: \(problem)")
        case .cleared?: log.info("metrics: \(settings.textfile) is written again")
        case nil: break
        }
    }
}

/// Which outcomes of a repeated task reach the journal: a problem when it first appears or changes, and its
/// end; not the same problem every interval.
struct RepeatedProblem: Sendable, Hashable {
    enum Change: Sendable, Hashable {
        case appeared(String)
        case cleared
    }

    private(set) var current: String?

    /// Records the latest outcome (nil: it worked); returns what to log, or nil when nothing changed.
    mutating func note(_ problem: String?) -> Change? {
        guard problem != current else { return nil }
        current = problem
        return problem.map(Change.appeared) ?? .cleared
    }
}

extension Outbox {
    /// A connection of its own to this Outbox for a daemon part that reads much or may be slow (metrics, the control
    /// socket), opened as ``OutboxRole/operator`` like `vitalgate queue`: its work never waits for, or holds up, a
    /// session's ingest on the daemon's connection (in WAL mode readers do not block the writer, and writes wait
    /// their turn). If it cannot be opened, the daemon's own connection is used, with a warning naming `part`.
    func companion(_ options: OutboxOptions = OutboxOptions(), for part: String, log: DaemonLog) -> Outbox {
        var options = options
        options.role = .operator
        do { return try Outbox(path: path, options: options) } catch {
            log.warning("\(part): a second Outbox connection could not be opened (\(error)); the daemon's own is used")
            return self
        }
    }
}
