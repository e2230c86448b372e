import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The system's user and group databases (NSS: /etc/passwd, /etc/group, LDAP…) through their reentrant calls.
enum UserDatabase {
    /// Runs `call` with a scratch buffer of 1 KiB, growing it fourfold while the call answers ERANGE, up to 1 MiB;
    /// returns the call's last status. The entry the call fills points into the buffer, so `call` reads what it
    /// needs before returning. nil when even 1 MiB was too small.
    static func withBuffer(_ call: (inout [CChar]) -> Int32) -> Int32? {
        var size = 1024
        while size <= 1 << 20 {
            var buffer = [CChar](repeating: 0, count: size)
            let status = call(&buffer)
            guard status == ERANGE else { return status }
            size *= 4
        }
        return nil
    }

    /// The user name of `uid`, or nil when the database has none or cannot be read.
    static func userName(_ uid: uid_t) -> String? {
        var name: String?
        _ = withBuffer { buffer in
            var entry = passwd()
            var found: UnsafeMutablePointer<passwd>?
            let status = getpwuid_r(uid, &entry, &buffer, buffer.count, &found)
            if status == 0, found != nil, let text = entry.pw_name { name = String(cString: text) }
            return status
        }
        return name
    }

    /// The uid and primary group of user `name`, or nil when there is no such user or the database cannot be read.
    static func user(named name: String) -> (uid: uid_t, gid: gid_t)? {
        var user: (uid: uid_t, gid: gid_t)?
        _ = withBuffer { buffer in
            var entry = passwd()
            var found: UnsafeMutablePointer<passwd>?
            let status = getpwnam_r(name, &entry, &buffer, buffer.count, &found)
            if status == 0, found != nil { user = (entry.pw_uid, entry.pw_gid) }
            return status
        }
        return user
    }

    /// The groups user `name` is in (primary and supplementary), by getgrouplist.
    static func groups(ofUser name: String, primary: gid_t) -> Set<gid_t> {
        var count: Int32 = 64
        var list = [gid_t](repeating: 0, count: Int(count))
        if getgrouplist(name, primary, &list, &count) < 0 {
            // count now holds the number needed.
            list = [gid_t](repeating: 0, count: Int(max(0, count)))
            if getgrouplist(name, primary, &list, &count) < 0 { count = 0 }
        }
        return Set(list.prefix(Int(max(0, count)))).union([primary])
    }
}
