import Foundation
import VitalModel
import ProfileEngine

/// Reads profile files (format 1) into ``DeviceProfile`` values, or says precisely what is wrong.
public enum ProfileLoader {
    public static let format = 1
    /// Engine keys a profile may name.
    public static var engines: [String] { ["gatt-standard", "frames"] + VendorEngineReaders.readers.keys.sorted() }

    /// Loads one profile file. `id` is checked against `expectedID` when the file sits in a profile tree.
    public static func load(file path: String, expectedID: String? = nil) throws(ProfileError) -> DeviceProfile {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ProfileError(file: path, location: nil, field: "", problem: "no such file", fix: "check the path")
        }
        guard !isDirectory.boolValue else {
            throw ProfileError(file: path, location: nil, field: "", problem: "is a directory, not a profile file",
                               fix: "give the profile's .json file, or no files to check every shipped profile")
        }
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw ProfileError(file: path, location: nil, field: "", problem: "cannot read the file (\(error.localizedDescription))",
                               fix: "check the path and that the file is readable")
        }
        return try load(bytes: [UInt8](data), file: path, expectedID: expectedID)
    }

    public static func load(bytes: [UInt8], file: String, expectedID: String? = nil) throws(ProfileError) -> DeviceProfile {
        let json: LocatedJSON
        do {
            json = try LocatedJSONParser.parse(bytes: bytes)
        } catch {
            throw ProfileError(file: file, location: error.location, field: "", problem: "not valid JSON: \(error.problem)",
                               fix: "correct the JSON syntax at that position")
        }
        return try profile(json, file: file, expectedID: expectedID)
    }

    static func profile(_ json: LocatedJSON, file: String, expectedID: String?) throws(ProfileError) -> DeviceProfile {
        var root = try ProfileObject(json, file: file, path: "")
        _ = root.raw("$schema")
        let format = try root.int("format", in: 0...Int.max, required: true)!
        guard format == Self.format else {
            throw root.error("format", "format \(format) is not supported", fix: "this VitalGate reads \"format\": \(Self.format)")
        }
        let id = try root.string("id", required: true, example: "\"vendor/model\"")!
        guard id.split(separator: "/", omittingEmptySubsequences: false).count == 2,
              // ASCII only: the id is a path, a udev value and an identifier in FHIR resources.
              id.unicodeScalars.allSatisfy({ ("a"..."z").contains($0) || ("0"..."9").contains($0) || "-/.+".unicodeScalars.contains($0) }),
              !id.hasPrefix("/"), !id.hasSuffix("/") else {
            throw root.error("id", "\"\(id)\" is not of the form vendor/model in lower case", fix: "use e.g. \"contec/cms50d-plus\": letters a-z, digits, '-', '.', '+'")
        }
        if let expectedID, expectedID != id {
            throw root.error("id", "\"\(id)\" does not match the file's place in the profile tree", fix: "set it to \"\(expectedID)\" or move the file")
        }
        let revision = try root.int("revision", in: 1...1_000_000, required: true)!
        let vendor = try root.string("vendor", required: true, example: "\"Contec\"")!
        let model = try root.string("model", required: true, example: "\"CMS50D+\"")!
        let aliases = try root.strings("aliases") ?? []
        let summary = try root.string("summary")
        var kinds: [MeasurementKind] = []
        for (item, path) in try root.array("kinds", required: true)! {
            kinds.append(try word(item, MeasurementKind.self, file: file, path: path))
        }
        let match = try parseMatch(try root.object("match", required: true)!)
        let transport = try parseTransport(try root.required("transport", "{\"serial\": {...}}"), file: file)
        let engineJSON = try root.required("engine", "{\"frames\": {...}}")
        let (engineName, engineObject) = try singleVariant(engineJSON, file: file, path: "engine", choices: engines)
        let engine: any DeviceEngine
        switch engineName {
        case "gatt-standard": engine = try parseGATT(engineObject, transport: transport)
        case "frames": engine = try FramesSpecReader.engine(engineObject, kinds: kinds)
        default:
            // singleVariant admitted only known keys, so a reader exists; the guard keeps that local.
            guard let reader = VendorEngineReaders.readers[engineName] else {
                throw root.error("engine", "no engine \"\(engineName)\"", fix: "use one of " + engines.joined(separator: ", "))
            }
            engine = try reader(engineObject)
        }
        let time = try parseTime(try root.object("time", required: true)!)
        try root.finish()

        let profile = DeviceProfile(id: id, revision: revision, vendor: vendor, model: model, aliases: aliases, kinds: kinds,
                                    summary: summary, match: match, transport: transport, engine: engine, time: time, file: file)
        try checkConsistency(profile, root: root, engineName: engineName)
        return profile
    }

    static func word<T: RawRepresentable & CaseIterable>(_ json: LocatedJSON, _ type: T.Type, file: String, path: String) throws(ProfileError) -> T
        where T.RawValue == String {
        let choices = T.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
        guard case .string(let text) = json.value, let value = T(rawValue: text) else {
            throw ProfileError(file: file, location: json.location, field: path, problem: "is not one of \(choices)", fix: "use one of \(choices)")
        }
        return value
    }

    // MARK: Sections

    static func parseMatch(_ object: ProfileObject) throws(ProfileError) -> ProfileMatch {
        var object = object
        var usb: [USBMatch] = []
        for (item, path) in try object.array("usb") ?? [] {
            var entry = try ProfileObject(item, file: object.file, path: path)
            usb.append(USBMatch(vendorID: try entry.hex16("vendorId", required: true)!, productID: try entry.hex16("productId", required: true)!,
                                interface: try entry.int("interface", in: 0...255), manufacturer: try entry.string("manufacturer"),
                                product: try entry.string("product")))
            try entry.finish()
        }
        var bluetooth: BluetoothMatch?
        if var ble = try object.object("bluetooth") {
            var services: [String] = []
            for item in try ble.locatedStrings("services") ?? [] {
                guard let uuid = normalizeUUID(item.text) else {
                    throw ProfileError(file: ble.file, location: item.location, field: item.path, problem: "\"\(item.text)\" is not a Bluetooth UUID",
                                       fix: "write 4 hex digits (\"1810\") or a full 128-bit UUID")
                }
                services.append(uuid)
            }
            let names = try ble.strings("names") ?? []
            var manufacturerData: [ManufacturerDataMatch] = []
            for (item, path) in try ble.array("manufacturerData") ?? [] {
                var entry = try ProfileObject(item, file: object.file, path: path)
                let company = try entry.hex16("company", required: true)!
                let prefix = try entry.hexBytes("prefix", count: 1...31) ?? []
                let mask = try entry.hexBytes("mask", count: 1...31)
                if let mask, mask.count != prefix.count {
                    throw entry.error("mask", "has \(mask.count) bytes but prefix has \(prefix.count)", fix: "give the mask as many bytes as the prefix")
                }
                manufacturerData.append(ManufacturerDataMatch(company: company, prefix: prefix, mask: mask))
                try entry.finish()
            }
            if services.isEmpty && names.isEmpty && manufacturerData.isEmpty {
                throw ble.error(nil, "matches nothing", fix: "give services, names or manufacturerData")
            }
            try ble.finish()
            bluetooth = BluetoothMatch(services: services, names: names, manufacturerData: manufacturerData)
        }
        try object.finish()
        if usb.isEmpty && bluetooth == nil {
            throw object.error(nil, "matches no device", fix: "add \"usb\": [{\"vendorId\": \"...\", \"productId\": \"...\"}] or \"bluetooth\": {...}")
        }
        return ProfileMatch(usb: usb, bluetooth: bluetooth)
    }

    static func parseTransport(_ json: LocatedJSON, file: String) throws(ProfileError) -> Transport {
        let (kind, object) = try singleVariant(json, file: file, path: "transport", choices: ["serial", "hidraw", "ble", "rfcomm"])
        var o = object
        let transport: Transport
        switch kind {
        case "serial":
            let baud = try o.int("baud", in: 50...4_000_000, required: true)!
            guard SerialSettings.baudRates.contains(baud) else {
                throw o.error("baud", "\(baud) is not a standard rate", fix: "use one of " + SerialSettings.baudRates.map(String.init).joined(separator: ", "))
            }
            let stop = try o.int("stopBits", in: 1...2) ?? 1
            transport = .serial(SerialSettings(
                baud: baud, dataBits: try o.int("dataBits", in: 5...8) ?? 8, parity: try o.choice("parity", SerialSettings.Parity.self) ?? .none,
                stopBits: stop, flowControl: try o.choice("flowControl", SerialSettings.FlowControl.self) ?? .none,
                dtr: try o.choice("dtr", SerialSettings.Line.self), rts: try o.choice("rts", SerialSettings.Line.self),
                pulseMilliseconds: try o.int("pulseMs", in: 1...5000) ?? 100, exclusive: try o.bool("exclusive") ?? true))
        case "hidraw":
            var features: [[UInt8]] = []
            for (item, path) in try o.array("featureReports") ?? [] {
                guard case .string(let text) = item.value, let bytes = parseHexBytes(text) else {
                    throw ProfileError(file: file, location: item.location, field: path, problem: "is not hex bytes", fix: "write it like \"01 01\"")
                }
                guard (1...4096).contains(bytes.count) else {
                    throw ProfileError(file: file, location: item.location, field: path, problem: "has \(bytes.count) bytes",
                                       fix: "give a feature report of 1 to 4096 bytes")
                }
                features.append(bytes)
            }
            transport = .hidraw(HIDSettings(reportSize: try o.int("reportSize", in: 1...4096, required: true)!,
                                            reportID: try o.int("reportId", in: 1...255),
                                            padding: try o.hexBytes("padding", count: 1...1)?.first ?? 0, featureReports: features))
        case "ble":
            var characteristics: [BLESettings.Characteristic] = []
            for (item, path) in try o.array("characteristics", required: true)! {
                var entry = try ProfileObject(item, file: file, path: path)
                let serviceText = try entry.string("service", required: true, example: "\"1810\"")!
                let uuidText = try entry.string("uuid", required: true, example: "\"2A35\"")!
                guard let service = normalizeUUID(serviceText) else { throw entry.error("service", "\"\(serviceText)\" is not a Bluetooth UUID", fix: "write 4 hex digits or a 128-bit UUID") }
                guard let uuid = normalizeUUID(uuidText) else { throw entry.error("uuid", "\"\(uuidText)\" is not a Bluetooth UUID", fix: "write 4 hex digits or a 128-bit UUID") }
                characteristics.append(.init(service: service, uuid: uuid, mode: try entry.choice("mode", BLESettings.Mode.self, required: true)!))
                try entry.finish()
            }
            transport = .ble(BLESettings(characteristics: characteristics, pairing: try o.choice("pairing", BLESettings.Pairing.self) ?? .none,
                                         bond: try o.choice("bond", BLESettings.Bond.self) ?? .keep, pairingHint: try o.string("pairingHint"),
                                         writeDelayMilliseconds: try o.int("writeDelayMs", in: 0...5000) ?? 0))
        default:
            transport = .rfcomm(RFCOMMSettings(channel: try o.int("channel", in: 1...30, required: true)!))
        }
        try o.finish()
        return transport
    }

    static func parseGATT(_ object: ProfileObject, transport: Transport) throws(ProfileError) -> GATTStandardEngine {
        var o = object
        var characteristics: [String] = []
        for (item, path) in try o.array("characteristics", required: true)! {
            guard case .string(let text) = item.value, let uuid = normalizeUUID(text) else {
                throw ProfileError(file: o.file, location: item.location, field: path, problem: "is not a characteristic UUID", fix: "write 4 hex digits like \"2A35\"")
            }
            guard GATTStandardEngine.supported.contains(uuid) else {
                throw ProfileError(file: o.file, location: item.location, field: path, problem: "\(uuid) has no built-in decoder",
                                   fix: "use one of " + GATTStandardEngine.supported.joined(separator: ", "))
            }
            characteristics.append(uuid)
        }
        var quirks: Set<GATTStandardEngine.Quirk> = []
        for (item, path) in try o.array("quirks") ?? [] {
            quirks.insert(try word(item, GATTStandardEngine.Quirk.self, file: o.file, path: path))
        }
        try o.finish()
        return GATTStandardEngine(characteristics: characteristics, quirks: quirks)
    }

    static func parseTime(_ object: ProfileObject) throws(ProfileError) -> TimeBehaviour {
        var o = object
        let clock = try o.bool("deviceClock")
        guard let clock else { throw o.error(nil, "\"deviceClock\" is missing", fix: "add \"deviceClock\": true or false") }
        let time = TimeBehaviour(deviceClock: clock, set: try o.choice("set", TimeBehaviour.SetMethod.self) ?? .none,
                                 zone: try o.choice("zone", TimeBehaviour.Zone.self) ?? (clock ? .local : .none))
        if !clock && time.set != .none { throw o.error("set", "a device without a clock cannot be set", fix: "remove \"set\" or make deviceClock true") }
        try o.finish()
        return time
    }

    /// Rules that span sections: transport and engine fit together, match fits the transport.
    static func checkConsistency(_ profile: DeviceProfile, root: ProfileObject, engineName: String) throws(ProfileError) {
        switch (profile.transport, engineName) {
        case (.ble(let ble), "gatt-standard"):
            let subscribed = Set(ble.characteristics.filter { $0.mode == .notify || $0.mode == .indicate }.map(\.uuid))
            for uuid in profile.engine.inputs where !subscribed.contains(uuid) {
                throw root.error("transport", "the engine decodes \(uuid) but transport.ble does not subscribe to it",
                                 fix: "add {\"service\": \"...\", \"uuid\": \"\(uuid)\", \"mode\": \"indicate\" or \"notify\"} to transport.ble.characteristics")
            }
        case (_, "gatt-standard"):
            throw root.error("engine", "gatt-standard needs a \"ble\" transport", fix: "use transport {\"ble\": {...}} or another engine")
        case (.ble(let ble), _):
            // A vendor protocol over Bluetooth LE: notifications form the byte stream, requests are written.
            if !ble.characteristics.contains(where: { $0.mode == .notify || $0.mode == .indicate }) {
                throw root.error("transport", "\(engineName) over Bluetooth LE needs a characteristic to receive on",
                                 fix: "add a characteristic with \"mode\": \"notify\" or \"indicate\"")
            }
        default: break
        }
        // Without sync bytes each read is taken as one frame; only reports and notifications keep frame
        // boundaries, a serial or RFCOMM stream does not.
        if let frames = profile.engine as? FramesEngine, case .none = frames.spec.sync {
            switch profile.transport {
            case .serial, .rfcomm:
                throw root.error("engine", "\"sync\": \"none\" needs a transport that keeps frame boundaries (hidraw or ble), not \(profile.transport.name)",
                                 fix: "describe the frame start with sync bytes or a bit pattern")
            case .hidraw, .ble: break
            }
        }
        switch profile.transport {
        case .serial, .hidraw:
            if profile.match.usb.isEmpty { throw root.error("match", "a USB device needs match.usb", fix: "add \"usb\": [{\"vendorId\": \"...\", \"productId\": \"...\"}]") }
        case .ble, .rfcomm:
            if profile.match.bluetooth == nil { throw root.error("match", "a Bluetooth device needs match.bluetooth", fix: "add \"bluetooth\": {\"services\": [...]} or names") }
        }
    }
}

/// `2a35`, `0x2A35` and the 128-bit Bluetooth base form all become `2A35`; other 128-bit UUIDs are
/// upper-cased with dashes. Nil when the text is neither.
public func normalizeUUID(_ text: String) -> String? {
    var upper = text.uppercased()
    if upper.hasPrefix("0X") { upper = String(upper.dropFirst(2)) }
    if upper.count == 36, upper.hasPrefix("0000"), upper.hasSuffix("-0000-1000-8000-00805F9B34FB") {
        upper = String(upper.dropFirst(4).prefix(4))
    }
    // ASCII digits only: Character.isHexDigit also accepts full-width forms.
    let isHex = { (text: String) in text.utf8.allSatisfy { hexDigitValue($0) != nil } }
    if upper.utf8.count == 4, isHex(upper) { return upper }
    let groups = upper.split(separator: "-", omittingEmptySubsequences: false).map(\.utf8.count)
    if groups == [8, 4, 4, 4, 12], isHex(upper.replacingOccurrences(of: "-", with: "")) { return upper }
    return nil
}
