import Foundation

/// Runs blocking work (poll, read, write on descriptors) on a thread of its own.
///
/// The Swift concurrency pool has about one thread per core; a blocking call there stalls unrelated
/// tasks (on a 2-core hub, half of everything). Simulator and test drivers block on purpose, so they
/// always run here.
public enum DedicatedThread {
    /// Starts `body` on a new thread and returns at once.
    public static func start(name: String, _ body: @escaping @Sendable () -> Void) {
        let thread = Thread(block: body)
        thread.name = name
        thread.start()
    }

    /// Runs `body` on a new thread and suspends, without blocking, until it returns its value.
    public static func run<T: Sendable>(name: String, _ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            start(name: name) { continuation.resume(returning: body()) }
        }
    }
}
