import Foundation
import Synchronization
import VitalModel

/// How BlueZ's signals change the model, and the events that follow; all on the D-Bus thread.
extension BlueZCentral {
    func handle(_ message: DBusMessage) -> Bool {
        guard message.kind == .signal else { return false }
        let arguments = message.arguments()
        var events: [BLEEvent] = []
        var reloadNeeded = false
        model.withLock { model in
            switch (message.interface ?? "", message.member ?? "") {
            case ("org.freedesktop.DBus.ObjectManager", "InterfacesAdded"):
                guard model.loaded, arguments.count == 2, let path = arguments[0].string else { return }
                model.tree.interfacesAdded(path, arguments[1])
                events = refresh(&model)
            case ("org.freedesktop.DBus.ObjectManager", "InterfacesRemoved"):
                guard model.loaded, arguments.count == 2, let path = arguments[0].string else { return }
                model.tree.interfacesRemoved(path, arguments[1].stringArray ?? [])
                if !model.tree.has(path, Self.characteristicInterface) { model.subscribed.remove(path) }
                events = refresh(&model)
            case ("org.freedesktop.DBus.Properties", "PropertiesChanged"):
                guard model.loaded, let path = message.path, arguments.count >= 2, let interface = arguments[0].string else { return }
                model.tree.propertiesChanged(path, interface, arguments[1], arguments.count > 2 ? arguments[2].stringArray ?? [] : [])
                if interface == Self.characteristicInterface, model.subscribed.contains(path),
                   let bytes = arguments[1].stringKeyed?["Value"]?.byteArray, let event = valueEvent(model, path, bytes) {
                    events.append(event)
                }
                events += refresh(&model)
            case ("org.freedesktop.DBus", "NameOwnerChanged"):
                guard arguments.count == 3, arguments[0].string == Self.service else { return }
                // bluetoothd went away or came back: its objects are gone either way until a new snapshot.
                model.tree.removeAll()
                model.loaded = false
                model.subscribed = []
                model.scanning = false
                events = refresh(&model)
                reloadNeeded = !(arguments[2].string ?? "").isEmpty
            default:
                return
            }
        }
        deliver(events)
        if reloadNeeded, let session = session.withLock({ $0 }) {
            reload(session.connection, capability: session.capability)
        }
        return false
    }

    func valueEvent(_ model: Model, _ path: String, _ bytes: [UInt8]) -> BLEEvent? {
        guard let owner = model.tree.owner(ofCharacteristic: path), let adapter = model.adapterPath,
              owner.device.hasPrefix(adapter + "/"), let address = model.tree.address(ofDevice: owner.device) else { return nil }
        return .value(address, service: owner.info.service, characteristic: owner.info.uuid, bytes: bytes)
    }

    /// The bus connection is gone: nothing is known any more.
    func busLost() {
        let events = model.withLock { model in
            model.tree.removeAll()
            model.loaded = false
            model.subscribed = []
            model.scanning = false
            return refresh(&model)
        }
        deliver(events)
    }

    /// Compares the model with what was reported and returns the events that bring the listener up to
    /// date; also settles waiting connects. Called with the lock held.
    func refresh(_ model: inout Model) -> [BLEEvent] {
        let chosen = adapterName.map { "/org/bluez/" + $0 } ?? model.tree.adapters.first
        let adapterPath = chosen.flatMap { model.tree.has($0, Self.adapterInterface) ? $0 : nil }
        let previousAdapter = model.adapterPath
        model.adapterPath = adapterPath
        let adapter = AdapterState(present: adapterPath != nil,
                                   powered: adapterPath.flatMap { model.tree.properties($0, Self.adapterInterface)?["Powered"]?.bool } ?? false)
        if previousAdapter != adapterPath { model.scanning = false }

        var current: [String: BLEDeviceInfo] = [:]
        if let adapterPath {
            for path in model.tree.devices(of: adapterPath) {
                if let info = model.tree.deviceInfo(path) { current[path] = info }
            }
        }
        var deviceEvents: [BLEEvent] = []
        for (path, info) in model.reported.sorted(by: { $0.key < $1.key }) where current[path] == nil {
            deviceEvents.append(.deviceRemoved(info.address))
        }
        for (path, info) in current.sorted(by: { $0.key < $1.key }) where model.reported[path] != info {
            // Subscriptions outlive the link: bluetoothd re-enables the notifications of its D-Bus clients when a bonded
            // device reconnects, and a monitor then indicates at once, before the hub asks again. Those values (confirmed
            // to the device by bluetoothd) must reach the hub; they end only with the characteristic's object.
            deviceEvents.append(.device(info))
        }
        model.reported = current

        var events: [BLEEvent] = []
        // Before bluetoothd was ever loaded nothing was reported, so there is no adapter to call gone.
        let neverReported = !model.loaded && model.reportedAdapter == nil
        let adapterChanged = model.reportedAdapter != adapter && !neverReported
        if !neverReported { model.reportedAdapter = adapter }
        if adapter.present {
            if adapterChanged { events.append(.adapter(present: true, powered: adapter.powered)) }
            events += deviceEvents
        } else {
            events += deviceEvents
            if adapterChanged { events.append(.adapter(present: false, powered: false)) }
        }

        for (key, waiter) in model.waiters {
            if let outcome = waiter.evaluate(model.tree) {
                model.waiters[key] = nil
                waiter.finish(outcome)
            }
        }
        return events
    }

    func deliver(_ events: [BLEEvent]) {
        guard !events.isEmpty, let handler = handler.withLock({ $0 }) else { return }
        for event in events { handler(event) }
    }
}
