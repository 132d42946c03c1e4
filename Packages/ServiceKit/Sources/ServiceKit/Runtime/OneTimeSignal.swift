import Synchronization

/// Something that happens once (a service has started, a watch has caught up), waited for by
/// any number of tasks. A waiting task that is cancelled stops waiting.
public final class OneTimeSignal: Sendable {
    private let state = Mutex<(isSet: Bool, waiters: [UInt64: CheckedContinuation<Void, Never>], next: UInt64)>((false, [:], 0))

    public init() {}

    public var isSet: Bool { state.withLock(\.isSet) }

    public func signal() {
        let waiters = state.withLock { state in
            state.isSet = true
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns once signalled, or when the task is cancelled.
    public func wait() async {
        let id = state.withLock { state in
            state.next += 1
            return state.next
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let resumeNow = state.withLock { state in
                    if state.isSet || Task.isCancelled { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
        }
    }
}
