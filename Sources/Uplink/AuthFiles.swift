import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What identifies one version of a file without reading it: replacing it (rename) changes the inode,
/// rewriting it changes the size or modification time.
struct FileStamp: Hashable, Sendable {
    var device: UInt64
    var inode: UInt64
    var size: Int64
    var modifiedSeconds: Int
    var modifiedNanoseconds: Int
}

/// A credential file's bytes and the stamp they were read under.
struct CredentialFile {
    var stamp: FileStamp
    var bytes: [UInt8]
}

/// Reads credential files (tokens, secrets, keys) with errors that name the file and the reason but
/// never any of its content.
enum CredentialFiles {
    /// Credentials are small; a bigger file is a wrong path (a log, a disk image), not a secret.
    static let sizeLimit = 64 * 1024

    /// The file's stamp, following symbolic links (Kubernetes-style secret mounts are links).
    static func stamp(_ path: String, what: String) throws(AuthError) -> FileStamp {
        var info = stat()
        guard stat(path, &info) == 0 else { throw failure(path, what: what, errno: errno) }
        return FileStamp(info)
    }

    /// Reads the whole file.
    static func read(_ path: String, what: String) throws(AuthError) -> CredentialFile {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw failure(path, what: what, errno: errno) }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw failure(path, what: what, errno: errno) }
        guard info.st_mode & S_IFMT == S_IFREG else {
            throw AuthError(kind: .configuration, message: "the \(what) \(path) is not a regular file",
                            fix: "point the setting at the file that holds the \(what)")
        }
        // A secret any local account can read is a leaked secret: refuse it, as ssh refuses a loose private key.
        guard info.st_mode & 0o007 == 0 else {
            throw AuthError(kind: .configuration,
                            message: "the \(what) \(path) is open to every user of this machine (mode \(String(info.st_mode & 0o777, radix: 8)))",
                            fix: "chmod 0600 \(path) (owner vitalgate), or 0640 with group vitalgate; keep secrets in /etc/vitalgate/secrets")
        }
        guard info.st_size <= sizeLimit else {
            throw AuthError(kind: .configuration, message: "the \(what) \(path) is \(info.st_size) bytes, more than a credential can be",
                            fix: "point the setting at the file that holds only the \(what)")
        }
        var bytes = [UInt8](repeating: 0, count: sizeLimit + 1)
        var count = 0
        while count < bytes.count {
            let got = bytes.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress! + count, $0.count - count) }
            if got == 0 { break }
            if got < 0 {
                if errno == EINTR { continue }
                throw failure(path, what: what, errno: errno)
            }
            count += got
        }
        guard count <= sizeLimit else {
            throw AuthError(kind: .configuration, message: "the \(what) \(path) grew past \(sizeLimit) bytes while being read",
                            fix: "point the setting at the file that holds only the \(what)")
        }
        return CredentialFile(stamp: FileStamp(info), bytes: Array(bytes[..<count]))
    }

    /// The file's text without surrounding whitespace; an error when nothing is left or it is not UTF-8.
    static func readTrimmedText(_ path: String, what: String) throws(AuthError) -> (stamp: FileStamp, text: String) {
        let file = try read(path, what: what)
        guard let text = String(validating: file.bytes, as: UTF8.self) else {
            throw AuthError(kind: .configuration, message: "the \(what) \(path) is not UTF-8 text",
                            fix: "write the \(what) as plain text")
        }
        let trimmed = text.trimmingASCIIWhitespace()
        guard !trimmed.isEmpty else {
            throw AuthError(kind: .configuration, message: "the \(what) \(path) is empty",
                            fix: "write the \(what) into \(path)")
        }
        return (file.stamp, trimmed)
    }

    private static func failure(_ path: String, what: String, errno code: Int32) -> AuthError {
        let reason = String(cString: strerror(code))
        let fix = switch code {
        case ENOENT, ENOTDIR: "create \(path) or correct the path in the configuration"
        case EACCES, EPERM: "let the service user read \(path) (owner vitalgate, mode 0400 or 0600)"
        default: "check \(path)"
        }
        return AuthError(kind: .configuration, message: "cannot read the \(what) \(path): \(reason)", fix: fix)
    }
}

private extension FileStamp {
    init(_ info: stat) {
        self.init(device: UInt64(info.st_dev), inode: UInt64(info.st_ino), size: Int64(info.st_size),
                  modifiedSeconds: Int(info.st_mtim.tv_sec), modifiedNanoseconds: Int(info.st_mtim.tv_nsec))
    }
}

/// True when `token` can go into an `Authorization: Bearer` header as is: visible ASCII, no spaces.
/// A token with a line break would inject header lines.
func isUsableBearerToken(_ token: String) -> Bool {
    !token.isEmpty && token.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F }
}
