import Foundation
import Testing
@testable import Gateway
#if canImport(Glibc)
import Glibc
#endif

@Suite("User and group database")
struct UserDatabaseTests {
    @Test("the buffer grows fourfold while the call answers ERANGE, and gives up after 1 MiB")
    func bufferGrows() {
        var sizes: [Int] = []
        let status = UserDatabase.withBuffer { buffer in
            sizes.append(buffer.count)
            return buffer.count < 16_384 ? ERANGE : 0
        }
        #expect(status == 0)
        #expect(sizes == [1024, 4096, 16_384])
        sizes = []
        #expect(UserDatabase.withBuffer { buffer in
            sizes.append(buffer.count)
            return ERANGE
        } == nil)
        #expect(sizes == [1024, 4096, 16_384, 65_536, 262_144, 1_048_576])
        // Another error is returned as it is, at once.
        #expect(UserDatabase.withBuffer { _ in EIO } == EIO)
    }

    @Test("root is uid 0 with primary group 0 in every Linux user database; an unknown name is nil")
    func lookups() {
        #expect(UserDatabase.userName(0) == "root")
        let root = UserDatabase.user(named: "root")
        #expect(root?.uid == 0 && root?.gid == 0)
        #expect(UserDatabase.groups(ofUser: "root", primary: 0).contains(0))
        #expect(UserDatabase.user(named: "vitalgate-no-such-user-\(getpid())") == nil)
    }
}
