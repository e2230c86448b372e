import Foundation
import DeviceIO
import Outbox
import Testing
import VitalModel
@testable import Gateway

/// Readings from a USB device need an identity that stays the same across sessions, or the server cannot
/// recognise a re-sent reading (non-negotiable 3).
@Suite("device identity for sessions")
struct DeviceIdentityForSessionsTests {
    func manager(hub: EUI48?) throws -> DeviceManager {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("vitalgate-identity-\(UUID().uuidString).db").path
        let outbox = try Outbox(path: path)
        return DeviceManager(profiles: [], outbox: outbox, subject: nil, hubAddress: hub, log: DaemonLog(), onStored: {})
    }

    func device(serial: String?, port: String) -> AttachedDevice {
        AttachedDevice(subsystem: .hidraw, node: "/dev/hidraw0", syspath: "/sys/devices/x/" + port, vendorID: 0x0590, productID: 0x0028,
                       interfaceNumber: 0, manufacturer: "OMRON", product: "HEM-790IT", serialNumber: serial, portPath: port)
    }

    @Test("a device's own serial number is kept")
    func ownSerial() throws {
        let identity = try manager(hub: EUI48("02:00:5E:10:00:01")).identity(of: device(serial: "A1B2", port: "1-2"))
        #expect(identity.usb?.serial == "A1B2")
    }

    @Test("without one, the model on this hub: the same on every port, another on another hub")
    func hubScoped() throws {
        let hub = try manager(hub: EUI48("02:00:5E:10:00:01"))
        let onPort2 = hub.identity(of: device(serial: nil, port: "1-2"))
        let onPort3 = hub.identity(of: device(serial: "", port: "1-3"))
        #expect(onPort2.usb?.serial == "hub-02005E100001")
        #expect(onPort2 == onPort3)
        let otherHub = try manager(hub: EUI48("02:00:5E:10:00:02")).identity(of: device(serial: nil, port: "1-2"))
        #expect(otherHub.usb?.serial != onPort2.usb?.serial)
    }
}
