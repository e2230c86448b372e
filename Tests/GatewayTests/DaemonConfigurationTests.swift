import Foundation
import ProfileCatalog
import Testing
import Uplink
import VitalModel
@testable import Gateway

/// The daemon's configuration file: a good one reads fully, and each mistake names line, column and field.
@Suite("daemon configuration")
struct DaemonConfigurationTests {
    func load(_ text: String) throws(ProfileError) -> DaemonConfiguration {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("vitalgate-config-\(UUID().uuidString).json").path
        _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try DaemonConfiguration.load(path)
    }

    @Test("a complete configuration")
    func complete() throws {
        let configuration = try load("""
            {
              "stateDirectory": "/var/lib/vitalgate",
              "owner": "cccd:099199000001",
              "server": {
                "baseURL": "https://fhir.example.vn/r4/",
                "mode": "single-requests", "subjectReference": "resolved", "batchSize": 20, "claimProfiles": false,
                "auth": {"method": "smart-backend-services", "clientID": "hub-1", "privateKeyFile": "/etc/vitalgate/secrets/hub.pem",
                         "keyID": "k1", "algorithm": "RS384"},
                "tls": {"caBundle": "/etc/vitalgate/ca.pem", "clientCertificate": "/etc/vitalgate/hub.crt", "clientKey": "/etc/vitalgate/hub.key"},
                "timeouts": {"connectSeconds": 5, "requestSeconds": 30},
                "retry": {"initialMilliseconds": 500, "maximumSeconds": 600}
              },
              "gateway": {"ethernetAddress": "DC:A6:32:01:02:03"},
              "retention": {"deliveredDays": 7},
              "outbox": {"reservedFreeMiB": 16},
              "devices": {"discover": false, "profiles": "/usr/share/vitalgate/profiles", "serialBridges": ["contec/cms50d-plus"]}
            }
            """)
        let uplink = try configuration.uplinkConfiguration(hostAddress: { nil })
        #expect(uplink.baseURL == "https://fhir.example.vn/r4")
        #expect(uplink.mode == .singleRequests && uplink.subjectStyle == .resolved)
        #expect(uplink.batchSize == 20 && !uplink.export.claimProfiles)
        #expect(configuration.household.members.map(\.patient) == [PatientIdentifier(system: IdentifierSystems.vietnam.citizenID, value: "099199000001")])
        #expect(configuration.tls.clientKeyPath == "/etc/vitalgate/hub.key")
        #expect(configuration.outboxPath == "/var/lib/vitalgate/outbox.db")
        #expect(configuration.ingestSocket == "/var/lib/vitalgate/ingest.sock")
        #expect(configuration.reservedFreeBytes == 16 << 20)
        #expect(!configuration.discoverDevices && configuration.profilesDirectory == "/usr/share/vitalgate/profiles")
        #expect(configuration.serialBridgeProfiles == ["contec/cms50d-plus"])
        #expect(uplink.export.gateway.systemID.description == "DC-A6-32-FF-FE-01-02-03")
        guard case .smartBackendServices(let smart) = configuration.auth else { Issue.record("auth: \(configuration.auth)"); return }
        #expect(smart.algorithm == .rs384 && smart.keyID == "k1" && smart.tokenURL == nil)
    }

    @Test("devices are discovered with the shipped profiles unless the file says otherwise")
    func deviceDefaults() throws {
        let configuration = try load(#"{"server": {"baseURL": "https://x"}}"#)
        #expect(configuration.discoverDevices && configuration.profilesDirectory == nil && configuration.serialBridgeProfiles.isEmpty)
    }

    @Test("without a configured MAC the machine's is used, and a machine without one is a clear error")
    func hubIdentity() throws {
        let configuration = try load(#"{"server": {"baseURL": "https://x"}}"#)
        let derived = try configuration.uplinkConfiguration(hostAddress: { EUI48("02:11:22:33:44:55") })
        #expect(derived.export.gateway.systemID.description == "02-11-22-FF-FE-33-44-55")
        do {
            _ = try configuration.uplinkConfiguration(hostAddress: { nil })
            Issue.record("accepted a hub without identity")
        } catch {
            #expect(error.description.contains("gateway.ethernetAddress") && error.description.contains("Fix: set gateway.ethernetAddress"))
        }
    }

    @Test("the hub's MAC is chosen once and kept, so a new network adapter cannot change the hub's identity")
    func keptHubAddress() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vitalgate-hub-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let first = try #require(EUI48("02:11:22:33:44:55")), other = try #require(EUI48("02:AA:BB:CC:DD:EE"))

        #expect(HostIdentity.persistentAddress(stateDirectory: directory, detect: { nil }) == .none)
        #expect(HostIdentity.persistentAddress(stateDirectory: directory, detect: { first }) == .chosen(first, replacedDamaged: false))
        // Another interface sorts first now: the kept address still wins.
        #expect(HostIdentity.persistentAddress(stateDirectory: directory, detect: { other }) == .kept(first))
        // A damaged file is replaced, and said to be.
        try Data("not a mac\n".utf8).write(to: URL(fileURLWithPath: directory + "/hub-address"))
        #expect(HostIdentity.persistentAddress(stateDirectory: directory, detect: { other }) == .chosen(other, replacedDamaged: true))
        #expect(HostIdentity.persistentAddress(stateDirectory: directory, detect: { first }) == .kept(other))
    }

    @Test("mistakes name the line, column and field, and say how to fix them", arguments: [
        (#"{"server": {"baseURL": "ftp://x"}, "gateway": {"ethernetAddress": "02:00:00:00:00:01"}}"#, "1:24: server.baseURL", "https://"),
        ("{\n  \"server\": {\"baseURL\": \"https://x\", \"batchsize\": 5},\n  \"gateway\": {\"ethernetAddress\": \"02:00:00:00:00:01\"}}",
         "2:", "did you mean \"batchSize\""),
        (#"{"owner": "cccd:12345", "server": {"baseURL": "https://x"}, "gateway": {"ethernetAddress": "02:00:00:00:00:01"}}"#,
         "1:11: owner", "12 digits"),
        (#"{"server": {"baseURL": "https://x", "auth": {"method": "kerberos"}}, "gateway": {"ethernetAddress": "02:00:00:00:00:01"}}"#,
         "server.auth.method", "\"smart-backend-services\""),
        (#"{"server": {"baseURL": "https://x", "tls": {"clientCertificate": "/a"}}, "gateway": {"ethernetAddress": "02:00:00:00:00:01"}}"#,
         "server.tls", "both"),
        (#"{"gateway": {"ethernetAddress": "02:00:00:00:00:01"}}"#, "1:1: \"server\" is missing", "add \"server\""),
        (#"{"server": {"baseURL": "https://x", "batchSize": 0}, "gateway": {"ethernetAddress": "02:00:00:00:00:01"}}"#,
         "server.batchSize", "1...1000"),
        ("{\"server\": ", "1:12", "valid JSON"),
        (#"{"server": {"baseURL": "https://x"}, "devices": {"discovery": true}}"#, "devices.discovery", "did you mean \"discover\""),
        (#"{"server": {"baseURL": "https://x"}, "devices": {"discover": "yes"}}"#, "devices.discover", "true"),
        (#"{"server": {"baseURL": "https://x"}, "devices": {"serialBridges": [7]}}"#, "devices.serialBridges[0]", "contec/cms50d-plus"),
    ])
    func mistakes(text: String, place: String, fix: String) {
        do {
            _ = try load(text)
            Issue.record("accepted: \(text)")
        } catch {
            #expect(error.description.contains(place), "\(error)")
            #expect(error.description.contains(fix), "\(error)")
        }
    }
}
