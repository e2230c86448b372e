import Foundation
import Synchronization

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

extension DedicatedThread {
    /// Starts `body` on a new thread at once and returns where its value will be: unlike work started
    /// from a `Task`, it runs even while other work keeps the concurrency pool busy.
    public static func launch<T: Sendable>(name: String, _ body: @escaping @Sendable () -> T) -> OnceValue<T> {
        let result = OnceValue<T>()
        start(name: name) { result.set(body()) }
        return result
    }
}

/// A value one thread sets once, which async code awaits without blocking a thread.
public final class OnceValue<T: Sendable>: Sendable {
    private struct State {
        var value: T?
        var waiters: [CheckedContinuation<T, Never>] = []
    }
    private let state = Mutex(State())

    public init() {}

    /// Sets the value and resumes everyone waiting; later calls are ignored (the first value stays).
    public func set(_ value: T) {
        let waiters = state.withLock { state -> [CheckedContinuation<T, Never>] in
            guard state.value == nil else { return [] }
            state.value = value
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(returning: value) }
    }

    /// The value if it has been set.
    public var current: T? { state.withLock { $0.value } }

    /// Suspends until the value is set.
    public var value: T {
        get async {
            await withCheckedContinuation { continuation in
                let ready = state.withLock { state -> T? in
                    if let value = state.value { return value }
                    state.waiters.append(continuation)
                    return nil
                }
                if let ready { continuation.resume(returning: ready) }
            }
        }
    }
}
