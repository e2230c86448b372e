import Foundation
import ProfileCatalog

/// Finds the profile a command names: a path to a profile file, or an id in the shipped tree.
enum ProfileResolver {
    static func directory(_ explicit: String?) throws(UsageError) -> String {
        if let explicit { return explicit }
        guard let found = ProfileCatalog.defaultDirectory() else {
            throw UsageError("cannot find the shipped DeviceProfiles; pass --profiles DIR or set VITALGATE_PROFILES")
        }
        return found
    }

    static func resolve(_ argument: String, directory explicit: String?) throws -> DeviceProfile {
        if argument.hasSuffix(".json") || argument.contains("/") && FileManager.default.fileExists(atPath: argument) && !isDirectory(argument) {
            return try ProfileLoader.load(file: argument, expectedID: ProfileCatalog.expectedID(for: argument))
        }
        let root = try directory(explicit)
        let catalog = ProfileCatalog.load(directory: root)
        if let profile = catalog.profile(argument) { return profile }
        if let broken = catalog.errors.first(where: { ProfileCatalog.expectedID(for: $0.file) == argument }) {
            throw broken
        }
        throw UsageError("no profile '\(argument)' in \(root); shipped: " + catalog.profiles.map(\.id).joined(separator: ", "))
    }

    static func isDirectory(_ path: String) -> Bool {
        var flag: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &flag) && flag.boolValue
    }
}
