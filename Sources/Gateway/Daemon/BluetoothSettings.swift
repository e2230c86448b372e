import DeviceIO
import ProfileCatalog
import ProfileEngine
import VitalModel

/// The `bluetooth` section of the daemon's configuration.
///
/// ```json
/// "bluetooth": {
///   "enabled": true,
///   "adapter": "hci0",
///   "connectTimeoutSeconds": 30,
///   "heartRate": { "windowSeconds": 60 },
///   "classic": [ { "address": "00:1A:7D:DA:71:13", "profile": "vendor/model" } ]
/// }
/// ```
public struct BluetoothSettings: Sendable, Hashable {
    /// Whether the daemon uses Bluetooth LE through BlueZ at all.
    public var enabled = true
    /// The adapter (`hci0`); nil: the first BlueZ reports.
    public var adapter: String?
    /// How long one connection attempt, GATT discovery included, may take.
    public var connectTimeout = Duration.seconds(30)
    /// Heart-rate readings are summarised into windows this long; 0 keeps every reading.
    public var heartRateWindowSeconds = 60
    /// Bluetooth Classic serial (SPP) devices the hub connects to, by address and profile id.
    public var classic: [ClassicDevice] = []

    public struct ClassicDevice: Sendable, Hashable {
        public var address: EUI48
        public var profileID: String
    }

    public init() {}

    static func parse(_ top: inout ProfileObject, file: String) throws(ProfileError) -> BluetoothSettings {
        var settings = BluetoothSettings()
        guard var section = try top.object("bluetooth") else { return settings }
        settings.enabled = try section.bool("enabled") ?? true
        if let adapter = try section.string("adapter", example: "\"hci0\"") {
            guard BlueZCentral.isAdapterName(adapter) else {
                throw section.error("adapter", "\"\(adapter)\" is not an adapter name", fix: "write hci0, hci1, … as `bluetoothctl list` or `hciconfig` shows")
            }
            settings.adapter = adapter
        }
        settings.connectTimeout = .seconds(try section.int("connectTimeoutSeconds", in: 5...300) ?? 30)
        if var heartRate = try section.object("heartRate") {
            settings.heartRateWindowSeconds = try heartRate.int("windowSeconds", in: HeartRateWindows.windowSecondsRange) ?? HeartRateWindows.defaultWindowSeconds
            try heartRate.finish()
        }
        for (item, path) in try section.array("classic") ?? [] {
            var entry = try ProfileObject(item, file: file, path: path)
            let text = try entry.string("address", required: true, example: "\"00:1A:7D:DA:71:13\"")!
            guard let address = EUI48(text) else {
                throw entry.error("address", "\"\(text)\" is not a Bluetooth address", fix: "write six hex bytes, e.g. \"00:1A:7D:DA:71:13\"")
            }
            let profile = try entry.string("profile", required: true, example: "\"contec/cms50d-plus\"")!
            try entry.finish()
            settings.classic.append(ClassicDevice(address: address, profileID: profile))
        }
        try section.finish()
        return settings
    }
}
