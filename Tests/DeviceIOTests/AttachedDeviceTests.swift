import Testing
import VitalModel
import DeviceIO

@Suite("Attached device")
struct AttachedDeviceTests {
    static func bridge(serial: String?, port: String? = "pci-0000:00:14.0-usb-0:3:1.0", node: String = "/dev/ttyUSB0") -> AttachedDevice {
        AttachedDevice(subsystem: .tty, node: node, syspath: "/sys/devices/pci0000:00/0000:00:14.0/usb1/1-3/1-3:1.0/ttyUSB0/tty/ttyUSB0",
                       vendorID: 0x10C4, productID: 0xEA60, interfaceNumber: 0, manufacturer: "Silicon Labs",
                       product: "CP2102 USB to UART Bridge Controller", serialNumber: serial, portPath: port)
    }

    @Test func aSerialNumberKeysTheDeviceOnAnyPortAndNode() {
        let here = Self.bridge(serial: "7A3F0001")
        let elsewhere = Self.bridge(serial: "7A3F0001", port: "pci-0000:00:14.0-usb-0:4:1.0", node: "/dev/ttyUSB3")
        #expect(here.stableKey == "usb-serial:10C4:EA60:7A3F0001")
        #expect(elsewhere.stableKey == here.stableKey)
        #expect(Self.bridge(serial: "7A3F0002").stableKey != here.stableKey)
    }

    @Test func withoutASerialNumberThePortKeysTheDevice() {
        let device = Self.bridge(serial: nil)
        #expect(device.stableKey == "usb-port:pci-0000:00:14.0-usb-0:3:1.0")
        // An empty serial string is no serial number: the port keys the device.
        #expect(Self.bridge(serial: "").stableKey == device.stableKey)
        #expect(Self.bridge(serial: nil, port: "1-4").stableKey == "usb-port:1-4")
    }

    @Test func withNeitherTheSysfsPathIsTheLastResort() {
        let device = Self.bridge(serial: nil, port: nil)
        #expect(device.stableKey == "usb-syspath:" + device.syspath)
    }

    @Test func vendorProductIsPrintedAsLsusbDoes() {
        #expect(Self.bridge(serial: nil).vendorProduct == "10C4:EA60")
        #expect(AttachedDevice(subsystem: .hidraw, node: "/dev/hidraw0", syspath: "/sys/x", vendorID: 0x0590, productID: 0x0028).vendorProduct == "0590:0028")
        #expect(AttachedDevice(subsystem: .hidraw, node: "/dev/hidraw0", syspath: "/sys/x").vendorProduct == "?:?")
    }

    @Test func identityCarriesTheUSBIdsStringsAndSerialNumber() {
        let identity = Self.bridge(serial: "7A3F0001").identity
        #expect(identity.usb == USBIdentity(vendorID: 0x10C4, productID: 0xEA60, serial: "7A3F0001"))
        #expect(identity.usb?.vendorProduct == "10C4:EA60")
        #expect(identity.manufacturer == "Silicon Labs")
        #expect(identity.model == "CP2102 USB to UART Bridge Controller")
        #expect(identity.serialNumber == "7A3F0001")
        #expect(identity.systemID == nil && identity.bluetoothAddress == nil)
    }

    @Test func identityLeavesOutWhatUdevDidNotGive() {
        let bare = AttachedDevice(subsystem: .tty, node: "/dev/ttyACM0", syspath: "/sys/x", vendorID: 0x2341, productID: nil,
                                  manufacturer: "", product: nil, serialNumber: "")
        let identity = bare.identity
        #expect(identity.usb == nil)
        #expect(identity.manufacturer == nil && identity.model == nil && identity.serialNumber == nil)
        let noSerial = Self.bridge(serial: nil).identity
        #expect(noSerial.usb == USBIdentity(vendorID: 0x10C4, productID: 0xEA60, serial: nil))
    }

    @Test func eventsCompareByTheDeviceTheyCarry() {
        let device = Self.bridge(serial: "7A3F0001")
        #expect(DeviceEvent.added(device) == .added(device))
        #expect(DeviceEvent.added(device) != .removed(device))
    }
}

/// The udev calls on this machine (usually without USB devices; the umockdev harness in
/// scripts/udev-harness covers devices coming and going).
@Suite("udev discovery lifecycle")
struct UdevDiscoveryLifecycleTests {
    /// Says only what it can on any machine: enumeration works, and whatever it lists is USB-backed (this
    /// build machine has no USB, so the list is usually empty; the umockdev harness checks real listings).
    @Test func enumerationWorksAndListsOnlyUSBBackedNodes() throws {
        for device in try UdevDiscovery().enumerate() {
            #expect(device.vendorID != nil && device.productID != nil, "\(device.node) has no USB ids")
            #expect(device.node.hasPrefix("/dev/"))
        }
    }

    @Test func theMonitorStartsOnceStopsAndStartsAgain() throws {
        let discovery = UdevDiscovery()
        try discovery.startMonitoring { _ in }
        #expect(throws: DeviceIOError.self) { try discovery.startMonitoring { _ in } }
        discovery.stop()
        discovery.stop()  // idempotent
        #expect(discovery.monitorFailure == nil)
        try discovery.startMonitoring { _ in }
        discovery.stop()
    }
}
