extension Duration {
    /// Whole milliseconds, rounded down, saturating at `Int64.max` / `Int64.min` instead of overflowing.
    public var wholeMilliseconds: Int64 { milliseconds(roundingUp: false) }

    /// Milliseconds, rounded down or (`roundingUp`) up to the next whole one; saturating. Poll and timer
    /// waits round up, so a wait never ends before its deadline.
    public func milliseconds(roundingUp: Bool) -> Int64 {
        let (seconds, attoseconds) = components
        let (whole, overflow) = seconds.multipliedReportingOverflow(by: 1000)
        if overflow { return seconds < 0 ? .min : .max }
        let perMillisecond: Int64 = 1_000_000_000_000_000
        var result = whole.addingReportingOverflow(attoseconds / perMillisecond)
        if roundingUp, attoseconds % perMillisecond > 0, !result.overflow {
            result = result.partialValue.addingReportingOverflow(1)
        }
        return result.overflow ? (seconds < 0 ? .min : .max) : result.partialValue
    }
}
