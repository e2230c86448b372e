import Foundation
import VitalModel

/// A visit as the rules see it: whose readings the kit's devices take, and from when.
public struct OpenVisit: Sendable, Hashable {
    public var id: Int64
    public var patient: PatientIdentifier
    public var startedAt: Date

    public init(id: Int64, patient: PatientIdentifier, startedAt: Date) {
        self.id = id
        self.patient = patient
        self.startedAt = startedAt
    }
}

/// Decides whose a reading is: a household member (by device or user slot), the citizen of an open visit, or
/// nobody (held unassigned with the reason). A pure function of the reading, the household and the visit.
///
/// The rules, in order:
/// 1. A device the household binds is the household's, visit or not: a slot-bound device gives the member of
///    the reading's user slot; a single-user binding gives its member, but only for readings without a user
///    slot (a cuff that reports slots needs its slots bound). Slot 255 is the Bluetooth SIG's "unknown user".
/// 2. Any other device is a kit device while a visit is open (an entry binding a whole model does not count then):
///    its reading goes to the visited citizen only when the hub can show it was measured after the visit started:
///    a streamed reading (heart rate, SpO2) without a time of its own, or a device time checked against the hub's
///    clock in the same session. A spot measurement without a time, a record that predates the visit, or one
///    whose time cannot be checked, is held.
/// 3. With no visit open, a household of one member takes readings without a user slot from unbound devices.
/// 4. Anything else is held.
public struct AssignmentRules: Sendable {
    public var household: Household

    /// The Bluetooth SIG user index for "unknown user" (Blood Pressure, Weight Scale, Body Composition).
    public static let unknownUserSlot = Reading.unknownUserSlot
    /// How far after its receipt a reading's corrected time may lie (clock-check rounding), before the hub
    /// calls the device clock wrong.
    public static let futureTolerance: TimeInterval = 120

    public init(household: Household) {
        self.household = household
    }

    /// The citizen for `reading` (nil: hold it) and the attribution to store with it. `now` is the hub's clock: a
    /// reading that claims to have been received later than that is held (its sender's clock cannot be trusted).
    public func attribute(_ reading: Reading, visit: OpenVisit?, now: Date = Date()) -> (subject: PatientIdentifier?, attribution: Attribution) {
        if reading.receivedAt.instant.timeIntervalSince(now) > Self.futureTolerance {
            return (nil, .unassigned("its receive time is later than the hub's clock, so when it was measured cannot be "
                + "trusted. Fix: check the clock of whatever handed it in, then assign this reading"))
        }
        var bindings = household.bindings(for: reading)
        // During a visit only an entry naming the device itself keeps it the household's: a whole model bound to a
        // member must not take the readings of the health worker's kit cuff of the same model.
        if visit != nil { bindings = bindings.filter(\.selector.namesDevice) }
        if bindings.count > 1 {
            return (nil, .unassigned("\(bindings.count) household device entries claim this device equally. Fix: keep one "
                + "entry per device, each naming it (bluetooth, systemID or serialNumber), then assign the reading"))
        }
        if let binding = bindings.first { return attributeBound(reading, binding) }
        if let visit { return attributeDuringVisit(reading, visit) }
        switch household.members.count {
        case 0:
            return (nil, .unassigned("no household member or owner is configured and no visit is open. Fix: configure "
                + "household or owner, or start a visit; assign this reading with `vitalgate assign`"))
        case 1:
            guard let slot = reading.userSlot else { return (household.members[0].patient, Attribution(rule: .owner)) }
            return (nil, .unassigned(slotText(slot) + " and the household binds no slots of this device. Fix: "
                + "bind its slots under household.devices, then assign this reading"))
        default:
            return (nil, .unassigned("the device is bound to no household member and the household has "
                + "\(household.members.count) members. Fix: bind it under household.devices, then assign this reading"))
        }
    }

    private func attributeBound(_ reading: Reading, _ binding: Household.DeviceBinding) -> (PatientIdentifier?, Attribution) {
        if !binding.slots.isEmpty {
            guard let slot = reading.userSlot else {
                return (nil, .unassigned("the household binds this device's user slots, but the reading names no user slot"))
            }
            guard let label = binding.slots[slot], let member = household.member(label) else {
                return (nil, .unassigned(slotText(slot) + ", which the household binds to no member. Fix: bind it under "
                    + "household.devices, then assign this reading"))
            }
            return (member.patient, Attribution(rule: .householdSlot))
        }
        guard let label = binding.member, let member = household.member(label) else {
            return (nil, .unassigned("the household entry for this device names no member"))
        }
        if let slot = reading.userSlot {
            return (nil, .unassigned(slotText(slot) + ", but the household binds the whole device to one member. Fix: "
                + "bind its slots under household.devices, then assign this reading"))
        }
        return (member.patient, Attribution(rule: .householdDevice))
    }

    private func attributeDuringVisit(_ reading: Reading, _ visit: OpenVisit) -> (PatientIdentifier?, Attribution) {
        guard let measured = Self.measuredAt(reading) else {
            return (nil, .unassigned("it came during visit \(visit.id) without a time the hub can check against its own clock "
                + "(no device time, or no clock check), so it may be a record from before the visit. Fix: check it with "
                + "`vitalgate readings --unassigned` and assign it"))
        }
        if measured < visit.startedAt {
            return (nil, .unassigned("it was measured before visit \(visit.id) started (a record in the device's memory); "
                + "records from before a visit are never given to the visited citizen"))
        }
        if measured.timeIntervalSince(reading.receivedAt.instant) > Self.futureTolerance {
            return (nil, .unassigned("its time is after the hub received it: the device clock is wrong, so the hub cannot "
                + "tell whether it was measured during visit \(visit.id)"))
        }
        return (visit.patient, Attribution(rule: .visit, visitID: visit.id))
    }

    private func slotText(_ slot: Int) -> String {
        slot == Self.unknownUserSlot ? "the device did not know who measured (user slot 255, \"unknown user\")"
            : "the device reports user slot \(slot)"
    }

    /// Kinds a sensor streams as it measures (a strap's heart rate, an oximeter's SpO2): without a time of their
    /// own, such readings were measured when received. Spot measurements (a cuff, a scale, a thermometer, a
    /// glucometer) without a time may be records from memory.
    static let streamedKinds: Set<MeasurementKind> = [.heartRate, .pulseOximetry]

    /// Bluetooth SIG characteristics that carry spot measurements of a streamed kind: the PLX Spot-Check
    /// Measurement (0x2A5E), which an oximeter may keep and send later, its time stamp optional (PLX Service 1.0.1).
    static let spotFrames: Set<String> = ["2A5E"]

    /// When the reading was measured on the hub's timeline, or nil when the hub cannot tell: a spot measurement or a
    /// record from memory without a device time, or a device time the session could not check against the hub's
    /// clock. A device's claim that its clock is set is not enough: clocks drift, and minutes decide a visit.
    public static func measuredAt(_ reading: Reading) -> Date? {
        if let window = reading.window { return window.start.instant }
        guard let stamp = reading.deviceTime else {
            let streamed = streamedKinds.contains(reading.kind) && !spotFrames.contains(reading.source.frame.uppercased())
            return streamed && !reading.status.contains(.fromStorage) ? reading.receivedAt.instant : nil
        }
        guard stamp.clock != .notSet, let check = reading.clockCheck, let local = check.corrected(stamp) else { return nil }
        // On the hub's local wall clock at its offset at the check: the same correction the upload's effective time uses.
        return Date(timeIntervalSince1970: Double(local.millisecondsSince1970 - Int64(check.hubTime.utcOffsetSeconds) * 1000) / 1000)
    }
}
