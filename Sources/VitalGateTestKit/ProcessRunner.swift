import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Why a test helper process could not do its job, with what to do about it.
public struct TestProcessError: Error, Sendable, CustomStringConvertible {
    public let description: String

    public init(_ description: String) {
        self.description = description
    }
}

/// What a finished helper process left behind.
public struct ProcessOutput: Sendable {
    public var status: Int32
    public var standardOutput: [UInt8]
    public var standardError: String
}

/// Runs helper programs (the repository's Python scripts) with Foundation's `Process`.
///
/// Everything here blocks the calling thread: call it from a dedicated thread, for example through
/// ``onDedicatedThread(_:)``, not directly from the Swift concurrency pool.
public enum ProcessRunner {
    /// The Python of the repository's `.venv` (or `$VITALGATE_PYTHON`), where `scripts/install-deps` puts
    /// sekmet-fhir and the FHIR validator.
    public static var python: String {
        ProcessInfo.processInfo.environment["VITALGATE_PYTHON"]
            ?? RepositoryPaths.root.appendingPathComponent(".venv/bin/python").path
    }

    /// A repository script's absolute path, such as `scripts/fhir-server/query`.
    public static func script(_ relative: String) -> String {
        RepositoryPaths.root.appendingPathComponent(relative).path
    }

    /// Fails with a fix when the venv's Python is missing.
    static func requirePython() throws(TestProcessError) -> String {
        let python = python
        guard FileManager.default.isExecutableFile(atPath: python) else {
            throw TestProcessError("the test Python \(python) is missing. Fix: run scripts/install-deps "
                + "(creates .venv with sekmet-fhir and the FHIR validator)")
        }
        return python
    }

    /// Runs `executable arguments` to completion, feeding `input` on stdin. Output goes through files, so
    /// a large reply cannot fill a pipe and stall the child. The child is killed after `timeout`.
    /// `currentDirectory` (default: this process's) is where relative paths in `arguments` resolve.
    public static func run(_ executable: String, _ arguments: [String], input: [UInt8] = [],
                           currentDirectory: String? = nil,
                           timeout: Duration = .seconds(120)) throws(TestProcessError) -> ProcessOutput {
        let scratch = FileManager.default.temporaryDirectory
            .appendingPathComponent("vitalgate-run-\(UUID().uuidString)")
        do {
            try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        } catch {
            throw TestProcessError("cannot create \(scratch.path): \(error)")
        }
        defer { try? FileManager.default.removeItem(at: scratch) }
        let inputPath = scratch.appendingPathComponent("stdin").path
        let outputPath = scratch.appendingPathComponent("stdout").path
        let errorPath = scratch.appendingPathComponent("stderr").path
        guard FileManager.default.createFile(atPath: inputPath, contents: Data(input)),
              FileManager.default.createFile(atPath: outputPath, contents: nil),
              FileManager.default.createFile(atPath: errorPath, contents: nil),
              let stdin = FileHandle(forReadingAtPath: inputPath),
              let stdout = FileHandle(forWritingAtPath: outputPath),
              let stderr = FileHandle(forWritingAtPath: errorPath) else {
            throw TestProcessError("cannot create the scratch files for \(executable) in \(scratch.path)")
        }
        defer {
            try? stdin.close()
            try? stdout.close()
            try? stderr.close()
        }

        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let currentDirectory { process.currentDirectoryURL = URL(fileURLWithPath: currentDirectory) }
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        let finished = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in finished.signal() }
        do {
            try process.run()
        } catch {
            throw TestProcessError("cannot start \(executable): \(error)")
        }
        if finished.wait(timeout: .now() + timeout.timeInterval) == .timedOut {
            kill(process.processIdentifier, SIGKILL)
            finished.wait()
            throw TestProcessError("\(URL(fileURLWithPath: arguments.first ?? executable).lastPathComponent) "
                + "did not finish within \(timeout); it was killed")
        }
        let output = (try? Data(contentsOf: URL(fileURLWithPath: outputPath))) ?? Data()
        let errors = (try? String(contentsOfFile: errorPath, encoding: .utf8)) ?? ""
        return ProcessOutput(status: process.terminationStatus, standardOutput: [UInt8](output),
                             standardError: errors)
    }
}

/// Runs blocking work (process launches, waits) on a thread of its own and awaits its result, so async
/// tests keep the Swift concurrency pool free.
public func onDedicatedThread<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread {
            do {
                continuation.resume(returning: try work())
            } catch {
                continuation.resume(throwing: error)
            }
        }
        thread.name = "VitalGateTestKit.blocking"
        thread.start()
    }
}

/// A long-running helper (FHIR server, fault proxy) started in the background, found ready through the
/// `ready URL` line it writes to a file, and stopped by PID.
///
/// Its stdin is a pipe this object holds: the helpers are started with `--stop-on-stdin-eof`, so they
/// also stop when the test process dies without calling ``stop(grace:)``.
///
/// Start-up and ``stop(grace:)`` block (they wait for the ready line and for the exit): call them from a
/// dedicated thread, for example through ``onDedicatedThread(_:)``.
public final class BackgroundProcess: @unchecked Sendable {
    public let pid: Int32
    /// The URL of the helper's `ready URL` line.
    public let readyURL: String
    /// The helper's stdout and stderr.
    public let logPath: String
    // `process` and `stdinWriter` are touched only while `lock` is held.
    private let lock = NSLock()
    private var process: Process?
    private var stdinWriter: FileHandle?

    /// Starts `python script arguments --ready-file F --stop-on-stdin-eof` with ``ProcessRunner/python``,
    /// stdout and stderr in `workDirectory/name.log`, and waits at most `readyTimeout` for the ready line.
    public init(script: String, arguments: [String], workDirectory: URL, readyTimeout: Duration,
                name: String) throws(TestProcessError) {
        let python = try ProcessRunner.requirePython()
        let readyPath = workDirectory.appendingPathComponent("\(name).ready").path
        logPath = workDirectory.appendingPathComponent("\(name).log").path
        try? FileManager.default.removeItem(atPath: readyPath)
        guard FileManager.default.createFile(atPath: logPath, contents: nil),
              let log = FileHandle(forWritingAtPath: logPath) else {
            throw TestProcessError("cannot create \(logPath) for the \(name)'s output")
        }
        defer { try? log.close() }
        let input = Pipe()
        // The write end must not leak into later children, or their lifetime would hold this one open.
        _ = fcntl(input.fileHandleForWriting.fileDescriptor, F_SETFD, FD_CLOEXEC)

        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [script] + arguments + ["--ready-file", readyPath, "--stop-on-stdin-eof"]
        process.standardInput = input
        process.standardOutput = log
        process.standardError = log
        do {
            try process.run()
        } catch {
            throw TestProcessError("cannot start the \(name) (\(script)): \(error)")
        }
        try? input.fileHandleForReading.close()
        pid = process.processIdentifier
        self.process = process
        stdinWriter = input.fileHandleForWriting

        let deadline = ContinuousClock.now + readyTimeout
        var ready: String?
        while ready == nil {
            if let text = try? String(contentsOfFile: readyPath, encoding: .utf8),
               let line = text.split(separator: "\n").first, line.hasPrefix("ready ") {
                ready = String(line.dropFirst("ready ".count))
                break
            }
            if !process.isRunning {
                let status = process.terminationStatus
                stdinWriter = nil
                throw TestProcessError("the \(name) exited with status \(status) before it was ready. "
                    + "Its output:\n\(BackgroundProcess.tail(of: logPath))\nFix: see the message above; "
                    + "run scripts/install-deps if a Python package is missing")
            }
            if ContinuousClock.now >= deadline {
                kill(pid, SIGKILL)
                process.waitUntilExit()
                stdinWriter = nil
                throw TestProcessError("the \(name) was not ready within \(readyTimeout) and was killed. "
                    + "Its output:\n\(BackgroundProcess.tail(of: logPath))")
            }
            usleep(20_000)
        }
        readyURL = ready ?? ""
    }

    deinit {
        stop()
    }

    /// Whether the process is still running.
    public var isRunning: Bool {
        lock.lock()
        defer { lock.unlock() }
        return process?.isRunning ?? false
    }

    /// SIGTERM, a bounded wait, then SIGKILL. Safe to call more than once.
    public func stop(grace: Duration = .seconds(15)) {
        lock.lock()
        let process = self.process
        self.process = nil
        let writer = stdinWriter
        stdinWriter = nil
        lock.unlock()
        try? writer?.close()
        guard let process else { return }
        if process.isRunning {
            kill(pid, SIGTERM)
            let deadline = ContinuousClock.now + grace
            while process.isRunning && ContinuousClock.now < deadline {
                usleep(10_000)
            }
            if process.isRunning {
                kill(pid, SIGKILL)
            }
        }
        process.waitUntilExit()
    }

    /// The last lines of a log, for error messages (the helpers never log request bodies).
    static func tail(of path: String, lines: Int = 30) -> String {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? "(no output)"
        return text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
    }
}

extension Duration {
    /// Seconds as a `TimeInterval`, for Dispatch timeouts.
    var timeInterval: TimeInterval {
        let parts = components
        return TimeInterval(parts.seconds) + TimeInterval(parts.attoseconds) / 1e18
    }
}
