import Assignment
import DeviceIO
import Foundation
import Outbox
import ProfileCatalog
import Testing
import VitalGateTestKit
import VitalModel
@testable import Gateway

/// Readings from a USB device need an identity that stays the same across sessions and is nobody else's,
/// or the server cannot recognise a re-sent reading (non-negotiable 3) or files it under another device.
@Suite("device identity for sessions")
struct DeviceIdentityForSessionsTests {
    static let catalog = ProfileCatalog.load(directory: RepositoryPaths.root.appendingPathComponent("DeviceProfiles").path)

    func manager(hub: EUI48?) throws -> DeviceManager {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("vitalgate-identity-\(UUID().uuidString).db").path
        return DeviceManager(profiles: [], outbox: try Outbox(path: path), assignment: AssignmentRules(household: Household()), hubAddress: hub, log: DaemonLog(), onStored: {})
    }

    func profile(_ id: String) throws -> DeviceProfile { try #require(Self.catalog.profile(id)) }

    func omron(serial: String?, port: String) -> AttachedDevice {
        AttachedDevice(subsystem: .hidraw, node: "/dev/hidraw0", syspath: "/sys/devices/x/" + port, vendorID: 0x0590, productID: 0x0028,
                       interfaceNumber: 0, manufacturer: "OMRON", product: "HEM-790IT", serialNumber: serial, portPath: port)
    }

    func bridge(serial: String?, product: String = "CP2102 USB to UART Bridge Controller") -> AttachedDevice {
        AttachedDevice(subsystem: .tty, node: "/dev/ttyUSB0", syspath: "/sys/devices/y/1-3", vendorID: 0x10C4, productID: 0xEA60,
                       interfaceNumber: 0, manufacturer: "Silicon Labs", product: product, serialNumber: serial, portPath: "1-3")
    }

    @Test("a device's own serial number is kept")
    func ownSerial() throws {
        let identity = try manager(hub: EUI48("02:00:5E:10:00:01")).identity(of: omron(serial: "A1B2", port: "1-2"),
                                                                                profile: profile("omron/hem-790it"))
        #expect(identity.usb?.serial == "A1B2")
    }

    @Test("without one, the model on this hub: the same on every port, another on another hub")
    func hubScoped() throws {
        let hub = try manager(hub: EUI48("02:00:5E:10:00:01"))
        let omronProfile = try profile("omron/hem-790it")
        let onPort2 = hub.identity(of: omron(serial: nil, port: "1-2"), profile: omronProfile)
        let onPort3 = hub.identity(of: omron(serial: "", port: "1-3"), profile: omronProfile)
        #expect(onPort2.usb?.serial == "hub-02005E100001")
        #expect(onPort2 == onPort3)
        let otherHub = try manager(hub: EUI48("02:00:5E:10:00:02")).identity(of: omron(serial: nil, port: "1-2"), profile: omronProfile)
        #expect(otherHub.usb?.serial != onPort2.usb?.serial)
    }

    @Test("a bridge chip's factory serial is the cable's: scoped to the hub, still telling two cables apart")
    func bridgeSerial() throws {
        let contec = try profile("contec/cms50d-plus")
        let first = try manager(hub: EUI48("02:00:5E:10:00:01"))
        #expect(DeviceManager.isBridgeOnlyClaim(bridge(serial: "0001"), by: contec))
        #expect(first.identity(of: bridge(serial: "0001"), profile: contec).usb?.serial == "hub-02005E100001-0001")
        #expect(first.identity(of: bridge(serial: "0002"), profile: contec).usb?.serial == "hub-02005E100001-0002")
        let second = try manager(hub: EUI48("02:00:5E:10:00:02"))
        #expect(second.identity(of: bridge(serial: "0001"), profile: contec) != first.identity(of: bridge(serial: "0001"), profile: contec))
        // A hidraw device with its own ids is no bridge, whatever its profile names.
        #expect(!DeviceManager.isBridgeOnlyClaim(omron(serial: nil, port: "1-2"), by: try profile("omron/hem-790it")))
    }
}
