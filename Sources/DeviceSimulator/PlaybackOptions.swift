/// How a ``CapturePlayer`` plays a capture.
public struct PlaybackOptions: Sendable, Hashable {
    /// How long the device waits for each `>` line, and for the host to take a `<` line off a full queue.
    public var responseTimeout: Duration
    /// The latest the whole playback may end, counted from its start; nil derives one from the capture
    /// (its waits, silences and a ``responseTimeout`` per line, times ``repeatCount``, plus 5 s).
    public var deadline: Duration?
    /// How many times the capture is played in a row on the same terminal.
    public var repeatCount: Int
    /// How long `@timeout` stays silent when the profile's engine is not waiting for an answer there (or
    /// no profile was given). Otherwise the silence is the engine's own timeout plus a margin.
    public var defaultTimeoutSilence: Duration
    /// Whether `<` lines are written back to back or one per host read; nil chooses from the profile's
    /// transport (see ``Pacing``).
    public var pacing: Pacing?
    /// Misbehaviour to inject; see ``FaultMode``.
    public var fault: FaultMode

    public init(responseTimeout: Duration = .seconds(10), deadline: Duration? = nil, repeatCount: Int = 1,
                defaultTimeoutSilence: Duration = .seconds(2), pacing: Pacing? = nil, fault: FaultMode = .none) {
        self.responseTimeout = responseTimeout
        self.deadline = deadline
        self.repeatCount = repeatCount
        self.defaultTimeoutSilence = defaultTimeoutSilence
        self.pacing = pacing
        self.fault = fault
    }
}

/// How `<` lines follow each other on the terminal.
public enum Pacing: Sendable, Hashable {
    /// Back to back, as a serial device streams: the host may read several lines in one read, or one
    /// line in pieces. The default for serial and RFCOMM profiles and when no profile is given.
    case stream
    /// The next `<` line is written only once the host has read the previous one, so each read returns
    /// one line, as Bluetooth notifications and HID reports arrive one at a time. Protocols that frame
    /// by these boundaries (`"sync": "none"`) need it. The default for Bluetooth LE and HID profiles.
    /// The host must open the terminal and read within ``PlaybackOptions/responseTimeout``.
    case oneLinePerRead
}

/// Ways the simulated device can misbehave. Only ``none`` exists today.
///
/// Later fault modes hook into ``CapturePlayer`` at three documented points, so adding one is a new
/// case plus a branch there, not a new player:
/// - **device lines** (`CapturePlayer.chunks(for:)`): what a `<` line becomes on the wire — split into
///   pieces with pauses, a byte flipped (checksum errors), bytes dropped, garbage inserted, paced at the
///   profile's baud rate;
/// - **host lines** (`CapturePlayer.awaitHost`): ignore a request once (force the host's retry), answer
///   late;
/// - **the end** (`CapturePlayer.play()`): hang up mid-capture (close the master), stop answering.
public enum FaultMode: Sendable, Hashable {
    /// Play the capture exactly as recorded.
    case none
}

/// What a finished playback did.
public struct PlaybackReport: Sendable, Hashable {
    /// Times the capture was played.
    public var repetitions: Int
    /// Bytes written to the host (`<` lines).
    public var deviceBytes: Int
    /// Bytes received from the host that matched `>` lines.
    public var hostBytes: Int
    /// Bytes the host sent after the last `>` line, which the capture does not show. Not an error (a
    /// host may say goodbye), but worth a warning.
    public var unexpectedHostBytes: [UInt8]

    public init(repetitions: Int = 0, deviceBytes: Int = 0, hostBytes: Int = 0, unexpectedHostBytes: [UInt8] = []) {
        self.repetitions = repetitions
        self.deviceBytes = deviceBytes
        self.hostBytes = hostBytes
        self.unexpectedHostBytes = unexpectedHostBytes
    }
}
