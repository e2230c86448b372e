import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The few Unix-socket steps the ingest and control servers, their clients and the systemd notifier share.
enum UnixSocket {
    /// `sockaddr_un` for `path`, or nil when the path does not fit. A leading `@` names an abstract socket.
    static func address(_ path: String) -> (sockaddr_un, socklen_t)? {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(path.utf8)
        if bytes.first == UInt8(ascii: "@") { bytes[0] = 0 }
        guard !bytes.isEmpty, bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return nil }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes + (bytes[0] == 0 ? [] : [0])) }
        let length = bytes[0] == 0 ? MemoryLayout<sa_family_t>.size + bytes.count : MemoryLayout<sockaddr_un>.size
        return (address, socklen_t(length))
    }

    /// Calls `body` with `address` as a `sockaddr` pointer.
    static func withSockaddr<T>(_ address: sockaddr_un, _ body: (UnsafePointer<sockaddr>) -> T) -> T {
        var copy = address
        return withUnsafePointer(to: &copy) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1, body) }
    }

    /// Writes all of `bytes`; false when the peer is gone. Never raises SIGPIPE.
    static func sendAll(_ bytes: [UInt8], to fd: Int32) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if written < 0, errno == EINTR { continue }
            guard written > 0 else { return false }
            offset += written
        }
        return true
    }

    /// Reads newline-terminated lines from a socket, keeping what follows a line for the next call.
    struct LineReader {
        let fd: Int32
        let maximumBytes: Int
        private var buffer: [UInt8] = []

        init(fd: Int32, maximumBytes: Int) {
            self.fd = fd
            self.maximumBytes = maximumBytes
        }

        enum Line {
            case line([UInt8])
            /// The peer closed the connection, or the read failed or timed out.
            case closed
            /// The line grew past `maximumBytes`.
            case tooLong
        }

        mutating func next() -> Line {
            var readError: Int32 = 0
            return next(readError: &readError)
        }

        /// As ``next()``; on `.closed`, `readError` is the failed read's `errno` (`EAGAIN` when `SO_RCVTIMEO`
        /// expired), or 0 when the peer closed the connection. The control client tells a timeout from a hang-up so.
        mutating func next(readError: inout Int32) -> Line {
            readError = 0
            var chunk = [UInt8](repeating: 0, count: 65_536)
            while true {
                if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                    let line = Array(buffer[..<newline])
                    buffer.removeSubrange(...newline)
                    return .line(line)
                }
                if buffer.count > maximumBytes { return .tooLong }
                let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if count < 0, errno == EINTR { continue }
                guard count > 0 else {
                    if count < 0 { readError = errno }
                    return .closed
                }
                buffer.append(contentsOf: chunk[..<count])
            }
        }
    }
}
