/// How a ``CapturePlayer`` plays a capture.
public struct PlaybackOptions: Sendable, Hashable {
    /// How long the device waits for each `>` line, and for the host to take a `<` line off a full queue.
    public var responseTimeout: Duration
    /// The latest the whole playback may end, counted from its start; nil derives one from the capture
    /// (its waits, silences and a ``responseTimeout`` per line, times ``repeatCount``, plus 5 s).
    public var deadline: Duration?
    /// How many times the capture is played in a row on the same terminal.
    public var repeatCount: Int
    /// Play the capture again and again, ignoring ``repeatCount``, until ``CapturePlayer/stop()``: a
    /// device that is always there, like a streaming oximeter. Without an explicit ``deadline`` there is
    /// none, and the player waits for the host without a time limit where a host may come and go: for a
    /// `<` line the host has not read yet, and for the first `>` line of each repetition (the next
    /// session). Within a session ``responseTimeout`` still applies.
    public var repeatForever: Bool
    /// How long `@timeout` stays silent when the profile's engine is not waiting for an answer there (or
    /// no profile was given). Otherwise the silence is the engine's own timeout plus a margin.
    public var defaultTimeoutSilence: Duration
    /// Whether `<` lines are written back to back or one per host read; nil chooses from the profile's
    /// transport (see ``Pacing``).
    public var pacing: Pacing?
    /// Misbehaviour to inject; see ``FaultMode``.
    public var fault: FaultMode

    public init(responseTimeout: Duration = .seconds(10), deadline: Duration? = nil, repeatCount: Int = 1,
                repeatForever: Bool = false, defaultTimeoutSilence: Duration = .seconds(2), pacing: Pacing? = nil,
                fault: FaultMode = .none) {
        self.responseTimeout = responseTimeout
        self.deadline = deadline
        self.repeatCount = repeatCount
        self.repeatForever = repeatForever
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
