import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Free space of the file system holding a directory.
public enum FileSystemSpace {
    /// Bytes an unprivileged process may still write under `directory` (statvfs `f_bavail × f_frsize`);
    /// nil when statvfs fails.
    @Sendable public static func available(_ directory: String) -> UInt64? {
        var info = statvfs()
        guard statvfs(directory, &info) == 0 else { return nil }
        return UInt64(info.f_bavail) * UInt64(info.f_frsize)
    }
}

/// `1.5 MiB`, for messages.
func formatBytes(_ bytes: UInt64) -> String {
    let units = ["bytes", "KiB", "MiB", "GiB", "TiB"]
    var value = Double(bytes)
    var unit = 0
    while value >= 1024, unit < units.count - 1 { value /= 1024; unit += 1 }
    return unit == 0 ? "\(bytes) bytes" : String(format: "%.1f", value) + " " + units[unit]
}

extension Date {
    /// Milliseconds since 1970, as the Outbox stores instants.
    var outboxMilliseconds: Int64 { Int64((timeIntervalSince1970 * 1000).rounded()) }

    init(outboxMilliseconds: Int64) { self.init(timeIntervalSince1970: Double(outboxMilliseconds) / 1000) }
}
