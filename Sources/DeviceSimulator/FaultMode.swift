/// Ways the simulated device can misbehave, so a host's error handling is exercised over a real
/// terminal. Every mode is deterministic: the same capture, mode and seed put the same bytes on the wire.
///
/// Faults apply to the device's `<` lines only, counted from 1 over the whole playback (repetitions
/// continue the count); the host's `>` lines are always compared as recorded. What was injected is
/// counted in ``PlaybackReport``.
///
/// ## Requests asked again
///
/// A host that receives a garbled reply to a request asks again. The capture does not show that repeated
/// request, so after ``garbage(everyLines:bytes:seed:)`` or ``wrongChecksum(everyLines:)`` altered a reply,
/// the player accepts the previous request once more where the next `>` line is due, and answers it with
/// the reply's recorded lines, unaltered (as a device answers the same question the same way), then goes
/// on waiting for the next `>` line. The request may be repeated any number of times; each repetition is
/// counted in ``PlaybackReport/repeatedReplies``. When the capture's last reply was altered, the player
/// waits up to 3 s (at most ``PlaybackOptions/responseTimeout``) after the last line for such a request.
/// A reply is the `<` lines after a run of `>` lines, up to the next `>` line.
public enum FaultMode: Sendable, Hashable {
    /// Play the capture exactly as recorded.
    case none

    /// Before every `everyLines`-th device line, `bytes` pseudo-random bytes (from a generator seeded with
    /// `seed`): line noise between frames. For HID profiles the noise is whole input reports (`bytes`
    /// rounded up to the report size), since a HID device never delivers part of a report; when lines are
    /// paced one per read, the noise is a read of its own. A host must skip the noise, count a problem and
    /// decode the frames around it.
    case garbage(everyLines: Int, bytes: Int, seed: UInt64)

    /// Every device byte is written on its own, each after a pause of `perByte`, as a serial device at a
    /// low baud rate delivers them (10 bits a byte: 8.3 ms at 1200 baud). Frames reach the host in
    /// pieces; the same readings must come out.
    case slowBytes(perByte: Duration)

    /// Device lines before the `afterLines`-th are written whole; of that line only the first half
    /// (rounded down) is written. Once the host has read it, the player hangs up (closes the master: the
    /// host's reads fail with EIO, its polls report POLLHUP), as when a USB adapter is pulled mid-frame.
    /// The playback ends there successfully with ``PlaybackReport/hungUp`` set; it is not an error. A host
    /// must keep the readings it completed and report no partial one.
    case disconnectMidFrame(afterLines: Int)

    /// One bit (the lowest) of the last byte of every `everyLines`-th non-empty device line is flipped. A
    /// frame that carries a checksum there, or anywhere the flipped byte is covered by one, fails it: a
    /// host must count a problem, never produce a reading with the altered value, and resynchronise.
    ///
    /// For HID reports the last byte may lie past what the report marks valid (Omron's count byte), where
    /// the flip changes nothing the host looks at; the line still counts as corrupted. An interval shorter
    /// than a reply can put two flips into one answer, and an XOR checksum (Omron's) cannot see the same
    /// bit flipped twice: choose an interval of at least the longest reply's lines for such protocols.
    case wrongChecksum(everyLines: Int)

    /// Whether the mode alters replies, so that the host may ask again (see the type's documentation).
    var altersReplies: Bool {
        switch self {
        case .garbage, .wrongChecksum: true
        case .none, .slowBytes, .disconnectMidFrame: false
        }
    }

    /// Why the mode cannot be played, or nil when it can.
    var problem: String? {
        switch self {
        case .none:
            return nil
        case .garbage(let every, let bytes, _):
            if every < 1 { return "garbage every \(every) lines: the interval must be at least 1" }
            if !(1...65_536).contains(bytes) { return "garbage of \(bytes) bytes: give 1 to 65536 bytes" }
            return nil
        case .slowBytes(let pause):
            return pause < .zero || pause > .seconds(60) ? "a pause of \(pause) per byte: give 0 to 60 s" : nil
        case .disconnectMidFrame(let after):
            return after < 1 ? "a hang-up in device line \(after): lines count from 1" : nil
        case .wrongChecksum(let every):
            return every < 1 ? "a wrong checksum every \(every) lines: the interval must be at least 1" : nil
        }
    }
}

/// SplitMix64: a small, well-mixed generator whose output depends only on its seed, so garbage is the
/// same on every machine and every run.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var value = state
        value = (value ^ (value >> 30)) &* 0xBF58_476D_1CE4_E5B9
        value = (value ^ (value >> 27)) &* 0x94D0_49BB_1331_11EB
        return value ^ (value >> 31)
    }

    mutating func bytes(_ count: Int) -> [UInt8] {
        (0..<count).map { _ in UInt8(truncatingIfNeeded: next()) }
    }
}
