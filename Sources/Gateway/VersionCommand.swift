import Outbox
import Uplink
import DeviceIO

/// `vitalgate version`: VitalGate's version and the system libraries it is linked against.
enum VersionCommand {
    static func run() -> CommandResult {
        let uplink = UplinkLibraries.current()
        return CommandResult(stdout: """
            vitalgate \(VitalGateVersion.current)
            sqlite \(SQLiteDatabase.libraryVersion)
            curl \(uplink.curlVersion) (\(uplink.curlTLS)\(uplink.supportsHTTP2 ? ", HTTP/2" : ""))
            libcrypto \(uplink.cryptoVersion)
            libdbus \(DeviceLibraries.dbusVersion)
            libudev \(DeviceLibraries.udevAvailable() ? "available" : "unavailable")

            """)
    }
}
