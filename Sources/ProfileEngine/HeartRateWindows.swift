import VitalModel

/// Why a heart-rate window length was refused.
public struct HeartRateWindowsError: Error, Sendable, Hashable, CustomStringConvertible {
    public let windowSeconds: Int

    public var description: String {
        "heart-rate window of \(windowSeconds) s is outside \(HeartRateWindows.windowSecondsRange.lowerBound)..."
            + "\(HeartRateWindows.windowSecondsRange.upperBound) s. Fix: set bluetooth.heartRate.windowSeconds to 0 "
            + "(every reading is kept) or to a window length of at most \(HeartRateWindows.windowSecondsRange.upperBound) s "
            + "(default \(HeartRateWindows.defaultWindowSeconds))"
    }
}

/// Summarises one heart-rate sensor's stream (Heart Rate Measurement notifications, about 1 Hz) into one reading
/// per window of the hub's wall clock, so that a strap worn all day becomes 1,440 readings with 60 s windows,
/// not 86,400.
///
/// Windows are aligned to the hub's local wall clock (minute boundaries for 60 s), so a restart and two hubs
/// cut the same windows. A window reading has kind heart-rate, ``Reading/window`` set, and values: the mean
/// heart rate with one decimal first, then the R-R intervals of the samples in order, then the last energy
/// expended (both kept as the device sent them; FHIR export uploads the mean). Its `receivedAt` is the window's
/// end: the hub has the whole reading only then, and the PHD IG dates a measurement with a duration but no
/// device time the same way (reception is the end, start is end minus duration). `deviceTime` is nil (a strap
/// sends none); `raw` is empty, because the reading was computed, not decoded from bytes; device, source and
/// user slot are the latest sample's (a device's identity may gain details during a connection).
///
/// Samples whose sensor says it has no skin contact (or that carry no number, or are marked invalid) are left
/// out and counted in ``MeasurementWindow/excludedSampleCount``; a window with no usable sample emits nothing.
/// A sample older than the open window is dropped and counted in ``droppedSampleCount``: a window once
/// emitted never changes (it may already be stored and uploaded under its identifier). An exact repeat of the
/// previous sample (same receive time, same bytes) is dropped the same way.
///
/// Pure and deterministic: time comes only from the samples' receive times and the caller's `at:` arguments.
/// One value per device; readings of other kinds, of other devices, with a device time or already summarised
/// pass through unchanged. A window length of 0 passes every reading through.
public struct HeartRateWindows: Sendable {
    public static let defaultWindowSeconds = 60
    /// 0 (no aggregation) to one hour: a window's samples wait in memory until it closes, so a crash loses at
    /// most one window; an hour bounds that.
    public static let windowSecondsRange = 0...3600

    public let windowSeconds: Int
    /// Samples never put into any window: older than the open window, or an exact repeat of the previous one.
    public private(set) var droppedSampleCount = 0
    /// Excluded samples (no skin contact...) of windows that emitted nothing, so they are counted somewhere.
    public private(set) var excludedInEmptyWindowsCount = 0

    private var open: OpenWindow?
    /// The end of the last window emitted: no later window starts before it, no later sample goes before it.
    private var closedUntil: Int64?
    /// Samples keep coming in one stretch: a new window starts at its aligned start. False at first and after
    /// ``flush(at:)``: the hub was not listening before the next sample, so its window starts there.
    private var listening = false
    private var previousSample: (milliseconds: Int64, raw: [UInt8])?

    public init(windowSeconds: Int = HeartRateWindows.defaultWindowSeconds) throws(HeartRateWindowsError) {
        guard Self.windowSecondsRange.contains(windowSeconds) else { throw HeartRateWindowsError(windowSeconds: windowSeconds) }
        self.windowSeconds = windowSeconds
    }

    /// For a length a configuration check has already bounded: one outside ``windowSecondsRange`` is brought to
    /// its nearest end instead of failing.
    public init(clampingWindowSeconds seconds: Int) {
        windowSeconds = min(max(seconds, Self.windowSecondsRange.lowerBound), Self.windowSecondsRange.upperBound)
    }

    private var windowMilliseconds: Int64 { Int64(windowSeconds) * 1000 }

    /// When the open window ends: call ``closeEnded(at:)`` (or ``flush(at:)``) then if no sample has closed it.
    public var nextDeadline: HubTimestamp? {
        open.map { HubTimestamp(unixMilliseconds: $0.end, utcOffsetSeconds: $0.endOffsetSeconds) }
    }

    /// Takes one reading in receive order; returns the readings to store now: windows the sample closed (the
    /// open one when the sample is past its end), or the reading itself when it is not aggregated.
    public mutating func add(_ reading: Reading) -> [Reading] {
        guard windowSeconds > 0, reading.kind == .heartRate, reading.window == nil, reading.deviceTime == nil else { return [reading] }
        if let open, !Self.sameDevice(open.latest.device, reading.device) { return [reading] }
        let time = reading.receivedAt.unixMilliseconds
        // A hub clock at the edges of years 1970-9998 (which stored times are limited to, and a window may reach
        // an hour and 18 h of offset beyond its sample) or an impossible offset: kept as it is, not windowed.
        guard Self.plausibleMilliseconds.contains(time), Self.plausibleOffsetSeconds.contains(reading.receivedAt.utcOffsetSeconds)
        else { return [reading] }
        if let previousSample, previousSample.milliseconds == time, previousSample.raw == reading.raw {
            droppedSampleCount += 1
            return []
        }
        previousSample = (time, reading.raw)

        var emitted: [Reading] = []
        if let open, time >= open.end { emitted += close(endingAt: open.end) }
        if let open {
            guard time >= open.start else {
                droppedSampleCount += 1
                return emitted
            }
        } else {
            if let closedUntil, time < closedUntil {
                droppedSampleCount += 1
                return emitted
            }
            open = openWindow(at: time, offsetSeconds: reading.receivedAt.utcOffsetSeconds, first: reading)
            listening = true
        }
        open?.take(reading)
        return emitted
    }

    /// The stream stopped at `time` (the sensor disconnected, the session ends): emits the open window, ending
    /// at `time` or at its own end if that came first. The next sample starts a window of its own at that
    /// sample, because the hub was not listening before it.
    ///
    /// For a timer at ``nextDeadline`` use ``closeEnded(at:)``: it keeps the stream going, so the next window
    /// starts on its wall-clock boundary. (`flush` there loses nothing either; the next window then starts at
    /// its first sample.)
    public mutating func flush(at time: HubTimestamp) -> [Reading] {
        listening = false
        guard let open else { return [] }
        let at = time.unixMilliseconds
        if at >= open.end { return close(endingAt: open.end) }
        // Never before a sample it holds: a caller's clock read just before the last sample arrived.
        let offset = Self.plausibleOffsetSeconds.contains(time.utcOffsetSeconds) ? time.utcOffsetSeconds : nil
        return close(endingAt: max(at, open.latestSampleAt), endOffsetSeconds: offset)
    }

    /// For timers: emits the open window only if it has ended by `time`, never cutting one short, so a timer
    /// that fires late (a sample already closed the window it was set for) does no harm.
    public mutating func closeEnded(at time: HubTimestamp) -> [Reading] {
        guard let open, time.unixMilliseconds >= open.end else { return [] }
        return close(endingAt: open.end)
    }

    // MARK: Windows

    private func openWindow(at time: Int64, offsetSeconds: Int, first: Reading) -> OpenWindow {
        // Aligned on the local wall clock, so a 1 h window is a local clock hour in UTC+05:30 too.
        let offset = Int64(offsetSeconds) * 1000
        let local = time + offset
        let alignedLocal = local - Self.floorModulo(local, windowMilliseconds)
        let alignedStart = alignedLocal - offset
        var start = listening ? alignedStart : time
        // An offset change (daylight saving) can move the aligned start before the last window's end.
        if let closedUntil { start = max(start, closedUntil) }
        return OpenWindow(start: start, end: alignedStart + windowMilliseconds, startOffsetSeconds: offsetSeconds, latest: first)
    }

    private mutating func close(endingAt end: Int64, endOffsetSeconds: Int? = nil) -> [Reading] {
        guard let window = open else { return [] }
        open = nil
        closedUntil = end
        guard let reading = window.reading(end: end, endOffsetSeconds: endOffsetSeconds ?? window.endOffsetSeconds) else {
            excludedInEmptyWindowsCount += window.excluded
            return []
        }
        return [reading]
    }

    static let plausibleMilliseconds: ClosedRange<Int64> = 86_400_000...253_370_592_000_000  // 1970-01-02 to 9998-12-30 UTC
    static let plausibleOffsetSeconds = -18 * 3600...18 * 3600

    static func floorModulo(_ value: Int64, _ divisor: Int64) -> Int64 {
        let remainder = value % divisor
        return remainder < 0 ? remainder + divisor : remainder
    }

    /// The identity parts the Outbox and FHIR key readings by; names and firmware strings may arrive later.
    static func sameDevice(_ a: DeviceIdentity, _ b: DeviceIdentity) -> Bool {
        a.systemID == b.systemID && a.bluetoothAddress == b.bluetoothAddress && a.usb == b.usb
    }
}

/// The window samples are going into: running sums, not the samples (only their R-R intervals are kept).
private struct OpenWindow {
    let start: Int64
    let end: Int64
    let startOffsetSeconds: Int
    var endOffsetSeconds: Int
    var latest: Reading
    var latestSampleAt: Int64
    var count = 0
    var excluded = 0
    /// Heart rates in millionths, so that the mean is exact for any sample a sensor sends.
    var sumMicro: Int64 = 0
    var minimum: (micro: Int64, value: MeasuredValue)?
    var maximum: (micro: Int64, value: MeasuredValue)?
    var rrIntervals: [MeasuredValue] = []
    var energy: MeasuredValue?
    var status: MeasurementStatus = []

    init(start: Int64, end: Int64, startOffsetSeconds: Int, latest: Reading) {
        self.start = start
        self.end = end
        self.startOffsetSeconds = startOffsetSeconds
        self.endOffsetSeconds = startOffsetSeconds
        self.latest = latest
        self.latestSampleAt = latest.receivedAt.unixMilliseconds
    }

    mutating func take(_ sample: Reading) {
        latest = sample
        latestSampleAt = max(latestSampleAt, sample.receivedAt.unixMilliseconds)
        endOffsetSeconds = sample.receivedAt.utcOffsetSeconds
        guard sample.sensorContact != .notDetected, !sample.status.contains(.invalid),
              let rate = sample.value(.heartRate), case .number(let number) = rate.value,
              minimum.map({ $0.value.unit == rate.unit }) ?? true,
              let micro = Self.micro(number) else {
            excluded += 1
            return
        }
        let (sum, overflow) = sumMicro.addingReportingOverflow(micro)
        guard !overflow, count < Int.max / 100_000 else {
            excluded += 1
            return
        }
        sumMicro = sum
        count += 1
        if minimum.map({ micro < $0.micro }) ?? true { minimum = (micro, rate) }
        if maximum.map({ micro > $0.micro }) ?? true { maximum = (micro, rate) }
        rrIntervals += sample.values.filter { $0.type == .rrInterval }
        if let spent = sample.value(.energyExpended) { energy = spent }
        status.formUnion(sample.status)
    }

    func reading(end: Int64, endOffsetSeconds: Int) -> Reading? {
        guard count > 0, let minimum, let maximum else { return nil }
        let mean = MeasuredValue(.heartRate, .number(DecimalValue(mantissa: Self.tenths(sumMicro, count: count), exponent: -1)),
                                 minimum.value.unit)
        let window = MeasurementWindow(
            start: HubTimestamp(unixMilliseconds: start, utcOffsetSeconds: startOffsetSeconds),
            end: HubTimestamp(unixMilliseconds: end, utcOffsetSeconds: endOffsetSeconds),
            sampleCount: count, excludedSampleCount: excluded, minimum: minimum.value, maximum: maximum.value)
        return Reading(kind: .heartRate, values: [mean] + rrIntervals + (energy.map { [$0] } ?? []), deviceTime: nil,
                       receivedAt: window.end, device: latest.device, userSlot: latest.userSlot, status: status,
                       source: latest.source, raw: [], window: window)
    }

    /// `value` in millionths, rounded half away from zero (below 10⁻¹² it is 0); nil when that leaves 64 bits.
    static func micro(_ value: DecimalValue) -> Int64? {
        guard value.mantissa != 0, value.exponent > -25 else { return 0 }
        guard value.exponent <= 13 else { return nil }
        let shift = value.exponent + 6
        var result = value.mantissa
        if shift >= 0 {
            for _ in 0..<shift {
                let (product, overflow) = result.multipliedReportingOverflow(by: 10)
                if overflow { return nil }
                result = product
            }
            return result
        }
        guard -shift <= 18 else { return 0 }
        var divisor: Int64 = 1
        for _ in 0 ..< -shift { divisor *= 10 }
        return rounded(result, dividedBy: divisor)
    }

    /// The mean in tenths, rounded half away from zero (77.25 → 77.3).
    static func tenths(_ sumMicro: Int64, count: Int) -> Int64 {
        rounded(sumMicro, dividedBy: Int64(count) * 100_000)
    }

    static func rounded(_ value: Int64, dividedBy divisor: Int64) -> Int64 {
        let (quotient, remainder) = value.quotientAndRemainder(dividingBy: divisor)
        // |remainder| >= divisor - |remainder| is 2·|remainder| >= divisor without overflow.
        guard remainder.magnitude >= divisor.magnitude - remainder.magnitude else { return quotient }
        return value < 0 ? quotient - 1 : quotient + 1
    }
}
