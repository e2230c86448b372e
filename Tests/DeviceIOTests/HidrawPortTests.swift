import Foundation
import Testing
import ProfileCatalog
import DeviceSimulator
@testable import DeviceIO
#if canImport(Glibc)
import Glibc
#endif

/// HidrawPort on a pseudo-terminal standing in for a hidraw node, as umockdev and `vitalgate simulate`
/// provide one: report framing out, report reassembly in, feature reports skipped.
@Suite("hidraw port")
struct HidrawPortTests {
    /// Reads exactly `count` bytes the host wrote, on a dedicated thread.
    static func hostBytes(_ terminal: PseudoTerminal, _ count: Int) async throws -> [UInt8] {
        let master = terminal.masterDescriptor
        let result = await onThread("master") { () -> Result<[UInt8], TestFailure> in
            var reader = MasterReader(master)
            do throws(TestFailure) { return .success(try reader.take(count)) } catch { return .failure(error) }
        }
        return try #require(result).get()
    }

    @Test("an output report goes out as report id 0, the command, then padding to the report size")
    func unnumberedReport() async throws {
        let terminal = try PseudoTerminal()
        let port = try HidrawPort.open(path: terminal.slavePath, settings: HIDSettings(reportSize: 8, padding: 0xA5))
        defer { port.close() }
        #expect(port.isTerminal)
        try port.write([0x05, 0x45, 0x4E, 0x44])
        #expect(try await Self.hostBytes(terminal, 9) == [0x00, 0x05, 0x45, 0x4E, 0x44, 0xA5, 0xA5, 0xA5, 0xA5])
        // A full-size report needs no padding; an empty one is all padding.
        try port.write([1, 2, 3, 4, 5, 6, 7, 8])
        try port.write([])
        #expect(try await Self.hostBytes(terminal, 18) == [0, 1, 2, 3, 4, 5, 6, 7, 8] + [0] + [UInt8](repeating: 0xA5, count: 8))
    }

    @Test("a numbered report starts with the profile's report id")
    func numberedReport() async throws {
        let terminal = try PseudoTerminal()
        let port = try HidrawPort.open(path: terminal.slavePath, settings: HIDSettings(reportSize: 4, reportID: 0x21))
        defer { port.close() }
        try port.write([0x7F])
        #expect(try await Self.hostBytes(terminal, 5) == [0x21, 0x7F, 0x00, 0x00, 0x00])
    }

    @Test("a report longer than the report size is refused and nothing of it is written")
    func oversizedReport() async throws {
        let terminal = try PseudoTerminal()
        let port = try HidrawPort.open(path: terminal.slavePath, settings: HIDSettings(reportSize: 8))
        defer { port.close() }
        #expect {
            try port.write([UInt8](repeating: 0x11, count: 9))
        } throws: { error in
            guard let error = error as? DeviceIOError else { return false }
            return error.operation == "write" && error.fix.contains("reportSize is 8") && !error.isDisconnect
        }
        // The next thing the device sees is the next report, not a piece of the refused one.
        try port.write([0x22])
        #expect(try await Self.hostBytes(terminal, 9) == [0x00, 0x22, 0, 0, 0, 0, 0, 0, 0])
    }

    @Test("a stream split at odd points comes back as whole 8-byte reports, one per read")
    func reassembly() async throws {
        let terminal = try PseudoTerminal()
        let master = terminal.masterDescriptor
        let port = try HidrawPort.open(path: terminal.slavePath, settings: HIDSettings(reportSize: 8))
        defer { port.close() }
        let reports: [[UInt8]] = [
            [0x07, 0x4F, 0x4B, 0x00, 0x08, 0x04, 0x15, 0x10],
            [0x07, 0x0A, 0x2E, 0x00, 0x00, 0x81, 0x4E, 0x4D],
            [0x03, 0x00, 0x00, 0xAF, 0x00, 0x81, 0x4E, 0x4D],
        ]
        let stream = reports.flatMap { $0 }
        let result = await onThread("host") { () -> Result<[LinkInput], any Error> in
            var inputs: [LinkInput] = []
            do {
                // 5 bytes: no whole report yet, whether or not they have arrived when the wait ends.
                try writeMaster(master, Array(stream[0..<5]))
                inputs.append(try port.read(timeout: .milliseconds(100)))
                // 11 more (16): two whole reports, one per read.
                try writeMaster(master, Array(stream[5..<16]))
                inputs.append(try port.read(timeout: .seconds(10)))
                inputs.append(try port.read(timeout: .seconds(10)))
                // 1 byte of the third: not a report.
                try writeMaster(master, Array(stream[16..<17]))
                inputs.append(try port.read(timeout: .milliseconds(100)))
                try writeMaster(master, Array(stream[17...]))
                inputs.append(try port.read(timeout: .seconds(10)))
                return .success(inputs)
            } catch { return .failure(error) }
        }
        let inputs = try #require(result).get()
        #expect(inputs == [.timedOut, .bytes(reports[0]), .bytes(reports[1]), .timedOut, .bytes(reports[2])])
    }

    @Test("reports arriving together in one chunk are still delivered one per read")
    func severalReportsInOneChunk() async throws {
        let terminal = try PseudoTerminal()
        let port = try HidrawPort.open(path: terminal.slavePath, settings: HIDSettings(reportSize: 4))
        defer { port.close() }
        let stream = (0..<12).map { UInt8($0) }
        try writeMaster(terminal.masterDescriptor, stream)
        let result = await onThread("host") { () -> Result<[LinkInput], DeviceIOError> in
            do throws(DeviceIOError) {
                return .success(try (0..<3).map { _ throws(DeviceIOError) in try port.read(timeout: .seconds(10)) })
            } catch { return .failure(error) }
        }
        #expect(try #require(result).get() == [.bytes([0, 1, 2, 3]), .bytes([4, 5, 6, 7]), .bytes([8, 9, 10, 11])])
    }

    @Test("feature reports on a terminal are counted as skipped, not failed")
    func featureReportsSkipped() throws {
        let terminal = try PseudoTerminal()
        let port = try HidrawPort.open(path: terminal.slavePath, settings: HIDSettings(reportSize: 8, featureReports: [[0x74, 0xBC], [0x01, 0x01]]))
        defer { port.close() }
        #expect(port.skippedFeatureReports == 2)
        let plain = try HidrawPort.open(path: terminal.slavePath, settings: HIDSettings(reportSize: 8))
        defer { plain.close() }
        #expect(plain.skippedFeatureReports == 0)
    }

    @Test("HIDIOCSFEATURE is encoded as linux/hidraw.h defines it")
    func featureRequestNumber() {
        // _IOC(_IOC_WRITE|_IOC_READ, 'H', 0x06, 3) on x86-64 and arm64: dir 3 << 30, size 3 << 16, 'H' << 8, 6.
        #expect(HidrawPort.setFeatureRequest(length: 3) == 0xC003_4806)
        #expect(HidrawPort.setFeatureRequest(length: 65) == 0xC041_4806)
    }

    @Test("a node that is neither hidraw nor a terminal fails at the feature report, naming it")
    func notHidraw() {
        #expect {
            _ = try HidrawPort.open(path: "/dev/null", settings: HIDSettings(reportSize: 8, featureReports: [[0x74, 0xBC]]))
        } throws: { error in
            guard let error = error as? DeviceIOError else { return false }
            return error.operation == "HIDIOCSFEATURE" && error.code == ENOTTY && error.path == "/dev/null"
                && error.fix.contains("neither a hidraw device nor a terminal")
        }
    }

    @Test("a missing node gives an error naming the path and the fix")
    func missingNode() {
        let path = "/dev/vitalgate-test-no-such-hidraw"
        #expect {
            _ = try HidrawPort.open(path: path, settings: HIDSettings(reportSize: 8))
        } throws: { error in
            guard let error = error as? DeviceIOError else { return false }
            return error.operation == "open" && error.code == ENOENT && error.description.contains(path)
                && error.description.contains("Fix: check that the device is plugged in")
        }
    }

    @Test("a hang-up in the middle of a report is a disconnect, and the partial report is never delivered")
    func hangUpMidReport() async throws {
        var terminal: PseudoTerminal? = try PseudoTerminal()
        let path = try #require(terminal?.slavePath)
        let master = try #require(terminal?.masterDescriptor)
        let port = try HidrawPort.open(path: path, settings: HIDSettings(reportSize: 8))
        defer { port.close() }
        try writeMaster(master, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])
        #expect(try port.read(timeout: .seconds(10)) == .bytes([1, 2, 3, 4, 5, 6, 7, 8]))
        // Let the partial report's bytes reach the port before the hang-up.
        #expect(try port.read(timeout: .milliseconds(100)) == .timedOut)
        terminal = nil
        let result = await onThread("host") { () -> Result<LinkInput, DeviceIOError> in
            do throws(DeviceIOError) { return .success(try port.read(timeout: .seconds(30))) } catch { return .failure(error) }
        }
        guard case .failure(let error) = try #require(result) else { Issue.record("read returned \(String(describing: result)) after the hang-up"); return }
        #expect(error.isDisconnect)
    }

    @Test("DeviceLinks opens hidraw profiles as hidraw ports")
    func deviceLinks() throws {
        let terminal = try PseudoTerminal()
        let link = try DeviceLinks.open(path: terminal.slavePath, transport: .hidraw(HIDSettings(reportSize: 8, featureReports: [[0x74, 0xBC]])))
        defer { link.close() }
        let port = try #require(link as? HidrawPort)
        #expect(port.skippedFeatureReports == 1)
    }
}
