import Foundation
import Testing
import VitalModel
@testable import Outbox

/// Readings that summarise a window of heart-rate samples: keyed by their window, so every window of a device
/// is a row of its own and the same window stored again is the row it already has.
@Suite("Outbox keys of windowed readings")
struct WindowDedupeTests {
    static let base: Int64 = 1_748_738_100_000  // 2025-06-01T07:35:00+07:00

    /// A window reading from one strap: `startSecond` and `endSecond` after 07:35:00, received at its end.
    static func window(startSecond: Int64, endSecond: Int64, mean: Int64 = 775, samples: Int = 60,
                       address: String = "00:00:5E:00:53:01") -> Reading {
        func at(_ second: Int64) -> HubTimestamp { HubTimestamp(unixMilliseconds: base + second * 1000, utcOffsetSeconds: 25_200) }
        let low = MeasuredValue(.heartRate, .number(DecimalValue(mantissa: 77, exponent: 0)), .perMinute)
        let high = MeasuredValue(.heartRate, .number(DecimalValue(mantissa: 78, exponent: 0)), .perMinute)
        return Reading(
            kind: .heartRate, values: [MeasuredValue(.heartRate, .number(DecimalValue(mantissa: mean, exponent: -1)), .perMinute)],
            receivedAt: at(endSecond), device: DeviceIdentity(bluetoothAddress: EUI48(address)!),
            source: ReadingSource(profileID: "bluetooth-sig/heart-rate", frame: "2A37"), raw: [],
            window: MeasurementWindow(start: at(startSecond), end: at(endSecond), sampleCount: samples, minimum: low, maximum: high))
    }

    @Test("consecutive windows, a window cut short by a disconnect and the rest of it, other devices: one row each")
    func distinct() throws {
        let directory = TemporaryDirectory()
        let outbox = try Outbox(path: directory.database, options: options())
        let readings = [
            Self.window(startSecond: 0, endSecond: 60), Self.window(startSecond: 60, endSecond: 120),
            // Disconnected at 07:37:20, reconnected at 07:37:41, both in the window of 07:37.
            Self.window(startSecond: 120, endSecond: 140, samples: 20), Self.window(startSecond: 161, endSecond: 180, samples: 19),
            // The same window and values from another strap.
            Self.window(startSecond: 0, endSecond: 60, address: "00:00:5E:00:53:02"),
        ]
        let outcomes = try outbox.ingest(readings.map { incoming($0) })
        #expect(outcomes == (1...5).map { .stored(OutboxReadingID(Int64($0))) })
        for id in 1...5 {
            let stored = try #require(try outbox.reading(OutboxReadingID(Int64(id))))
            #expect(!stored.identifyByReceipt, "reading \(id) collided")
            #expect(stored.reading == readings[id - 1])
        }
        #expect(try outbox.auditTrail(limit: 10).isEmpty)
    }

    @Test("the same window stored again, later or for another subject, is the row it already has")
    func duplicate() throws {
        let directory = TemporaryDirectory()
        let outbox = try Outbox(path: directory.database, options: options())
        let first = try outbox.ingest([incoming(Self.window(startSecond: 0, endSecond: 60))])
        let again = try outbox.ingest([incoming(Self.window(startSecond: 0, endSecond: 60), assigned: false),
                                       incoming(try Reading(jsonText: Self.window(startSecond: 0, endSecond: 60).json.serialized()))])
        #expect(again == [.duplicate(first[0].id), .duplicate(first[0].id)])
        #expect(try outbox.summary().counts[.pending] == 1)
    }

    @Test("two windows with the same bounds but other contents are both kept; the second is identified by receipt")
    func sameBoundsOtherContents() throws {
        let directory = TemporaryDirectory()
        let outbox = try Outbox(path: directory.database, options: options())
        let outcomes = try outbox.ingest([incoming(Self.window(startSecond: 0, endSecond: 60)),
                                          incoming(Self.window(startSecond: 0, endSecond: 60, samples: 59))])
        #expect(outcomes == [.stored(OutboxReadingID(1)), .stored(OutboxReadingID(2))])
        #expect(try outbox.reading(OutboxReadingID(2))?.identifyByReceipt == true)
        #expect(try outbox.auditTrail(limit: 10).map(\.event) == ["clock-collision"])
    }

    @Test("the key names the window's bounds, not the receive time alone")
    func key() {
        let reading = Self.window(startSecond: 0, endSecond: 60)
        #expect(DedupeKey.base(for: reading) == "bt:00005E005301|heart-rate|win:\(Self.base)..\(Self.base + 60_000)")
        var shorter = reading
        shorter.window?.start.instant += 30
        #expect(DedupeKey.base(for: shorter) != DedupeKey.base(for: reading))
    }
}
