// Decode throughput per engine and the time to load every shipped profile.
//
// Prints one JSON object per line (machine-readable; see Benchmarks/README.md). Figures are medians of
// repeated runs, because the machines are shared and noisy. Run with `scripts/benchmark` (release build).
import Foundation
import VitalModel
import ProfileEngine
import ProfileCatalog

let arguments = CommandLine.arguments
func option(_ name: String) -> String? {
    guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count else { return nil }
    return arguments[index + 1]
}
guard let root = option("--profiles") ?? ProfileCatalog.defaultDirectory() else {
    FileHandle.standardError.write(Data("vitalgate-benchmarks: pass --profiles DIR\n".utf8))
    exit(2)
}
let runs = Int(option("--runs") ?? "") ?? 9
/// Each run lasts at least this long, so timer resolution and start-up do not dominate.
let minimumRunSeconds = Double(option("--seconds") ?? "") ?? 0.25

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

func emit(_ members: [(String, JSONValue)]) {
    print(JSONValue.object(members).serialized())
}

func number(_ value: Double, places: Int = 1) -> JSONValue {
    .number(String(format: "%.\(places)f", value))
}

let clock = ContinuousClock()

// 1. Loading every shipped profile (parse, check, build engines).
var loadTimes: [Double] = []
var catalog = ProfileCatalog.load(directory: root)
for _ in 0..<runs {
    let elapsed = clock.measure { catalog = ProfileCatalog.load(directory: root) }
    loadTimes.append(seconds(elapsed) * 1000)
}
emit([("benchmark", "load-profiles"), ("profiles", .int(catalog.profiles.count)), ("broken", .int(catalog.errors.count)),
      ("runs", .int(runs)), ("median_ms", number(median(loadTimes), places: 3)),
      ("min_ms", number(loadTimes.min() ?? 0, places: 3)), ("max_ms", number(loadTimes.max() ?? 0, places: 3))])

// 2. Decode throughput: every device-to-host chunk of a profile's captures, fed to fresh sessions.
struct Workload {
    let profile: DeviceProfile
    let chunks: [([UInt8], String?)]
}
var workloads: [Workload] = []
for profile in catalog.profiles {
    var chunks: [([UInt8], String?)] = []
    for file in ProfileCatalog.captures(for: profile) {
        guard let capture = try? Capture.load(file: file) else { continue }
        for entry in capture.entries {
            if case .fromDevice(let bytes, let channel) = entry.line { chunks.append((bytes, channel)) }
        }
    }
    if !chunks.isEmpty { workloads.append(Workload(profile: profile, chunks: chunks)) }
}

var perEngine: [String: [Double]] = [:]
let time = Capture.defaultReceivedAt
for workload in workloads {
    var rates: [Double] = []
    var readings = 0
    for _ in 0..<runs {
        var frames = 0
        var produced = 0
        let start = clock.now
        repeat {
            var session = workload.profile.engine.makeSession(device: Replay.defaultDevice(for: workload.profile), profileID: workload.profile.id)
            _ = session.start(at: time)
            for (bytes, channel) in workload.chunks {
                for event in session.receive(bytes, channel: channel, at: time) {
                    if case .reading = event { produced += 1 }
                }
                frames += 1
            }
        } while seconds(clock.now - start) < minimumRunSeconds
        rates.append(Double(frames) / seconds(clock.now - start))
        readings = produced
    }
    let rate = median(rates)
    perEngine[workload.profile.engine.name, default: []].append(rate)
    emit([("benchmark", "decode"), ("engine", .string(workload.profile.engine.name)), ("profile", .string(workload.profile.id)),
          ("chunks_per_pass", .int(workload.chunks.count)), ("readings_last_run", .int(readings)), ("runs", .int(runs)),
          ("median_frames_per_second", number(rate, places: 0)),
          ("min_frames_per_second", number(rates.min() ?? 0, places: 0)), ("max_frames_per_second", number(rates.max() ?? 0, places: 0))])
}
for (engine, rates) in perEngine.sorted(by: { $0.key < $1.key }) {
    emit([("benchmark", "decode-engine"), ("engine", .string(engine)), ("profiles", .int(rates.count)),
          ("median_of_profile_medians_frames_per_second", number(median(rates), places: 0))])
}
