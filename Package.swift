// swift-tools-version:6.0
// VitalGate: a personal health gateway for Linux. See ../shared/ARCHITECTURE.md for the shape.
// No third-party Swift packages: Foundation, Dispatch, Swift Testing and system C libraries only.
import PackageDescription

/// A SwiftPM system-library target for one C library found through pkg-config.
func systemLibrary(_ name: String, pkgConfig: String, apt: String) -> Target {
    .systemLibrary(name: name, path: "Sources/\(name)", pkgConfig: pkgConfig, providers: [.apt([apt])])
}

let package = Package(
    name: "VitalGate",
    products: [
        .executable(name: "vitalgate", targets: ["vitalgate"]),
        .executable(name: "vitalgated", targets: ["vitalgated"]),
        .library(name: "VitalModel", targets: ["VitalModel"]),
        .library(name: "ProfileEngine", targets: ["ProfileEngine"]),
        .library(name: "FHIRExport", targets: ["FHIRExport"]),
        .library(name: "ProfileCatalog", targets: ["ProfileCatalog"]),
    ],
    targets: [
        // System C libraries, each behind a module map and a header of static inline helpers.
        systemLibrary("CSQLite", pkgConfig: "sqlite3", apt: "libsqlite3-dev"),
        systemLibrary("CCurl", pkgConfig: "libcurl", apt: "libcurl4-openssl-dev"),
        systemLibrary("CCrypto", pkgConfig: "libcrypto", apt: "libssl-dev"),
        systemLibrary("CUdev", pkgConfig: "libudev", apt: "libudev-dev"),
        systemLibrary("CBluetooth", pkgConfig: "bluez", apt: "libbluetooth-dev"),
        systemLibrary("CDBus", pkgConfig: "dbus-1", apt: "libdbus-1-dev"),
        // The C library's pseudo-terminal functions, which Swift's Glibc module does not declare.
        .systemLibrary(name: "CPseudoTerminal", path: "Sources/CPseudoTerminal"),

        // Pure targets: no I/O, tested without devices or servers.
        .target(name: "VitalModel"),
        .target(name: "ProfileEngine", dependencies: ["VitalModel"]),
        .target(name: "FHIRExport", dependencies: ["VitalModel"]),
        // Profile files: the located JSON loader, lint, captures and their replay, udev rules.
        .target(name: "ProfileCatalog", dependencies: ["VitalModel", "ProfileEngine"]),
        // The device side of a capture on a pseudo-terminal, for `vitalgate simulate` and tests.
        .target(name: "DeviceSimulator", dependencies: ["VitalModel", "ProfileEngine", "ProfileCatalog", "CPseudoTerminal"]),

        // Targets that own a C library.
        .target(name: "Outbox", dependencies: ["VitalModel", "CSQLite"]),
        .target(name: "Assignment", dependencies: ["VitalModel"]),
        .target(name: "Uplink", dependencies: ["VitalModel", "FHIRExport", "CCurl", "CCrypto"]),
        // udev discovery, serial and hidraw ports, and the sessions that drive a profile's engine over them.
        .target(name: "DeviceIO", dependencies: ["VitalModel", "ProfileEngine", "ProfileCatalog", "CUdev", "CBluetooth", "CDBus"]),

        // Commands and, later, the daemon's pipelines.
        .target(name: "Gateway", dependencies: ["VitalModel", "Assignment", "ProfileEngine", "ProfileCatalog", "DeviceSimulator", "FHIRExport", "Outbox", "Uplink", "DeviceIO"]),
        .executableTarget(name: "vitalgate", dependencies: ["Gateway"]),
        .executableTarget(name: "vitalgated", dependencies: ["Gateway"]),
        // Benchmarks print machine-readable results; they are run by scripts/benchmark, never by tests.
        .executableTarget(name: "vitalgate-benchmarks", dependencies: ["VitalModel", "ProfileEngine", "ProfileCatalog"],
                          path: "Benchmarks/ProfileBenchmarks"),
        .executableTarget(name: "vitalgate-delivery-benchmarks", dependencies: ["VitalModel", "FHIRExport", "Outbox", "Uplink", "Gateway"],
                          path: "Benchmarks/DeliveryBenchmarks"),

        // Test support: the FHIR validator client and fixture loading.
        .target(name: "VitalGateTestKit", dependencies: ["VitalModel"]),

        .testTarget(name: "VitalModelTests", dependencies: ["VitalModel"]),
        .testTarget(name: "ProfileEngineTests", dependencies: ["ProfileEngine", "VitalGateTestKit"]),
        .testTarget(name: "FHIRExportTests", dependencies: ["FHIRExport", "ProfileEngine", "VitalGateTestKit"]),
        .testTarget(name: "ProfileCatalogTests", dependencies: ["ProfileCatalog", "ProfileEngine", "VitalGateTestKit"]),
        .testTarget(name: "DeviceSimulatorTests", dependencies: ["DeviceSimulator", "ProfileCatalog", "VitalGateTestKit"]),
        .testTarget(name: "GatewayTests", dependencies: ["Gateway", "Assignment", "Outbox", "VitalGateTestKit"]),
        .testTarget(name: "DeviceIOTests", dependencies: ["DeviceIO", "DeviceSimulator", "ProfileCatalog", "ProfileEngine", "VitalModel", "VitalGateTestKit"]),
        .testTarget(name: "SystemLibraryTests", dependencies: ["Outbox", "Uplink", "DeviceIO"]),
        .testTarget(name: "AssignmentTests", dependencies: ["Assignment", "VitalModel"]),
        .testTarget(name: "OutboxTests", dependencies: ["Outbox", "VitalModel", "VitalGateTestKit"]),
        .testTarget(name: "UplinkTests", dependencies: ["Uplink", "FHIRExport", "VitalModel", "VitalGateTestKit"], exclude: ["Fixtures"]),
        // Outbox and Uplink together against the real FHIR server, directly and through the fault proxy.
        .testTarget(name: "DeliveryTests", dependencies: ["Gateway", "Outbox", "Uplink", "FHIRExport", "VitalModel", "VitalGateTestKit"]),
    ],
    swiftLanguageModes: [.v6]
)
