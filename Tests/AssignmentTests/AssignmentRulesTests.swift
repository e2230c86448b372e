import Assignment
import Foundation
import Testing
import VitalModel

/// The assignment rules as tables: household slots, single-user devices, visit windows, stored records from
/// before a visit, the unknown user slot. Citizens use province code 099, which is no real province.
@Suite struct AssignmentRulesTests {
    static let grandfather = PatientIdentifier(system: IdentifierSystems.vietnam.citizenID, value: "099060000001")
    static let grandmother = PatientIdentifier(system: IdentifierSystems.vietnam.citizenID, value: "099163000002")
    static let child = PatientIdentifier(system: IdentifierSystems.vietnam.socialInsurance, value: "0991234567")
    static let visited = PatientIdentifier(system: IdentifierSystems.vietnam.citizenID, value: "099185000009")

    static let cuffAddress = EUI48("F1:0B:50:00:00:11")!
    static let scaleSerial = "SC-0042"
    static let kitOximeter = EUI48("A4:C1:38:00:00:01")!

    /// A family: a two-user cuff bound by slot, a scale that is grandmother's.
    static let family = Household(
        members: [.init(label: "ong", patient: grandfather), .init(label: "ba", patient: grandmother), .init(label: "chau", patient: child)],
        devices: [
            .init(selector: .init(bluetoothAddress: cuffAddress), slots: [1: "ong", 2: "ba"]),
            .init(selector: .init(serialNumber: scaleSerial), member: "ba"),
        ])

    static let hubOffset = 7 * 3600
    static let now = Date(timeIntervalSince1970: 1_795_000_000)   // 2026-11-17, a fixed instant

    static func reading(_ kind: MeasurementKind = .bloodPressure, bluetooth: EUI48? = nil, serial: String? = nil,
                        profile: String = "test/bp", slot: Int? = nil,
                        deviceTime: LocalDateTime? = nil, clockLagSeconds: Int64? = nil, fromStorage: Bool = false,
                        receivedSecondsAfterNow: TimeInterval = 0, window: (TimeInterval, TimeInterval)? = nil,
                        frame: String = "2A35") -> Reading {
        let received = HubTimestamp(instant: now.addingTimeInterval(receivedSecondsAfterNow), utcOffsetSeconds: hubOffset)
        var check: DeviceClockCheck?
        if let lag = clockLagSeconds {
            // The device clock read at receipt shows the hub's local time minus the lag.
            check = DeviceClockCheck(hubTime: received, deviceTime: received.localTime.adding(milliseconds: -lag * 1000))
        }
        var measurementWindow: MeasurementWindow?
        if let (start, end) = window {
            let value = MeasuredValue(.heartRate, .number(DecimalValue(mantissa: 72, exponent: 0)), .perMinute)
            measurementWindow = MeasurementWindow(
                start: HubTimestamp(instant: now.addingTimeInterval(start), utcOffsetSeconds: hubOffset),
                end: HubTimestamp(instant: now.addingTimeInterval(end), utcOffsetSeconds: hubOffset),
                sampleCount: 10, minimum: value, maximum: value)
        }
        return Reading(kind: kind, values: [], deviceTime: deviceTime.map { DeviceTimestamp(time: $0) },
                       receivedAt: received,
                       device: DeviceIdentity(bluetoothAddress: bluetooth, usb: serial.map { USBIdentity(vendorID: 0x0590, productID: 0x0090, serial: $0) }),
                       userSlot: slot, status: fromStorage ? [.fromStorage] : [], clockCheck: check,
                       source: ReadingSource(profileID: profile, frame: frame), raw: [], window: measurementWindow)
    }

    /// The hub's local wall-clock time `seconds` from `now`, as a device with a right clock would stamp it.
    static func local(_ seconds: TimeInterval) -> LocalDateTime {
        LocalDateTime(now.addingTimeInterval(seconds), utcOffsetSeconds: hubOffset)
    }

    enum Expected: Equatable {
        case patient(PatientIdentifier, Attribution.Rule)
        case held(containing: String)
    }

    static func check(_ result: (subject: PatientIdentifier?, attribution: Attribution), _ expected: Expected,
                      _ name: String = "", sourceLocation: Testing.SourceLocation = #_sourceLocation) {
        switch expected {
        case .patient(let patient, let rule):
            #expect(result.subject == patient, "\(name)", sourceLocation: sourceLocation)
            #expect(result.attribution.rule == rule, sourceLocation: sourceLocation)
            #expect(result.attribution.reason == nil, sourceLocation: sourceLocation)
        case .held(let text):
            #expect(result.subject == nil, "\(name)", sourceLocation: sourceLocation)
            #expect(result.attribution.rule == .unassigned, sourceLocation: sourceLocation)
            #expect(result.attribution.reason?.contains(text) == true, "reason: \(result.attribution.reason ?? "nil")",
                    sourceLocation: sourceLocation)
        }
    }

    // MARK: Household slots and devices

    static let householdCases: [(String, Reading, Expected)] = [
        ("cuff user 1 is grandfather", reading(bluetooth: cuffAddress, slot: 1), .patient(grandfather, .householdSlot)),
        ("cuff user 2 is grandmother", reading(bluetooth: cuffAddress, slot: 2), .patient(grandmother, .householdSlot)),
        ("cuff user 3 is bound to no one", reading(bluetooth: cuffAddress, slot: 3), .held(containing: "user slot 3")),
        ("cuff slot 0 (a BM85's user 1) is not slot 1", reading(bluetooth: cuffAddress, slot: 0), .held(containing: "user slot 0")),
        ("cuff unknown user 0xFF", reading(bluetooth: cuffAddress, slot: 255), .held(containing: "unknown user")),
        ("cuff reading without a slot", reading(bluetooth: cuffAddress), .held(containing: "names no user slot")),
        ("scale is grandmother's", reading(serial: scaleSerial, profile: "test/scale"), .patient(grandmother, .householdDevice)),
        ("scale reporting a user slot", reading(serial: scaleSerial, profile: "test/scale", slot: 1), .held(containing: "user slot 1")),
        ("an unbound device in a three-person household", reading(bluetooth: EUI48("00:11:22:33:44:55")!), .held(containing: "3 members")),
        ("a neighbour's cuff of the same model", reading(bluetooth: EUI48("F1:0B:50:00:00:12")!, slot: 1), .held(containing: "bound to no household member")),
    ]

    @Test(arguments: 0..<householdCases.count)
    func household(_ index: Int) {
        let (name, reading, expected) = Self.householdCases[index]
        let result = AssignmentRules(household: Self.family).attribute(reading, visit: nil, now: Self.now)
        Self.check(result, expected, name)
    }

    @Test func oneMemberHouseholdTakesUnboundSingleUserDevicesButNotSlots() {
        let rules = AssignmentRules(household: .single(Self.grandfather))
        Self.check(rules.attribute(Self.reading(bluetooth: Self.cuffAddress), visit: nil, now: Self.now), .patient(Self.grandfather, .owner))
        Self.check(rules.attribute(Self.reading(bluetooth: Self.cuffAddress, slot: 2), visit: nil, now: Self.now), .held(containing: "user slot 2"))
        Self.check(rules.attribute(Self.reading(bluetooth: Self.cuffAddress, slot: 255), visit: nil, now: Self.now), .held(containing: "unknown user"))
    }

    @Test func noHouseholdAndNoVisitHoldsEverything() {
        Self.check(AssignmentRules(household: Household()).attribute(Self.reading(), visit: nil, now: Self.now), .held(containing: "no household member"))
    }

    @Test func theDeviceItselfBeatsItsModelAndEqualClaimsAreHeld() {
        let household = Household(
            members: [.init(label: "ong", patient: Self.grandfather), .init(label: "ba", patient: Self.grandmother)],
            devices: [.init(selector: .init(profile: "test/bp"), member: "ong"),
                      .init(selector: .init(profile: "test/bp", bluetoothAddress: Self.cuffAddress), member: "ba")])
        let rules = AssignmentRules(household: household)
        Self.check(rules.attribute(Self.reading(bluetooth: Self.cuffAddress), visit: nil, now: Self.now), .patient(Self.grandmother, .householdDevice))
        Self.check(rules.attribute(Self.reading(bluetooth: Self.kitOximeter), visit: nil, now: Self.now), .patient(Self.grandfather, .householdDevice))
        var twice = household
        twice.devices.append(.init(selector: .init(serialNumber: "X"), member: "ong"))
        twice.devices.append(.init(selector: .init(serialNumber: "X"), member: "ba"))
        Self.check(AssignmentRules(household: twice).attribute(Self.reading(serial: "X"), visit: nil, now: Self.now),
                   .held(containing: "2 household device entries"))
        // One entry names the cuff by address, another (with its profile) by serial number: a conflict, not a win
        // for the entry that also names the profile.
        let conflicting = Household(
            members: household.members,
            devices: [.init(selector: .init(bluetoothAddress: Self.cuffAddress), member: "ba"),
                      .init(selector: .init(profile: "test/bp", serialNumber: "X"), member: "ong")])
        Self.check(AssignmentRules(household: conflicting).attribute(Self.reading(bluetooth: Self.cuffAddress, serial: "X"), visit: nil, now: Self.now),
                   .held(containing: "2 household device entries claim this device"))
    }

    // MARK: Visits

    /// The visit started 10 minutes before `now`; readings arrive at `now` unless said otherwise.
    static let visit = OpenVisit(id: 7, patient: visited, startedAt: now.addingTimeInterval(-600))

    static let visitCases: [(String, Reading, Expected)] = [
        ("a streamed SpO2 reading without device time (oximeter)", reading(.pulseOximetry, bluetooth: kitOximeter), .patient(visited, .visit)),
        // A spot-check record (PLX 0x2A5E, time stamp optional) may be one the oximeter kept from the citizen before.
        ("a PLX spot-check SpO2 reading without device time", reading(.pulseOximetry, bluetooth: kitOximeter, frame: "2A5E"),
         .held(containing: "no device time")),
        ("a PLX continuous SpO2 reading without device time", reading(.pulseOximetry, bluetooth: kitOximeter, frame: "2A5F"),
         .patient(visited, .visit)),
        ("a streamed SpO2 reading flagged from storage", reading(.pulseOximetry, bluetooth: kitOximeter, fromStorage: true),
         .held(containing: "can check against its own clock")),
        // A cuff without a clock may send a record of the citizen before; nothing shows it was measured now.
        ("a blood pressure without device time", reading(bluetooth: kitOximeter), .held(containing: "no device time")),
        ("a stored record 5 min into the visit, clock checked and right", reading(bluetooth: kitOximeter, deviceTime: local(-300), clockLagSeconds: 0),
         .patient(visited, .visit)),
        ("a stored record from an hour before the visit, clock checked", reading(bluetooth: kitOximeter, deviceTime: local(-3600), clockLagSeconds: 0),
         .held(containing: "before visit 7 started")),
        ("one second before the visit started", reading(bluetooth: kitOximeter, deviceTime: local(-601), clockLagSeconds: 0),
         .held(containing: "before visit 7 started")),
        ("exactly when the visit started", reading(bluetooth: kitOximeter, deviceTime: local(-600), clockLagSeconds: 0),
         .patient(visited, .visit)),
        // The device clock runs 2 h slow: its stamp 1 h 55 min before the visit is, corrected, 5 min into it.
        ("slow device clock, corrected into the visit", reading(bluetooth: kitOximeter, deviceTime: local(-300 - 7200), clockLagSeconds: 7200),
         .patient(visited, .visit)),
        // The device clock runs 2 h fast: a record that looks 1 h into the visit was taken an hour before it.
        ("fast device clock, corrected to before the visit", reading(bluetooth: kitOximeter, deviceTime: local(3600), clockLagSeconds: -7200),
         .held(containing: "before visit 7 started")),
        ("a stored record whose clock the hub could not check", reading(bluetooth: kitOximeter, deviceTime: local(-300)),
         .held(containing: "can check against its own clock")),
        ("a corrected time an hour after receipt", reading(bluetooth: kitOximeter, deviceTime: local(3600), clockLagSeconds: 0),
         .held(containing: "device clock is wrong")),
        ("a heart-rate window that began in the visit", reading(.heartRate, bluetooth: kitOximeter, window: (-60, 0)), .patient(visited, .visit)),
        ("a heart-rate window that began before the visit", reading(.heartRate, bluetooth: kitOximeter, window: (-660, -540)),
         .held(containing: "before visit 7 started")),
        ("a kit cuff's user slot 2 during a visit", reading(bluetooth: kitOximeter, slot: 2, deviceTime: local(-60), clockLagSeconds: 0),
         .patient(visited, .visit)),
        ("the household's own cuff during a visit stays the household's", reading(bluetooth: cuffAddress, slot: 1),
         .patient(grandfather, .householdSlot)),
        ("the household's cuff, unknown user, during a visit", reading(bluetooth: cuffAddress, slot: 255), .held(containing: "unknown user")),
        ("a reading received in the future (the sender's clock is ahead)",
         reading(.pulseOximetry, bluetooth: kitOximeter, receivedSecondsAfterNow: 3600), .held(containing: "later than the hub's clock")),
    ]

    @Test(arguments: 0..<visitCases.count)
    func visitWindow(_ index: Int) {
        let (name, reading, expected) = Self.visitCases[index]
        let result = AssignmentRules(household: Self.family).attribute(reading, visit: Self.visit, now: Self.now)
        Self.check(result, expected, name)
        if case .patient(_, .visit) = expected { #expect(result.attribution.visitID == 7, "\(name)") }
    }

    @Test func aKitWithoutHouseholdGivesNothingOnceTheVisitEnded() {
        let rules = AssignmentRules(household: Household())
        let reading = Self.reading(.pulseOximetry, bluetooth: Self.kitOximeter)
        Self.check(rules.attribute(reading, visit: Self.visit, now: Self.now), .patient(Self.visited, .visit))
        Self.check(rules.attribute(reading, visit: nil, now: Self.now), .held(containing: "no visit is open"))
    }

    @Test func aSetClockWithUTCOffsetIsStillCheckedAgainstTheHub() {
        // An IEEE 11073-10206 stamp: UTC, offset +07:00 (28 quarter hours), clock set, but 10 minutes fast. The
        // record was taken 5 minutes before the visit started; its stamp says 5 minutes into it.
        let taken = Self.visit.startedAt.addingTimeInterval(-300)
        var reading = Self.reading(bluetooth: Self.kitOximeter)
        reading.deviceTime = DeviceTimestamp(time: LocalDateTime(taken.addingTimeInterval(600), utcOffsetSeconds: 0),
                                             utcOffsetQuarterHours: 28, clock: .set)
        let rules = AssignmentRules(household: Household())
        Self.check(rules.attribute(reading, visit: Self.visit, now: Self.now), .held(containing: "can check against its own clock"))
        // The session read the device clock: 10 minutes ahead of the hub's local time.
        reading.clockCheck = DeviceClockCheck(hubTime: reading.receivedAt, deviceTime: reading.receivedAt.localTime.adding(milliseconds: 600_000))
        Self.check(rules.attribute(reading, visit: Self.visit, now: Self.now), .held(containing: "before visit 7 started"))
        // A stamp the same clock gave 5 minutes into the visit is the visited citizen's.
        reading.deviceTime?.time = LocalDateTime(Self.visit.startedAt.addingTimeInterval(900), utcOffsetSeconds: 0)
        Self.check(rules.attribute(reading, visit: Self.visit, now: Self.now), .patient(Self.visited, .visit))
    }

    @Test func aWholeModelBoundToAMemberDoesNotTakeTheKitsReadingsDuringAVisit() {
        let household = Household(members: [.init(label: "ong", patient: Self.grandfather)],
                                  devices: [.init(selector: .init(profile: "test/bp"), member: "ong")])
        let reading = Self.reading(bluetooth: Self.kitOximeter, deviceTime: Self.local(-60), clockLagSeconds: 0)
        let rules = AssignmentRules(household: household)
        Self.check(rules.attribute(reading, visit: nil, now: Self.now), .patient(Self.grandfather, .householdDevice))
        Self.check(rules.attribute(reading, visit: Self.visit, now: Self.now), .patient(Self.visited, .visit))
    }

    @Test func reasonsNeverNameACitizen() {
        var reasons: [String] = []
        for (_, reading, _) in Self.householdCases { reasons.append(AssignmentRules(household: Self.family).attribute(reading, visit: nil, now: Self.now).attribution.reason ?? "") }
        for (_, reading, _) in Self.visitCases { reasons.append(AssignmentRules(household: Self.family).attribute(reading, visit: Self.visit, now: Self.now).attribution.reason ?? "") }
        #expect(reasons.contains { !$0.isEmpty })
        for reason in reasons {
            for patient in [Self.grandfather, Self.grandmother, Self.child, Self.visited] { #expect(!reason.contains(patient.value)) }
        }
    }
}
