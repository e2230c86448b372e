import Assignment
import Foundation
import Outbox
import ProfileCatalog
import Synchronization
import Testing
import VitalModel
@testable import Gateway
#if canImport(Glibc)
import Glibc
#endif

/// The metrics file: its configuration, the Prometheus text it renders, the atomic writer, and the counts the
/// daemon's components feed it.
@Suite("metrics file")
struct MetricsFileTests {
    // MARK: configuration

    func configuration(_ metrics: String) throws(ProfileError) -> DaemonConfiguration {
        let text = "{\n  \"server\": {\"baseURL\": \"https://x\"},\n  \"metrics\": \(metrics)\n}"
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("vitalgate-metrics-config-\(UUID().uuidString).json").path
        _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try DaemonConfiguration.load(path)
    }

    @Test("without a metrics section no file is written; with one, the interval defaults to 15 s")
    func settings() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("vitalgate-metrics-none-\(UUID().uuidString).json").path
        _ = FileManager.default.createFile(atPath: path, contents: Data(#"{"server": {"baseURL": "https://x"}}"#.utf8))
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(try DaemonConfiguration.load(path).metrics == nil)

        let defaulted = try configuration(#"{"textfile": "/var/lib/prometheus/node-exporter/vitalgate.prom"}"#).metrics
        #expect(defaulted == MetricsSettings(textfile: "/var/lib/prometheus/node-exporter/vitalgate.prom", interval: .seconds(15)))
        let set = try configuration(#"{"textfile": "/srv/textfiles/hub.prom", "intervalSeconds": 60}"#).metrics
        #expect(set == MetricsSettings(textfile: "/srv/textfiles/hub.prom", interval: .seconds(60)))
    }

    @Test("each mistake in the metrics section names line 3, the field and a fix",
          arguments: [
              (#"{"intervalSeconds": 15}"#, "metrics: \"textfile\" is missing"),
              (#"{"textfile": "vitalgate.prom"}"#, "metrics.textfile: \"vitalgate.prom\" is not an absolute path"),
              (#"{"textfile": "/var/lib/prometheus/node-exporter/vitalgate.txt"}"#, "metrics.textfile: node_exporter's textfile collector reads only"),
              (#"{"textfile": "/var/lib/prometheus/node-exporter/.prom"}"#, "metrics.textfile: node_exporter's textfile collector reads only"),
              (#"{"textfile": "/var/lib/prometheus/node-exporter/"}"#, "metrics.textfile: node_exporter's textfile collector reads only"),
              (#"{"textfile": 7}"#, "metrics.textfile: expected a string"),
              (#"{"textfile": "/t/v.prom", "intervalSeconds": 0}"#, "metrics.intervalSeconds: 0 is out of range"),
              (#"{"textfile": "/t/v.prom", "intervalSeconds": 3601}"#, "metrics.intervalSeconds: 3601 is out of range"),
              (#"{"textfile": "/t/v.prom", "intervalSeconds": 1.5}"#, "metrics.intervalSeconds: expected a whole number"),
              (#"{"textfile": "/t/v.prom", "intervalSecond": 15}"#, "metrics.intervalSecond: unknown member (did you mean \"intervalSeconds\"?)"),
              (#"true"#, "metrics: expected an object"),
          ])
    func settingsErrors(metrics: String, expected: String) {
        do {
            let accepted = try configuration(metrics)
            Issue.record("accepted \(metrics): \(String(describing: accepted.metrics))")
        } catch {
            #expect(error.location?.line == 3, "\(error)")
            #expect(error.description.contains(expected), "\(error)")
            #expect(error.description.contains("Fix: "), "\(error)")
        }
    }

    // MARK: rendering

    static let started = Date(timeIntervalSince1970: 1_767_225_600.25)

    func snapshot(queue: MetricsSnapshot.Queue?) -> MetricsSnapshot {
        var counters = ReadingCounters.Values()
        counters.received = [.device: 41, .ingest: 12]
        counters.decoded = [.device: 38, .ingest: 10]
        counters.rejected = [.unreadable: 3, .malformed: 2, .notStored: 4]
        counters.stored = 37
        counters.duplicates = 7
        counters.uploaded = 30
        counters.deadLettered = 1
        return MetricsSnapshot(counters: counters, queue: queue, startedAt: Self.started, takenAt: Self.started.addingTimeInterval(600),
                               version: "0.1.0")
    }

    var queue: MetricsSnapshot.Queue {
        MetricsSnapshot.Queue(depth: [.pending: 5, .inFlight: 2, .unassigned: 3, .dead: 1, .delivered: 900, .discarded: 4],
                              oldestUnsentStoredAt: Self.started.addingTimeInterval(600 - 90.5),
                              lastDeliveryAt: Self.started.addingTimeInterval(590.125), quarantined: 2)
    }

    @Test("the rendered file follows the text format's rules and carries every figure of the snapshot")
    func rendering() throws {
        let snapshot = snapshot(queue: queue)
        let parsed = try Exposition(MetricsText.render(snapshot))
        let counters = snapshot.counters
        for source in ReadingCounters.Source.allCases {
            #expect(parsed.value("vitalgate_readings_received_total", ["source": source.rawValue]) == Double(counters.received[source]!))
            #expect(parsed.value("vitalgate_readings_decoded_total", ["source": source.rawValue]) == Double(counters.decoded[source]!))
        }
        for reason in ReadingCounters.Rejection.allCases {
            #expect(parsed.value("vitalgate_readings_rejected_total", ["reason": reason.rawValue]) == Double(counters.rejected[reason]!))
        }
        #expect(parsed.value("vitalgate_readings_stored_total") == Double(counters.stored))
        #expect(parsed.value("vitalgate_readings_duplicate_total") == Double(counters.duplicates))
        #expect(parsed.value("vitalgate_readings_uploaded_total") == Double(counters.uploaded))
        #expect(parsed.value("vitalgate_readings_dead_lettered_total") == Double(counters.deadLettered))
        #expect(parsed.value("vitalgate_start_time_seconds") == Self.started.timeIntervalSince1970)
        #expect(parsed.value("vitalgate_build_info", ["version": "0.1.0"]) == 1)
        #expect(parsed.value("vitalgate_outbox_readable") == 1)
        for state in [ReadingState.pending, .inFlight, .unassigned, .dead] {
            #expect(parsed.value("vitalgate_queue_readings", ["state": state.rawValue]) == Double(queue.depth[state]!))
        }
        // Delivered and discarded readings are no queue.
        #expect(parsed.series.keys.filter { $0.hasPrefix("vitalgate_queue_readings") }.count == 4)
        #expect(parsed.value("vitalgate_oldest_unsent_reading_age_seconds") == 90.5)
        #expect(parsed.value("vitalgate_last_upload_timestamp_seconds") == queue.lastDeliveryAt!.timeIntervalSince1970)
        #expect(parsed.value("vitalgate_quarantined_rows") == 2)
        #expect(parsed.types.values.filter { $0 == "counter" }.count == 7)
        // Labels say where from, why or which state: never who, which device or what was measured.
        #expect(parsed.labelNames == ["reason", "source", "state", "version"])
    }

    @Test("an Outbox that did not answer leaves its figures out instead of showing zeros; nothing waiting is age 0")
    func withoutQueue() throws {
        let parsed = try Exposition(MetricsText.render(snapshot(queue: nil)))
        #expect(parsed.value("vitalgate_outbox_readable") == 0)
        #expect(parsed.types["vitalgate_queue_readings"] == nil && parsed.types["vitalgate_quarantined_rows"] == nil)
        #expect(parsed.types["vitalgate_oldest_unsent_reading_age_seconds"] == nil)
        #expect(parsed.value("vitalgate_readings_stored_total") == 37)

        var idle = queue
        idle.oldestUnsentStoredAt = nil
        idle.lastDeliveryAt = nil
        let empty = try Exposition(MetricsText.render(snapshot(queue: idle)))
        #expect(empty.value("vitalgate_oldest_unsent_reading_age_seconds") == 0)
        #expect(empty.value("vitalgate_last_upload_timestamp_seconds") == 0)
        // A reading stored "after" the snapshot (the clock was stepped back) is not a negative age.
        idle.oldestUnsentStoredAt = Self.started.addingTimeInterval(3600)
        #expect(try Exposition(MetricsText.render(snapshot(queue: idle))).value("vitalgate_oldest_unsent_reading_age_seconds") == 0)
    }

    @Test("label values and help text are escaped so that any text reads back as it was")
    func escaping() throws {
        let awkward = "a\\b\"c\nd }, e=\"f"
        let families = [
            MetricFamily("test_escapes", .gauge, "help with \\ and\na line feed",
                         [MetricFamily.Sample(labels: [MetricFamily.Label(name: "text", value: awkward)], value: 1),
                          MetricFamily.Sample(labels: [MetricFamily.Label(name: "text", value: "")], value: 2)]),
        ]
        let text = MetricsText.render(families)
        #expect(text.contains(#"test_escapes{text="a\\b\"c\nd }, e=\"f"} 1"#))
        #expect(text.contains(#"# HELP test_escapes help with \\ and\na line feed"#))
        let parsed = try Exposition(text)
        #expect(parsed.value("test_escapes", ["text": awkward]) == 1)
        #expect(parsed.value("test_escapes", ["text": ""]) == 2)
        #expect(parsed.help["test_escapes"] == "help with \\ and\na line feed")
    }

    @Test("the format checker these tests use refuses what the format forbids",
          arguments: [
              "# HELP a_total x\n# TYPE a_total counter\na_total 1",
              "# HELP a_total x\n# TYPE a_total counter\na_total 1\na_total 2\n",
              "# HELP a_total x\n# HELP a_total y\n# TYPE a_total counter\na_total 1\n",
              "# HELP a x\n# TYPE a counter\na 1\n",
              "# HELP a x\na 1\n# TYPE a gauge\n",
              "# HELP a x\n# TYPE a gauge\na{l=\"x\\q\"} 1\n",
              "# HELP a x\n# TYPE a gauge\na{l=\"x\"\"} 1\n",
              "# HELP a x\n# TYPE a gauge\na{__l=\"x\"} 1\n",
              "# HELP a x\n# TYPE a gauge\na inf\n",
              "# HELP a x\n# TYPE a gauge\n# HELP b x\n# TYPE b gauge\nb 1\na 1\n",
              "# TYPE a gauge\na 1\n",
          ])
    func checkerRefuses(text: String) {
        #expect(throws: Exposition.Problem.self) { try Exposition(text) }
    }

    @Test("sample values are spelled as the format reads them",
          arguments: [(0.0, "0"), (-0.0, "0"), (42, "42"), (1_767_225_600.25, "1767225600.25"), (90.5, "90.5"),
                      (.infinity, "+Inf"), (-.infinity, "-Inf"), (.nan, "NaN"), (1e20, "1e+20")])
    func values(value: Double, expected: String) {
        #expect(MetricsText.format(value) == expected)
    }

    // MARK: the atomic writer

    func temporaryDirectory() throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vitalgate-metrics-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        return directory
    }

    @Test("the file is replaced whole with mode 0644, through a hidden temporary name the collector never reads")
    func atomicWrite() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/vitalgate.prom"
        let temporary = MetricsFileWriter.temporaryPath(for: path)
        #expect(temporary != path && (temporary as NSString).deletingLastPathComponent == directory)
        #expect(URL(fileURLWithPath: temporary).lastPathComponent.hasPrefix(".") && !temporary.hasSuffix(".prom"))

        // An older file that only its owner could read is replaced by a new one that node_exporter can read.
        _ = FileManager.default.createFile(atPath: path, contents: Data("old\n".utf8), attributes: [.posixPermissions: 0o600])
        let before = try FileManager.default.attributesOfItem(atPath: path)[.systemFileNumber] as? Int
        let text = MetricsText.render(snapshot(queue: queue))
        try MetricsFileWriter.write(text, to: path)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == text)
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.posixPermissions] as? Int) == 0o644)
        #expect((attributes[.systemFileNumber] as? Int) != before, "written in place, not renamed over")
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["vitalgate.prom"])
    }

    @Test("a reader never sees part of a file while it is rewritten")
    func noPartialFile() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/vitalgate.prom"
        // Large enough that a write in place would be seen half done.
        let versions = ["a", "b"].map { String(repeating: "# HELP x \($0)\n", count: 40_000) }
        try MetricsFileWriter.write(versions[0], to: path)
        // The writer alternates the two versions until the reader has seen both (so reads really fell between
        // writes) and read many times; a liveness bound only, never a timing assertion.
        let stop = Atomic<Bool>(false)
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            var round = 1
            while !stop.load(ordering: .relaxed) {
                try? MetricsFileWriter.write(versions[round % 2], to: path)
                round += 1
            }
            done.signal()
        }
        thread.start()
        var reads = 0, torn = 0
        var seen: Set<Int> = []
        let deadline = ContinuousClock.now + .seconds(120)
        while seen.count < 2 || reads < 200 {
            if ContinuousClock.now > deadline { break }
            let text = try String(contentsOfFile: path, encoding: .utf8)
            if let version = versions.firstIndex(of: text) { seen.insert(version) } else { torn += 1 }
            reads += 1
        }
        stop.store(true, ordering: .relaxed)
        done.wait()
        #expect(seen.count == 2, "the reader never saw the writer alternate (\(reads) reads)")
        #expect(torn == 0, "\(torn) of \(reads) reads saw a partial file")
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["vitalgate.prom"])
    }

    @Test("a missing directory is an error that says how to fix it, and leaves nothing behind")
    func missingDirectory() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/absent/vitalgate.prom"
        do {
            try MetricsFileWriter.write("x 1\n", to: path)
            Issue.record("wrote into a missing directory")
        } catch {
            #expect(error.code == ENOENT && error.operation == "create")
            #expect(error.description.contains("Fix: create \(directory)/absent"), "\(error)")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory).isEmpty)
    }

    @Test("a textfile path that is a directory fails at the rename and the temporary file is removed")
    func pathIsDirectory() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createDirectory(atPath: directory + "/vitalgate.prom", withIntermediateDirectories: false)
        do {
            try MetricsFileWriter.write("x 1\n", to: directory + "/vitalgate.prom")
            Issue.record("replaced a directory")
        } catch {
            #expect(error.operation == "rename" && error.code == EISDIR, "\(error)")
            #expect(error.description.contains("Fix: "))
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["vitalgate.prom"])
    }

    @Test("a link planted at the temporary name is not followed")
    func plantedLink() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let victim = directory + "/victim"
        _ = FileManager.default.createFile(atPath: victim, contents: Data("keep\n".utf8))
        let path = directory + "/vitalgate.prom"
        try FileManager.default.createSymbolicLink(atPath: MetricsFileWriter.temporaryPath(for: path), withDestinationPath: victim)
        #expect(throws: MetricsFileError.self) { try MetricsFileWriter.write("x 1\n", to: path) }
        #expect(try String(contentsOfFile: victim, encoding: .utf8) == "keep\n")
    }

    @Test("a failure is logged when it appears or changes, and once when it ends; not every interval")
    func repeatedProblem() {
        var problem = RepeatedProblem()
        let outcomes: [String?] = [nil, "ENOENT", "ENOENT", "ENOENT", "EACCES", nil, nil, "ENOENT"]
        let logged = outcomes.map { problem.note($0) }
        #expect(logged == [nil, .appeared("ENOENT"), nil, nil, .appeared("EACCES"), .cleared, nil, .appeared("ENOENT")])
    }

    // MARK: counting and the running file

    func outbox(_ directory: String, freeSpace: @escaping FreeSpaceProvider = { _ in 1 << 40 }) throws -> Outbox {
        try Outbox(path: directory + "/outbox.db", options: OutboxOptions(freeSpace: freeSpace))
    }

    func readings(_ count: Int, from first: Int = 0) -> [Reading] {
        (first..<first + count).map { number in
            let rate = MeasuredValue(.heartRate, .number(DecimalValue(mantissa: Int64(60 + number % 40), exponent: 0)), .perMinute)
            let received = HubTimestamp(instant: Date(timeIntervalSince1970: 1_760_000_000 + Double(number)), utcOffsetSeconds: 25_200)
            return Reading(kind: .heartRate, values: [rate], receivedAt: received, device: DeviceIdentity(bluetoothAddress: EUI48("02:00:00:00:00:09")!),
                           source: ReadingSource(profileID: "bluetooth-sig/heart-rate", frame: "2A37"), raw: [0x00, UInt8(60 + number % 40)])
        }
    }

    static let patient = PatientIdentifier(system: IdentifierSystems.vietnam.citizenID, value: "099199000001")

    @Test("a device session's readings count as decoded, then stored or duplicate; a refusing Outbox as not stored")
    func sessionCounts() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let counters = ReadingCounters()
        let sink = OutboxSink(outbox: try outbox(directory), assignment: AssignmentRules(household: .single(Self.patient)), counters: counters, onStored: {})
        try sink.store(readings(3))
        try sink.store(readings(4))
        counters.unreadable(2)
        var values = counters.current
        #expect(values.decoded[.device] == 7 && values.received[.device] == 9 && values.rejected[.unreadable] == 2)
        #expect(values.stored == 4 && values.duplicates == 3 && values.rejected[.notStored] == nil)

        let full = OutboxSink(outbox: try outbox(try temporaryDirectory(), freeSpace: { _ in 0 }), assignment: AssignmentRules(household: .single(Self.patient)),
                              counters: counters, onStored: {})
        #expect(throws: (any Error).self) { try full.store(readings(2, from: 100)) }
        values = counters.current
        #expect(values.decoded[.device] == 9 && values.rejected[.notStored] == 2 && values.stored == 4)
    }

    @Test("ingest requests count what arrived, what could not be read, what was stored and what was already there")
    func ingestCounts() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let counters = ReadingCounters()
        let server = IngestServer(path: directory + "/ingest.sock", outbox: try outbox(directory), assignment: AssignmentRules(household: .single(Self.patient)),
                                  identifierSystems: .vietnam, log: DaemonLog(), counters: counters, onStored: {})
        func send(_ entries: [JSONValue]) -> JSONValue {
            server.handle(Array(JSONValue.object([("readings", .array(entries))]).serialized().utf8))
        }
        let good = readings(3).map { JSONValue.object([("reading", $0.json)]) }
        #expect(server.handle(Array("not json".utf8))["ok"] == .bool(false))
        #expect(send([good[0], ["reading": ["kind": "nonsense"]]])["ok"] == .bool(false))
        #expect(send(good)["ok"] == .bool(true))
        #expect(send(Array(good.prefix(2)))["ok"] == .bool(true))
        let values = counters.current
        #expect(values.received[.ingest] == 1 + 2 + 3 + 2)
        #expect(values.rejected[.malformed] == 3)
        #expect(values.decoded[.ingest] == 5 && values.stored == 3 && values.duplicates == 2)
        #expect(values.received[.device] == nil)
    }

    @Test("the uplink's committed outcomes count as uploaded and dead-lettered; a retry is neither")
    func uplinkCounts() {
        let counters = ReadingCounters()
        counters.recorded(.delivered([DeliveryRecord(id: OutboxReadingID(1), status: 201, locations: []),
                                      DeliveryRecord(id: OutboxReadingID(2), status: 200, locations: [])], created: 1))
        counters.recorded(.retry([OutboxReadingID(3)], error: "HTTP 503", notBefore: Date()))
        counters.recorded(.dead(OutboxReadingID(4), status: 422, reason: "HTTP 422", outcome: nil))
        #expect(counters.current.uploaded == 2 && counters.current.deadLettered == 1)
    }

    @Test("the daemon's metrics file reads the Outbox's queue through its own connection")
    func runningFile() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let outbox = try outbox(directory)
        _ = try outbox.ingest(readings(3).map { IncomingReading(reading: $0, subject: Self.patient) }
            + readings(2, from: 50).map { IncomingReading(reading: $0, subject: nil) })
        let settings = MetricsSettings(textfile: directory + "/vitalgate.prom", interval: .seconds(3600))
        let started = Date()
        let file = try #require(MetricsFile.start(settings, outbox: outbox, startedAt: started, log: DaemonLog(), counters: ReadingCounters()))
        file.stop(waitingUpTo: .seconds(60))
        let parsed = try Exposition(try String(contentsOfFile: settings.textfile, encoding: .utf8))
        #expect(parsed.value("vitalgate_outbox_readable") == 1)
        #expect(parsed.value("vitalgate_queue_readings", ["state": "pending"]) == 3)
        #expect(parsed.value("vitalgate_queue_readings", ["state": "unassigned"]) == 2)
        #expect(parsed.value("vitalgate_queue_readings", ["state": "in-flight"]) == 0)
        #expect(parsed.value("vitalgate_start_time_seconds") == MetricsText.seconds(started))
        #expect(try #require(parsed.value("vitalgate_oldest_unsent_reading_age_seconds")) >= 0)
        let mode = try FileManager.default.attributesOfItem(atPath: settings.textfile)[.posixPermissions] as? Int
        #expect(mode == 0o644)
        #expect(MetricsFile.start(nil, outbox: outbox, startedAt: started, log: DaemonLog()) == nil)
    }

    @Test("stopping writes the file once more, with the counts as they are at the stop")
    func writtenAtStop() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let counters = ReadingCounters()
        let firstTaken = DispatchSemaphore(value: 0)
        let settings = MetricsSettings(textfile: directory + "/vitalgate.prom", interval: .seconds(3600))
        let file = MetricsFile(settings: settings, log: DaemonLog()) {
            let snapshot = MetricsSnapshot(counters: counters.current, queue: nil, startedAt: Date(), takenAt: Date(), version: "0.1.0")
            firstTaken.signal()
            return (snapshot, nil)
        }
        file.start()
        // Liveness bound only: the first snapshot is taken as the thread starts.
        #expect(firstTaken.wait(timeout: .now() + .seconds(60)) == .success)
        counters.decoded(4, from: .device)
        counters.ingested(Array(repeating: .stored(OutboxReadingID(1)), count: 4))
        file.stop(waitingUpTo: .seconds(60))
        let parsed = try Exposition(try String(contentsOfFile: settings.textfile, encoding: .utf8))
        #expect(parsed.value("vitalgate_readings_stored_total") == 4)
        #expect(parsed.value("vitalgate_readings_decoded_total", ["source": "device"]) == 4)
    }
}

/// A strict reader of the Prometheus text format (0.0.4), written from the format's rules and independent of
/// the renderer: it throws at the first line that breaks one.
struct Exposition {
    struct Problem: Error, CustomStringConvertible {
        let description: String
    }

    /// Values by series, `name{label="value",…}` with labels sorted by name.
    private(set) var series: [String: Double] = [:]
    private(set) var types: [String: String] = [:]
    private(set) var help: [String: String] = [:]
    private(set) var labelNames: Set<String> = []

    init(_ text: String) throws {
        guard text.hasSuffix("\n") else { throw Problem(description: "the text does not end with a line feed") }
        var finished: Set<String> = []
        var current: String?
        for (number, line) in text.dropLast().split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            func problem(_ what: String) -> Problem { Problem(description: "line \(number + 1): \(what): \(line)") }
            let name: String
            if line.hasPrefix("# HELP ") || line.hasPrefix("# TYPE ") {
                let rest = line.dropFirst(7)
                let parts = rest.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
                name = String(parts[0])
                guard Self.isMetricName(name) else { throw problem("bad metric name") }
                if line.hasPrefix("# HELP ") {
                    guard help[name] == nil else { throw problem("a second HELP") }
                    help[name] = try Self.unescape(parts.count > 1 ? parts[1] : "", quotes: false) ?? { throw problem("bad escape") }()
                } else {
                    guard types[name] == nil else { throw problem("a second TYPE") }
                    guard parts.count == 2, ["counter", "gauge", "histogram", "summary", "untyped"].contains(parts[1]) else {
                        throw problem("bad type")
                    }
                    guard !series.keys.contains(where: { $0 == name || $0.hasPrefix(name + "{") }) else { throw problem("TYPE after samples") }
                    types[name] = String(parts[1])
                    if parts[1] == "counter", !name.hasSuffix("_total") { throw problem("a counter's name must end in _total") }
                }
            } else {
                guard !line.hasPrefix("#"), !line.isEmpty else { throw problem("unexpected line") }
                let (sampleName, labels, value) = try Self.sample(line) ?? { throw problem("not a sample") }()
                name = sampleName
                guard let type = types[name] else { throw problem("a sample before its TYPE") }
                if type == "counter", value < 0 || value.isNaN { throw problem("a counter below zero") }
                let key = name + "{" + labels.sorted { $0.key < $1.key }.map { "\($0.key)=\"\($0.value)\"" }.joined(separator: ",") + "}"
                guard series[key] == nil else { throw problem("a duplicate series") }
                series[key] = value
                labelNames.formUnion(labels.keys)
            }
            // A family's lines stand together.
            if name != current {
                if let current { finished.insert(current) }
                guard !finished.contains(name) else { throw problem("\(name) continues after another family") }
                current = name
            }
        }
        for name in types.keys where help[name] == nil { throw Problem(description: "\(name) has no HELP") }
    }

    func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        series[name + "{" + labels.sorted { $0.key < $1.key }.map { "\($0.key)=\"\($0.value)\"" }.joined(separator: ",") + "}"]
    }

    static func isMetricName(_ text: some StringProtocol) -> Bool {
        guard let first = text.unicodeScalars.first, !("0"..."9").contains(first) else { return false }
        return text.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "_" || $0 == ":" }
    }

    static func isLabelName(_ text: some StringProtocol) -> Bool {
        isMetricName(text) && !text.contains(":") && !text.hasPrefix("__")
    }

    /// `\\`, `\n` and (in label values) `\"` are the only escapes; nil for any other.
    static func unescape(_ text: some StringProtocol, quotes: Bool) -> String? {
        var result = "", escaped = false
        for character in text {
            if escaped {
                switch character {
                case "\\": result.append("\\")
                case "n": result.append("\n")
                case "\"" where quotes: result.append("\"")
                default: return nil
                }
                escaped = false
            } else if character == "\\" {
                escaped = true
            } else {
                result.append(character)
            }
        }
        return escaped ? nil : result
    }

    /// `name{label="value",…} value`, without a timestamp (the textfile collector refuses those).
    static func sample(_ line: Substring) throws -> (String, [String: String], Double)? {
        var rest = line[...]
        let name = String(rest.prefix { $0 != "{" && $0 != " " })
        guard isMetricName(name) else { return nil }
        rest = rest.dropFirst(name.count)
        var labels: [String: String] = [:]
        if rest.first == "{" {
            rest = rest.dropFirst()
            while rest.first != "}" {
                let label = String(rest.prefix { $0 != "=" })
                guard isLabelName(label), labels[label] == nil else { return nil }
                rest = rest.dropFirst(label.count)
                guard rest.hasPrefix("=\"") else { return nil }
                rest = rest.dropFirst(2)
                var raw = "", escaped = false
                while let character = rest.first {
                    rest = rest.dropFirst()
                    if character == "\"" && !escaped { break }
                    escaped = character == "\\" && !escaped
                    raw.append(character)
                }
                guard let value = unescape(raw, quotes: true) else { return nil }
                labels[label] = value
                if rest.first == "," { rest = rest.dropFirst() } else if rest.first != "}" { return nil }
            }
            rest = rest.dropFirst()
        }
        guard rest.first == " " else { return nil }
        let text = rest.dropFirst()
        let value: Double? = switch text {
        case "+Inf": .infinity
        case "-Inf": -.infinity
        case "NaN": .nan
        default: text.allSatisfy({ "0123456789.eE+-".contains($0) }) ? Double(text) : nil
        }
        guard let value else { return nil }
        return (name, labels, value)
    }
}
