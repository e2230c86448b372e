import VitalModel

/// Why a playback stopped: which capture line, what was expected, what arrived, and what to check.
///
/// The simulator never traps on what the host does; every failure ends the playback with one of these.
public struct SimulatorError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable, Hashable {
        /// A system call failed (creating or configuring the pseudo-terminal, reading, writing).
        case system
        /// The host sent bytes other than the capture's `>` line.
        case mismatch
        /// The host sent nothing (or too little) for a `>` line, or did not read a `<` line, in time.
        case timeout
        /// The whole playback ran past its overall deadline.
        case deadline
        /// ``CapturePlayer/stop()`` was called.
        case stopped
        /// The ``PlaybackOptions`` cannot be played (a fault interval below 1, say).
        case invalidOptions
    }

    public var kind: Kind
    /// The capture file, or empty when the error is not about a capture.
    public var file: String
    /// The capture line being played, 1-based.
    public var line: Int?
    /// The bytes the capture line shows the host sending, for ``Kind/mismatch`` and ``Kind/timeout``.
    public var expected: [UInt8]?
    /// The bytes that arrived from the host for that line (possibly more than expected, or fewer).
    public var received: [UInt8]
    public var problem: String
    public var fix: String

    public init(kind: Kind, file: String = "", line: Int? = nil, expected: [UInt8]? = nil, received: [UInt8] = [],
                problem: String, fix: String) {
        self.kind = kind
        self.file = file
        self.line = line
        self.expected = expected
        self.received = received
        self.problem = problem
        self.fix = fix
    }

    /// A failed system call, with the C library's description of `code`.
    static func system(_ call: String, _ code: Int32, fix: String) -> SimulatorError {
        SimulatorError(kind: .system, problem: "\(call) failed: \(errnoDescription(code))", fix: fix)
    }

    public var description: String {
        var place = file
        if let line { place += place.isEmpty ? "line \(line)" : ":\(line)" }
        let what = place.isEmpty ? problem : "\(place): \(problem)"
        return fix.isEmpty ? what : "\(what). Fix: \(fix)"
    }
}

/// Up to `limit` bytes as spaced hex, with a note of how many more there were.
func hexPreview(_ bytes: [UInt8], limit: Int = 48) -> String {
    if bytes.isEmpty { return "nothing" }
    let shown = hexString(Array(bytes.prefix(limit)), separator: " ")
    return bytes.count > limit ? "\(shown) … (\(bytes.count) bytes)" : shown
}
