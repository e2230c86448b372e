import Foundation

/// The stretch of the hub's timeline a summarising reading covers, and what went into it.
///
/// A continuous sensor (a 1 Hz heart-rate strap) is not stored sample by sample: its samples are summarised per
/// window of the hub's wall clock. Such a reading has ``Reading/window`` set, its first value is the mean of
/// the samples, and the window holds how many samples there were and their minimum and maximum.
public struct MeasurementWindow: Sendable, Hashable {
    /// The window's wall-clock aligned start, or, in the window the hub began listening in (a sensor connected),
    /// the first sample.
    public var start: HubTimestamp
    /// The window's aligned end, or, in the window the hub stopped listening in (a sensor disconnected), when it
    /// stopped. Never before ``start``.
    public var end: HubTimestamp
    /// The samples the mean, minimum and maximum are made of.
    public var sampleCount: Int
    /// Samples received in the window and left out: the sensor said it had no skin contact, or sent no number.
    public var excludedSampleCount: Int
    /// The smallest sample, as the sensor reported it (same type and unit as the mean).
    public var minimum: MeasuredValue
    /// The largest sample, as the sensor reported it.
    public var maximum: MeasuredValue

    public init(start: HubTimestamp, end: HubTimestamp, sampleCount: Int, excludedSampleCount: Int = 0,
                minimum: MeasuredValue, maximum: MeasuredValue) {
        self.start = start
        self.end = end
        self.sampleCount = sampleCount
        self.excludedSampleCount = excludedSampleCount
        self.minimum = minimum
        self.maximum = maximum
    }

    /// The window's length in whole milliseconds (stored times are whole milliseconds).
    public var durationMilliseconds: Int64 {
        let (difference, overflow) = end.unixMilliseconds.subtractingReportingOverflow(start.unixMilliseconds)
        return overflow ? .max : difference
    }
}

extension HubTimestamp {
    /// Milliseconds since 1970-01-01T00:00:00Z, to the nearest; saturating for instants no clock shows, so that
    /// arithmetic on hub times never traps.
    public var unixMilliseconds: Int64 {
        let milliseconds = (instant.timeIntervalSince1970 * 1000).rounded()
        guard milliseconds.isFinite else { return milliseconds < 0 ? .min : .max }
        if milliseconds >= 9.2e18 { return .max }
        if milliseconds <= -9.2e18 { return .min }
        return Int64(milliseconds)
    }

    /// The instant `unixMilliseconds` after 1970-01-01T00:00:00Z, shown with `utcOffsetSeconds`.
    public init(unixMilliseconds: Int64, utcOffsetSeconds: Int) {
        self.init(instant: Date(timeIntervalSince1970: Double(unixMilliseconds) / 1000), utcOffsetSeconds: utcOffsetSeconds)
    }
}
