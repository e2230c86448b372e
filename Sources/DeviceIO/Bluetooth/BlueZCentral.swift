import Foundation
import Synchronization
import VitalModel

/// ``BLECentral`` over BlueZ's D-Bus API (bluetoothd owns LE connections, bonds and GATT; VitalGate is
/// one of its clients).
///
/// At ``start(pairing:events:)`` it opens a private connection to the system bus (`DBUS_SYSTEM_BUS_ADDRESS`
/// when set) or to `busAddress`, subscribes to BlueZ's ObjectManager and PropertiesChanged signals, reads
/// `GetManagedObjects` and keeps a model of `org.bluez` from then on, and registers its pairing agent
/// (``BlueZAgent``) at `/org/vitalgate/agent`.
///
/// Thread rules: events arrive on the connection's own thread, in the order BlueZ sent them, and the handler
/// must return quickly. Every other method blocks its caller until BlueZ answers or its timeout passes (calls
/// without a timeout parameter wait at most ``callTimeout``): call them from a dedicated thread, never from
/// the Swift concurrency pool and never from the event handler (a blocking call from the handler fails at
/// once instead of deadlocking). If the bus connection is lost, the model empties (the devices are reported
/// removed, the adapter absent) and every call fails with ``DeviceIOError/isDisconnect`` set: stop and start
/// again. If bluetoothd restarts, the central reloads BlueZ's objects and registers the agent again by itself.
public final class BlueZCentral: BLECentral {
    /// The adapter's name (`hci0`); nil uses the first adapter BlueZ reports.
    public let adapterName: String?
    /// The bus to use instead of the system bus (tests use a private one).
    public let busAddress: String?
    /// Whether the agent asks to be bluetoothd's default agent, which also answers pairing requests that
    /// other programs start. The daemon does; `vitalgate bluetooth pair` does not (bluetoothd asks the agent
    /// of the program that called `Pair` first), so it never takes the daemon's place.
    public let requestsDefaultAgent: Bool
    /// How long calls without a timeout parameter (scan, trust, remove, disconnect) wait for BlueZ.
    public static let callTimeout: Duration = .seconds(25)

    static let service = "org.bluez"
    static let deviceInterface = BlueZObjectTree.deviceInterface
    static let adapterInterface = BlueZObjectTree.adapterInterface
    static let characteristicInterface = BlueZObjectTree.characteristicInterface

    private let model = Mutex(Model())
    private let session = Mutex<Session?>(nil)
    private let handler = Mutex<(@Sendable (BLEEvent) -> Void)?>(nil)

    private struct Session: Sendable {
        let connection: DBusConnection
        let agent: BlueZAgent
        let capability: BLEPairingPolicy.Capability
    }

    /// The model of BlueZ's objects and what has been reported from it; changed on the D-Bus thread.
    struct Model {
        var tree = BlueZObjectTree()
        /// False until a `GetManagedObjects` reply is in; signals before it are already part of the reply.
        var loaded = false
        var adapterPath: String?
        var reportedAdapter: AdapterState?
        var reported: [String: BLEDeviceInfo] = [:]
        /// Characteristics the hub subscribed to: only their Value changes become `.value` events.
        var subscribed: Set<String> = []
        var waiters: [Int: ConnectWaiter] = [:]
        var nextWaiter = 0
        var scanning = false
    }

    struct AdapterState: Equatable {
        var present: Bool
        var powered: Bool
    }

    public init(adapter: String? = nil, busAddress: String? = nil, requestDefaultAgent: Bool = true) {
        self.adapterName = adapter
        self.busAddress = busAddress
        self.requestsDefaultAgent = requestDefaultAgent
    }

    deinit {
        session.withLock { $0 }?.connection.close()
    }

    /// The connection's unique bus name while started (bluetoothd calls the agent there).
    var busName: String? { session.withLock { $0?.connection.uniqueName } }

    /// Where BlueZ is, for messages: `BlueZ (hci0)`.
    private var target: String { "BlueZ" + (adapterName.map { " (\($0))" } ?? "") }

    // MARK: Start and stop

    public func start(pairing: BLEPairingPolicy, events: @escaping @Sendable (BLEEvent) -> Void) throws(DeviceIOError) {
        guard session.withLock({ $0 == nil }) else {
            throw BlueZErrors.local("start", target: target, fix: "this BlueZCentral is already started; call stop() first")
        }
        if let name = adapterName, name.isEmpty || name.contains("/") || !DBusNames.isValidPath("/org/bluez/" + name) {
            throw BlueZErrors.local("start", target: target, fix: "name the adapter as BlueZ does, such as hci0 (see `bluetoothctl list`)")
        }
        let connection: DBusConnection
        do {
            connection = try DBusConnection(address: busAddress)
        } catch {
            throw BlueZErrors.error(error, operation: "connect", target: busAddress.map { "D-Bus bus \($0)" } ?? "D-Bus system bus", stage: .bus)
        }
        let agent = BlueZAgent(connection: connection, policy: pairing) { [weak self] path in
            self?.model.withLock { $0.tree.address(ofDevice: path) }
        }
        connection.export(BlueZAgent.path) { agent.handle($0) }
        model.withLock { $0 = Model() }
        handler.withLock { $0 = events }
        connection.start(onMessage: { [weak self] message in self?.handle(message) ?? false },
                         onDisconnect: { [weak self] in self?.busLost() })
        session.withLock { $0 = Session(connection: connection, agent: agent, capability: pairing.capability) }
        do throws(DBusCallError) {
            for rule in Self.matchRules { try connection.addMatch(rule, timeout: Self.callTimeout) }
            try load(connection)
            try registerAgent(connection, capability: pairing.capability)
        } catch {
            stop()
            throw BlueZErrors.error(error, operation: error.member.isEmpty ? "start" : error.member, target: target, stage: .bus)
        }
    }

    public func stop() {
        guard let session = session.withLock({ current in
            defer { current = nil }
            return current
        }) else { return }
        let connection = session.connection
        if !connection.isOnConnectionThread {
            if model.withLock({ $0.scanning }), let adapter = model.withLock({ $0.adapterPath }) {
                _ = try? connection.call(destination: Self.service, path: adapter, interface: Self.adapterInterface,
                                         member: "StopDiscovery", timeout: .seconds(5))
            }
            _ = try? connection.call(destination: Self.service, path: "/org/bluez", interface: "org.bluez.AgentManager1",
                                     member: "UnregisterAgent", arguments: [.objectPath(BlueZAgent.path)], timeout: .seconds(5))
        }
        connection.unexport(BlueZAgent.path)
        handler.withLock { $0 = nil }
        connection.close()
        let stopped = BlueZErrors.local("Connect", target: target, fix: "the central was stopped while connecting")
        model.withLock { model in
            for waiter in model.waiters.values { waiter.finish(.failed(stopped)) }
            model.waiters = [:]
        }
    }

    /// The signals the model follows: BlueZ's object tree and properties, and bluetoothd coming and going.
    static let matchRules = [
        "type='signal',sender='org.bluez',interface='org.freedesktop.DBus.ObjectManager'",
        "type='signal',sender='org.bluez',interface='org.freedesktop.DBus.Properties',member='PropertiesChanged'",
        "type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='org.bluez'",
    ]

    /// Reads BlueZ's objects and reports them; blocks until the snapshot is in the model.
    private func load(_ connection: DBusConnection) throws(DBusCallError) {
        let done = DispatchSemaphore(value: 0)
        let failure = Mutex<DBusCallError?>(nil)
        requestSnapshot(connection) { error in
            failure.withLock { $0 = error }
            done.signal()
        }
        done.wait()
        if let error = failure.withLock({ $0 }) { throw error }
    }

    /// Asks for `GetManagedObjects`; the reply is applied and reported on the D-Bus thread, in order with
    /// the signals after it.
    private func requestSnapshot(_ connection: DBusConnection, then: @escaping @Sendable (DBusCallError?) -> Void) {
        connection.callAsync(destination: Self.service, path: "/", interface: "org.freedesktop.DBus.ObjectManager",
                             member: "GetManagedObjects", timeout: Self.callTimeout) { [weak self] result in
            switch result {
            case .success(let values):
                guard let self else { return then(nil) }
                let events = self.model.withLock { model in
                    model.tree.load(values.first ?? .array("{oa{sa{sv}}}", []))
                    model.loaded = true
                    return self.refresh(&model)
                }
                self.deliver(events)
                then(nil)
            case .failure(let error):
                then(error)
            }
        }
    }

    private func registerAgent(_ connection: DBusConnection, capability: BLEPairingPolicy.Capability) throws(DBusCallError) {
        let arguments: [DBusValue] = [.objectPath(BlueZAgent.path), .string(capability.rawValue)]
        do {
            _ = try connection.call(destination: Self.service, path: "/org/bluez", interface: "org.bluez.AgentManager1",
                                    member: "RegisterAgent", arguments: arguments, timeout: Self.callTimeout)
        } catch where error.name == "org.bluez.Error.AlreadyExists" {
            // Left over from an earlier start on this connection's name is impossible (names are unique), so
            // this is a stale registration at the same path: replace it.
            _ = try? connection.call(destination: Self.service, path: "/org/bluez", interface: "org.bluez.AgentManager1",
                                     member: "UnregisterAgent", arguments: [.objectPath(BlueZAgent.path)], timeout: Self.callTimeout)
            _ = try connection.call(destination: Self.service, path: "/org/bluez", interface: "org.bluez.AgentManager1",
                                    member: "RegisterAgent", arguments: arguments, timeout: Self.callTimeout)
        }
        if requestsDefaultAgent {
            _ = try connection.call(destination: Self.service, path: "/org/bluez", interface: "org.bluez.AgentManager1",
                                    member: "RequestDefaultAgent", arguments: [.objectPath(BlueZAgent.path)], timeout: Self.callTimeout)
        }
    }

    /// bluetoothd restarted: the same again, without blocking the D-Bus thread.
    private func reload(_ connection: DBusConnection, capability: BLEPairingPolicy.Capability) {
        requestSnapshot(connection) { [weak self] error in
            guard error == nil, let self else { return }
            let arguments: [DBusValue] = [.objectPath(BlueZAgent.path), .string(capability.rawValue)]
            connection.callAsync(destination: Self.service, path: "/org/bluez", interface: "org.bluez.AgentManager1",
                                 member: "RegisterAgent", arguments: arguments, timeout: Self.callTimeout) { [requestsDefaultAgent] result in
                guard case .success = result, requestsDefaultAgent else { return }
                connection.callAsync(destination: Self.service, path: "/org/bluez", interface: "org.bluez.AgentManager1",
                                     member: "RequestDefaultAgent", arguments: [.objectPath(BlueZAgent.path)],
                                     timeout: Self.callTimeout) { _ in }
            }
        }
    }

    // MARK: Signals (on the D-Bus thread)

    private func handle(_ message: DBusMessage) -> Bool {
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

    private func valueEvent(_ model: Model, _ path: String, _ bytes: [UInt8]) -> BLEEvent? {
        guard let owner = model.tree.owner(ofCharacteristic: path), let adapter = model.adapterPath,
              owner.device.hasPrefix(adapter + "/"), let address = model.tree.address(ofDevice: owner.device) else { return nil }
        return .value(address, service: owner.info.service, characteristic: owner.info.uuid, bytes: bytes)
    }

    /// The bus connection is gone: nothing is known any more.
    private func busLost() {
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
    private func refresh(_ model: inout Model) -> [BLEEvent] {
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
            deviceEvents.append(.device(info))
            if !info.connected {
                // Subscriptions end with the link.
                model.subscribed = model.subscribed.filter { !$0.hasPrefix(path + "/") }
            }
        }
        model.reported = current

        var events: [BLEEvent] = []
        let adapterChanged = model.reportedAdapter != adapter
        model.reportedAdapter = adapter
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

    private func deliver(_ events: [BLEEvent]) {
        guard !events.isEmpty, let handler = handler.withLock({ $0 }) else { return }
        for event in events { handler(event) }
    }

    // MARK: Scanning

    public func scan(services: [String]) throws(DeviceIOError) {
        let connection = try requireConnection("scan")
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
        model.withLock { model in model.subscribed = model.subscribed.filter { !$0.hasPrefix(path + "/") } }
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

    // MARK: GATT

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

    // MARK: Helpers

    /// `C4:F3:12:53:F2:C9`, as BlueZ and bluetoothctl write addresses.
    static func text(_ address: EUI48) -> String {
        hexString(address.bytes, separator: ":")
    }

    private func requireConnection(_ operation: String, _ address: EUI48? = nil) throws(DeviceIOError) -> DBusConnection {
        let target = address.map(Self.text) ?? self.target
        guard let connection = session.withLock({ $0?.connection }) else {
            throw BlueZErrors.local(operation, target: target, fix: "start the BlueZ central first")
        }
        guard connection.isOpen else {
            throw BlueZErrors.local(operation, target: target, fix: "the D-Bus connection to bluetoothd was lost; stop and start the central again",
                                    disconnect: true)
        }
        guard !connection.isOnConnectionThread else {
            throw BlueZErrors.local(operation, target: target, fix: "BlueZCentral's blocking methods cannot be called from its event handler; "
                + "call them from a thread of your own")
        }
        return connection
    }

    private func devicePath(_ address: EUI48, _ operation: String) throws(DeviceIOError) -> String {
        let found = model.withLock { model -> String?? in
            guard let adapter = model.adapterPath else { return .some(nil) }
            return .some(model.tree.devicePath(for: address, adapter: adapter))
        }
        guard model.withLock({ $0.adapterPath }) != nil else {
            throw BlueZErrors.local(operation, target: Self.text(address), fix: "no Bluetooth adapter is present: plug one in, or check `bluetoothctl list`")
        }
        guard let path = found ?? nil else {
            throw BlueZErrors.local(operation, target: Self.text(address),
                                    fix: "BlueZ does not know this device: scan for it first (`vitalgate bluetooth scan`) while it advertises",
                                    disconnect: true)
        }
        return path
    }

    private static func requireResolved(_ tree: BlueZObjectTree, _ path: String, _ operation: String, _ address: EUI48) throws(DeviceIOError) {
        guard let info = tree.deviceInfo(path), info.connected else {
            throw BlueZErrors.local(operation, target: text(address), fix: "the device is not connected: connect first", disconnect: true)
        }
        guard info.servicesResolved else {
            throw BlueZErrors.local(operation, target: text(address), fix: "GATT discovery has not finished: connect() waits for it; call it first")
        }
    }

    /// The characteristic's object path on a connected, resolved device.
    private func characteristicPath(_ address: EUI48, _ service: String, _ characteristic: String,
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

/// A `connect` waiting for GATT discovery: settled by the D-Bus thread when ServicesResolved turns true,
/// or when the link drops after it was up.
final class ConnectWaiter: @unchecked Sendable {
    enum Outcome {
        case ready
        case failed(DeviceIOError)
    }

    let path: String
    let target: String
    // Guarded by BlueZCentral's model lock (evaluate) or written once before `done` is signalled (finish).
    private var sawConnected = false
    private(set) var outcome: Outcome?
    private let done = DispatchSemaphore(value: 0)

    init(path: String, target: String) {
        self.path = path
        self.target = target
    }

    /// Called with the model lock held.
    func evaluate(_ tree: BlueZObjectTree) -> Outcome? {
        guard let info = tree.deviceInfo(path) else {
            return .failed(BlueZErrors.local("Connect", target: target, fix: "the device vanished from BlueZ while connecting: scan for it again",
                                             disconnect: true))
        }
        if info.servicesResolved { return .ready }
        // BlueZ may answer Connect before it reports Connected, so only a drop after "up" is a failure.
        if info.connected {
            sawConnected = true
        } else if sawConnected {
            return .failed(BlueZErrors.local("Connect", target: target, fix: "the device disconnected during GATT discovery: " + BlueZErrors.wake,
                                             disconnect: true))
        }
        return nil
    }

    func finish(_ outcome: Outcome) {
        guard self.outcome == nil else { return }
        self.outcome = outcome
        done.signal()
    }

    /// Waits at most `limit`; the outcome, or nil on timeout.
    func wait(_ limit: Duration) -> Outcome? {
        guard done.wait(timeout: .now() + DBusConnection.interval(limit)) == .success else { return nil }
        return outcome
    }
}
