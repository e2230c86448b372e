import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Who is at the other end of a Unix socket, as the kernel recorded it when the peer connected: nothing here comes
/// from what the peer says, so it can decide access.
struct PeerCredentials: Sendable, Equatable {
    var pid: pid_t
    var uid: uid_t
    /// The peer's primary group.
    var gid: gid_t
    /// The peer's supplementary groups (`SO_PEERGROUPS`), or nil when the kernel does not offer them (Linux before
    /// 4.13): then only the primary group counts.
    var supplementaryGroups: [gid_t]?

    /// The primary group and every supplementary group.
    var groups: [gid_t] { [gid] + (supplementaryGroups ?? []) }

    /// Why the credentials of a connection could not be read.
    struct ReadError: Error, Sendable, CustomStringConvertible {
        let description: String
    }

    /// Reads `SO_PEERCRED` and `SO_PEERGROUPS` of a connected Unix socket.
    static func of(socket fd: Int32) throws(ReadError) -> PeerCredentials {
        // `struct ucred` is { pid_t pid; uid_t uid; gid_t gid; }, three 32-bit words on every Linux ABI. Swift's Glibc
        // module declares it only under _GNU_SOURCE, so it is read as three words rather than through a C shim.
        var words: [UInt32] = [0, 0, 0]
        var length = socklen_t(MemoryLayout<UInt32>.size * 3)
        let result = words.withUnsafeMutableBytes { getsockopt(fd, SOL_SOCKET, SO_PEERCRED, $0.baseAddress, &length) }
        guard result == 0 else {
            throw ReadError(description: "SO_PEERCRED failed: \(String(cString: strerror(errno)))")
        }
        guard length == socklen_t(MemoryLayout<UInt32>.size * 3) else {
            throw ReadError(description: "SO_PEERCRED returned \(length) bytes, not the 12 of struct ucred")
        }
        return PeerCredentials(pid: pid_t(bitPattern: words[0]), uid: words[1], gid: words[2],
                               supplementaryGroups: supplementaryGroups(of: fd))
    }

    /// `SO_PEERGROUPS`, growing the buffer once to the size the kernel asks for; nil when it is unavailable.
    private static func supplementaryGroups(of fd: Int32) -> [gid_t]? {
        var capacity = 64
        for _ in 0..<3 {
            var groups = [gid_t](repeating: 0, count: capacity)
            var length = socklen_t(capacity * MemoryLayout<gid_t>.size)
            let result = groups.withUnsafeMutableBytes { getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, $0.baseAddress, &length) }
            if result == 0 { return Array(groups.prefix(Int(length) / MemoryLayout<gid_t>.size)) }
            // ERANGE: the kernel wrote the size it needs into `length`.
            guard errno == ERANGE, Int(length) / MemoryLayout<gid_t>.size > capacity else { return nil }
            capacity = Int(length) / MemoryLayout<gid_t>.size
        }
        return nil
    }

    /// The peer as the audit trail names it: its user name, or `uid N` when the user database has none.
    var actor: String { UserDatabase.userName(uid) ?? "uid \(uid)" }
}

/// Who may use the daemon's control socket: root, the daemon's own user, and members of the configured groups.
///
/// The decision rests on the peer credentials the kernel records at connect time (``PeerCredentials``), so it holds
/// whatever the socket file's mode is. Group membership counts through the primary group and, where the kernel
/// reports them, the supplementary groups.
struct ControlAccessPolicy: Sendable, Equatable {
    /// A group whose members are allowed, by name (for messages) and id (for the check).
    struct Group: Sendable, Equatable {
        var name: String
        var id: gid_t
    }

    /// The operators' group the package creates.
    static let defaultGroupName = "vitalgate-operators"

    /// The daemon's own user, allowed like root.
    var daemonUID: uid_t
    var groups: [Group]

    init(daemonUID: uid_t, groups: [Group]) {
        self.daemonUID = daemonUID
        self.groups = groups
    }

    /// Why a group name given for the policy does not resolve.
    struct GroupError: Error, Sendable, Equatable, CustomStringConvertible {
        let description: String
    }

    /// Resolves `groupNames` with the system's group database (getgrnam_r), once at start: a group created later
    /// takes effect on the daemon's next start. An unknown name is an error, not a silently empty policy.
    static func resolving(groupNames: [String], daemonUID: uid_t = getuid()) throws(GroupError) -> ControlAccessPolicy {
        try resolving(groupNames: groupNames, daemonUID: daemonUID, lookup: systemGroupID)
    }

    /// As ``resolving(groupNames:daemonUID:)`` with the group lookup given: nil for no such group, a `GroupError`
    /// when the database cannot be asked.
    static func resolving(groupNames: [String], daemonUID: uid_t,
                          lookup: (String) throws(GroupError) -> gid_t?) throws(GroupError) -> ControlAccessPolicy {
        var groups: [Group] = []
        for name in groupNames {
            guard let id = try lookup(name) else {
                throw GroupError(description: "the control socket's operator group \"\(name)\" does not exist. "
                    + "Fix: create it (groupadd --system \(name)) and add the operators to it, or name an existing group")
            }
            groups.append(Group(name: name, id: id))
        }
        return ControlAccessPolicy(daemonUID: daemonUID, groups: groups)
    }

    /// The id of group `name` from the group database, or nil when there is no such group.
    static func systemGroupID(_ name: String) throws(GroupError) -> gid_t? {
        var id: gid_t?
        let status = UserDatabase.withBuffer { buffer in
            var entry = group()
            var found: UnsafeMutablePointer<group>?
            let status = getgrnam_r(name, &entry, &buffer, buffer.count, &found)
            if status == 0, found != nil { id = entry.gr_gid }
            return status
        }
        guard let status else {
            throw GroupError(description: "the group database entry of \"\(name)\" is larger than 1 MiB. Fix: check the group database")
        }
        // glibc answers "not found" with 0 and no entry; some NSS modules with one of these codes.
        guard status == 0 || [ENOENT, ESRCH, EBADF, EPERM].contains(status) else {
            throw GroupError(description: "cannot look up the group \"\(name)\": \(String(cString: strerror(status))). "
                + "Fix: check /etc/nsswitch.conf and the group database")
        }
        return id
    }

    /// Why a peer is allowed.
    enum Grant: Sendable, Equatable {
        case root
        case daemonUser
        case group(String)
    }

    /// Whether `peer` may use the control socket: its grant, or nil when refused.
    func grant(for peer: PeerCredentials) -> Grant? {
        if peer.uid == 0 { return .root }
        if peer.uid == daemonUID { return .daemonUser }
        let peerGroups = peer.groups
        return groups.first { peerGroups.contains($0.id) }.map { .group($0.name) }
    }

    /// The answer a refused peer gets: what is wrong and how to fix it. `userName` fills the usermod command when known.
    func refusal(uid: uid_t, userName: String?) -> String {
        let user = userName ?? "USER"
        let who = userName.map { "user \($0) (uid \(uid))" } ?? "uid \(uid)"
        guard let group = groups.first else {
            return "\(who) is not allowed to use vitalgated's control socket: only root and the service user are, "
                + "and no operator group is configured. Fix: run the command as root (sudo)"
        }
        let names = groups.map(\.name).joined(separator: ", ")
        return "\(who) is not allowed to use vitalgated's control socket: it is neither root, the service user, "
            + "nor in \(groups.count == 1 ? "group" : "one of the groups") \(names). "
            + "Fix: add the user to group \(group.name) (usermod -aG \(group.name) \(user)), then log in again"
    }
}
