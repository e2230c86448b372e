import VitalModel

/// What BlueZ exports under `/org/bluez`: object path → interface → property → value, kept up to date
/// from `GetManagedObjects` and the ObjectManager and PropertiesChanged signals.
///
/// A plain value: ``BlueZCentral`` keeps it under a lock, changes it on the D-Bus thread and reads it from
/// callers' threads.
struct BlueZObjectTree {
    static let adapterInterface = "org.bluez.Adapter1"
    static let deviceInterface = "org.bluez.Device1"
    static let serviceInterface = "org.bluez.GattService1"
    static let characteristicInterface = "org.bluez.GattCharacteristic1"

    private(set) var objects: [String: [String: [String: DBusValue]]] = [:]

    // MARK: Changes

    /// Replaces everything with a `GetManagedObjects` reply (`a{oa{sa{sv}}}`).
    mutating func load(_ reply: DBusValue) {
        objects = [:]
        for (path, interfaces) in reply.stringKeyed ?? [:] {
            interfacesAdded(path, interfaces)
        }
    }

    /// `InterfacesAdded(o, a{sa{sv}})`: merges, so a repeated signal changes nothing.
    mutating func interfacesAdded(_ path: String, _ interfaces: DBusValue) {
        for (interface, properties) in interfaces.stringKeyed ?? [:] {
            var current = objects[path, default: [:]][interface, default: [:]]
            for (name, value) in properties.stringKeyed ?? [:] { current[name] = value.unwrapped }
            objects[path, default: [:]][interface] = current
        }
    }

    /// `InterfacesRemoved(o, as)`.
    mutating func interfacesRemoved(_ path: String, _ interfaces: [String]) {
        guard var current = objects[path] else { return }
        for interface in interfaces { current[interface] = nil }
        objects[path] = current.isEmpty ? nil : current
    }

    /// `PropertiesChanged(s, a{sv}, as)` on `path`; ignored for objects the tree does not have (BlueZ sends
    /// InterfacesAdded first).
    mutating func propertiesChanged(_ path: String, _ interface: String, _ changed: DBusValue, _ invalidated: [String]) {
        guard objects[path]?[interface] != nil else { return }
        for (name, value) in changed.stringKeyed ?? [:] { objects[path]?[interface]?[name] = value.unwrapped }
        for name in invalidated { objects[path]?[interface]?[name] = nil }
    }

    mutating func removeAll() {
        objects = [:]
    }

    // MARK: Reading

    func properties(_ path: String, _ interface: String) -> [String: DBusValue]? {
        objects[path]?[interface]
    }

    func has(_ path: String, _ interface: String) -> Bool {
        objects[path]?[interface] != nil
    }

    /// Adapter object paths, sorted (`/org/bluez/hci0` first).
    var adapters: [String] {
        objects.keys.filter { has($0, Self.adapterInterface) }.sorted()
    }

    /// Device object paths under `adapter`, sorted.
    func devices(of adapter: String) -> [String] {
        objects.keys.filter { $0.hasPrefix(adapter + "/") && has($0, Self.deviceInterface) }.sorted()
    }

    func devicePath(for address: EUI48, adapter: String) -> String? {
        devices(of: adapter).first { path in
            properties(path, Self.deviceInterface)?["Address"]?.string.flatMap(EUI48.init) == address
        }
    }

    /// The address of the device at `path`, if it is one.
    func address(ofDevice path: String) -> EUI48? {
        properties(path, Self.deviceInterface)?["Address"]?.string.flatMap(EUI48.init)
    }

    /// The device's properties as ``BLEDeviceInfo``; nil when it is not a device or has no readable address.
    func deviceInfo(_ path: String) -> BLEDeviceInfo? {
        guard let properties = properties(path, Self.deviceInterface),
              let address = properties["Address"]?.string.flatMap(EUI48.init) else { return nil }
        var manufacturer: [UInt16: [UInt8]] = [:]
        for (key, value) in properties["ManufacturerData"]?.entries ?? [] {
            if let company = key.uint16, let bytes = value.byteArray { manufacturer[company] = bytes }
        }
        let paired = properties["Paired"]?.bool ?? false
        return BLEDeviceInfo(
            address: address,
            addressType: properties["AddressType"]?.string == "random" ? .random : .public,
            name: Self.name(properties, address),
            serviceUUIDs: (properties["UUIDs"]?.stringArray ?? []).map(BlueZUUID.normalized),
            manufacturerData: manufacturer,
            rssi: properties["RSSI"]?.integer.map { Int($0) },
            paired: paired,
            // BlueZ before 5.68 has no Bonded property; its LE pairings are stored, so Paired stands in.
            bonded: properties["Bonded"]?.bool ?? paired,
            trusted: properties["Trusted"]?.bool ?? false,
            connected: properties["Connected"]?.bool ?? false,
            servicesResolved: properties["ServicesResolved"]?.bool ?? false)
    }

    /// `Name`, else an `Alias` a person set (BlueZ's default alias is the address with dashes).
    private static func name(_ properties: [String: DBusValue], _ address: EUI48) -> String? {
        if let name = properties["Name"]?.string, !name.isEmpty { return name }
        guard let alias = properties["Alias"]?.string, !alias.isEmpty, EUI48(alias) != address else { return nil }
        return alias
    }

    /// A characteristic of a device: its path, the service's path, and what the profile-facing API shows.
    struct Characteristic {
        var path: String
        var servicePath: String
        var info: BLECharacteristicInfo
    }

    /// The GATT characteristics under a device, in handle (path) order.
    func characteristics(ofDevice device: String) -> [Characteristic] {
        var serviceUUIDs: [String: String] = [:]
        for path in objects.keys where path.hasPrefix(device + "/") {
            guard let service = properties(path, Self.serviceInterface) else { continue }
            if service["Device"]?.string == nil || service["Device"]?.string == device, let uuid = service["UUID"]?.string {
                serviceUUIDs[path] = BlueZUUID.normalized(uuid)
            }
        }
        var found: [Characteristic] = []
        for path in objects.keys.sorted() where path.hasPrefix(device + "/") {
            guard let characteristic = properties(path, Self.characteristicInterface),
                  let servicePath = characteristic["Service"]?.string, let service = serviceUUIDs[servicePath],
                  let uuid = characteristic["UUID"]?.string else { continue }
            let flags = Set(characteristic["Flags"]?.stringArray ?? [])
            found.append(Characteristic(path: path, servicePath: servicePath,
                                        info: BLECharacteristicInfo(service: service, uuid: BlueZUUID.normalized(uuid), flags: flags)))
        }
        return found
    }

    /// The device a characteristic belongs to, with the characteristic's service and UUID.
    func owner(ofCharacteristic path: String) -> (device: String, info: BLECharacteristicInfo)? {
        guard let characteristic = properties(path, Self.characteristicInterface),
              let servicePath = characteristic["Service"]?.string,
              let service = properties(servicePath, Self.serviceInterface),
              let serviceUUID = service["UUID"]?.string, let uuid = characteristic["UUID"]?.string else { return nil }
        let device = service["Device"]?.string ?? String(servicePath[..<(servicePath.lastIndex(of: "/") ?? servicePath.endIndex)])
        let info = BLECharacteristicInfo(service: BlueZUUID.normalized(serviceUUID), uuid: BlueZUUID.normalized(uuid),
                                         flags: Set(characteristic["Flags"]?.stringArray ?? []))
        return (device, info)
    }
}
