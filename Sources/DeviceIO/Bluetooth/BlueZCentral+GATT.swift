import Foundation
import Synchronization
import VitalModel

/// The GATT methods of ``BLECentral``: BlueZ's GattCharacteristic1 objects under a connected device.
extension BlueZCentral {
    public func characteristics(of address: EUI48) throws(DeviceIOError) -> [BLECharacteristicInfo] {
        _ = try requireConnection("characteristics", address)
        let path = try devicePath(address, "characteristics")
        return try model.withLock { model throws(DeviceIOError) in
            try Self.requireResolved(model.tree, path, "characteristics", address)
            return model.tree.characteristics(ofDevice: path).map(\.info)
        }
    }

    public func read(_ address: EUI48, service: String, characteristic: String, timeout: Duration) throws(DeviceIOError) -> [UInt8] {
        let (connection, path) = try characteristicPath(address, service, characteristic, "ReadValue")
        let reply: [DBusValue]
        do {
            reply = try connection.call(destination: Self.service, path: path, interface: Self.characteristicInterface, member: "ReadValue",
                                        arguments: [.dictionary([:])], timeout: timeout)
        } catch {
            throw BlueZErrors.error(error, operation: "ReadValue \(characteristic)", target: Self.text(address), stage: .gatt)
        }
        guard let bytes = reply.first?.byteArray else {
            throw BlueZErrors.local("ReadValue \(characteristic)", target: Self.text(address),
                                    fix: "BlueZ answered ReadValue without bytes; update bluez or report it")
        }
        return bytes
    }

    public func write(_ address: EUI48, service: String, characteristic: String, value: [UInt8], withResponse: Bool,
                      timeout: Duration) throws(DeviceIOError) {
        let (connection, path) = try characteristicPath(address, service, characteristic, "WriteValue")
        let options = DBusValue.dictionary(["type": .string(withResponse ? "request" : "command")])
        do {
            _ = try connection.call(destination: Self.service, path: path, interface: Self.characteristicInterface, member: "WriteValue",
                                    arguments: [.bytes(value), options], timeout: timeout)
        } catch {
            throw BlueZErrors.error(error, operation: "WriteValue \(characteristic)", target: Self.text(address), stage: .gatt)
        }
    }

    public func subscribe(_ address: EUI48, service: String, characteristic: String, timeout: Duration) throws(DeviceIOError) {
        let (connection, path) = try characteristicPath(address, service, characteristic, "StartNotify")
        // Subscribed before asking, so a value sent right after StartNotify is not lost.
        let added = model.withLock { $0.subscribed.insert(path).inserted }
        do {
            _ = try connection.call(destination: Self.service, path: path, interface: Self.characteristicInterface, member: "StartNotify",
                                    timeout: timeout)
        } catch where error.name == "org.bluez.Error.InProgress" {
            // This client is subscribed already.
        } catch {
            if added { _ = model.withLock { $0.subscribed.remove(path) } }
            throw BlueZErrors.error(error, operation: "StartNotify \(characteristic)", target: Self.text(address), stage: .gatt)
        }
    }

    static func requireResolved(_ tree: BlueZObjectTree, _ path: String, _ operation: String, _ address: EUI48) throws(DeviceIOError) {
        guard let info = tree.deviceInfo(path), info.connected else {
            throw BlueZErrors.local(operation, target: text(address), fix: "the device is not connected: connect first", disconnect: true)
        }
        guard info.servicesResolved else {
            throw BlueZErrors.local(operation, target: text(address), fix: "GATT discovery has not finished: connect() waits for it; call it first")
        }
    }

    /// The characteristic's object path on a connected, resolved device.
    func characteristicPath(_ address: EUI48, _ service: String, _ characteristic: String,
                                    _ operation: String) throws(DeviceIOError) -> (DBusConnection, String) {
        let connection = try requireConnection(operation, address)
        guard let serviceUUID = BlueZUUID.canonical(service), let characteristicUUID = BlueZUUID.canonical(characteristic) else {
            throw BlueZErrors.local("\(operation) \(characteristic)", target: Self.text(address),
                                    fix: "'\(service)' / '\(characteristic)' is not a Bluetooth UUID; check the profile")
        }
        let path = try devicePath(address, operation)
        return try model.withLock { model throws(DeviceIOError) in
            try Self.requireResolved(model.tree, path, "\(operation) \(characteristicUUID)", address)
            guard let found = model.tree.characteristics(ofDevice: path).first(where: {
                $0.info.service == serviceUUID && $0.info.uuid == characteristicUUID
            }) else {
                throw BlueZErrors.local("\(operation) \(characteristicUUID)", target: Self.text(address),
                                        fix: "the device has no characteristic \(characteristicUUID) in service \(serviceUUID); check the profile's "
                                            + "transport.ble.characteristics against what the device offers")
            }
            return (connection, found.path)
        }
    }
}
