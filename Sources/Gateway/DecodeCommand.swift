import Foundation
import VitalModel
import ProfileEngine
import ProfileCatalog
import FHIRExport

/// `vitalgate decode`: bytes in, readings (JSON lines) or a FHIR `collection` Bundle out.
///
/// The first tool of the vendor kit, and a contract other tools build on: options, output shapes and
/// exit statuses (0 decoded, 2 bad usage or bytes) stay stable.
struct DecodeCommand {
    static let usage = """
        Usage: vitalgate decode --profile ID|PATH [--characteristic UUID] [options] HEX...

        Decodes each HEX argument (one notification, report or chunk of a byte stream; `-` reads one per
        line from standard input) and prints one reading per line as JSON, or with --fhir one FHIR R4
        Bundle (type collection). `vitalgate profile list` shows the shipped profiles.

        Options:
          --profile ID|PATH         a shipped profile id (e.g. bluetooth-sig/blood-pressure) or a profile file
          --profiles DIR            the profile tree to look ids up in (default: the shipped DeviceProfiles)
          --characteristic UUID     for gatt-standard profiles: the characteristic the bytes came from
          --capture FILE            decode a capture file (as shipped beside profiles) instead of HEX frames
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
        } catch let error as ProfileError {
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
                                   options: ["profile", "profiles", "characteristic", "patient", "device-address", "system-id",
                                             "manufacturer", "model", "received-at", "device-clock", "capture"],
                                   command: "decode")
        guard let profileArgument = parsed.value("profile") else { throw UsageError("--profile is required") }
        let profile = try ProfileResolver.resolve(profileArgument, directory: parsed.value("profiles"))
        var characteristic: String?
        let capturePath = parsed.value("capture")
        if capturePath != nil, !parsed.operands.isEmpty { throw UsageError("give either --capture FILE or HEX frames, not both") }
        if capturePath != nil, parsed.value("characteristic") != nil {
            throw UsageError("a capture names its characteristics on each line; leave out --characteristic")
        }
        if capturePath != nil {
            // Characteristics come from the capture's lines.
        } else if let gatt = profile.engine as? GATTStandardEngine {
            guard let text = parsed.value("characteristic") else {
                throw UsageError("--characteristic is required for \(profile.id); it decodes " + gatt.characteristics.joined(separator: ", "))
            }
            let uuid = normalizeUUID(text) ?? text.uppercased()
            guard gatt.characteristics.contains(uuid) else {
                throw UsageError("profile \(profile.id) decodes " + gatt.characteristics.joined(separator: ", ") + ", not '\(text)'")
            }
            characteristic = uuid
        } else if parsed.value("characteristic") != nil {
            throw UsageError("profile \(profile.id) reads a byte stream (\(profile.engine.name) engine); leave out --characteristic")
        }

        let systems = IdentifierSystems.vietnam
        var patient = systems.demoPatient
        if let spec = parsed.value("patient") {
            do { patient = try systems.parse(spec) } catch { throw UsageError("--patient: \(error)") }
        }
        if let capturePath {
            return try decodeCapture(capturePath, parsed: parsed, profile: profile, patient: patient)
        }
        let device = try deviceIdentity(parsed, profile: profile)
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

        // One session for all frames, as on a real link: a stream protocol may split a frame across chunks.
        var session = profile.engine.makeSession(device: device, profileID: profile.id)
        _ = session.start(at: receivedAt)
        var readings: [Reading] = []
        for (index, frame) in frames.enumerated() {
            var frameTime = receivedAt
            frameTime.instant = receivedAt.instant.addingTimeInterval(Double(index) / 1000)
            let bytes: [UInt8]
            switch parseHex(frame) {
            case .success(let value): bytes = value
            case .failure(let error): throw UsageError("frame \(index + 1) is not hex: \(error)")
            }
            for event in session.receive(bytes, channel: characteristic, at: frameTime) {
                switch event {
                case .reading(var reading):
                    reading.clockCheck = clockCheck
                    readings.append(reading)
                case .problem(let error):
                    throw DecodeFailure(position: index + 1, error: error)
                case .send, .finished:
                    break
                }
            }
        }
        guard !readings.isEmpty else {
            throw UsageError("the bytes hold no complete \(profile.engine.inputs.joined(separator: "/")) frame of \(profile.id)")
        }

        return try output(readings, parsed: parsed, patient: patient)
    }

    /// Replays a capture file through the profile's engine, scripts and all, as `vitalgate profile test` does.
    static func decodeCapture(_ path: String, parsed: Arguments, profile: DeviceProfile, patient: PatientIdentifier) throws -> CommandResult {
        var capture = try Capture.load(file: path)
        if parsed.value("received-at") != nil { capture.receivedAt = try hubTimestamp(parsed) }
        if parsed.value("device-address") != nil || parsed.value("system-id") != nil || capture.device == nil {
            capture.device = try deviceIdentity(parsed, profile: profile)
        }
        let replay = Replay.run(capture, profile: profile)
        let complaints = replay.scriptDifferences + replay.problems.map { "problem: \($0)" }
        guard complaints.isEmpty else {
            return CommandResult(stderr: complaints.map { "vitalgate decode: \(path): \($0)\n" }.joined(), exitCode: 2)
        }
        guard !replay.readings.isEmpty else { throw UsageError("\(path) holds no reading for \(profile.id)") }
        let clockCheck = try deviceClock(parsed, receivedAt: capture.receivedAt)
        return try output(replay.readings.map { reading in
            var copy = reading
            copy.clockCheck = clockCheck ?? reading.clockCheck
            return copy
        }, parsed: parsed, patient: patient)
    }

    static func output(_ readings: [Reading], parsed: Arguments, patient: PatientIdentifier) throws -> CommandResult {
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

    static func deviceIdentity(_ parsed: Arguments, profile: DeviceProfile) throws(UsageError) -> DeviceIdentity {
        var device = DeviceIdentity(manufacturer: parsed.value("manufacturer"), model: parsed.value("model"))
        if let text = parsed.value("system-id") {
            guard let systemID = EUI64(text) else { throw UsageError("--system-id '\(text)' is not 8 hex bytes like 00-1C-05-FF-FE-00-78-25") }
            device.systemID = systemID
        }
        if let text = parsed.value("device-address") {
            guard let address = EUI48(text) else { throw UsageError("--device-address '\(text)' is not 6 hex bytes like C4:F3:12:53:F2:C9") }
            device.bluetoothAddress = address
        }
        if device.systemID == nil && device.bluetoothAddress == nil {
            let fallback = Replay.defaultDevice(for: profile)
            device.bluetoothAddress = fallback.bluetoothAddress
            device.usb = fallback.usb
        }
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
