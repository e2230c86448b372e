import ProfileCatalog
#if canImport(Glibc)
import Glibc
#endif

/// A serial port (`/dev/ttyUSB0`, `/dev/ttyACM0`, or a pseudo-terminal standing in for one) opened raw
/// with a profile's line settings.
///
/// ```swift
/// let port = try SerialPort.open(path: "/dev/ttyUSB0", settings: SerialSettings(baud: 19200, parity: .odd))
/// defer { port.close() }
/// if case .bytes(let bytes) = try port.read(timeout: .seconds(1)) { … }
/// ```
public final class SerialPort: DeviceLink {
    public let path: String
    /// The profile's line settings the port was opened with.
    public let settings: SerialSettings
    /// Modem-line settings (`dtr`, `rts`) that could not be applied because the node has no modem lines
    /// (a pseudo-terminal answers ENOTTY or EINVAL); one per line. Always 0 on a real serial adapter.
    public let skippedLineControl: Int
    /// Whether the node is a pseudo-terminal (a simulator standing in for the device). Linux frames no
    /// bits there: it keeps 8 data bits without parity whatever the profile says, and has no modem lines.
    public let isPseudoTerminal: Bool
    let node: NodeDescriptor

    private init(path: String, settings: SerialSettings, skippedLineControl: Int, isPseudoTerminal: Bool, node: NodeDescriptor) {
        self.path = path
        self.settings = settings
        self.skippedLineControl = skippedLineControl
        self.isPseudoTerminal = isPseudoTerminal
        self.node = node
    }

    deinit { node.close() }

    /// Opens `path` non-blocking, takes it exclusively when `settings.exclusive` (TIOCEXCL), applies the
    /// line settings raw and checks that they took, sets the modem lines, and drops bytes that arrived
    /// before the open. Blocks for `pulseMilliseconds` when a line is pulsed.
    public static func open(path: String, settings: SerialSettings) throws(DeviceIOError) -> SerialPort {
        let descriptor = Glibc.open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC)
        guard descriptor >= 0 else {
            let code = errno
            throw .system("open", path: path, code: code, fix: openFix(code, path: path))
        }
        let node = try NodeDescriptor(path: path, descriptor: descriptor)
        if settings.exclusive {
            guard ioctl(descriptor, UInt(TIOCEXCL)) == 0 else {
                let code = errno
                node.close()
                throw .system("TIOCEXCL", path: path, code: code,
                              fix: code == ENOTTY ? notTerminalFix : "set \"exclusive\": false in the profile's transport.serial if this node cannot be taken exclusively")
            }
            // Let the next opener in once this port is closed, even while another descriptor (a
            // simulator's) keeps the terminal itself open.
            node.onClose { _ = ioctl($0, UInt(TIOCNXCL)) }
        }
        do throws(DeviceIOError) {
            try configure(descriptor, path: path, settings: settings)
            let skipped = try applyLines(descriptor, path: path, settings: settings)
            // Bytes from before the open (a device chattering while nobody listened) are not this session's.
            guard tcflush(descriptor, TCIOFLUSH) == 0 else {
                throw DeviceIOError.system("tcflush", path: path, code: errno, fix: "check the device and its cable")
            }
            return SerialPort(path: path, settings: settings, skippedLineControl: skipped,
                              isPseudoTerminal: isPseudoTerminal(descriptor), node: node)
        } catch {
            node.close()
            throw error
        }
    }

    public func read(timeout: Duration?) throws(DeviceIOError) -> LinkInput {
        try node.read(timeout: timeout, capacity: 4096)
    }

    public func write(_ bytes: [UInt8]) throws(DeviceIOError) {
        let stalled = settings.flowControl == .none
            ? "check the cable and the adapter"
            : "the device is holding the line (flow control \(settings.flowControl.rawValue)); check the cable, or the profile's flowControl"
        try node.write(bytes, stalledFix: stalled)
    }

    public func interrupt() { node.interrupt() }

    public func close() { node.close() }

    // MARK: Settings

    static let notTerminalFix = "this node is not a serial port; check the device path"

    static func openFix(_ code: Int32, path: String) -> String {
        switch code {
        case ENOENT, ENODEV, ENXIO:
            "check that the device is plugged in and that \(path) is its node (ls -l /dev/serial/by-id/)"
        case EACCES, EPERM:
            "give this user access to \(path): install the rules from `vitalgate profile udev-rules` and add the user to their group, or run as a member of the group that owns the node (ls -l \(path))"
        case EBUSY:
            "another program has the port open exclusively; close it (`fuser -v \(path)` names it)"
        default:
            "check the device and its cable, then unplug and replug it"
        }
    }

    /// The termios speed constant for each rate ``SerialSettings/baudRates`` allows.
    static func speed(for baud: Int) -> speed_t? {
        switch baud {
        case 1200: speed_t(B1200)
        case 2400: speed_t(B2400)
        case 4800: speed_t(B4800)
        case 9600: speed_t(B9600)
        case 19200: speed_t(B19200)
        case 38400: speed_t(B38400)
        case 57600: speed_t(B57600)
        case 115200: speed_t(B115200)
        case 230400: speed_t(B230400)
        case 460800: speed_t(B460800)
        case 921600: speed_t(B921600)
        default: nil
        }
    }

    static func characterSize(_ dataBits: Int) -> tcflag_t? {
        switch dataBits {
        case 5: tcflag_t(CS5)
        case 6: tcflag_t(CS6)
        case 7: tcflag_t(CS7)
        case 8: tcflag_t(CS8)
        default: nil
        }
    }

    /// The profile's settings on top of `base`: raw mode, rate, framing and flow control, and reads that
    /// never wait in the driver (VMIN=0, VTIME=0): waiting is poll's job. Throws for settings no
    /// terminal can have.
    static func attributes(for settings: SerialSettings, from base: termios, path: String) throws(DeviceIOError) -> termios {
        let profileFix = "correct the profile's transport.serial"
        guard let speed = speed(for: settings.baud) else {
            throw DeviceIOError(operation: "tcsetattr", path: path,
                                fix: "\(settings.baud) baud is not a standard rate; use one of \(SerialSettings.baudRates.map(String.init).joined(separator: ", ")) (\(profileFix))")
        }
        guard let size = characterSize(settings.dataBits) else {
            throw DeviceIOError(operation: "tcsetattr", path: path, fix: "\(settings.dataBits) data bits is not possible; use 5 to 8 (\(profileFix))")
        }
        guard settings.stopBits == 1 || settings.stopBits == 2 else {
            throw DeviceIOError(operation: "tcsetattr", path: path, fix: "\(settings.stopBits) stop bits is not possible; use 1 or 2 (\(profileFix))")
        }
        var attributes = base
        cfmakeraw(&attributes)
        attributes.c_cflag &= ~(tcflag_t(CSIZE | PARENB | PARODD | CSTOPB) | tcflag_t(CRTSCTS))
        attributes.c_cflag |= size | tcflag_t(CLOCAL | CREAD)
        switch settings.parity {
        case .none: break
        case .odd: attributes.c_cflag |= tcflag_t(PARENB | PARODD)
        case .even: attributes.c_cflag |= tcflag_t(PARENB)
        }
        // Check received parity (cfmakeraw turned it off); bad bytes still reach the engine, whose
        // checksums catch them.
        if settings.parity != .none { attributes.c_iflag |= tcflag_t(INPCK) }
        if settings.stopBits == 2 { attributes.c_cflag |= tcflag_t(CSTOPB) }
        attributes.c_iflag &= ~tcflag_t(IXON | IXOFF | IXANY)
        switch settings.flowControl {
        case .none: break
        case .rtsCts: attributes.c_cflag |= tcflag_t(CRTSCTS)
        case .xonXoff: attributes.c_iflag |= tcflag_t(IXON | IXOFF)
        }
        withUnsafeMutableBytes(of: &attributes.c_cc) { cc in
            cc[Int(VMIN)] = 0
            cc[Int(VTIME)] = 0
        }
        guard cfsetispeed(&attributes, speed) == 0, cfsetospeed(&attributes, speed) == 0 else {
            throw .system("cfsetspeed", path: path, code: errno, fix: "\(settings.baud) baud is not accepted by the C library; \(profileFix)")
        }
        return attributes
    }

    /// Whether the descriptor is the slave of a Unix 98 pseudo-terminal (`/dev/pts/N`, majors 136-143).
    static func isPseudoTerminal(_ descriptor: Int32) -> Bool {
        var status = stat()
        guard fstat(descriptor, &status) == 0, status.st_mode & S_IFMT == S_IFCHR else { return false }
        let device = UInt64(status.st_rdev)
        let major = (device >> 8) & 0xFFF | (device >> 32) & ~UInt64(0xFFF)
        return (136...143).contains(major)
    }

    /// Character size and parity bits a pseudo-terminal does not keep: Linux forces CS8 and clears
    /// PARENB on every pty, because no bits are framed on the wire there.
    static let pseudoTerminalForcedFlags = tcflag_t(CSIZE | PARENB)

    /// Applies the settings and reads back what the driver kept: tcsetattr succeeds when any one change
    /// took.
    static func configure(_ descriptor: Int32, path: String, settings: SerialSettings) throws(DeviceIOError) {
        var current = termios()
        guard tcgetattr(descriptor, &current) == 0 else {
            let code = errno
            throw .system("tcgetattr", path: path, code: code, fix: code == ENOTTY ? notTerminalFix : "check the device and its cable")
        }
        var wanted = try attributes(for: settings, from: current, path: path)
        guard tcsetattr(descriptor, TCSANOW, &wanted) == 0 else {
            throw .system("tcsetattr", path: path, code: errno,
                          fix: "the driver refused \(settings.summary); check the adapter supports it, or correct the profile's transport.serial")
        }
        var applied = termios()
        guard tcgetattr(descriptor, &applied) == 0 else {
            throw .system("tcgetattr", path: path, code: errno, fix: "check the device and its cable")
        }
        let differences = differences(wanted: wanted, applied: applied, settings: settings,
                                      ignoring: isPseudoTerminal(descriptor) ? pseudoTerminalForcedFlags : 0)
        guard differences.isEmpty else {
            throw DeviceIOError(operation: "tcsetattr", path: path,
                                fix: "the driver did not keep \(differences.joined(separator: ", ")); the adapter may not support it: check the device's manual, or correct the profile's transport.serial")
        }
    }

    /// The settings `applied` lacks, in the profile's words; `ignoring` names c_cflag bits not compared.
    static func differences(wanted: termios, applied: termios, settings: SerialSettings, ignoring: tcflag_t) -> [String] {
        var wanted = wanted, applied = applied
        func bits(_ flags: tcflag_t, _ mask: tcflag_t) -> tcflag_t { flags & mask & ~ignoring }
        var differences: [String] = []
        if cfgetispeed(&applied) != cfgetispeed(&wanted) || cfgetospeed(&applied) != cfgetospeed(&wanted) {
            differences.append("baud rate \(settings.baud)")
        }
        if bits(applied.c_cflag, tcflag_t(CSIZE)) != bits(wanted.c_cflag, tcflag_t(CSIZE)) {
            differences.append("\(settings.dataBits) data bits")
        }
        if bits(applied.c_cflag, tcflag_t(PARENB | PARODD)) != bits(wanted.c_cflag, tcflag_t(PARENB | PARODD)) {
            differences.append("parity \(settings.parity.rawValue)")
        }
        if bits(applied.c_cflag, tcflag_t(CSTOPB)) != bits(wanted.c_cflag, tcflag_t(CSTOPB)) {
            differences.append("\(settings.stopBits) stop bits")
        }
        if bits(applied.c_cflag, tcflag_t(CRTSCTS)) != bits(wanted.c_cflag, tcflag_t(CRTSCTS))
            || applied.c_iflag & tcflag_t(IXON | IXOFF) != wanted.c_iflag & tcflag_t(IXON | IXOFF) {
            differences.append("flow control \(settings.flowControl.rawValue)")
        }
        return differences
    }

    /// Sets DTR and RTS as the profile asks. Returns how many lines were skipped because the node has no
    /// modem lines (a pseudo-terminal); any other failure is an error.
    static func applyLines(_ descriptor: Int32, path: String, settings: SerialSettings) throws(DeviceIOError) -> Int {
        var skipped = 0
        for (name, bit, line) in [("DTR", TIOCM_DTR, settings.dtr), ("RTS", TIOCM_RTS, settings.rts)] {
            guard let line else { continue }
            func set(_ high: Bool) throws(DeviceIOError) -> Bool {
                var bits = Int32(bit)
                let request = UInt(high ? TIOCMBIS : TIOCMBIC)
                if ioctl(descriptor, request, &bits) == 0 { return true }
                let code = errno
                if code == ENOTTY || code == EINVAL { return false }
                throw .system(high ? "TIOCMBIS" : "TIOCMBIC", path: path, code: code,
                              fix: "could not set \(name) \(high ? "high" : "low"); check the adapter, or remove \"\(name.lowercased())\" from the profile's transport.serial")
            }
            let applied: Bool
            switch line {
            case .on: applied = try set(true)
            case .off: applied = try set(false)
            case .pulse:
                if try set(false) {
                    _ = usleep(UInt32(clamping: max(0, settings.pulseMilliseconds) * 1000))
                    applied = try set(true)
                } else {
                    applied = false
                }
            }
            if !applied { skipped += 1 }
        }
        return skipped
    }
}
