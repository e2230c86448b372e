import Foundation
import Testing
import VitalModel
import ProfileCatalog
import VitalGateTestKit
@testable import DeviceIO

/// Which shipped profile claims a Bluetooth LE device, and BlueZ's UUID forms.
@Suite("Bluetooth profile matching")
struct BLEProfileMatcherTests {
    static let catalog = ProfileCatalog.load(directory: RepositoryPaths.root.appendingPathComponent("DeviceProfiles").path)
    let matcher = BLEProfileMatcher(profiles: Self.catalog.profiles)
    let address = EUI48("C4:F3:12:53:F2:C9")!

    func device(_ name: String?, _ services: [String], manufacturer: [UInt16: [UInt8]] = [:]) -> BLEDeviceInfo {
        BLEDeviceInfo(address: address, name: name, serviceUUIDs: services, manufacturerData: manufacturer)
    }

    func claimed(_ device: BLEDeviceInfo) -> String? {
        if case .profile(let profile) = matcher.match(device) { return profile.id }
        return nil
    }

    @Test("the shipped profiles load, and only those with a ble transport take part")
    func loads() {
        #expect(Self.catalog.errors.isEmpty, "\(Self.catalog.errors)")
        #expect(matcher.profiles.allSatisfy { if case .ble = $0.transport { true } else { false } })
        #expect(matcher.profiles.contains { $0.id == "and/ua-651ble" })
        #expect(!matcher.profiles.contains { $0.id == "omron/hem-790it" })
    }

    @Test("a profile naming the service and the name beats the generic profile for the service")
    func specificWins() {
        #expect(claimed(device("A&D_UA-651BLE_0C1234", ["1810"])) == "and/ua-651ble")
        #expect(claimed(device("BM85", ["1810", "180A"])) == "beurer/bm85")
        #expect(claimed(device("BP cuff", ["1810"])) == "bluetooth-sig/blood-pressure")
        #expect(claimed(device(nil, ["180D"])) == "bluetooth-sig/heart-rate")
        #expect(claimed(device("PC-60F_SN1234", ["6E400001-B5A3-F393-E0A9-E50E24DCCA9E"])) == "viatom/pc-60fw")
    }

    @Test("a device no profile claims gets an explanation with the near misses")
    func unclaimed() {
        let battery = device("Thermo", ["180F"])
        #expect(claimed(battery) == nil)
        #expect(matcher.explanation(for: battery) == "no profile claims a device advertising services 180F")
        let oximeterWithoutName = device("Other", ["6E400001-B5A3-F393-E0A9-E50E24DCCA9E"])
        #expect(claimed(oximeterWithoutName) == nil)
        #expect(matcher.explanation(for: oximeterWithoutName).contains("viatom/pc-60fw wants a name like PC-60F*"))
    }

    @Test("equally specific claims are ambiguous and name both profiles")
    func ambiguous() {
        let twoServices = device(nil, ["1810", "180D"])
        guard case .ambiguous(let ids) = matcher.match(twoServices) else {
            Issue.record("expected ambiguous, got \(matcher.match(twoServices))")
            return
        }
        #expect(ids == ["bluetooth-sig/blood-pressure", "bluetooth-sig/heart-rate"])
        #expect(matcher.explanation(for: twoServices) == "ambiguous: bluetooth-sig/blood-pressure, bluetooth-sig/heart-rate")
    }

    @Test("manufacturer data matches by company and masked prefix")
    func manufacturerData() {
        let criteria = BluetoothMatch(manufacturerData: [ManufacturerDataMatch(company: 0x0131, prefix: [0x12, 0x30], mask: [0xFF, 0xF0])])
        #expect(BLEProfileMatcher.manufacturerMatches(criteria, device(nil, [], manufacturer: [0x0131: [0x12, 0x3F, 0x00]])))
        #expect(!BLEProfileMatcher.manufacturerMatches(criteria, device(nil, [], manufacturer: [0x0131: [0x12, 0x40]])))
        #expect(!BLEProfileMatcher.manufacturerMatches(criteria, device(nil, [], manufacturer: [0x0131: [0x12]])))
        #expect(!BLEProfileMatcher.manufacturerMatches(criteria, device(nil, [], manufacturer: [0x004C: [0x12, 0x30]])))
    }

    @Test("the scan filter is every service a profile matches on, once")
    func scanServices() {
        let services = matcher.services
        #expect(Set(services).isSuperset(of: ["1810", "180D", "1808", "6E400001-B5A3-F393-E0A9-E50E24DCCA9E"]))
        #expect(services.count == Set(services).count)
    }

    @Test("UUIDs: BlueZ's full lower-case SIG form becomes 4 digits, others upper case; input forms are checked",
          arguments: [
            ("00001810-0000-1000-8000-00805f9b34fb", "1810"),
            ("00002a35-0000-1000-8000-00805f9b34fb", "2A35"),
            ("6e400001-b5a3-f393-e0a9-e50e24dcca9e", "6E400001-B5A3-F393-E0A9-E50E24DCCA9E"),
            ("0001fe01-0000-1000-8000-00805f9b34fb", "0001FE01-0000-1000-8000-00805F9B34FB"),
          ])
    func uuidForms(bluez: String, vitalgate: String) {
        #expect(BlueZUUID.normalized(bluez) == vitalgate)
        #expect(BlueZUUID.canonical(bluez) == vitalgate)
        #expect(BlueZUUID.full(vitalgate) == bluez)
    }

    @Test("text that is not a UUID is refused", arguments: ["", "181", "18100", "xyz1", "１８１０", "6e400001b5a3f393e0a9e50e24dcca9e", "6e400001-b5a3-f393-e0a9-e50e24dcca9"])
    func notUUIDs(text: String) {
        #expect(BlueZUUID.canonical(text) == nil)
        #expect(BlueZUUID.full(text) == nil)
    }
}
