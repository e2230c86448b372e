import Foundation
import Synchronization
import VitalModel
import ProfileCatalog
import DeviceIO

/// `vitalgate bluetooth pair ADDRESS`: adopts one device for the daemon.
///
/// The device must be one a single profile claims. A profile that pairs (just-works, passkey) is paired
/// through this process's KeyboardDisplay agent, which agrees to this device only, prints a passkey the
/// hub must show, and with `--passkey-stdin` asks for the passkey the device shows. Then the device is
/// marked trusted, and the link this command opened is closed so the daemon can connect.
struct BluetoothPairing {
    let address: EUI48
    let timeout: Duration
    let passkeyFromInput: Bool
    let matcher: BLEProfileMatcher
    let input: @Sendable () -> String?
    let emit: @Sendable (String) -> Void

    func run(_ central: BlueZCentral) throws -> CommandResult {
        let deadline = ContinuousClock.now + timeout
        let log = BluetoothDeviceLog()
        let target = address
        let text = BluetoothDeviceLog.text(address)
        let policy = BLEPairingPolicy(
            capability: .keyboardDisplay,
            mayPair: { $0 == target },
            passkey: { [passkeyFromInput, input, emit] device in
                guard passkeyFromInput, device == target else { return nil }
                emit("Type the passkey \(BluetoothDeviceLog.text(device)) shows, then press Enter: ")
                // The passkey a device shows is 6 digits (000000-999999); anything else is refused here, by name.
                guard let line = input()?.trimmingCharacters(in: .whitespacesAndNewlines) else { return nil }
                guard (1...6).contains(line.utf8.count), line.utf8.allSatisfy({ (48...57).contains($0) }), let passkey = UInt32(line) else {
                    emit("'\(line)' is not a passkey: type the 6 digits the device shows\n")
                    return nil
                }
                return passkey
            },
            display: { [emit] device, passkey in
                guard device == target else { return }
                emit("Passkey for \(BluetoothDeviceLog.text(device)): \(Self.sixDigits(passkey)) (type it on the device if it asks)\n")
            })
        try central.start(pairing: policy) { log.record($0) }
        defer { central.stop() }
        try BluetoothCommand.requireAdapter(log)

        let device = try waitUntilKnown(central, log, deadline: deadline)
        let profile: DeviceProfile
        switch matcher.match(device) {
        case .profile(let claimed): profile = claimed
        case .none, .ambiguous:
            throw DeviceIOError(operation: "pair", path: text,
                                fix: "VitalGate adopts only devices a single profile claims; \(matcher.explanation(for: device)). "
                                    + "Add or correct a profile (see `vitalgate profile list`)")
        }
        var out = ""
        let pairing = BluetoothCommand.pairing(profile)
        if pairing == .none {
            out += "\(text): profile \(profile.id) needs no pairing\n"
        } else if device.paired {
            out += "\(text): already paired\n"
        } else {
            if case .ble(let settings) = profile.transport, let hint = settings.pairingHint {
                emit("Pairing \(text) (\(profile.vendor) \(profile.model)): \(hint)\n")
            }
            if pairing == .passkey && !passkeyFromInput {
                emit("Note: \(profile.id) pairs with a passkey; if the device shows one, run again with --passkey-stdin\n")
            }
            try central.pair(address, timeout: max(.seconds(1), deadline - ContinuousClock.now))
            out += "\(text): paired\n"
        }
        try central.setTrusted(address, true)
        if log.device(address)?.connected == true { central.disconnect(address) }
        out += "\(text): trusted; vitalgated reads it with profile \(profile.id) (\(profile.vendor) \(profile.model))\n"
        return CommandResult(stdout: out)
    }

    /// The device as BlueZ knows it; scans for it (with every profile's services) until it shows up.
    private func waitUntilKnown(_ central: BlueZCentral, _ log: BluetoothDeviceLog, deadline: ContinuousClock.Instant) throws -> BLEDeviceInfo {
        if let known = log.device(address) { return known }
        emit("Waiting for \(BluetoothDeviceLog.text(address)) to advertise (put it in pairing mode)...\n")
        try central.scan(services: matcher.services)
        defer { try? central.scan(services: []) }
        while ContinuousClock.now < deadline {
            if let found = log.device(address) { return found }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw DeviceIOError(operation: "pair", path: BluetoothDeviceLog.text(address), code: ETIMEDOUT,
                            fix: "the device was not seen advertising: put it into pairing mode, keep it close, and check the address "
                                + "with `vitalgate bluetooth scan`")
    }

    static func sixDigits(_ passkey: UInt32) -> String {
        let digits = String(passkey)
        return String(repeating: "0", count: max(0, 6 - digits.count)) + digits
    }
}
