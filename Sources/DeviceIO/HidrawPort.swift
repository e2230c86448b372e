import Synchronization
import ProfileCatalog
#if canImport(Glibc)
import Glibc
#endif

/// A HID device through its Linux hidraw node (`/dev/hidraw0`), exchanging fixed-size reports as a
/// profile's `transport.hidraw` describes them.
///
/// Output reports go out with the report id byte first (0 for a device without numbered reports, as
/// hidraw requires) and padded to ``HIDSettings/reportSize``. Each `.bytes` from ``read(timeout:)`` is
/// exactly one input report without its report id.
///
/// A terminal may stand in for the hidraw node (umockdev, `vitalgate simulate`): it has no feature
/// reports (they are counted in ``skippedFeatureReports``) and delivers a byte stream, which is cut back
/// into `reportSize`-byte input reports.
public final class HidrawPort: DeviceLink {
    public let path: String
    /// The profile's report layout the port was opened with.
    public let settings: HIDSettings
    /// Feature reports that could not be sent because the node is a terminal standing in for hidraw (ENOTTY).
    public let skippedFeatureReports: Int
    /// Whether the node is a terminal standing in for a hidraw device.
    public let isTerminal: Bool
    let node: NodeDescriptor
    /// Bytes of a terminal's stream that do not make a whole report yet.
    private let partial = Mutex<[UInt8]>([])

    /// The largest report hidraw passes (the kernel's HID_MAX_BUFFER_SIZE).
    static let maximumReportSize = 16384

    private init(path: String, settings: HIDSettings, skippedFeatureReports: Int, isTerminal: Bool, node: NodeDescriptor) {
        self.path = path
        self.settings = settings
        self.skippedFeatureReports = skippedFeatureReports
        self.isTerminal = isTerminal
        self.node = node
    }

    deinit { node.close() }

    /// Opens `path` non-blocking and sends the profile's feature reports in order.
    public static func open(path: String, settings: HIDSettings) throws(DeviceIOError) -> HidrawPort {
        let profileFix = "correct the profile's transport.hidraw"
        guard settings.reportSize > 0, settings.reportSize < maximumReportSize else {
            throw DeviceIOError(operation: "open", path: path, fix: "a report size of \(settings.reportSize) bytes is not possible; \(profileFix)")
        }
        if let id = settings.reportID, !(0...255).contains(id) {
            throw DeviceIOError(operation: "open", path: path, fix: "report id \(id) does not fit in a byte; \(profileFix)")
        }
        let descriptor = Glibc.open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC)
        guard descriptor >= 0 else {
            let code = errno
            throw .system("open", path: path, code: code, fix: openFix(code, path: path))
        }
        let node = try NodeDescriptor(path: path, descriptor: descriptor)
        do throws(DeviceIOError) {
            let terminal = isatty(descriptor) == 1
            if terminal { try makeRaw(descriptor, path: path) }
            var skipped = 0
            for report in settings.featureReports {
                if try !sendFeatureReport(report, descriptor: descriptor, path: path, settings: settings, terminal: terminal) { skipped += 1 }
            }
            return HidrawPort(path: path, settings: settings, skippedFeatureReports: skipped, isTerminal: terminal, node: node)
        } catch {
            node.close()
            throw error
        }
    }

    /// Waits for one input report. On a terminal the stream is cut into `reportSize`-byte reports; bytes
    /// of an unfinished report wait for the next call.
    public func read(timeout: Duration?) throws(DeviceIOError) -> LinkInput {
        guard isTerminal else {
            let input = try node.read(timeout: timeout, capacity: Self.maximumReportSize)
            // Numbered reports start with their id; the engine sees the report without it.
            if case .bytes(let bytes) = input, settings.reportID != nil { return .bytes(Array(bytes.dropFirst())) }
            return input
        }
        let clock = ContinuousClock()
        let deadline = timeout.map { clock.now.advanced(by: $0) }
        while true {
            if let report = takeReport() { return .bytes(report) }
            let remaining = deadline.map { clock.now < $0 ? $0 - clock.now : .zero }
            let input: LinkInput
            do throws(DeviceIOError) {
                input = try node.read(timeout: remaining, capacity: 4096)
            } catch {
                // A report cut by the hang-up is never delivered.
                if error.isDisconnect { partial.withLock { $0 = [] } }
                throw error
            }
            switch input {
            case .bytes(let bytes): partial.withLock { $0 += bytes }
            case .timedOut, .interrupted: return input
            }
        }
    }

    /// Sends one output report: the report id byte, `report`, then padding up to `reportSize`.
    public func write(_ report: [UInt8]) throws(DeviceIOError) {
        guard report.count <= settings.reportSize else {
            throw DeviceIOError(operation: "write", path: path,
                                fix: "the engine produced a \(report.count)-byte report but the profile's reportSize is \(settings.reportSize); correct transport.hidraw.reportSize")
        }
        let framed = [UInt8(settings.reportID ?? 0)] + report + [UInt8](repeating: settings.padding, count: settings.reportSize - report.count)
        try node.write(framed, stalledFix: "the device is not taking output reports; unplug and replug it")
    }

    public func interrupt() { node.interrupt() }

    public func close() { node.close() }

    /// The first whole report of a terminal's stream, if one has arrived.
    private func takeReport() -> [UInt8]? {
        partial.withLock { buffer in
            guard buffer.count >= settings.reportSize else { return nil }
            defer { buffer.removeFirst(settings.reportSize) }
            return Array(buffer.prefix(settings.reportSize))
        }
    }

    // MARK: Opening

    static func openFix(_ code: Int32, path: String) -> String {
        switch code {
        case ENOENT, ENODEV, ENXIO:
            "check that the device is plugged in and that \(path) is its node (ls -l /dev/hidraw*)"
        case EACCES, EPERM:
            "give this user access to \(path): install the rules from `vitalgate profile udev-rules` and add the user to their group (hidraw nodes are root-only by default)"
        default:
            "check the device and its cable, then unplug and replug it"
        }
    }

    /// A terminal standing in for hidraw must pass every byte unchanged (no echo, no CR/LF translation).
    static func makeRaw(_ descriptor: Int32, path: String) throws(DeviceIOError) {
        var attributes = termios()
        guard tcgetattr(descriptor, &attributes) == 0 else {
            throw .system("tcgetattr", path: path, code: errno, fix: "check the terminal standing in for the device")
        }
        cfmakeraw(&attributes)
        withUnsafeMutableBytes(of: &attributes.c_cc) { cc in
            cc[Int(VMIN)] = 0
            cc[Int(VTIME)] = 0
        }
        guard tcsetattr(descriptor, TCSANOW, &attributes) == 0 else {
            throw .system("tcsetattr", path: path, code: errno, fix: "check the terminal standing in for the device")
        }
    }

    /// `HIDIOCSFEATURE(len)`: `_IOC(_IOC_READ | _IOC_WRITE, 'H', 0x06, len)` from linux/hidraw.h, which
    /// Swift cannot import because it is a function-like macro.
    static func setFeatureRequest(length: Int) -> UInt {
        let readWrite: UInt = 3, type = UInt(UInt8(ascii: "H")), number: UInt = 0x06
        return readWrite << 30 | UInt(length) << 16 | type << 8 | number
    }

    /// Sends one feature report; false when the node is a terminal, which has none (ENOTTY).
    static func sendFeatureReport(_ report: [UInt8], descriptor: Int32, path: String, settings: HIDSettings,
                                  terminal: Bool) throws(DeviceIOError) -> Bool {
        var buffer = [UInt8(settings.reportID ?? 0)] + report
        // The length travels in the ioctl number's 14-bit size field; a longer report would be another ioctl.
        guard buffer.count < 1 << 14 else {
            throw DeviceIOError(operation: "HIDIOCSFEATURE", path: path,
                                fix: "a feature report of \(report.count) bytes is longer than Linux hidraw can send; shorten transport.hidraw.featureReports")
        }
        let request = setFeatureRequest(length: buffer.count)
        let result = buffer.withUnsafeMutableBytes { ioctl(descriptor, request, $0.baseAddress!) }
        if result >= 0 { return true }
        let code = errno
        if code == ENOTTY && terminal { return false }
        let fix = switch code {
        case ENOTTY: "this node is neither a hidraw device nor a terminal standing in for one; check the device path"
        case EPIPE, EINVAL: "the device refused the feature report; check transport.hidraw.featureReports and reportID in the profile"
        default: "check the device and its cable, then unplug and replug it"
        }
        throw .system("HIDIOCSFEATURE", path: path, code: code, fix: fix)
    }
}
