import Foundation
import VitalModel
import ProfileEngine
import FHIRExport

/// `vitalgate decode`: bytes in, readings (JSON lines) or a FHIR `collection` Bundle out.
///
/// The first tool of the vendor kit, and a contract other tools build on: options, output shapes and
/// exit statuses (0 decoded, 2 bad usage or bytes) stay stable.
struct DecodeCommand {
    static let usage = """
        Usage: vitalgate decode --profile ID --characteristic UUID [options] HEX...

        Decodes each HEX argument (one notification or frame; `-` reads one per line from standard input)
        and prints one reading per line as JSON, or with --fhir one FHIR R4 Bundle (type collection).

        Profiles: bluetooth-sig/blood-pressure (2A35, 2A36), bluetooth-sig/heart-rate (2A37)

        Options:
          --fhir                    print a FHIR Bundle instead of readings
          --patient SPEC            cccd:<12 digits>, bhxh:<10 digits> or SYSTEM|VALUE
                                    (default: the demo citizen cccd:099199000001; 099 is no province,
                                    so it can be no real person)
          --device-address ADDR     the device's Bluetooth address (default 00:00:5E:00:53:01, a
                                    documentation address from RFC 7042)
          --system-id EUI64         the device's IEEE System ID, when it reports one
          --manufacturer NAME       as the device's Device Information Service says
          --model NAME
          --received-at TIME        when the hub received the first frame, e.g. 2025-06-01T07:35:00+07:00
                                    (default: now, in this machine's time zone); later frames are taken
                                    as received 1 ms apart, so readings without a device time stay distinct
          --device-clock TIME       what the device clock showed at --received-at (e.g. read from
                                    Current Time), or `fault`: adds a Coincident Timestamp
          --no-profile-claims       leave meta.profile out (for servers without the PHD IG installed)
        """

    static func run(_ arguments: [String], input: () -> String?) -> CommandResult {
        if arguments.contains("--help") || arguments.contains("-h") { return CommandResult(stdout: usage + "\n") }
        do {
            return try decode(arguments, input: input)
        } catch let error as UsageError {
            return CommandResult(stderr: "vitalgate decode: \(error)\nSee `vitalgate decode --help`.\n", exitCode: 2)
        } catch let error as DecodeFailure {
            return CommandResult(stderr: "vitalgate decode: \(error)\n", exitCode: 2)
        } catch let error as ExportError {
            return CommandResult(stderr: "vitalgate decode: cannot make FHIR: \(error)\n", exitCode: 2)
        } catch {
            return CommandResult(stderr: "vitalgate decode: \(error)\n", exitCode: 1)
        }
    }

    /// A frame that did not decode, named by its position so a vendor can find it in a long capture.
    struct DecodeFailure: Error, CustomStringConvertible {
        let position: Int
        let error: DecodeError
        var description: String { "frame \(position): \(error)" }
    }

    static func decode(_ arguments: [String], input: () -> String?) throws -> CommandResult {
        let parsed = try Arguments(arguments, flags: ["fhir", "no-profile-claims"],
                                   options: ["profile", "characteristic", "patient", "device-address", "system-id",
                                             "manufacturer", "model", "received-at", "device-clock"],
                                   command: "decode")
        guard let profileID = parsed.value("profile") else { throw UsageError("--profile is required") }
        guard let profile = BuiltInProfile.named(profileID) else {
            throw UsageError("no profile '\(profileID)'; built in: " + BuiltInProfile.all.map(\.id).joined(separator: ", "))
        }
        guard let characteristicText = parsed.value("characteristic") else { throw UsageError("--characteristic is required") }
        let characteristic = normalizeUUID(characteristicText)
        guard profile.characteristics.contains(characteristic) else {
            throw UsageError("profile \(profile.id) decodes " + profile.characteristics.joined(separator: ", ")
                + ", not '\(characteristicText)'")
        }

        let systems = IdentifierSystems.vietnam
        var patient = systems.demoPatient
        if let spec = parsed.value("patient") {
            do { patient = try systems.parse(spec) } catch { throw UsageError("--patient: \(error)") }
        }
        let device = try deviceIdentity(parsed)
        let receivedAt = try hubTimestamp(parsed)
        let clockCheck = try deviceClock(parsed, receivedAt: receivedAt)

        var frames: [String] = []
        for operand in parsed.operands {
            if operand == "-" {
                while let line = input() {
                    let trimmed = line.trimmingCharacters(in: .whitespaces)
                    if !trimmed.isEmpty && !trimmed.hasPrefix("#") { frames.append(trimmed) }
                }
            } else {
                frames.append(operand)
            }
        }
        guard !frames.isEmpty else { throw UsageError("give at least one HEX byte string (or - to read them from standard input)") }

        var readings: [Reading] = []
        for (index, frame) in frames.enumerated() {
            var frameTime = receivedAt
            frameTime.instant = receivedAt.instant.addingTimeInterval(Double(index) / 1000)
            let context = DecodeContext(device: device, receivedAt: frameTime, profileID: profile.id)
            let bytes: [UInt8]
            switch parseHex(frame) {
            case .success(let value): bytes = value
            case .failure(let error): throw UsageError("frame \(index + 1) is not hex: \(error)")
            }
            do {
                var reading = try profile.decode(characteristic: characteristic, bytes: bytes, context: context)
                reading.clockCheck = clockCheck
                readings.append(reading)
            } catch {
                throw DecodeFailure(position: index + 1, error: error)
            }
        }

        guard parsed.has("fhir") else {
            return CommandResult(stdout: readings.map { $0.json.serialized() + "\n" }.joined())
        }
        let gateway = GatewayIdentity(systemID: EUI64("00-00-5E-FF-FE-00-53-00")!, ethernetAddress: EUI48("00-00-5E-00-53-00"),
                                      softwareVersion: VitalGateVersion.current, timeSync: .sntpv4)
        let exporter = FHIRExporter(configuration: FHIRExportConfiguration(
            gateway: gateway, claimProfiles: !parsed.has("no-profile-claims")))
        let bundle = try exporter.collectionBundle(readings, subject: .identifier(patient))
        return CommandResult(stdout: bundle.prettyPrinted() + "\n")
    }

    /// `0x2a35`, `2a35` and the full 128-bit base UUID form all name `2A35`.
    static func normalizeUUID(_ text: String) -> String {
        var upper = text.uppercased()
        if upper.hasPrefix("0X") { upper = String(upper.dropFirst(2)) }
        if upper.count == 36, upper.hasPrefix("0000"), upper.hasSuffix("-0000-1000-8000-00805F9B34FB") {
            upper = String(upper.dropFirst(4).prefix(4))
        }
        return upper
    }

    static func deviceIdentity(_ parsed: Arguments) throws(UsageError) -> DeviceIdentity {
        var device = DeviceIdentity(manufacturer: parsed.value("manufacturer"), model: parsed.value("model"))
        if let text = parsed.value("system-id") {
            guard let systemID = EUI64(text) else { throw UsageError("--system-id '\(text)' is not 8 hex bytes like 00-1C-05-FF-FE-00-78-25") }
            device.systemID = systemID
        }
        if let text = parsed.value("device-address") {
            guard let address = EUI48(text) else { throw UsageError("--device-address '\(text)' is not 6 hex bytes like C4:F3:12:53:F2:C9") }
            device.bluetoothAddress = address
        }
        if device.systemID == nil && device.bluetoothAddress == nil { device.bluetoothAddress = EUI48("00:00:5E:00:53:01") }
        return device
    }

    static func hubTimestamp(_ parsed: Arguments) throws(UsageError) -> HubTimestamp {
        guard let text = parsed.value("received-at") else { return .now() }
        guard let stamp = HubTimestamp(iso8601: text) else {
            throw UsageError("--received-at '\(text)' is not a time with offset in years 1970-9998, like 2025-06-01T07:35:00+07:00")
        }
        return stamp
    }

    static func deviceClock(_ parsed: Arguments, receivedAt: HubTimestamp) throws(UsageError) -> DeviceClockCheck? {
        guard let text = parsed.value("device-clock") else { return nil }
        if text == "fault" { return DeviceClockCheck(hubTime: receivedAt, deviceTime: nil) }
        guard let time = LocalDateTime(iso8601: text) else {
            throw UsageError("--device-clock '\(text)' is not a local time like 2025-06-01T07:34:41, or `fault`")
        }
        return DeviceClockCheck(hubTime: receivedAt, deviceTime: time)
    }
}
