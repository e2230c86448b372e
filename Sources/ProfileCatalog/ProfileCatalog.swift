import Foundation
import VitalModel
import ProfileEngine

/// All profiles of a profile tree (`DeviceProfiles/<vendor>/<model>.json`), and the files that failed.
///
/// A broken profile is kept out with its error; every other profile stays usable.
public struct ProfileCatalog: Sendable {
    public var root: String
    public var profiles: [DeviceProfile]
    public var errors: [ProfileError]

    public static func load(directory root: String) -> ProfileCatalog {
        var catalog = ProfileCatalog(root: root, profiles: [], errors: [])
        for file in profileFiles(in: root) {
            do {
                catalog.profiles.append(try ProfileLoader.load(file: file, expectedID: expectedID(for: file)))
            } catch {
                catalog.errors.append(error)
            }
        }
        return catalog
    }

    /// `<root>/<vendor>/<model>.json`, sorted; the schema directory and capture folders are not profiles.
    public static func profileFiles(in root: String) -> [String] {
        let manager = FileManager.default
        guard let vendors = try? manager.contentsOfDirectory(atPath: root) else { return [] }
        var files: [String] = []
        for vendor in vendors.sorted() where vendor != "schema" && !vendor.hasPrefix(".") {
            let directory = root + "/" + vendor
            var isDirectory: ObjCBool = false
            guard manager.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue,
                  let names = try? manager.contentsOfDirectory(atPath: directory) else { continue }
            files += names.sorted().filter { $0.hasSuffix(".json") }.map { directory + "/" + $0 }
        }
        return files
    }

    /// The id a file must carry: its vendor folder and file name.
    public static func expectedID(for file: String) -> String {
        let url = URL(fileURLWithPath: file)
        return url.deletingLastPathComponent().lastPathComponent + "/" + url.deletingPathExtension().lastPathComponent
    }

    public func profile(_ id: String) -> DeviceProfile? { profiles.first { $0.id == id } }

    /// The folder of captures beside a profile file: `<vendor>/<model>/`.
    public static func captureDirectory(for profile: DeviceProfile) -> String {
        String(profile.file.dropLast(".json".count))
    }

    /// Capture files beside the profile, sorted.
    public static func captures(for profile: DeviceProfile) -> [String] {
        let directory = captureDirectory(for: profile)
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return [] }
        return names.sorted().filter { $0.hasSuffix(".capture") }.map { directory + "/" + $0 }
    }

    public static func expectedFile(for capture: String) -> String {
        String(capture.dropLast(".capture".count)) + ".expected.json"
    }

    /// Where shipped profiles are: `$VITALGATE_PROFILES`, the source tree the tool was built in, or the
    /// installed location.
    public static func defaultDirectory(executable: String = CommandLine.arguments.first ?? "") -> String? {
        if let environment = ProcessInfo.processInfo.environment["VITALGATE_PROFILES"], !environment.isEmpty { return environment }
        var url = URL(fileURLWithPath: executable).resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<6 {
            let candidate = url.appendingPathComponent("DeviceProfiles")
            if FileManager.default.fileExists(atPath: candidate.appendingPathComponent("schema/profile.schema.json").path) { return candidate.path }
            url.deleteLastPathComponent()
        }
        let installed = "/usr/share/vitalgate/DeviceProfiles"
        return FileManager.default.fileExists(atPath: installed) ? installed : nil
    }
}

/// Which kind of reading each standard characteristic produces.
public let standardCharacteristicKinds: [String: MeasurementKind] = [
    "2A35": .bloodPressure, "2A36": .bloodPressure, "2A37": .heartRate, "2A5E": .pulseOximetry, "2A5F": .pulseOximetry,
    "2A9D": .bodyWeight, "2A1C": .bodyTemperature, "2A18": .glucose,
]
