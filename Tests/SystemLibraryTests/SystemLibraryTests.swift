import Testing
import Outbox
import Uplink
import DeviceIO
import VitalModel

/// Each system-library target links and answers; release builds catch module-map mistakes that debug
/// builds let through, so CI runs these in both.
@Suite("system libraries")
struct SystemLibraryTests {
    @Test("sqlite3 opens a database, runs statements and reads back")
    func sqlite() throws {
        #expect(SQLiteDatabase.libraryVersion.hasPrefix("3."))
        let database = try SQLiteDatabase(path: ":memory:")
        try database.execute("CREATE TABLE t(x TEXT); INSERT INTO t VALUES ('vital');")
        #expect(try database.scalarText("SELECT x FROM t") == "vital")
        #expect(try database.scalarText("SELECT x FROM t WHERE 0") == nil)
        let error = try #require(throws: SQLiteDatabase.Failure.self) { try database.execute("SELECT * FROM missing") }
        #expect(error.description.contains("no such table: missing"))
    }

    @Test("libcurl has TLS through OpenSSL and HTTP/2; libcrypto answers")
    func curlAndCrypto() {
        let libraries = UplinkLibraries.current()
        #expect(libraries.curlTLS.hasPrefix("OpenSSL/"), "libcurl must be the OpenSSL flavour (private CA, mTLS)")
        #expect(libraries.supportsHTTP2)
        #expect(libraries.cryptoVersion.hasPrefix("OpenSSL 3"))
    }

    @Test("libudev creates a context, libdbus reports its version, libbluetooth formats addresses")
    func deviceLibraries() {
        #expect(DeviceLibraries.udevAvailable())
        #expect(DeviceLibraries.dbusVersion.hasPrefix("1."))
        #expect(DeviceLibraries.bluetoothText(EUI48("C4:F3:12:53:F2:C9")!) == "C4:F3:12:53:F2:C9")
    }
}
