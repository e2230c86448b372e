import Foundation
import Testing
import VitalModel
@testable import Outbox
#if canImport(Glibc)
import Glibc
#endif

/// A real full disk: a 1 MiB tmpfs mounted in a mount namespace private to one thread, so nothing is
/// mounted for the rest of the machine and the mount vanishes with the thread. Needs CAP_SYS_ADMIN (the
/// tests run as root).
@Suite("Outbox on a full disk")
struct DiskFullTests {
    typealias UnshareFunction = @convention(c) (Int32) -> Int32
    typealias MountFunction = @convention(c) (UnsafePointer<CChar>?, UnsafePointer<CChar>?, UnsafePointer<CChar>?, UInt, UnsafeRawPointer?) -> Int32
    typealias UnmountFunction = @convention(c) (UnsafePointer<CChar>?, Int32) -> Int32

    struct MountFailure: Error, CustomStringConvertible {
        var description: String
    }

    /// Runs `body` on a dedicated thread that has its own mount namespace with a tmpfs of `size` at a new
    /// directory; the file system calls of the Outbox happen on that thread, so they see the mount.
    static func onPrivateTmpfs<T: Sendable>(size: String, _ body: @escaping @Sendable (String) throws -> T) async throws -> T {
        let result: Result<T, any Error> = await withCheckedContinuation { continuation in
            let thread = Thread {
                continuation.resume(returning: Result { try withTmpfs(size: size, body) })
            }
            thread.name = "private tmpfs"
            thread.start()
        }
        return try result.get()
    }

    private static func withTmpfs<T>(size: String, _ body: (String) throws -> T) throws -> T {
        let library = dlopen(nil, RTLD_NOW)
        guard let unshareSymbol = dlsym(library, "unshare"), let mountSymbol = dlsym(library, "mount"),
              let unmountSymbol = dlsym(library, "umount2") else { throw MountFailure(description: "libc lacks unshare/mount") }
        let unshare = unsafeBitCast(unshareSymbol, to: UnshareFunction.self)
        let mount = unsafeBitCast(mountSymbol, to: MountFunction.self)
        let unmount = unsafeBitCast(unmountSymbol, to: UnmountFunction.self)
        let cloneNewNS: Int32 = 0x0002_0000, recursive: UInt = 16_384, privateMount: UInt = 1 << 18
        guard unshare(cloneNewNS) == 0 else {
            throw MountFailure(description: "unshare(CLONE_NEWNS) failed: \(String(cString: strerror(errno))); run the tests as root")
        }
        // Private first, so the tmpfs below cannot propagate to the machine's namespace.
        guard mount(nil, "/", nil, recursive | privateMount, nil) == 0 else {
            throw MountFailure(description: "making / private failed: \(String(cString: strerror(errno)))")
        }
        let point = NSTemporaryDirectory() + "vitalgate-tmpfs-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: point, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: point) }
        guard mount("tmpfs", point, "tmpfs", 0, "size=\(size),mode=0700") == 0 else {
            throw MountFailure(description: "mounting a tmpfs failed: \(String(cString: strerror(errno)))")
        }
        defer { _ = unmount(point, 2) }  // MNT_DETACH
        return try body(point)
    }

    /// Writes zeros to `path` until the file system is full (or `limit` bytes); returns the bytes written.
    static func fill(_ path: String, limit: Int = .max) -> Int {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard descriptor >= 0 else { return 0 }
        defer { close(descriptor) }
        let chunk = [UInt8](repeating: 0, count: 4096)
        var written = 0
        while written < limit {
            let count = chunk.withUnsafeBytes { write(descriptor, $0.baseAddress, min(4096, limit - written)) }
            if count <= 0 { break }
            written += count
        }
        fsync(descriptor)
        return written
    }

    static func batch(_ range: Range<Int>) -> [IncomingReading] {
        range.map { index in
            var reading = bloodPressure(minute: index % 60, sequence: index)
            reading.raw = Array(repeating: 0xAB, count: 400)
            return incoming(reading)
        }
    }

    struct Observations: Sendable {
        var error: OutboxError?
        var pendingAfterFailure = 0
        var rowsAfterFailure = 0
        var retried: [IngestOutcome] = []
        var pendingAfterRetry = 0
        var reopenedClean = false
        var reopenedPending = 0
    }

    @Test("SQLITE_FULL rolls the batch back whole; ingest succeeds again once space returns")
    func sqliteFull() async throws {
        let seen = try await Self.onPrivateTmpfs(size: "1m") { point -> Observations in
            var seen = Observations()
            let path = point + "/outbox.db"
            var outbox: Outbox? = try Outbox(path: path, options: OutboxOptions(reservedFreeBytes: 0))
            _ = try outbox?.ingest(Self.batch(0..<5))
            _ = Self.fill(point + "/filler")
            do {
                _ = try outbox?.ingest(Self.batch(5..<45))
            } catch let error as OutboxError {
                seen.error = error
            }
            seen.pendingAfterFailure = try outbox?.summary().counts[.pending] ?? -1
            seen.rowsAfterFailure = Int(try scalar(path, "SELECT count(*) FROM readings") ?? "") ?? -1
            try FileManager.default.removeItem(atPath: point + "/filler")
            seen.retried = try outbox?.ingest(Self.batch(5..<45)) ?? []
            seen.pendingAfterRetry = try outbox?.summary().counts[.pending] ?? -1
            outbox = nil
            let reopened = try Outbox(path: path)
            seen.reopenedClean = reopened.recovery.isClean
            seen.reopenedPending = try reopened.summary().counts[.pending] ?? -1
            return seen
        }
        let error = try #require(seen.error)
        guard case .diskFull(let path, let free, _, let cause) = error else {
            Issue.record("expected diskFull, got \(error)")
            return
        }
        #expect(path.hasSuffix("/outbox.db"))
        #expect(cause?.code == 13, "\(error)")  // SQLITE_FULL
        #expect((free ?? .max) < 64 << 10)
        #expect(error.description.contains("is full") && error.description.contains("Fix: free space"), "\(error)")
        #expect(seen.pendingAfterFailure == 5 && seen.rowsAfterFailure == 5)
        #expect(seen.retried.count == 40 && seen.retried.allSatisfy { if case .stored = $0 { true } else { false } })
        #expect(seen.pendingAfterRetry == 45)
        #expect(seen.reopenedClean && seen.reopenedPending == 45)
    }

    struct ReserveObservations: Sendable {
        var error: OutboxError?
        var delivered = 0
        var pruned = 0
        var after: [IngestOutcome] = []
    }

    @Test("below the reserve on a real file system: ingest refuses, deliveries and pruning still commit")
    func reserve() async throws {
        let seen = try await Self.onPrivateTmpfs(size: "1m") { point -> ReserveObservations in
            var seen = ReserveObservations()
            let path = point + "/outbox.db"
            let outbox = try Outbox(path: path, options: OutboxOptions(reservedFreeBytes: 384 << 10))
            _ = try outbox.ingest(Self.batch(0..<10))
            let free = FileSystemSpace.available(point) ?? 0
            _ = Self.fill(point + "/filler", limit: Int(free) - (200 << 10))
            do { _ = try outbox.ingest(Self.batch(10..<11)) } catch let error as OutboxError { seen.error = error }
            let batch = try outbox.nextBatch(limit: 10, now: Date())
            try outbox.markDelivered(batch.map { DeliveryRecord(id: $0.id, status: 201, locations: ["Observation/x"]) }, at: Date())
            seen.delivered = try outbox.summary().counts[.delivered] ?? 0
            seen.pruned = try outbox.prune(deliveredBefore: Date().addingTimeInterval(1))
            try FileManager.default.removeItem(atPath: point + "/filler")
            seen.after = try outbox.ingest(Self.batch(10..<11))
            return seen
        }
        guard case .diskFull(_, let free?, let reserved, nil)? = seen.error else {
            Issue.record("expected a reserve refusal, got \(String(describing: seen.error))")
            return
        }
        #expect(free < reserved && reserved == 384 << 10)
        #expect(seen.delivered == 10 && seen.pruned == 10)
        #expect(seen.after == [.stored(OutboxReadingID(11))])
    }
}
