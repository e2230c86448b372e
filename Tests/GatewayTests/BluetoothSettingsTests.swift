import Foundation
import ProfileCatalog
import Testing
import VitalModel
@testable import Gateway

/// The configuration's `bluetooth` section: defaults that work on a family hub, and mistakes named by line and field.
@Suite("bluetooth configuration")
struct BluetoothSettingsTests {
    func load(_ bluetooth: String) throws(ProfileError) -> DaemonConfiguration {
        let text = "{\n\"server\": {\"baseURL\": \"http://127.0.0.1:8080/fhir\"}" + (bluetooth.isEmpty ? "" : ",\n\"bluetooth\": " + bluetooth) + "\n}"
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("vitalgate-bt-\(UUID().uuidString).json").path
        _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try DaemonConfiguration.load(path)
    }

    @Test("without the section: Bluetooth LE on, the first adapter, one heart-rate Observation a minute, no Classic devices")
    func defaults() throws {
        let settings = try load("").bluetooth
        #expect(settings.enabled)
        #expect(settings.adapter == nil)
        #expect(settings.heartRateWindowSeconds == 60)
        #expect(settings.connectTimeout == .seconds(30))
        #expect(settings.classic.isEmpty)
    }

    @Test("every setting")
    func complete() throws {
        let settings = try load("""
            {"enabled": false, "adapter": "hci1", "connectTimeoutSeconds": 45, "heartRate": {"windowSeconds": 0},
             "classic": [{"address": "00:1a:7d:da:71:13", "profile": "contec/cms50ew"}]}
            """).bluetooth
        #expect(!settings.enabled)
        #expect(settings.adapter == "hci1")
        #expect(settings.connectTimeout == .seconds(45))
        #expect(settings.heartRateWindowSeconds == 0)
        #expect(settings.classic == [BluetoothSettings.ClassicDevice(address: EUI48("00:1A:7D:DA:71:13")!, profileID: "contec/cms50ew")])
    }

    @Test("mistakes name the line and the field", arguments: [
        ("{\"adapter\": \"bluetooth0\"}", "bluetooth.adapter", "hci0"),
        // BlueZ never names an adapter hci01 or hci-0: such a name would silently match no adapter.
        ("{\"adapter\": \"hci01\"}", "bluetooth.adapter", "hci0"),
        ("{\"adapter\": \"hci-0\"}", "bluetooth.adapter", "hci0"),
        ("{\"heartRate\": {\"windowSeconds\": -1}}", "bluetooth.heartRate.windowSeconds", ""),
        ("{\"classic\": [{\"address\": \"00:1A:7D:DA:71\", \"profile\": \"contec/cms50ew\"}]}", "bluetooth.classic[0].address", "six hex bytes"),
        // A missing key is reported at its object, naming the key.
        ("{\"classic\": [{\"address\": \"00:1A:7D:DA:71:13\"}]}", "bluetooth.classic[0]", "profile"),
        ("{\"scan\": true}", "bluetooth.scan", ""),
    ])
    func mistakes(_ section: String, _ field: String, _ fix: String) throws {
        do {
            _ = try load(section)
            Issue.record("\(section) was accepted")
        } catch {
            #expect(error.field == field, "\(error)")
            #expect(error.location?.line == 3, "\(error)")
            #expect(fix.isEmpty || error.description.contains(fix), "\(error)")
        }
    }
}
