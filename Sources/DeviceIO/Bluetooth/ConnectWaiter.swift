import Foundation
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
