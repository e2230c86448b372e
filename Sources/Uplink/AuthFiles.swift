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
        try requirePrivate(info, path: path, what: what)
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

    /// A secret must be the service's alone (``SecretFiles/exposure(owner:group:mode:service:)``), judged for this
    /// process, which is the service.
    static func requirePrivate(_ info: stat, path: String, what: String) throws(AuthError) {
        let service = SecretFiles.Service(uid: geteuid(), groups: processGroups())
        if let problem = SecretFiles.exposure(owner: info.st_uid, group: info.st_gid, mode: info.st_mode, service: service) {
            throw AuthError(kind: .configuration, message: "the \(what) \(path) \(problem)", fix: SecretFiles.fix(path))
        }
    }

    /// This process's effective and supplementary groups.
    static func processGroups() -> Set<gid_t> {
        var groups = [gid_t](repeating: 0, count: Int(max(0, getgroups(0, nil))))
        let count = getgroups(Int32(groups.count), &groups)
        return Set(groups.prefix(Int(max(0, count)))).union([getegid()])
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

/// Checks a secret the Uplink does not read itself (the mutual-TLS client key, which libcurl opens) as strictly as
/// the credentials it reads.
public enum SecretFiles {
    /// The account a secret is for: its user id and groups.
    public struct Service: Sendable, Hashable {
        public var uid: uid_t
        public var groups: Set<gid_t>

        public init(uid: uid_t, groups: Set<gid_t>) {
            self.uid = uid
            self.groups = groups
        }
    }

    /// Throws when `path` is missing, not a regular file, or readable by anyone but the service.
    public static func check(_ path: String, what: String) throws(AuthError) {
        _ = try CredentialFiles.read(path, what: what)
    }

    /// Why a file with this owner, group and mode is not `service`'s alone (completing "the token file X …"), or nil.
    /// The rule, as ssh's for a private key: no access for other users, group access only for one of the service's
    /// groups, and owned by root or the service (anyone else could replace it). Without a known service, only the
    /// first part can be judged. The daemon judges for itself; `vitalgate config check` for the service's account.
    public static func exposure(owner: uid_t, group: gid_t, mode: mode_t, service: Service?) -> String? {
        let octal = octal(mode)
        if mode & 0o007 != 0 { return "is open to every user of this machine (mode \(octal))" }
        guard let service else { return nil }
        if mode & 0o070 != 0, !service.groups.contains(group) {
            return "is open to group \(group) (mode \(octal)), which is not the service's"
        }
        if owner != 0, owner != service.uid { return "belongs to uid \(owner), neither root nor the service user" }
        return nil
    }

    /// A file's permission bits as `chmod` takes them: `0640`.
    public static func octal(_ mode: mode_t) -> String {
        let digits = String(mode & 0o777, radix: 8)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }

    /// How to make a secret file the service's alone.
    public static func fix(_ path: String) -> String {
        "chown root:vitalgate \(path) && chmod 0640 \(path) (or 0600 owned by vitalgate); keep secrets in /etc/vitalgate/secrets"
    }
}
