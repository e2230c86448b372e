import Foundation
import Testing
import ProfileCatalog
import DeviceSimulator
@testable import DeviceIO
#if canImport(Glibc)
import Glibc
#endif

/// SerialPort on a pseudo-terminal: what the kernel keeps of the settings, exclusivity, errors, bytes,
/// interrupts and hang-ups.
@Suite("serial port")
struct SerialPortTests {
    /// The terminal settings as another descriptor of the same node sees them.
    static func attributes(of path: String) throws -> termios {
        let descriptor = Glibc.open(path, O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC)
        guard descriptor >= 0 else { throw TestFailure("cannot open \(path): errno \(errno)") }
        defer { _ = Glibc.close(descriptor) }
        var attributes = termios()
        guard tcgetattr(descriptor, &attributes) == 0 else { throw TestFailure("tcgetattr: errno \(errno)") }
        return attributes
    }

    static let lineSettings: [SerialSettings] = [
        SerialSettings(baud: 9600, exclusive: false),
        SerialSettings(baud: 19200, dataBits: 7, parity: .even, stopBits: 1, flowControl: .rtsCts, exclusive: false),
        SerialSettings(baud: 115200, dataBits: 8, parity: .odd, stopBits: 2, flowControl: .xonXoff, exclusive: false),
        SerialSettings(baud: 1200, dataBits: 5, parity: .none, stopBits: 2, exclusive: false),
        SerialSettings(baud: 921600, dataBits: 6, parity: .odd, stopBits: 1, flowControl: .rtsCts, exclusive: false),
    ]

    @Test("the termios the port asks for carries the profile's rate, framing and flow control, raw", arguments: lineSettings)
    func attributesAskedFor(_ settings: SerialSettings) throws {
        var cooked = termios()
        cooked.c_lflag = tcflag_t(ICANON | ECHO | ISIG)
        cooked.c_oflag = tcflag_t(OPOST)
        cooked.c_iflag = tcflag_t(ICRNL | IXANY)
        var wanted = try SerialPort.attributes(for: settings, from: cooked, path: "/dev/ttyTEST")
        Self.expectRaw(wanted)
        #expect(cfgetispeed(&wanted) == SerialPort.speed(for: settings.baud))
        #expect(cfgetospeed(&wanted) == SerialPort.speed(for: settings.baud))
        #expect(wanted.c_cflag & tcflag_t(CSIZE) == [5: tcflag_t(CS5), 6: tcflag_t(CS6), 7: tcflag_t(CS7), 8: tcflag_t(CS8)][settings.dataBits])
        #expect((wanted.c_cflag & tcflag_t(PARENB) != 0) == (settings.parity != .none))
        #expect((wanted.c_cflag & tcflag_t(PARODD) != 0) == (settings.parity == .odd))
        #expect((wanted.c_iflag & tcflag_t(INPCK) != 0) == (settings.parity != .none))
        Self.expectStopAndFlow(wanted, settings)
        #expect(wanted.c_iflag & tcflag_t(ICRNL | IXANY) == 0)
    }

    @Test("the settings are applied as the kernel reports them back; a pseudo-terminal keeps 8N without complaint", arguments: lineSettings)
    func settingsApplied(_ settings: SerialSettings) throws {
        let terminal = try PseudoTerminal()
        let port = try SerialPort.open(path: terminal.slavePath, settings: settings)
        defer { port.close() }
        var applied = try Self.attributes(of: terminal.slavePath)

        #expect(port.isPseudoTerminal)
        #expect(cfgetispeed(&applied) == SerialPort.speed(for: settings.baud))
        #expect(cfgetospeed(&applied) == SerialPort.speed(for: settings.baud))
        // Linux frames no bits on a pty: it forces CS8 and clears PARENB whatever was asked (PARODD stays).
        #expect(applied.c_cflag & tcflag_t(CSIZE) == tcflag_t(CS8))
        #expect(applied.c_cflag & tcflag_t(PARENB) == 0)
        #expect((applied.c_cflag & tcflag_t(PARODD) != 0) == (settings.parity == .odd))
        #expect((applied.c_iflag & tcflag_t(INPCK) != 0) == (settings.parity != .none))
        Self.expectStopAndFlow(applied, settings)
        Self.expectRaw(applied)
        #expect(port.skippedLineControl == 0)
    }

    static func expectStopAndFlow(_ attributes: termios, _ settings: SerialSettings) {
        #expect((attributes.c_cflag & tcflag_t(CSTOPB) != 0) == (settings.stopBits == 2))
        #expect((attributes.c_cflag & tcflag_t(CRTSCTS) != 0) == (settings.flowControl == .rtsCts))
        #expect((attributes.c_iflag & tcflag_t(IXON) != 0) == (settings.flowControl == .xonXoff))
        #expect((attributes.c_iflag & tcflag_t(IXOFF) != 0) == (settings.flowControl == .xonXoff))
        #expect(attributes.c_cflag & tcflag_t(CLOCAL | CREAD) == tcflag_t(CLOCAL | CREAD))
    }

    /// No canonical lines, no echo, no signals, no output processing, reads never wait in the driver.
    static func expectRaw(_ attributes: termios) {
        #expect(attributes.c_lflag & tcflag_t(ICANON | ECHO | ISIG) == 0)
        #expect(attributes.c_oflag & tcflag_t(OPOST) == 0)
        withUnsafeBytes(of: attributes.c_cc) { cc in
            #expect(cc[Int(VMIN)] == 0)
            #expect(cc[Int(VTIME)] == 0)
        }
    }

    @Test("a driver that drops data bits or parity is caught; on a pseudo-terminal those two are not compared")
    func verificationCatchesDroppedSettings() throws {
        let settings = SerialSettings(baud: 19200, dataBits: 7, parity: .even, stopBits: 2, flowControl: .rtsCts)
        let wanted = try SerialPort.attributes(for: settings, from: termios(), path: "/dev/ttyTEST")
        // What a pty (or an adapter without 7E) keeps: CS8, no parity.
        var kept = wanted
        kept.c_cflag = kept.c_cflag & ~tcflag_t(CSIZE | PARENB) | tcflag_t(CS8)
        #expect(SerialPort.differences(wanted: wanted, applied: kept, settings: settings, ignoring: 0) == ["7 data bits", "parity even"])
        #expect(SerialPort.differences(wanted: wanted, applied: kept, settings: settings, ignoring: SerialPort.pseudoTerminalForcedFlags).isEmpty)
        // Stop bits, flow control and the rate are compared everywhere.
        var dropped = kept
        dropped.c_cflag &= ~(tcflag_t(CSTOPB) | tcflag_t(CRTSCTS))
        _ = cfsetospeed(&dropped, speed_t(B9600))
        #expect(SerialPort.differences(wanted: wanted, applied: dropped, settings: settings, ignoring: SerialPort.pseudoTerminalForcedFlags)
                == ["baud rate 19200", "2 stop bits", "flow control rts-cts"])
    }

    @Test("every rate a profile may name has a termios speed and is accepted", arguments: SerialSettings.baudRates)
    func everyBaudRate(_ baud: Int) throws {
        let terminal = try PseudoTerminal()
        let port = try SerialPort.open(path: terminal.slavePath, settings: SerialSettings(baud: baud, exclusive: false))
        defer { port.close() }
        var applied = try Self.attributes(of: terminal.slavePath)
        let speed = try #require(SerialPort.speed(for: baud))
        #expect(cfgetospeed(&applied) == speed)
    }

    @Test("a rate outside the standard list is refused with the list, before anything is changed")
    func nonStandardBaud() throws {
        let terminal = try PseudoTerminal()
        #expect {
            _ = try SerialPort.open(path: terminal.slavePath, settings: SerialSettings(baud: 12345, exclusive: false))
        } throws: { error in
            let error = error as? DeviceIOError
            return error?.path == terminal.slavePath && error?.description.contains("12345 baud is not a standard rate") == true
                && error?.description.contains("115200") == true
        }
    }

    @Test("DTR and RTS on a pseudo-terminal are counted as skipped, not failed")
    func lineControlSkippedOnPseudoTerminal() throws {
        let terminal = try PseudoTerminal()
        let port = try SerialPort.open(path: terminal.slavePath,
                                       settings: SerialSettings(baud: 9600, dtr: .on, rts: .pulse, pulseMilliseconds: 1, exclusive: false))
        defer { port.close() }
        #expect(port.skippedLineControl == 2)
        let onlyDTR = try SerialPort.open(path: terminal.slavePath, settings: SerialSettings(baud: 9600, dtr: .off, exclusive: false))
        defer { onlyDTR.close() }
        #expect(onlyDTR.skippedLineControl == 1)
    }

    @Test("an exclusive port makes a second open fail with a clear error, until it is closed")
    func exclusive() async throws {
        let terminal = try PseudoTerminal()
        let path = terminal.slavePath
        let first = try SerialPort.open(path: path, settings: SerialSettings(baud: 9600))

        // TIOCEXCL does not hold back a process with CAP_SYS_ADMIN (tests may run as root), so the second
        // opener runs on a thread of its own without it, as another program would.
        let second = await onThread("second-opener") { () -> Result<Void, TestFailure>? in
            guard Capabilities.dropSysAdminOnThisThread() else { return nil }
            do throws(DeviceIOError) {
                let port = try SerialPort.open(path: path, settings: SerialSettings(baud: 9600))
                port.close()
                return .failure(TestFailure("the second open succeeded"))
            } catch {
                guard error.code == EBUSY, error.operation == "open", error.path == path,
                      error.description.contains("another program has the port open"),
                      error.description.contains("Fix:") else {
                    return .failure(TestFailure("unexpected error: \(error)"))
                }
                return .success(())
            }
        }
        guard let attempt = try #require(second, "the second opener did not finish") else {
            Issue.record("cannot drop CAP_SYS_ADMIN on a thread (capset unavailable): the exclusive open cannot be checked here")
            first.close()
            return
        }
        try attempt.get()

        first.close()
        let afterClose = await onThread("third-opener") { () -> String? in
            guard Capabilities.dropSysAdminOnThisThread() else { return "capset unavailable" }
            do throws(DeviceIOError) {
                let port = try SerialPort.open(path: path, settings: SerialSettings(baud: 9600))
                port.close()
                return nil
            } catch {
                return "\(error)"
            }
        }
        #expect(afterClose == .some(nil), "closing the exclusive port must let the next program in")
    }

    @Test("a missing node gives an error naming the path and the fix")
    func missingNode() {
        let path = "/dev/vitalgate-test-no-such-tty"
        #expect {
            _ = try SerialPort.open(path: path, settings: SerialSettings(baud: 9600))
        } throws: { error in
            guard let error = error as? DeviceIOError else { return false }
            return error.operation == "open" && error.path == path && error.code == ENOENT && !error.isDisconnect
                && error.description.hasPrefix(path + ": open failed: ")
                && error.description.contains("Fix: check that the device is plugged in")
        }
    }

    @Test("a node that is not a terminal is named as not a serial port")
    func notATerminal() {
        #expect {
            _ = try SerialPort.open(path: "/dev/null", settings: SerialSettings(baud: 9600))
        } throws: { error in
            guard let error = error as? DeviceIOError else { return false }
            return error.path == "/dev/null" && error.code == ENOTTY && error.fix.contains("not a serial port")
        }
    }

    @Test("bytes pass both ways unchanged, and bytes from before the open are dropped")
    func roundTrip() async throws {
        let terminal = try PseudoTerminal()
        let master = terminal.masterDescriptor
        // Stale bytes waiting in the slave's queue before the port is opened.
        try writeMaster(master, [0xEE, 0xEE])
        _ = terminal.waitUntilDrained(timeout: .zero)
        let staleQueued = await onThread("stale") { () -> Bool in
            let end = ContinuousClock.now.advanced(by: .seconds(5))
            while terminal.unreadByteCount() != 2 && ContinuousClock.now < end { usleep(1000) }
            return terminal.unreadByteCount() == 2
        }
        try #require(staleQueued == true, "the stale bytes never reached the slave")

        let port = try SerialPort.open(path: terminal.slavePath, settings: SerialSettings(baud: 115200))
        defer { port.close() }
        let everyByte = (0...255).map { UInt8($0) }
        try port.write(everyByte)
        let fromHost = await onThread("master") { () -> Result<[UInt8], TestFailure> in
            var reader = MasterReader(master)
            do throws(TestFailure) { return .success(try reader.take(256)) } catch { return .failure(error) }
        }
        #expect(try #require(fromHost).get() == everyByte)

        try writeMaster(master, everyByte.reversed())
        let toHost = await onThread("host") { () -> Result<[UInt8], DeviceIOError> in
            var received: [UInt8] = []
            do throws(DeviceIOError) {
                while received.count < 256 {
                    guard case .bytes(let bytes) = try port.read(timeout: .seconds(10)) else { break }
                    received += bytes
                }
                return .success(received)
            } catch { return .failure(error) }
        }
        // The stale EE EE were flushed by the open: the first byte read is the first byte written after it.
        #expect(try #require(toHost).get() == everyByte.reversed())
    }

    @Test("a read waits for its timeout when nothing arrives")
    func readTimesOut() throws {
        let terminal = try PseudoTerminal()
        let port = try SerialPort.open(path: terminal.slavePath, settings: SerialSettings(baud: 9600))
        defer { port.close() }
        #expect(try port.read(timeout: .milliseconds(20)) == .timedOut)
        #expect(try port.read(timeout: .zero) == .timedOut)
    }

    @Test("interrupt() wakes a read blocked without a timeout")
    func interruptWakesBlockedRead() async throws {
        let terminal = try PseudoTerminal()
        let port = try SerialPort.open(path: terminal.slavePath, settings: SerialSettings(baud: 9600))
        defer { port.close() }
        let reader = Task { await onThread("blocked-read") { () -> Result<LinkInput, DeviceIOError> in
            do throws(DeviceIOError) { return .success(try port.read(timeout: nil)) } catch { return .failure(error) }
        } }
        // Give the read a moment to block (not needed for correctness: an interrupt before it counts too).
        try await Task.sleep(for: .milliseconds(100))
        port.interrupt()
        let result = try #require(await reader.value, "the blocked read was not woken")
        #expect(try result.get() == .interrupted)
        try writeMaster(terminal.masterDescriptor, [0x42])
        #expect(try port.read(timeout: .seconds(10)) == .bytes([0x42]))
    }

    @Test("interrupts before a read count once: that read returns .interrupted, the next one reads")
    func interruptIsIdempotent() throws {
        let terminal = try PseudoTerminal()
        let port = try SerialPort.open(path: terminal.slavePath, settings: SerialSettings(baud: 9600))
        defer { port.close() }
        port.interrupt()
        port.interrupt()
        port.interrupt()
        try writeMaster(terminal.masterDescriptor, [0x42])
        // Interrupts win over waiting input, so a stop is never delayed by a chatty device.
        #expect(try port.read(timeout: .seconds(10)) == .interrupted)
        #expect(try port.read(timeout: .seconds(10)) == .bytes([0x42]))
    }

    @Test("closing the port wakes a blocked read, and later calls fail clearly")
    func closeWakesBlockedRead() async throws {
        let terminal = try PseudoTerminal()
        let port = try SerialPort.open(path: terminal.slavePath, settings: SerialSettings(baud: 9600))
        let reader = Task { await onThread("blocked-read") { () -> Result<LinkInput, DeviceIOError> in
            do throws(DeviceIOError) { return .success(try port.read(timeout: nil)) } catch { return .failure(error) }
        } }
        try await Task.sleep(for: .milliseconds(100))
        port.close()
        port.close()
        _ = try #require(await reader.value, "close did not wake the blocked read")
        #expect {
            try port.write([1])
        } throws: { error in
            (error as? DeviceIOError)?.fix.contains("the port was closed") == true
        }
    }

    @Test("a hang-up (the master closed) ends a blocked read as a disconnect", arguments: [false, true])
    func hangUp(whileBlocked: Bool) async throws {
        var terminal: PseudoTerminal? = try PseudoTerminal()
        let path = try #require(terminal?.slavePath)
        let port = try SerialPort.open(path: path, settings: SerialSettings(baud: 9600))
        defer { port.close() }
        if !whileBlocked { terminal = nil }
        let reader = Task { await onThread("blocked-read") { () -> Result<LinkInput, DeviceIOError> in
            do throws(DeviceIOError) { return .success(try port.read(timeout: nil)) } catch { return .failure(error) }
        } }
        if whileBlocked {
            try await Task.sleep(for: .milliseconds(100))
            terminal = nil
        }
        let result = try #require(await reader.value, "the hang-up did not end the read")
        guard case .failure(let error) = result else { Issue.record("read returned \(result) after the hang-up"); return }
        #expect(error.isDisconnect)
        #expect(error.path == path)
        #expect(error.description.contains("disconnected"))
        #expect {
            try port.write([1])
        } throws: { error in
            (error as? DeviceIOError)?.isDisconnect == true
        }
    }

    @Test("DeviceLinks opens serial profiles as serial ports and refuses Bluetooth ones")
    func deviceLinks() throws {
        let terminal = try PseudoTerminal()
        let link = try DeviceLinks.open(path: terminal.slavePath, transport: .serial(SerialSettings(baud: 9600)))
        defer { link.close() }
        #expect(link is SerialPort)
        #expect {
            _ = try DeviceLinks.open(path: "/dev/null", transport: .rfcomm(RFCOMMSettings(channel: 1)))
        } throws: { error in
            (error as? DeviceIOError)?.fix.contains("issue #6") == true
        }
    }
}

/// Capabilities of the calling thread (Linux keeps them per thread).
enum Capabilities {
    private typealias Call = @convention(c) (UnsafeMutableRawPointer, UnsafeMutableRawPointer) -> Int32
    private static let sysAdmin: UInt32 = 21
    private static let version3: UInt32 = 0x2008_0522

    /// Removes CAP_SYS_ADMIN from this thread's effective set (nothing to do when it lacks it). Call only
    /// on a thread that ends afterwards. False when the C library's capget/capset cannot be used.
    static func dropSysAdminOnThisThread() -> Bool {
        // RTLD_DEFAULT: capget/capset are in the C library, without a header Swift imports.
        guard let getSymbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "capget"),
              let setSymbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "capset") else { return false }
        let capget = unsafeBitCast(getSymbol, to: Call.self)
        let capset = unsafeBitCast(setSymbol, to: Call.self)
        // struct __user_cap_header_struct { u32 version; int pid; } and two __user_cap_data_struct
        // { u32 effective, permitted, inheritable; } (version 3: 64 capabilities).
        var header: [UInt32] = [version3, 0]
        var data = [UInt32](repeating: 0, count: 6)
        guard header.withUnsafeMutableBytes({ h in data.withUnsafeMutableBytes { capget(h.baseAddress!, $0.baseAddress!) } }) == 0 else { return false }
        guard data[0] & (1 << sysAdmin) != 0 else { return true }
        data[0] &= ~(1 << sysAdmin)
        header = [version3, 0]
        return header.withUnsafeMutableBytes({ h in data.withUnsafeMutableBytes { capset(h.baseAddress!, $0.baseAddress!) } }) == 0
    }
}
