import Foundation

/// One finding of the validator.
public struct ValidationIssue: Decodable, Sendable, CustomStringConvertible {
    public let severity: String
    public let path: String?
    public let rule: String?
    public let message: String

    public var description: String { "\(severity) \(rule ?? "-") at \(path ?? "-"): \(message)" }
}

/// The validator's verdict on one resource or Bundle.
public struct ValidationResult: Decodable, Sendable {
    public let valid: Bool
    public let issues: [ValidationIssue]

    public var errors: [ValidationIssue] { issues.filter { $0.severity == "error" } }
}

/// Client of the independent FHIR validator (`scripts/fhir-validator`, Python, HL7 R4 core package and the
/// R4 vital-signs profiles). One `--serve` process is started on first use and kept for the test run.
public final class FHIRValidator: @unchecked Sendable {
    public struct Unavailable: Error, CustomStringConvertible {
        public let description: String
    }

    // The process and its buffer are touched only while `lock` is held.
    private let lock = NSLock()
    private let process: Process
    private let toValidator: FileHandle
    private let fromValidator: FileHandle
    private var buffer = Data()

    nonisolated(unsafe) private static var sharedInstance: FHIRValidator?
    private static let sharedLock = NSLock()

    /// The validator shared by all tests of this process.
    public static func shared() throws -> FHIRValidator {
        sharedLock.lock()
        defer { sharedLock.unlock() }
        if let sharedInstance { return sharedInstance }
        let validator = try FHIRValidator()
        sharedInstance = validator
        return validator
    }

    init() throws {
        let python: String
        do {
            python = try ProcessRunner.requirePython()
        } catch {
            throw Unavailable(description: "the FHIR validator cannot start: \(error)")
        }
        let script = ProcessRunner.script("scripts/fhir-validator/vitalgate_fhir_validator.py")
        process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [script, "--serve"]
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.standardError
        try process.run()
        toValidator = input.fileHandleForWriting
        fromValidator = output.fileHandleForReading
    }

    deinit {
        try? toValidator.close()
        process.waitUntilExit()
    }

    /// Validates one resource or Bundle given as JSON text.
    public func validate(_ json: String) throws -> ValidationResult {
        precondition(!json.contains("\n"), "send compact JSON: the validator reads one document per line")
        lock.lock()
        defer { lock.unlock() }
        try toValidator.write(contentsOf: Data((json + "\n").utf8))
        while true {
            if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = buffer[buffer.startIndex..<newline]
                buffer.removeSubrange(buffer.startIndex...newline)
                return try JSONDecoder().decode(ValidationResult.self, from: Data(line))
            }
            let chunk = fromValidator.availableData
            guard !chunk.isEmpty else {
                throw Unavailable(description: "the FHIR validator exited (status \(process.isRunning ? -1 : process.terminationStatus)); see its stderr above")
            }
            buffer.append(chunk)
        }
    }
}
