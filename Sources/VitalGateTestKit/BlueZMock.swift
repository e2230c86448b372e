import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A private D-Bus bus with python3-dbusmock's `bluez5` template on it, for BlueZ tests without a radio.
///
/// Three processes, each stopped by PID in ``stop()``: `dbus-daemon` (a temporary config: one Unix socket
/// in a temporary directory, everything allowed), `python3 -m dbusmock --template bluez5` (the system
/// Python, Debian's python3-dbusmock) and `scripts/bluez-mock/control`, a second client that runs the test's
/// Python snippets against the mock (see that script for the helpers in scope). The daemon and the mock run
/// under `timeout`, and the control script has an alarm, so nothing outlives `lifetime` even if the test
/// process dies.
///
/// Everything here blocks: call it from a dedicated thread (``onDedicatedThread(_:)``).
public final class BlueZMock: @unchecked Sendable {
    /// The bus address, for `BlueZCentral(busAddress:)` or `DBUS_SYSTEM_BUS_ADDRESS`.
    public let address: String
    public let daemonPID: Int32
    public let controlPID: Int32
    /// The running dbusmock's PID (a new one after ``restartBlueZ(restart:)``).
    public var mockPID: Int32 {
        lock.lock()
        defer { lock.unlock() }
        return processes[1].processIdentifier
    }
    /// The mock's log of method calls, and the daemon's output.
    public let directory: URL

    private var processes: [Process]
    private let lifetimeSeconds: String
    private let controlInput: FileHandle
    private let lines: LineReader
    private let lock = NSLock()
    private var stopped = false

    /// Starts the bus, the mock and the control client; fails with a fix when dbus-daemon or dbusmock is missing.
    public static func start(lifetime: Duration = .seconds(600)) throws(TestProcessError) -> BlueZMock {
        try requirePrerequisites()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vitalgate-bluez-\(UUID().uuidString)")
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw TestProcessError("cannot create \(directory.path): \(error)")
        }
        var started: [Process] = []
        func abandon() {
            for process in started.reversed() { Self.terminate(process) }
            try? FileManager.default.removeItem(at: directory)
        }
        do throws(TestProcessError) {
            let seconds = String(Int(lifetime.components.seconds) + 1)
            let address = "unix:path=" + directory.appendingPathComponent("bus").path
            let config = directory.appendingPathComponent("bus.conf")
            do {
                try Self.configuration(address: address).write(to: config, atomically: true, encoding: .utf8)
            } catch {
                throw TestProcessError("cannot write \(config.path): \(error)")
            }

            // dbus-daemon prints its address once it listens: that line is the ready signal.
            let daemonOutput = Pipe()
            let daemon = try launch("/usr/bin/timeout", ["--kill-after=5", seconds, "/usr/bin/dbus-daemon", "--config-file=\(config.path)",
                                                          "--nofork", "--print-address"],
                                    output: daemonOutput, log: directory.appendingPathComponent("dbus-daemon.log"))
            started.append(daemon)
            let daemonLines = LineReader(daemonOutput.fileHandleForReading)
            guard let printed = daemonLines.next(within: .seconds(20)) else {
                throw TestProcessError("dbus-daemon did not print its address within 20 s. Its output:\n"
                    + tail(directory.appendingPathComponent("dbus-daemon.log")))
            }
            guard printed.hasPrefix("unix:path=" + directory.appendingPathComponent("bus").path) else {
                throw TestProcessError("dbus-daemon listens at \(printed), not at \(address)")
            }

            let environment = Self.busEnvironment(address)
            started.append(try Self.launchMock(address: address, directory: directory, seconds: seconds))

            let controlOutput = Pipe()
            let controlInput = Pipe()
            _ = fcntl(controlInput.fileHandleForWriting.fileDescriptor, F_SETFD, FD_CLOEXEC)
            let control = try launch("/usr/bin/python3", [RepositoryPaths.root.appendingPathComponent("scripts/bluez-mock/control").path,
                                                          "--address", address, "--max-seconds", seconds],
                                     environment: environment, input: controlInput, output: controlOutput,
                                     log: directory.appendingPathComponent("control.log"))
            started.append(control)
            let controlLines = LineReader(controlOutput.fileHandleForReading)
            guard controlLines.next(within: .seconds(30)) != nil else {
                throw TestProcessError("the BlueZ mock's control client did not start within 30 s. Its output:\n"
                    + tail(directory.appendingPathComponent("control.log")))
            }
            let harness = BlueZMock(address: address, processes: started, directory: directory, lifetimeSeconds: seconds,
                                    controlInput: controlInput.fileHandleForWriting, lines: controlLines)
            let ready = try harness.run("result = wait_for_name('org.bluez', 30)")
            guard ready == "true" else {
                harness.stop()
                throw TestProcessError("dbusmock's bluez5 template did not claim org.bluez within 30 s. Its output:\n"
                    + tail(directory.appendingPathComponent("dbusmock.log")))
            }
            return harness
        } catch {
            abandon()
            throw error
        }
    }

    private init(address: String, processes: [Process], directory: URL, lifetimeSeconds: String, controlInput: FileHandle,
                 lines: LineReader) {
        self.address = address
        self.processes = processes
        self.lifetimeSeconds = lifetimeSeconds
        self.daemonPID = processes[0].processIdentifier
        self.controlPID = processes[2].processIdentifier
        self.directory = directory
        self.controlInput = controlInput
        self.lines = lines
    }

    deinit {
        stop()
    }

    /// Runs a Python snippet in the control client and returns its `result` variable as JSON text (`null`
    /// when unset). A D-Bus error or exception in the snippet is thrown with its name and text.
    @discardableResult
    public func run(_ code: String, timeout: Duration = .seconds(60)) throws(TestProcessError) -> String {
        lock.lock()
        defer { lock.unlock() }
        guard !stopped else { throw TestProcessError("the BlueZ mock was stopped") }
        let request: [String: String] = ["code": code]
        guard let data = try? JSONSerialization.data(withJSONObject: request) else {
            throw TestProcessError("cannot encode the snippet")
        }
        do {
            try controlInput.write(contentsOf: data + Data("\n".utf8))
        } catch {
            throw TestProcessError("the BlueZ mock's control client is gone: \(error)")
        }
        guard let line = lines.next(within: timeout) else {
            throw TestProcessError("the BlueZ mock's control client did not answer within \(timeout). Its log:\n"
                + tail(directory.appendingPathComponent("control.log")))
        }
        guard let answer = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
            throw TestProcessError("unreadable answer from the control client: \(line)")
        }
        guard answer["ok"] as? Bool == true else {
            throw TestProcessError("the mock snippet failed: \(answer["error"] ?? "?")\n\(answer["trace"] ?? "")")
        }
        let result = answer["result"] ?? NSNull()
        guard let text = try? JSONSerialization.data(withJSONObject: result, options: [.fragmentsAllowed, .sortedKeys, .withoutEscapingSlashes]) else {
            return "null"
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// Stops the control client, the mock and the bus (SIGTERM by PID, then SIGKILL after a grace period)
    /// and removes the temporary directory. Idempotent.
    public func stop() {
        lock.lock()
        let first = !stopped
        stopped = true
        lock.unlock()
        guard first else { return }
        try? controlInput.close()
        lock.lock()
        let all = processes
        lock.unlock()
        for process in all.reversed() { Self.terminate(process) }
        try? FileManager.default.removeItem(at: directory)
    }

    /// Plays bluetoothd stopping (SIGTERM to the mock's PID; org.bluez leaves the bus) and, with `restart`,
    /// starting again: a fresh mock with a new unique name and no adapter until the test adds one.
    public func restartBlueZ(restart: Bool = true) throws(TestProcessError) {
        lock.lock()
        let old = processes[1]
        lock.unlock()
        Self.terminate(old)
        try run(Self.waitForNoBlueZ)
        guard restart else { return }
        let fresh = try Self.launchMock(address: address, directory: directory, seconds: lifetimeSeconds)
        lock.lock()
        processes[1] = fresh
        lock.unlock()
        guard try run("result = wait_for_name('org.bluez', 30)") == "true" else {
            throw TestProcessError("the restarted dbusmock did not claim org.bluez within 30 s. Its output:\n"
                + tail(directory.appendingPathComponent("dbusmock.log")))
        }
    }

    private static let waitForNoBlueZ = """
        import time
        daemon = bus.get_object('org.freedesktop.DBus', '/org/freedesktop/DBus', introspect=False)
        deadline = time.monotonic() + 30
        while daemon.NameHasOwner('org.bluez', dbus_interface='org.freedesktop.DBus') and time.monotonic() < deadline:
            time.sleep(0.02)
        """

    // MARK: Helpers

    private static func busEnvironment(_ address: String) -> [String: String] {
        var environment = ProcessInfo.processInfo.environment
        environment["DBUS_SYSTEM_BUS_ADDRESS"] = address
        environment["DBUS_SESSION_BUS_ADDRESS"] = address
        return environment
    }

    private static func launchMock(address: String, directory: URL, seconds: String) throws(TestProcessError) -> Process {
        try launch("/usr/bin/timeout", ["--kill-after=5", seconds, "/usr/bin/python3", "-m", "dbusmock", "--template", "bluez5",
                                        "--logfile", directory.appendingPathComponent("dbusmock-calls.log").path],
                   environment: busEnvironment(address), log: directory.appendingPathComponent("dbusmock.log"))
    }

    /// Checked once per test process (a probe is one more child process, and tests start many mocks).
    private static let prerequisitesChecked = Mutex(false)

    private static func requirePrerequisites() throws(TestProcessError) {
        if prerequisitesChecked.withLock({ $0 }) { return }
        try probePrerequisites()
        prerequisitesChecked.withLock { $0 = true }
    }

    private static func probePrerequisites() throws(TestProcessError) {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/dbus-daemon") else {
            throw TestProcessError("/usr/bin/dbus-daemon is missing. Fix: run scripts/install-deps (installs the dbus package)")
        }
        let probe = try ProcessRunner.run("/usr/bin/python3", ["-c", "import dbus, dbusmock.templates.bluez5"], timeout: .seconds(60))
        guard probe.status == 0 else {
            throw TestProcessError("the system Python cannot import dbusmock: \(probe.standardError). "
                + "Fix: run scripts/install-deps (installs python3-dbusmock)")
        }
    }

    private static func configuration(address: String) -> String {
        """
        <!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
         "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
        <busconfig>
          <type>session</type>
          <listen>\(address)</listen>
          <auth>EXTERNAL</auth>
          <policy context="default">
            <allow send_destination="*" eavesdrop="true"/>
            <allow eavesdrop="true"/>
            <allow own="*"/>
          </policy>
        </busconfig>
        """
    }

    private static func launch(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                               input: Pipe? = nil, output: Pipe? = nil, log: URL) throws(TestProcessError) -> Process {
        guard FileManager.default.createFile(atPath: log.path, contents: nil), let logHandle = FileHandle(forWritingAtPath: log.path) else {
            throw TestProcessError("cannot create \(log.path)")
        }
        defer { try? logHandle.close() }
        // The test runner's threads block SIGTERM and a child inherits the mask: without this trampoline the
        // daemon and the mock would not die of the SIGTERM that stops them. It also undoes Python's own
        // SIG_IGN for SIGPIPE, which exec would keep.
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = ["-c", Self.trampoline, executable] + arguments
        if let environment { process.environment = environment }
        process.standardInput = input ?? FileHandle.nullDevice
        process.standardOutput = output ?? logHandle
        process.standardError = logHandle
        do {
            try process.run()
        } catch {
            throw TestProcessError("cannot start \(executable) \(arguments.joined(separator: " ")): \(error)")
        }
        if let input { try? input.fileHandleForReading.close() }
        if let output { try? output.fileHandleForWriting.close() }
        return process
    }

    /// Resets signal dispositions and the mask, then execs `argv[1:]`.
    private static let trampoline = """
        import os, signal, sys
        for number in (signal.SIGPIPE, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(number, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        os.execv(sys.argv[1], sys.argv[1:])
        """

    private static func terminate(_ process: Process) {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGTERM)
        let deadline = ContinuousClock.now + .seconds(10)
        while process.isRunning && ContinuousClock.now < deadline { usleep(10_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }
}

private func tail(_ url: URL) -> String {
    BackgroundProcess.tail(of: url.path)
}

/// Lines from a pipe, read by a thread of its own so a reader can wait with a timeout.
private final class LineReader: @unchecked Sendable {
    private let state = Mutex<(lines: [String], partial: [UInt8], ended: Bool)>(([], [], false))
    private let available = DispatchSemaphore(value: 0)

    init(_ handle: FileHandle) {
        let thread = Thread { [self] in
            while true {
                let data = handle.availableData
                if data.isEmpty { break }
                let complete = state.withLock { state -> Int in
                    state.partial += data
                    var count = 0
                    while let newline = state.partial.firstIndex(of: 10) {
                        state.lines.append(String(decoding: state.partial[..<newline], as: UTF8.self))
                        state.partial.removeSubrange(...newline)
                        count += 1
                    }
                    return count
                }
                for _ in 0..<complete { available.signal() }
            }
            state.withLock { $0.ended = true }
            available.signal()
            try? handle.close()
        }
        thread.name = "VitalGateTestKit.lines"
        thread.start()
    }

    /// The next line, or nil when none came within `limit` or the pipe ended.
    func next(within limit: Duration) -> String? {
        let deadline = DispatchTime.now() + limit.timeInterval
        while true {
            if let line = state.withLock({ $0.lines.isEmpty ? nil : $0.lines.removeFirst() }) { return line }
            if state.withLock({ $0.ended }) { return nil }
            if available.wait(timeout: deadline) == .timedOut {
                return state.withLock { $0.lines.isEmpty ? nil : $0.lines.removeFirst() }
            }
        }
    }
}
