import Dispatch

extension Duration {
    /// The duration for Dispatch deadlines and waits, in whole nanoseconds (clamped, never a trap).
    var dispatchInterval: DispatchTimeInterval {
        let parts = components
        let (scaled, overflow) = parts.seconds.multipliedReportingOverflow(by: 1_000_000_000)
        return .nanoseconds(Int(clamping: overflow ? Int64.max : scaled &+ parts.attoseconds / 1_000_000_000))
    }
}
