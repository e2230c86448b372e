import Foundation

/// Paths inside the VitalGate checkout, found from this source file so tests work from any directory.
public enum RepositoryPaths {
    public static let root: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `Tests/Fixtures/<relative>`.
    public static func fixture(_ relative: String) -> URL {
        root.appendingPathComponent("Tests/Fixtures").appendingPathComponent(relative)
    }
}

/// Bytes from upper- or lower-case hex without separators, as fixtures write them. Traps on bad hex:
/// fixtures are ours, and a broken one should stop the run loudly.
public func bytes(_ hex: String) -> [UInt8] {
    precondition(hex.count % 2 == 0, "odd-length hex in a fixture: \(hex)")
    return stride(from: 0, to: hex.count, by: 2).map { offset in
        let start = hex.index(hex.startIndex, offsetBy: offset)
        return UInt8(hex[start..<hex.index(start, offsetBy: 2)], radix: 16)!
    }
}
