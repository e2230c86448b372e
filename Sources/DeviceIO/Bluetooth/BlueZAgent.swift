import Foundation
import VitalModel

/// The hub's `org.bluez.Agent1`: bluetoothd asks it to confirm, type or show a passkey while pairing, and to
/// authorise a device's services. It answers from ``BLEPairingPolicy``.
///
/// Exported at ``path`` on the central's connection. Calls arrive on the D-Bus thread; those that consult the
/// policy (whose passkey closure may wait for a person at the keyboard) run on a serial queue of their own
/// and their reply is sent from there, so the D-Bus thread keeps dispatching meanwhile. Calls about a device
/// BlueZ has not told the central about are rejected.
final class BlueZAgent: Sendable {
    static let path = "/org/vitalgate/agent"
    static let interface = "org.bluez.Agent1"
    static let rejected = "org.bluez.Error.Rejected"

    private let connection: DBusConnection
    private let policy: BLEPairingPolicy
    /// The address of a device object BlueZ reported, or nil.
    private let lookup: @Sendable (String) -> EUI48?
    private let worker = DispatchQueue(label: "vitalgate-bluez-agent")

    init(connection: DBusConnection, policy: BLEPairingPolicy, lookup: @escaping @Sendable (String) -> EUI48?) {
        self.connection = connection
        self.policy = policy
        self.lookup = lookup
    }

    /// Handles one method call to ``path`` (on the D-Bus thread); always answers it, now or from the worker.
    func handle(_ call: DBusMessage) -> Bool {
        guard call.interface == nil || call.interface == Self.interface else {
            reply(call, error: "org.freedesktop.DBus.Error.UnknownInterface", "VitalGate's agent implements org.bluez.Agent1 only")
            return true
        }
        let arguments = call.arguments()
        switch (call.member ?? "", call.signature) {
        case ("Release", ""), ("Cancel", ""):
            reply(call)
        case ("RequestPinCode", "o"):
            // PIN codes belong to Bluetooth Classic legacy pairing; VitalGate pairs LE devices only.
            reply(call, error: Self.rejected, "VitalGate does not use PIN codes")
        case ("DisplayPinCode", "os"):
            guard let address = device(arguments[0], call) else { return true }
            guard let text = arguments[1].string, text.utf8.count <= 6, let pin = UInt32(text) else {
                reply(call, error: Self.rejected, "VitalGate shows numeric PIN codes only")
                return true
            }
            onWorker(call) { [policy] in
                policy.display(address, pin)
                return .reply([])
            }
        case ("RequestPasskey", "o"):
            guard let address = device(arguments[0], call) else { return true }
            onWorker(call) { [policy] in
                guard let passkey = policy.passkey(address), passkey <= 999_999 else { return .reject("no passkey was given") }
                return .reply([.uint32(passkey)])
            }
        case ("DisplayPasskey", "ouq"):
            guard let address = device(arguments[0], call), let passkey = arguments[1].uint32 else { return true }
            // BlueZ repeats the call as keys are typed on the device; show the passkey once.
            let entered = arguments[2].uint16 ?? 0
            onWorker(call) { [policy] in
                if entered == 0 { policy.display(address, passkey) }
                return .reply([])
            }
        case ("RequestConfirmation", "ou"):
            guard let address = device(arguments[0], call), let passkey = arguments[1].uint32 else { return true }
            onWorker(call) { [policy] in
                // Numeric comparison: the person compares this number with the device's.
                guard policy.mayPair(address) else { return .reject("the pairing policy does not allow this device") }
                policy.display(address, passkey)
                return .reply([])
            }
        case ("RequestAuthorization", "o"), ("AuthorizeService", "os"):
            guard let address = device(arguments[0], call) else { return true }
            onWorker(call) { [policy] in
                policy.mayPair(address) ? .reply([]) : .reject("the pairing policy does not allow this device")
            }
        default:
            reply(call, error: "org.freedesktop.DBus.Error.UnknownMethod",
                  "org.bluez.Agent1 has no method \(call.member ?? "?") with signature '\(call.signature)'")
        }
        return true
    }

    private enum Answer {
        case reply([DBusValue])
        case reject(String)
    }

    /// The device's address, or nil after rejecting the call (unknown device).
    private func device(_ argument: DBusValue, _ call: DBusMessage) -> EUI48? {
        guard case .objectPath(let path) = argument, let address = lookup(path) else {
            reply(call, error: Self.rejected, "unknown device")
            return nil
        }
        return address
    }

    private func onWorker(_ call: DBusMessage, _ body: @escaping @Sendable () -> Answer) {
        worker.async { [self] in
            switch body() {
            case .reply(let values): reply(call, values)
            case .reject(let text): reply(call, error: Self.rejected, text)
            }
        }
    }

    private func reply(_ call: DBusMessage, _ values: [DBusValue] = []) {
        guard call.expectsReply, let message = try? call.methodReturn() else { return }
        do {
            try message.append(values)
        } catch {
            reply(call, error: "org.freedesktop.DBus.Error.Failed", "VitalGate could not build the reply")
            return
        }
        connection.send(message)
    }

    private func reply(_ call: DBusMessage, error name: String, _ text: String) {
        guard call.expectsReply, let message = try? call.errorReply(name: name, message: text) else { return }
        connection.send(message)
    }
}
