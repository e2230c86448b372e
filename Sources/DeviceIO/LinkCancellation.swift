import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Cancels a blocking connect, and the waits between connects, from another thread.
///
/// Once ``cancel()`` is called it stays cancelled: a connect that starts afterwards fails at once and
/// every ``wait(timeout:)`` returns immediately. A daemon keeps one per device and cancels it when it stops.
///
/// The signal is a pipe whose read end becomes readable on cancel and is never drained, so any number
/// of polls (a connect's, a wait's) see it, now or later.
public final class LinkCancellation: Sendable {
    /// Read end: readable once cancelled; polled alongside a connecting socket.
    let descriptor: Int32
    private let writeEnd: Int32
    private let cancelled = Atomic<Bool>(false)

    public init() throws(DeviceIOError) {
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else {
            throw .system("pipe", path: "cancellation", code: errno, fix: "the process may be out of file descriptors (raise ulimit -n)")
        }
        for end in ends {
            _ = fcntl(end, F_SETFD, FD_CLOEXEC)
            _ = fcntl(end, F_SETFL, fcntl(end, F_GETFL) | O_NONBLOCK)
        }
        descriptor = ends[0]
        writeEnd = ends[1]
    }

    deinit {
        _ = Glibc.close(descriptor)
        _ = Glibc.close(writeEnd)
    }

    /// Cancels the connect in progress and every later one; idempotent and thread-safe.
    public func cancel() {
        guard !cancelled.exchange(true, ordering: .sequentiallyConsistent) else { return }
        let byte: UInt8 = 1
        _ = withUnsafePointer(to: byte) { Glibc.write(writeEnd, $0, 1) }
    }

    /// Whether ``cancel()`` was called.
    public var isCancelled: Bool { cancelled.load(ordering: .sequentiallyConsistent) }

    /// Blocks until ``cancel()`` or until `timeout` passes (nil: no limit). Returns whether it was cancelled.
    /// Blocks the calling thread: call it on a dedicated thread.
    @discardableResult
    public func wait(timeout: Duration?) -> Bool {
        let clock = ContinuousClock()
        let deadline = timeout.map { clock.now.advanced(by: $0) }
        while !isCancelled {
            let wait: Int32 = deadline.map { NodeDescriptor.milliseconds(until: $0, clock: clock) } ?? -1
            if let deadline, clock.now >= deadline { return false }
            var descriptors = [pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)]
            _ = poll(&descriptors, 1, wait)
        }
        return true
    }
}
