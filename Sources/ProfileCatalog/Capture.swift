import Foundation
import VitalModel

/// A recorded conversation with a device, in the text format of `*.capture` files beside a profile.
///
/// ```
/// # Comments start with '#'. Say where the bytes come from.
/// @received-at 2024-06-23T14:40:00+07:00   hub time of the first line (default 2025-01-01T08:00:00+07:00)
/// @device usb 0C45:7406                    or: @device bluetooth 00:00:5E:00:53:01
/// > AA                                     bytes the host sends (replay checks the engine sends them)
/// < 55                                     bytes the device sends
/// < 2A35: 16 7C 00 56 00 …                 a Bluetooth value, with its characteristic
/// @wait 1000                               time passes (milliseconds)
/// @timeout                                 the device stays silent until the engine's timeout
/// ```
public struct Capture: Sendable {
    public enum Line: Sendable, Hashable {
        case fromDevice([UInt8], channel: String?)
        case toDevice([UInt8], channel: String?)
        case wait(milliseconds: Int)
        case timeout
    }

    public struct Entry: Sendable, Hashable {
        public var line: Line
        public var lineNumber: Int
    }

    public var file: String
    public var entries: [Entry]
    public var receivedAt: HubTimestamp
    public var device: DeviceIdentity?

    public static let defaultReceivedAt = HubTimestamp(iso8601: "2025-01-01T08:00:00+07:00")!

    public static func load(file: String) throws(ProfileError) -> Capture {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw ProfileError(file: file, location: nil, field: "", problem: "cannot read the capture", fix: "check the path")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ProfileError(file: file, location: nil, field: "", problem: "the capture is not UTF-8 text", fix: "save it as UTF-8 text")
        }
        return try parse(text, file: file)
    }

    public static func parse(_ text: String, file: String) throws(ProfileError) -> Capture {
        var capture = Capture(file: file, entries: [], receivedAt: defaultReceivedAt, device: nil)
        var text = Substring(text)
        if text.unicodeScalars.first == "\u{FEFF}" { text = Substring(text.unicodeScalars.dropFirst()) }
        // "\r\n" is a single Character, so splitting on "\n" alone would keep a CRLF file on one line.
        for (index, rawLine) in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }).enumerated() {
            let number = index + 1
            let line = rawLine.trimmingCharacters(in: .whitespaces.union(.init(charactersIn: "\r")))
            if line.isEmpty || line.hasPrefix("#") { continue }
            func fail(_ problem: String, _ fix: String) -> ProfileError {
                ProfileError(file: file, location: SourceLocation(line: number, column: 1), field: "", problem: problem, fix: fix)
            }
            if line.hasPrefix("@") {
                let words = line.split(separator: " ", maxSplits: 2).map(String.init)
                switch words[0] {
                case "@received-at":
                    guard words.count == 2, let stamp = HubTimestamp(iso8601: words[1]) else {
                        throw fail("@received-at needs a time with offset", "write e.g. @received-at 2024-06-23T14:40:00+07:00")
                    }
                    capture.receivedAt = stamp
                case "@device":
                    guard words.count == 3, let device = parseDevice(words[1], words[2]) else {
                        throw fail("@device needs `usb VVVV:PPPP[:serial]` or `bluetooth AA:BB:CC:DD:EE:FF`", "correct the line")
                    }
                    capture.device = device
                case "@wait":
                    guard words.count == 2, let ms = Int(words[1]), (0...86_400_000).contains(ms) else {
                        throw fail("@wait needs milliseconds", "write e.g. @wait 1000")
                    }
                    capture.entries.append(Entry(line: .wait(milliseconds: ms), lineNumber: number))
                case "@timeout":
                    guard words.count == 1 else {
                        throw fail("@timeout takes no value: the engine waits as long as its profile says", "write @timeout alone, or @wait MS for a pause")
                    }
                    capture.entries.append(Entry(line: .timeout, lineNumber: number))
                default:
                    throw fail("unknown directive \(words[0])", "use @received-at, @device, @wait or @timeout")
                }
                continue
            }
            guard let direction = line.first, direction == "<" || direction == ">" else {
                throw fail("a line must start with '<' (from the device), '>' (to the device), '@' or '#'", "prefix the bytes with '<' or '>'")
            }
            var body = line.dropFirst().trimmingCharacters(in: .whitespaces)
            var channel: String?
            // A channel is a UUID before a colon: written with 0x or dashes, or followed by a space or the
            // end of the line, so that "AABB:CC" stays bytes (hex may be separated by colons).
            if let colon = body.firstIndex(of: ":"), body[..<colon].count >= 4, !body[..<colon].contains(" "),
               body[..<colon].lowercased().hasPrefix("0x") || body[..<colon].contains("-")
                || body.index(after: colon) == body.endIndex || body[body.index(after: colon)] == " " {
                let name = String(body[..<colon])
                guard let uuid = normalizeUUID(name) else { throw fail("\(name) is not a characteristic UUID", "write e.g. `< 2A35: 16 7C 00`") }
                channel = uuid
                body = body[body.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
            guard let bytes = parseHexBytes(body) else {
                throw fail("\"\(body)\" is not hex bytes", "write pairs of hex digits separated by spaces")
            }
            capture.entries.append(Entry(line: direction == "<" ? .fromDevice(bytes, channel: channel) : .toDevice(bytes, channel: channel),
                                         lineNumber: number))
        }
        guard capture.entries.contains(where: { if case .fromDevice = $0.line { true } else { false } }) else {
            throw ProfileError(file: file, location: nil, field: "", problem: "the capture has no bytes from the device", fix: "add lines starting with '<'")
        }
        return capture
    }

    static func parseDevice(_ kind: String, _ value: String) -> DeviceIdentity? {
        switch kind {
        case "usb":
            let parts = value.split(separator: ":", maxSplits: 2).map(String.init)
            guard parts.count >= 2, parts[0].count == 4, parts[1].count == 4,
                  let vendor = UInt16(parts[0], radix: 16), let product = UInt16(parts[1], radix: 16) else { return nil }
            return DeviceIdentity(usb: USBIdentity(vendorID: vendor, productID: product, serial: parts.count == 3 ? parts[2] : nil))
        case "bluetooth":
            return EUI48(value).map { DeviceIdentity(bluetoothAddress: $0) }
        default:
            return nil
        }
    }
}
