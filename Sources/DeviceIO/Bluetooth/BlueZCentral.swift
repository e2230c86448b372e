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
    /// Whether ``start(pairing:events:)`` succeeds while bluetoothd is not on the bus, and the central takes BlueZ
    /// in when bluetoothd appears (its objects reported, the agent registered), as after a restart. The daemon
    /// does: on a hub whose adapter is plugged in later, systemd starts bluetoothd only then. The CLI does not: a
    /// person running `vitalgate bluetooth pair` wants to hear at once that bluetoothd is missing.
    public let waitsForBluetoothd: Bool
    /// How long calls without a timeout parameter (scan, trust, remove, disconnect) wait for BlueZ.
    public static let callTimeout: Duration = .seconds(25)

    static let service = "org.bluez"
    static let deviceInterface = BlueZObjectTree.deviceInterface
    static let adapterInterface = BlueZObjectTree.adapterInterface
    static let characteristicInterface = BlueZObjectTree.characteristicInterface

    let model = Mutex(Model())
    let session = Mutex<Session?>(nil)
    let handler = Mutex<(@Sendable (BLEEvent) -> Void)?>(nil)

    struct Session: Sendable {
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

    public init(adapter: String? = nil, busAddress: String? = nil, requestDefaultAgent: Bool = true, waitForBluetoothd: Bool = false) {
        self.adapterName = adapter
        self.busAddress = busAddress
        self.requestsDefaultAgent = requestDefaultAgent
        self.waitsForBluetoothd = waitForBluetoothd
    }

    /// Whether bluetoothd's objects are loaded: false before start, while bluetoothd is absent, and between its
    /// leaving the bus and the snapshot after it came back.
    public var bluetoothdPresent: Bool { model.withLock { $0.loaded } }

    deinit {
        session.withLock { $0 }?.connection.close()
    }

    /// The connection's unique bus name while started (bluetoothd calls the agent there).
    var busName: String? { session.withLock { $0?.connection.uniqueName } }

    /// Where BlueZ is, for messages: `BlueZ (hci0)`.
    var target: String { "BlueZ" + (adapterName.map { " (\($0))" } ?? "") }

    // MARK: Start and stop

    public func start(pairing: BLEPairingPolicy, events: @escaping @Sendable (BLEEvent) -> Void) throws(DeviceIOError) {
        guard session.withLock({ $0 == nil }) else {
            throw BlueZErrors.local("start", target: target, fix: "this BlueZCentral is already started; call stop() first")
        }
        if let name = adapterName, !Self.isAdapterName(name) {
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
            // The NameOwnerChanged rule is in place before the snapshot is asked for: a bluetoothd that appears after
            // a failed snapshot is announced by that signal, and the central then loads it as after a restart.
            for rule in Self.matchRules { try connection.addMatch(rule, timeout: Self.callTimeout) }
            do {
                try load(connection)
            } catch where waitsForBluetoothd && Self.bluetoothdAbsentNames.contains(error.name) {
                return
            }
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

    /// The bus's answers when nobody owns `org.bluez` (no bus activation is asked for, so usually the first).
    static let bluetoothdAbsentNames: Set<String> = ["org.freedesktop.DBus.Error.NameHasNoOwner", "org.freedesktop.DBus.Error.ServiceUnknown"]

    /// The signals the model follows: BlueZ's object tree and properties, and bluetoothd coming and going.
    static let matchRules = [
        "type='signal',sender='org.bluez',interface='org.freedesktop.DBus.ObjectManager'",
        "type='signal',sender='org.bluez',interface='org.freedesktop.DBus.Properties',member='PropertiesChanged'",
        "type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='org.bluez'",
    ]

    /// Reads BlueZ's objects and reports them; blocks until the snapshot is in the model.
    func load(_ connection: DBusConnection) throws(DBusCallError) {
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
    func requestSnapshot(_ connection: DBusConnection, then: @escaping @Sendable (DBusCallError?) -> Void) {
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

    func registerAgent(_ connection: DBusConnection, capability: BLEPairingPolicy.Capability) throws(DBusCallError) {
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

    /// bluetoothd restarted (or appeared): the same again, without blocking the D-Bus thread. A snapshot that fails
    /// while bluetoothd is on the bus (a slow start) is asked again after 1 s, 2 s, 4 s… up to 30 s, as long as this
    /// connection is the central's and nothing loaded meanwhile; if bluetoothd left, its return triggers a new reload.
    func reload(_ connection: DBusConnection, capability: BLEPairingPolicy.Capability, attempt: Int = 0) {
        requestSnapshot(connection) { [weak self] error in
            guard let self else { return }
            if let error {
                guard !Self.bluetoothdAbsentNames.contains(error.name) else { return }
                let delay = min(30.0, Double(1 << min(attempt, 5)))
                DispatchQueue.global().asyncAfter(deadline: .now() + delay) { [weak self] in
                    guard let self, self.session.withLock({ $0?.connection === connection }), !self.bluetoothdPresent else { return }
                    self.reload(connection, capability: capability, attempt: attempt + 1)
                }
                return
            }
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

    // MARK: Helpers

    /// Whether `name` is an adapter name as BlueZ gives them: `hci` and a number without leading zeros (`hci0`,
    /// `hci12`). The configuration, the CLI and ``start(pairing:events:)`` all check with this.
    public static func isAdapterName(_ name: String) -> Bool {
        guard name.hasPrefix("hci") else { return false }
        let digits = name.dropFirst(3)
        guard !digits.isEmpty, digits.utf8.allSatisfy({ (48...57).contains($0) }), digits.count <= 3 else { return false }
        return digits == "0" || digits.first != "0"
    }

    /// `C4:F3:12:53:F2:C9`, as BlueZ and bluetoothctl write addresses.
    static func text(_ address: EUI48) -> String {
        address.bluetoothText
    }

    func requireConnection(_ operation: String, _ address: EUI48? = nil) throws(DeviceIOError) -> DBusConnection {
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

    func devicePath(_ address: EUI48, _ operation: String) throws(DeviceIOError) -> String {
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
}
