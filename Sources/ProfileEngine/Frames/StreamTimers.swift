import Foundation
import VitalModel

/// The two clocks of a streaming `frames` session (``FramesSpec/Stream``): when the keep-alive is due and
/// when the device counts as gone. Pure: it knows only the hub times the driver passed in.
///
/// Times are whole milliseconds, so "2000 ms after the last send" is due at exactly that call and not one
/// floating-point rounding later.
struct StreamTimers: Sendable, Hashable {
    let keepAliveInterval: Int64?
    let silenceLimit: Int64
    /// The time of the latest call into the session.
    private(set) var now: Int64
    private(set) var lastSend: Int64
    private(set) var lastFrame: Int64
    /// The silence limit was reached; the session has finished and its timers are off.
    private(set) var ended = false

    /// The stream starts at `now`; `lastSend` is when the script last sent (the start command), or now.
    init(_ stream: FramesSpec.Stream, now: Int64, lastSend: Int64?) {
        keepAliveInterval = stream.keepAlive.map { Int64($0.intervalMilliseconds) }
        silenceLimit = Int64(stream.silenceMilliseconds)
        self.now = now
        self.lastSend = min(lastSend ?? now, now)
        // The frame that ended the script counts; without one the silence is counted from here.
        lastFrame = now
    }

    /// Hub time in whole milliseconds since 1970.
    static func milliseconds(_ time: HubTimestamp) -> Int64 {
        let value = (time.instant.timeIntervalSince1970 * 1000).rounded()
        guard value.isFinite, abs(value) < 9e15 else { return 0 }
        return Int64(value)
    }

    /// Moves the clock to `time`. A hub clock stepped back (NTP, a manual change) pulls the marks back
    /// with it: otherwise the next keep-alive and the silence limit would wait out the size of the step.
    mutating func observe(_ time: Int64) {
        now = time
        lastSend = min(lastSend, time)
        lastFrame = min(lastFrame, time)
    }

    mutating func frameArrived() { lastFrame = now }
    mutating func sent() { lastSend = now }
    mutating func end() { ended = true }

    var isSilent: Bool { !ended && now - lastFrame >= silenceLimit }
    var isKeepAliveDue: Bool { !ended && keepAliveInterval.map { now - lastSend >= $0 } ?? false }

    /// Milliseconds from ``now`` until the next keep-alive or the silence limit, whichever is sooner;
    /// nil once ended.
    var millisecondsToNext: Int? {
        guard !ended else { return nil }
        var next = lastFrame + silenceLimit
        if let interval = keepAliveInterval { next = min(next, lastSend + interval) }
        return Int(clamping: max(0, next - now))
    }
}
