import Testing
import VitalModel
import ProfileEngine
import ProfileCatalog
import VitalGateTestKit
import DeviceIO

/// Profiles built in code: the matcher reads only `id`, `match.usb` and the transport kind.
enum MatcherProfiles {
    static func profile(_ id: String, _ usb: [USBMatch], transport: Transport = .serial(SerialSettings(baud: 9600))) -> DeviceProfile {
        DeviceProfile(id: id, revision: 1, vendor: "Test", model: id, kinds: [.bloodPressure],
                      match: ProfileMatch(usb: usb), transport: transport,
                      engine: GATTStandardEngine(characteristics: ["2A35"]), time: TimeBehaviour(deviceClock: false), file: "")
    }

    static let hid = Transport.hidraw(HIDSettings(reportSize: 8))
    static let ble = Transport.ble(BLESettings(characteristics: []))

    static let bridgeIDs = USBMatch(vendorID: 0x10C4, productID: 0xEA60)
    static let bridgeStrings = USBMatch(vendorID: 0x10C4, productID: 0xEA60, manufacturer: "Silicon Labs",
                                        product: "CP2102 USB to UART Bridge Controller")
    static let bridgeStringsInterface = USBMatch(vendorID: 0x10C4, productID: 0xEA60, interface: 0, manufacturer: "Silicon Labs",
                                                 product: "CP2102 USB to UART Bridge Controller")
    static let bridgeOtherProduct = USBMatch(vendorID: 0x10C4, productID: 0xEA60, product: "UA-767PC")
    static let omron = USBMatch(vendorID: 0x0590, productID: 0x0028)

    static func bridge(node: String = "/dev/ttyUSB0", product: String? = "CP2102 USB to UART Bridge Controller",
                       interface: Int? = 0, subsystem: AttachedDevice.Subsystem = .tty) -> AttachedDevice {
        AttachedDevice(subsystem: subsystem, node: node, syspath: "/sys/devices/x/\(node.split(separator: "/").last!)",
                       vendorID: 0x10C4, productID: 0xEA60, interfaceNumber: interface, manufacturer: "Silicon Labs",
                       product: product, serialNumber: "0001", portPath: "pci-0000:00:14.0-usb-0:3:1.0")
    }

    static let omronNode = AttachedDevice(subsystem: .hidraw, node: "/dev/hidraw0", syspath: "/sys/devices/x/hidraw0",
                                          vendorID: 0x0590, productID: 0x0028, interfaceNumber: 0,
                                          manufacturer: "OMRON Corporation", product: "HEM-790IT", portPath: "1-2")
}

/// What a decision says, comparable in a table.
enum Outcome: Equatable, CustomStringConvertible {
    case profile(String), none, ambiguous([String])

    init(_ decision: DeviceMatcher.Decision) {
        switch decision {
        case .profile(let profile): self = .profile(profile.id)
        case .none: self = .none
        case .ambiguous(let ids): self = .ambiguous(ids)
        }
    }

    var description: String {
        switch self {
        case .profile(let id): "profile \(id)"
        case .none: "none"
        case .ambiguous(let ids): "ambiguous \(ids)"
        }
    }
}

struct MatcherCase: CustomTestStringConvertible, Sendable {
    var name: String
    var profiles: [DeviceProfile]
    var device: AttachedDevice
    var expected: Outcome
    var testDescription: String { name }
}

@Suite("Device matcher")
struct DeviceMatcherTests {
    typealias P = MatcherProfiles

    static let cases: [MatcherCase] = [
        MatcherCase(name: "ids alone claim the device", profiles: [P.profile("a/ids", [P.bridgeIDs])],
                    device: P.bridge(), expected: .profile("a/ids")),
        MatcherCase(name: "nothing claims other ids", profiles: [P.profile("o/hem", [P.omron], transport: P.hid)],
                    device: P.bridge(), expected: .none),
        MatcherCase(name: "an empty catalog claims nothing", profiles: [], device: P.bridge(), expected: .none),
        MatcherCase(name: "strings beat ids alone",
                    profiles: [P.profile("a/ids", [P.bridgeIDs]), P.profile("b/strings", [P.bridgeStrings])],
                    device: P.bridge(), expected: .profile("b/strings")),
        MatcherCase(name: "strings and interface beat strings",
                    profiles: [P.profile("b/strings", [P.bridgeStrings]), P.profile("c/iface", [P.bridgeStringsInterface])],
                    device: P.bridge(), expected: .profile("c/iface")),
        MatcherCase(name: "a product string that differs does not claim; ids alone still do",
                    profiles: [P.profile("a/ids", [P.bridgeIDs]), P.profile("d/other", [P.bridgeOtherProduct])],
                    device: P.bridge(), expected: .profile("a/ids")),
        MatcherCase(name: "a product string that differs leaves the device unclaimed",
                    profiles: [P.profile("d/other", [P.bridgeOtherProduct])], device: P.bridge(), expected: .none),
        MatcherCase(name: "a device without a product string is not claimed by one that needs it",
                    profiles: [P.profile("b/strings", [P.bridgeStrings])], device: P.bridge(product: nil), expected: .none),
        MatcherCase(name: "trailing blanks the device pads its string with are ignored",
                    profiles: [P.profile("b/strings", [P.bridgeStrings])],
                    device: P.bridge(product: "CP2102 USB to UART Bridge Controller  "), expected: .profile("b/strings")),
        MatcherCase(name: "another case is another string",
                    profiles: [P.profile("b/strings", [P.bridgeStrings])],
                    device: P.bridge(product: "cp2102 usb to uart bridge controller"), expected: .none),
        MatcherCase(name: "the stated interface must be the device's",
                    profiles: [P.profile("c/iface", [P.bridgeStringsInterface])], device: P.bridge(interface: 1), expected: .none),
        MatcherCase(name: "equally specific claims are ambiguous, sorted",
                    profiles: [P.profile("z/one", [P.bridgeIDs]), P.profile("a/two", [P.bridgeIDs])],
                    device: P.bridge(), expected: .ambiguous(["a/two", "z/one"])),
        MatcherCase(name: "a more specific claim settles what would be ambiguous",
                    profiles: [P.profile("z/one", [P.bridgeIDs]), P.profile("a/two", [P.bridgeIDs]), P.profile("m/three", [P.bridgeStrings])],
                    device: P.bridge(), expected: .profile("m/three")),
        MatcherCase(name: "a serial profile does not take a hidraw node",
                    profiles: [P.profile("a/ids", [P.bridgeIDs])], device: P.bridge(node: "/dev/hidraw3", subsystem: .hidraw), expected: .none),
        MatcherCase(name: "a hidraw profile does not take a tty node",
                    profiles: [P.profile("h/hid", [P.bridgeIDs], transport: P.hid)], device: P.bridge(), expected: .none),
        MatcherCase(name: "a Bluetooth profile never takes a USB node",
                    profiles: [P.profile("b/ble", [P.bridgeIDs], transport: P.ble)], device: P.bridge(), expected: .none),
        MatcherCase(name: "the transport decides between same-id profiles",
                    profiles: [P.profile("h/hid", [P.omron], transport: P.hid), P.profile("s/serial", [P.omron])],
                    device: P.omronNode, expected: .profile("h/hid")),
        MatcherCase(name: "a profile's best entry counts, and it counts once",
                    profiles: [P.profile("m/many", [P.bridgeIDs, P.bridgeStrings, P.bridgeOtherProduct]), P.profile("b/strings", [P.bridgeStrings])],
                    device: P.bridge(), expected: .ambiguous(["b/strings", "m/many"])),
        MatcherCase(name: "a device udev gave no ids is claimed by nobody",
                    profiles: [P.profile("a/ids", [P.bridgeIDs])],
                    device: AttachedDevice(subsystem: .tty, node: "/dev/ttyACM0", syspath: "/sys/x/ttyACM0"), expected: .none),
    ]

    @Test(arguments: cases)
    func decides(_ test: MatcherCase) {
        #expect(Outcome(DeviceMatcher(profiles: test.profiles).match(test.device)) == test.expected)
    }

    @Test func explainsWhyNoProfileClaimsADevice() {
        let none = DeviceMatcher(profiles: [])
        #expect(none.explanation(for: P.bridge()) == "no profile claims 10C4:EA60")

        let nearMisses = DeviceMatcher(profiles: [P.profile("d/other", [P.bridgeOtherProduct]),
                                                  P.profile("h/hid", [P.bridgeIDs], transport: P.hid)])
        let text = nearMisses.explanation(for: P.bridge())
        #expect(text.hasPrefix("no profile claims 10C4:EA60 ("))
        #expect(text.contains("d/other wants product \"UA-767PC\""))
        #expect(text.contains("h/hid wants a hidraw device, this is a tty node"))

        let ambiguous = DeviceMatcher(profiles: [P.profile("z/one", [P.bridgeIDs]), P.profile("a/two", [P.bridgeIDs])])
        #expect(ambiguous.explanation(for: P.bridge()) == "ambiguous: a/two, z/one")

        let claimed = DeviceMatcher(profiles: [P.profile("a/ids", [P.bridgeIDs])])
        #expect(claimed.explanation(for: P.bridge()) == "")
    }

    @Test func shippedOmronProfileClaimsTheHEM790ITAndNoBridge() throws {
        let root = RepositoryPaths.root.appendingPathComponent("DeviceProfiles").path
        let catalog = ProfileCatalog.load(directory: root)
        #expect(catalog.errors.isEmpty)
        let matcher = DeviceMatcher(profiles: catalog.profiles)
        guard case .profile(let profile) = matcher.match(P.omronNode) else {
            Issue.record("the shipped catalog does not claim the HEM-790IT: \(matcher.explanation(for: P.omronNode))")
            return
        }
        #expect(profile.id == "omron/hem-790it")
        // The Omron's ids on a tty node: the hidraw profile must not take it.
        var asTTY = P.omronNode
        asTTY.subsystem = .tty
        #expect(Outcome(matcher.match(asTTY)) == .none)
        #expect(matcher.explanation(for: asTTY).contains("omron/hem-790it wants a hidraw device, this is a tty node"))
    }
}
