import Foundation
import VitalModel

/// Placeholder until the heart-rate windows land: passes every reading through.
struct HeartRateWindowing {
    init(seconds: Int) {}
    mutating func add(_ reading: Reading, now: HubTimestamp) -> [Reading] { [reading] }
    var nextDeadline: ContinuousClock.Instant? { nil }
    mutating func closeDue(now: HubTimestamp) -> [Reading] { [] }
    mutating func flush(now: HubTimestamp) -> [Reading] { [] }
}
