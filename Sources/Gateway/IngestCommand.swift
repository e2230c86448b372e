import Foundation
import VitalModel
#if canImport(Glibc)
import Glibc
#endif

/// `vitalgate ingest`: hands readings (the JSON lines `vitalgate decode` prints) to the running daemon, which
/// acknowledges each batch only after it is on disk. For readings decoded elsewhere, and for tests.
enum IngestCommand {
    static let usage = """
        Usage: vitalgate ingest [FILE|-] [--patient SPEC] [--socket PATH | --config FILE]

        Sends readings, one JSON object per line as `vitalgate decode` prints them, to the running
        vitalgated. They are stored durably before this command reports them; the daemon uploads them.

        Options:
          --patient SPEC      the citizen they belong to: cccd:<12 digits>, bhxh:<10 digits> or SYSTEM|VALUE
                              (default: the household and visit rules decide, as for a device's readings;
                              what they cannot attribute is held as unassigned)
          --socket PATH       the daemon's ingest socket (default: from --config)
          --config FILE       the daemon's configuration (default /etc/vitalgate/config.json)
        """

    static let batchSize = 100

    static func run(_ rawArguments: [String], input: () -> String?) -> CommandResult {
        if rawArguments.contains("--help") { return CommandResult(stdout: usage + "\n") }
        do {
            let arguments = try Arguments(rawArguments, flags: [], options: ["patient", "socket", "config"], command: "ingest")
            guard arguments.operands.count <= 1 else { throw UsageError("give one FILE or -") }
            let configuration: DaemonConfiguration? = arguments.value("socket") == nil || arguments.value("config") != nil
                ? try loadConfiguration(arguments.value("config") ?? "/etc/vitalgate/config.json") : nil
            let socketPath = arguments.value("socket") ?? configuration!.ingestSocket
            var patient: JSONValue = .null
            if let spec = arguments.value("patient") {
                do { _ = try (configuration?.identifierSystems ?? .vietnam).parse(spec) } catch { throw UsageError("--patient: \(error)") }
                patient = .string(spec)
            }
            var lines: [String] = []
            if let file = arguments.operands.first, file != "-" {
                guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                    throw UsageError("cannot read \(file). Fix: check the path")
                }
                lines = text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).map(String.init)
            } else {
                while let line = input() { lines.append(line) }
            }
            var entries: [JSONValue] = []
            for (number, line) in lines.enumerated() where !line.trimmingCharacters(in: .whitespaces).isEmpty {
                do { entries.append(["reading": try JSONValue.parse(line), "patient": patient]) } catch {
                    throw UsageError("line \(number + 1): not JSON (\(error))")
                }
            }
            let connection = try IngestConnection(path: socketPath)
            var stored = 0, duplicates = 0
            var start = 0
            while start < entries.count {
                let batch = Array(entries[start..<min(entries.count, start + batchSize)])
                let answer = try connection.request(["readings": .array(batch)])
                guard case .bool(true)? = answer["ok"], case .array(let results)? = answer["results"] else {
                    let reason: String = if case .string(let text)? = answer["error"] { text } else { "no reason given" }
                    return CommandResult(stdout: summary(stored, duplicates),
                                         stderr: "vitalgate ingest: the daemon refused readings \(start + 1)-\(start + batch.count): \(reason)\n",
                                         exitCode: 1)
                }
                for result in results { if case .bool(true)? = result["duplicate"] { duplicates += 1 } else { stored += 1 } }
                start += batch.count
            }
            return CommandResult(stdout: summary(stored, duplicates))
        } catch let error as UsageError {
            return CommandResult(stderr: "vitalgate ingest: \(error)\n", exitCode: 2)
        } catch {
            return CommandResult(stderr: "vitalgate ingest: \(error)\n", exitCode: 1)
        }
    }

    static func summary(_ stored: Int, _ duplicates: Int) -> String {
        "stored \(stored) reading(s)" + (duplicates > 0 ? ", \(duplicates) already stored" : "") + "\n"
    }

    static func loadConfiguration(_ file: String) throws(UsageError) -> DaemonConfiguration {
        do { return try DaemonConfiguration.load(file) } catch { throw UsageError("\(error)") }
    }
}

/// A client connection to the daemon's ingest socket.
final class IngestConnection {
    struct Failure: Error, CustomStringConvertible { let description: String }

    private let fd: Int32
    private var reader: UnixSocket.LineReader

    init(path: String) throws(Failure) {
        guard let (address, length) = UnixSocket.address(path) else {
            throw Failure(description: "the socket path \(path) is too long for a Unix socket")
        }
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "cannot create a socket: \(String(cString: strerror(errno)))") }
        reader = UnixSocket.LineReader(fd: fd, maximumBytes: 64 << 20)
        guard UnixSocket.withSockaddr(address, { connect(fd, $0, length) }) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw Failure(description: "cannot reach vitalgated at \(path): \(reason). Fix: start the service (systemctl start vitalgated)")
        }
    }

    deinit { close(fd) }

    /// Sends one request line and waits for its answer line.
    func request(_ message: JSONValue) throws(Failure) -> JSONValue {
        guard UnixSocket.sendAll(Array((message.serialized() + "\n").utf8), to: fd) else {
            throw Failure(description: "the daemon closed the connection while sending")
        }
        switch reader.next() {
        case .line(let line):
            do { return try JSONValue.parse(bytes: line) } catch {
                throw Failure(description: "the daemon's answer is not JSON: \(error)")
            }
        case .closed, .tooLong:
            throw Failure(description: "the daemon closed the connection before answering; the readings may not be stored, send them again")
        }
    }
}
