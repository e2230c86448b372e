import VitalModel

/// When a reading happened on the hub's timeline, what its identifier's timestamp part is, and whether a
/// Coincident Timestamp records a device clock check (PHD IG 2.0 time handling, fhir-mapping.md §1.8).
struct ReadingTiming {
    /// `effectiveDateTime`; for a windowed reading, its `effectivePeriod.start`.
    var effective: String
    /// `effectivePeriod.end` of a windowed reading; nil for a reading at one instant.
    var periodEnd: String?
    /// The PHD identifier's timestamp part: always the device's own time when it sent one.
    var identifierTimestamp: String
    /// The PHD identifier's duration part (`..` and this): the length of `effectivePeriod`.
    var identifierDuration: String?
    /// The device clock check to publish as a PhdCoincidentTimeStampObservation.
    var coincident: DeviceClockCheck?
    /// Said in `Observation.note` when the effective time is not the device's.
    var note: String?

    /// With `identifyByReceipt`, the identifier takes the hub's receive time even when the device sent its own:
    /// for a reading whose device time collided with a different reading's (a clock that did not advance), so
    /// that the server keeps both. A windowed reading is received at its end, so its identifier then starts
    /// there instead of at the window's start.
    init(_ reading: Reading, identifyByReceipt: Bool = false) {
        let hubOffset = reading.receivedAt.utcOffsetSeconds
        let received = Self.render(reading.receivedAt.localTime, offsetSeconds: hubOffset)
        if let window = reading.window {
            // Samples summarised on the hub's clock (a heart-rate strap sends no time): the period is the window,
            // and the identifier is its start and duration, so the same window always gets the same identifier.
            effective = Self.render(window.start.localTime, offsetSeconds: window.start.utcOffsetSeconds)
            periodEnd = Self.render(window.end.localTime, offsetSeconds: window.end.utcOffsetSeconds)
            identifierTimestamp = PHDObservationIdentifier.timestamp(receivedAt: identifyByReceipt ? reading.receivedAt : window.start)
            identifierDuration = PHDObservationIdentifier.duration(milliseconds: window.durationMilliseconds)
            return
        }
        guard let stamp = reading.deviceTime else {
            effective = received
            identifierTimestamp = PHDObservationIdentifier.timestamp(receivedAt: reading.receivedAt)
            return
        }
        identifierTimestamp = identifyByReceipt
            ? PHDObservationIdentifier.timestamp(receivedAt: reading.receivedAt)
            : PHDObservationIdentifier.timestamp(stamp.time, resolution: stamp.resolution,
                                                 utcOffsetQuarterHours: stamp.utcOffsetQuarterHours)

        if let quarters = stamp.utcOffsetQuarterHours, stamp.clock == .set,
           let local = stamp.time.adding(milliseconds: Int64(quarters) * 900_000) {
            // A synchronised UTC clock with an offset is already on a real timeline: keep it.
            effective = Self.render(local, offsetSeconds: quarters * 900, resolution: stamp.resolution)
        } else if let check = reading.clockCheck {
            coincident = check
            if let corrected = check.corrected(stamp) {
                // A clock on the current timeline: move it onto the hub's by the measured lag.
                effective = Self.render(corrected, offsetSeconds: check.hubTime.utcOffsetSeconds, resolution: stamp.resolution)
            } else {
                effective = received
                note = check.deviceTime == nil
                    ? "The device reported a clock fault; the effective time is when the hub received the reading."
                    : "The device clock reading was too far off to correct by; the effective time is when the hub received the reading."
            }
        } else if stamp.clock == .notSet {
            effective = received
            note = "The device clock was not set; the effective time is when the hub received the reading."
        } else {
            // No way to check the device clock: assume it shows the hub's local time (same time zone).
            effective = Self.render(stamp.time, offsetSeconds: hubOffset, resolution: stamp.resolution)
        }
    }

    static func render(_ time: LocalDateTime, offsetSeconds: Int, resolution: ClockResolution = .second) -> String {
        time.iso8601(includeMilliseconds: resolution == .millisecond || time.millisecond != 0)
            + formatUTCOffset(seconds: offsetSeconds)
    }
}
