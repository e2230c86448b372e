import Foundation
import Synchronization
import VitalModel

/// Scanning and the device methods of ``BLECentral``.
extension BlueZCentral {
    // MARK: Scanning

    public func scan(services: [String]) throws(DeviceIOError) {
        let connection = try requireConnection("scan")
        guard bluetoothdPresent else {
            throw BlueZErrors.local("scan", target: target, fix: "bluetoothd is not running: start it with `systemctl start bluetooth` "
                + "(Debian package bluez)" + (waitsForBluetoothd ? "; scanning starts when it does" : ""))
        }
        guard let adapter = model.withLock({ $0.adapterPath }) else {
            throw BlueZErrors.local("scan", target: target, fix: "no Bluetooth adapter is present: plug one in, or check `bluetoothctl list` and `rfkill list`")
        }
        let adapterTarget = String(adapter.split(separator: "/").last ?? "adapter")
        if services.isEmpty {
            guard model.withLock({ $0.scanning }) else { return }
            do {
                _ = try connection.call(destination: Self.service, path: adapter, interface: Self.adapterInterface,
                                        member: "StopDiscovery", timeout: Self.callTimeout)
            } catch where error.name == "org.bluez.Error.Failed" || error.name == "org.bluez.Error.NotReady" {
                // Nothing to stop (the adapter went off, or bluetoothd ended the discovery).
            } catch {
                throw BlueZErrors.error(error, operation: "StopDiscovery", target: adapterTarget, stage: .adapter)
            }
            model.withLock { $0.scanning = false }
            return
        }
        var uuids: [String] = []
        for text in services {
            guard let full = BlueZUUID.full(text) else {
                throw BlueZErrors.local("scan", target: adapterTarget, fix: "'\(text)' is not a Bluetooth UUID; write 4 hex digits (1810) or a full UUID")
            }
            if !uuids.contains(full) { uuids.append(full) }
        }
        do throws(DBusCallError) {
            let powered = model.withLock { $0.tree.properties(adapter, Self.adapterInterface)?["Powered"]?.bool } ?? false
            if !powered {
                _ = try connection.call(destination: Self.service, path: adapter, interface: "org.freedesktop.DBus.Properties", member: "Set",
                                        arguments: [.string(Self.adapterInterface), .string("Powered"), .variant(.bool(true))],
                                        timeout: Self.callTimeout)
            }
            let filter = DBusValue.dictionary(["UUIDs": .strings(uuids), "Transport": .string("le"), "DuplicateData": .bool(false)])
            _ = try connection.call(destination: Self.service, path: adapter, interface: Self.adapterInterface,
                                    member: "SetDiscoveryFilter", arguments: [filter], timeout: Self.callTimeout)
            do {
                _ = try connection.call(destination: Self.service, path: adapter, interface: Self.adapterInterface,
                                        member: "StartDiscovery", timeout: Self.callTimeout)
            } catch where error.name == "org.bluez.Error.InProgress" {
                // Already scanning for this client: the new filter applies.
            }
        } catch {
            throw BlueZErrors.error(error, operation: error.member, target: adapterTarget, stage: .adapter)
        }
        model.withLock { $0.scanning = true }
    }

    // MARK: Devices

    public func connect(_ address: EUI48, timeout: Duration) throws(DeviceIOError) {
        let deadline = ContinuousClock.now + timeout
        let connection = try requireConnection("Connect", address)
        let path = try devicePath(address, "Connect")
        do {
            _ = try connection.call(destination: Self.service, path: path, interface: Self.deviceInterface, member: "Connect", timeout: timeout)
        } catch where error.name == "org.bluez.Error.AlreadyConnected" {
            // Connected already (bluetoothd reconnects bonded devices by itself): wait for GATT below.
        } catch {
            throw BlueZErrors.error(error, operation: "Connect", target: Self.text(address), stage: .connect)
        }
        // BlueZ answers Connect when the link is up, before GATT discovery has finished.
        let waiter = ConnectWaiter(path: path, target: Self.text(address))
        let key = model.withLock { model -> Int? in
            if let outcome = waiter.evaluate(model.tree) {
                waiter.finish(outcome)
                return nil
            }
            model.nextWaiter += 1
            model.waiters[model.nextWaiter] = waiter
            return model.nextWaiter
        }
        let remaining = max(.zero, deadline - ContinuousClock.now)
        if waiter.wait(remaining) == nil, let key {
            let outcome = model.withLock { model -> ConnectWaiter.Outcome? in
                model.waiters[key] = nil
                return waiter.outcome
            }
            if outcome == nil {
                // Leave no half-open link behind; the next attempt starts clean.
                connection.callAsync(destination: Self.service, path: path, interface: Self.deviceInterface, member: "Disconnect",
                                     timeout: Self.callTimeout) { _ in }
                throw BlueZErrors.error(DBusCallError(name: DBusCallError.timeoutName, message: "GATT discovery did not finish within \(timeout)",
                                                      member: "Connect"), operation: "Connect", target: Self.text(address), stage: .connect)
            }
        }
        if case .failed(let error)? = waiter.outcome { throw error }
    }

    public func disconnect(_ address: EUI48) {
        guard let connection = try? requireConnection("Disconnect", address), let path = try? devicePath(address, "Disconnect") else { return }
        _ = try? connection.call(destination: Self.service, path: path, interface: Self.deviceInterface, member: "Disconnect",
                                 timeout: Self.callTimeout)
    }

    public func pair(_ address: EUI48, timeout: Duration) throws(DeviceIOError) {
        let connection = try requireConnection("Pair", address)
        let path = try devicePath(address, "Pair")
        do {
            _ = try connection.call(destination: Self.service, path: path, interface: Self.deviceInterface, member: "Pair", timeout: timeout)
        } catch where error.name == "org.bluez.Error.AlreadyExists" {
            return  // paired already
        } catch {
            if error.isTimeout {
                connection.callAsync(destination: Self.service, path: path, interface: Self.deviceInterface, member: "CancelPairing",
                                     timeout: Self.callTimeout) { _ in }
            }
            throw BlueZErrors.error(error, operation: "Pair", target: Self.text(address), stage: .pair)
        }
    }

    public func setTrusted(_ address: EUI48, _ trusted: Bool) throws(DeviceIOError) {
        let connection = try requireConnection("Trusted", address)
        let path = try devicePath(address, "Trusted")
        do {
            _ = try connection.call(destination: Self.service, path: path, interface: "org.freedesktop.DBus.Properties", member: "Set",
                                    arguments: [.string(Self.deviceInterface), .string("Trusted"), .variant(.bool(trusted))],
                                    timeout: Self.callTimeout)
        } catch {
            throw BlueZErrors.error(error, operation: "set Trusted", target: Self.text(address), stage: .other)
        }
    }

    public func remove(_ address: EUI48) throws(DeviceIOError) {
        let connection = try requireConnection("RemoveDevice", address)
        let path = try devicePath(address, "RemoveDevice")
        let adapter = String(path[..<(path.lastIndex(of: "/") ?? path.endIndex)])
        do {
            _ = try connection.call(destination: Self.service, path: adapter, interface: Self.adapterInterface, member: "RemoveDevice",
                                    arguments: [.objectPath(path)], timeout: Self.callTimeout)
        } catch {
            throw BlueZErrors.error(error, operation: "RemoveDevice", target: Self.text(address), stage: .other)
        }
    }
}
