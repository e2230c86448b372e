import Foundation
import Synchronization
import Testing
import VitalGateTestKit
import VitalModel
@testable import Outbox

/// A fresh directory under the system temporary directory, removed when the value goes away.
final class TemporaryDirectory: Sendable {
    let path: String

    init(_ name: String = "outbox") {
        path = NSTemporaryDirectory() + "vitalgate-\(name)-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    var database: String { path + "/outbox.db" }
}

/// A controllable clock for stored-at, audit and quarantine times.
final class TestClock: Sendable {
    private let milliseconds = Mutex<Int64>(1_750_000_000_000)
    var now: Date { Date(outboxMilliseconds: milliseconds.withLock { $0 }) }
    func advance(seconds: Int64) { milliseconds.withLock { $0 += seconds * 1000 } }
}

/// Free space a test sets, for the reserve logic without filling a disk.
final class FakeFreeSpace: Sendable {
    private let bytes = Mutex<UInt64?>(1 << 40)
    func set(_ value: UInt64?) { bytes.withLock { $0 = value } }
    var provider: FreeSpaceProvider { { [self] _ in bytes.withLock { $0 } } }
}

let testPatient = PatientIdentifier(system: "http://fhir.hl7.org.vn/core/sid/cccd", value: "099199000001")

func options(clock: TestClock = TestClock(), freeSpace: FakeFreeSpace? = nil, reserve: UInt64 = 8 << 20) -> OutboxOptions {
    OutboxOptions(reservedFreeBytes: reserve, freeSpace: freeSpace?.provider ?? FileSystemSpace.available, clock: { clock.now })
}

/// A blood-pressure reading from one cuff; `minute` sets the device time (nil: none, keyed by receive time).
func bloodPressure(systolic: Int64 = 120, minute: Int? = 0, receivedMillisecond: Int64 = 0, slot: Int? = 1,
                   address: String = "C4:F3:12:53:F2:C9", sequence: Int? = nil) -> Reading {
    let base: Int64 = 1_748_737_800_000  // 2025-06-01T00:30:00Z
    return Reading(
        kind: .bloodPressure,
        values: [MeasuredValue(.systolic, .number(DecimalValue(mantissa: systolic, exponent: 0)), .millimetreOfMercury),
                 MeasuredValue(.diastolic, .number(DecimalValue(mantissa: 80, exponent: 0)), .millimetreOfMercury),
                 MeasuredValue(.pulseRate, .number(DecimalValue(mantissa: 64, exponent: 0)), .perMinute)],
        deviceTime: minute.map { DeviceTimestamp(time: LocalDateTime(year: 2025, month: 6, day: 1, hour: 7, minute: $0 % 60, second: 0)!) },
        receivedAt: HubTimestamp(instant: Date(outboxMilliseconds: base + receivedMillisecond), utcOffsetSeconds: 7 * 3600),
        device: DeviceIdentity(bluetoothAddress: EUI48(address)!), userSlot: slot,
        source: ReadingSource(profileID: "bluetooth-sig/blood-pressure", frame: "2A35"), raw: [0x00, UInt8(systolic & 0xFF), 0x00],
        sequenceNumber: sequence)
}

func incoming(_ reading: Reading, assigned: Bool = true) -> IncomingReading {
    IncomingReading(reading: reading, subject: assigned ? testPatient : nil)
}

/// Runs SQL on the file behind the Outbox's back, as damage or an old version would leave it.
func tamper(_ path: String, _ sql: String) throws {
    let database = try SQLiteDatabase(path: path)
    try database.execute(sql)
}

func scalar(_ path: String, _ sql: String) throws -> String? {
    try SQLiteDatabase(path: path).scalarText(sql)
}

/// Random readings that set every member in every combination, reproducible from the seed.
struct RandomReadings {
    var generator: SeededGenerator

    init(seed: UInt64) { generator = SeededGenerator(seed: seed) }

    mutating func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &generator) }
    mutating func chance(_ percent: Int) -> Bool { int(0...99) < percent }
    mutating func pick<T>(_ items: [T]) -> T { items[int(0...items.count - 1)] }

    mutating func text() -> String {
        let alphabet: [String] = ["a", "Z", "0", " ", "-", ":", "#", "|", "%", "\"", "\\", "\n", "\u{01}", "é", "Ư", "😀", "\u{7F}"]
        return (0..<int(0...12)).map { _ in pick(alphabet) }.joined()
    }

    mutating func decimal() -> DecimalValue {
        let mantissa: Int64 = switch int(0...9) {
        case 0: pick([0, .min, .max, -1, 1])
        case 1...3: Int64.random(in: Int64.min...Int64.max, using: &generator)
        default: Int64.random(in: -9999...99_999, using: &generator)
        }
        let exponent = chance(5) ? pick([127, -128, 18, -40]) : int(-8...7)
        return DecimalValue(mantissa: mantissa, exponent: exponent)
    }

    mutating func localTime(millisecond: Bool) -> LocalDateTime {
        LocalDateTime(year: int(1...9999), month: int(1...12), day: int(1...28), hour: int(0...23), minute: int(0...59),
                      second: int(0...59), millisecond: millisecond ? int(0...999) : 0)!
    }

    /// Hub instants are whole milliseconds with whole-minute offsets, as the JSON carries them.
    mutating func hubTime() -> HubTimestamp {
        let milliseconds = Int64.random(in: 0...253_300_000_000_000, using: &generator)  // 1970...9996
        return HubTimestamp(instant: Date(outboxMilliseconds: milliseconds), utcOffsetSeconds: int(-18 * 60...18 * 60) * 60)
    }

    mutating func device() -> DeviceIdentity {
        var device = DeviceIdentity()
        if chance(50) { device.systemID = EUI64(bytes: (0..<8).map { _ in UInt8.random(in: 0...255, using: &generator) }) }
        if chance(60) { device.bluetoothAddress = EUI48(bytes: (0..<6).map { _ in UInt8.random(in: 0...255, using: &generator) }) }
        if chance(30) {
            device.usb = USBIdentity(vendorID: UInt16.random(in: 0...0xFFFF, using: &generator),
                                     productID: UInt16.random(in: 0...0xFFFF, using: &generator), serial: chance(70) ? text() : nil)
        }
        if chance(50) { device.manufacturer = text() }
        if chance(50) { device.model = text() }
        if chance(30) { device.serialNumber = text() }
        if chance(30) { device.firmwareRevision = text() }
        if chance(30) { device.hardwareRevision = text() }
        if chance(30) { device.softwareRevision = text() }
        return device
    }

    mutating func reading() -> Reading {
        let values = (0..<int(0...6)).map { _ -> MeasuredValue in
            let type = pick(MeasurementType.all)
            let unit = pick(type.units)
            return MeasuredValue(type, chance(15) ? .special(pick(SpecialValue.allCases)) : .number(decimal()), unit)
        }
        var deviceTime: DeviceTimestamp?
        if chance(70) {
            let resolution: ClockResolution = chance(30) ? .millisecond : .second
            deviceTime = DeviceTimestamp(time: localTime(millisecond: resolution == .millisecond), resolution: resolution,
                                         utcOffsetQuarterHours: chance(40) ? int(-48...56) : nil,
                                         clock: pick([.unknown, .set, .notSet]))
        }
        let statusBits = (0..<(chance(30) ? int(1...3) : 0)).map { _ in
            StatusBitField(type: MDCCode(UInt32.random(in: 0...UInt32.max, using: &generator), text()),
                           bits: (0..<int(0...5)).map { _ in StatusBit(bit: int(0...31), name: text(), isSet: pick([true, false, nil])) },
                           isVerified: chance(50))
        }
        let status = MeasurementStatus(rawValue: UInt16.random(in: 0...0x3FF, using: &generator))
        return Reading(
            kind: pick(MeasurementKind.allCases), values: values, deviceTime: deviceTime, receivedAt: hubTime(), device: device(),
            userSlot: chance(50) ? int(0...255) : nil, status: status, statusBits: statusBits,
            sensorContact: chance(30) ? pick([.notSupported, .notDetected, .detected]) : nil,
            clockCheck: chance(30) ? DeviceClockCheck(hubTime: hubTime(), deviceTime: chance(80) ? localTime(millisecond: chance(50)) : nil) : nil,
            source: ReadingSource(profileID: text(), frame: text()),
            raw: (0..<int(0...40)).map { _ in UInt8.random(in: 0...255, using: &generator) },
            bodySite: chance(30) ? BodySite(code: chance(50) ? MDCCode(UInt32.random(in: 0...UInt32.max, using: &generator), text()) : nil,
                                            name: text()) : nil,
            sequenceNumber: chance(30) ? int(0...65_535) : nil, window: chance(20) ? window() : nil)
    }

    /// A window of up to an hour with a minimum and maximum of one type and unit, as summarised readings carry.
    mutating func window() -> MeasurementWindow {
        let start = hubTime()
        let end = HubTimestamp(unixMilliseconds: start.unixMilliseconds + Int64(int(0...3_600_000)), utcOffsetSeconds: int(-18 * 60...18 * 60) * 60)
        let type = pick(MeasurementType.all)
        let unit = pick(type.units)
        return MeasurementWindow(start: start, end: end, sampleCount: int(1...100_000), excludedSampleCount: int(0...100),
                                 minimum: MeasuredValue(type, .number(decimal()), unit), maximum: MeasuredValue(type, .number(decimal()), unit))
    }
}

/// The built `vitalgate` executable beside the test bundle (or in `.build/debug`).
func vitalgateBinary() -> URL {
    let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("vitalgate")
    return FileManager.default.isExecutableFile(atPath: beside.path) ? beside : RepositoryPaths.root.appendingPathComponent(".build/debug/vitalgate")
}
