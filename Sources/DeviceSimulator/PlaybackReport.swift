/// What a playback did: the bytes exchanged and the faults injected (see ``FaultMode``).
public struct PlaybackReport: Sendable, Hashable {
    /// Times the capture was played to its end.
    public var repetitions: Int
    /// Capture bytes written to the host (`<` lines, altered or not, and the replies repeated for a
    /// request asked again); garbage is counted in ``garbageBytes``, not here. For HID profiles the host's
    /// report-id byte is not counted.
    public var deviceBytes: Int
    /// Bytes received from the host that matched `>` lines, including requests asked again.
    public var hostBytes: Int
    /// Bytes the host sent after the last `>` line, which the capture does not show. Not an error (a
    /// host may say goodbye), but worth a warning.
    public var unexpectedHostBytes: [UInt8]
    /// Times garbage was inserted before a device line (``FaultMode/garbage(everyLines:bytes:seed:)``).
    public var garbageInsertions: Int
    /// Garbage bytes written in all.
    public var garbageBytes: Int
    /// Device lines written with a bit flipped (``FaultMode/wrongChecksum(everyLines:)``).
    public var corruptedLines: Int
    /// Times the host asked again for a reply that had been altered, and got it again unaltered.
    public var repeatedReplies: Int
    /// Whether the player hung up mid-line (``FaultMode/disconnectMidFrame(afterLines:)``).
    public var hungUp: Bool
    /// The capture line in which the player hung up.
    public var hangUpLine: Int?
    /// Bytes of that line written before the hang-up.
    public var bytesBeforeHangUp: Int

    public init(repetitions: Int = 0, deviceBytes: Int = 0, hostBytes: Int = 0, unexpectedHostBytes: [UInt8] = [],
                garbageInsertions: Int = 0, garbageBytes: Int = 0, corruptedLines: Int = 0, repeatedReplies: Int = 0,
                hungUp: Bool = false, hangUpLine: Int? = nil, bytesBeforeHangUp: Int = 0) {
        self.repetitions = repetitions
        self.deviceBytes = deviceBytes
        self.hostBytes = hostBytes
        self.unexpectedHostBytes = unexpectedHostBytes
        self.garbageInsertions = garbageInsertions
        self.garbageBytes = garbageBytes
        self.corruptedLines = corruptedLines
        self.repeatedReplies = repeatedReplies
        self.hungUp = hungUp
        self.hangUpLine = hangUpLine
        self.bytesBeforeHangUp = bytesBeforeHangUp
    }
}
