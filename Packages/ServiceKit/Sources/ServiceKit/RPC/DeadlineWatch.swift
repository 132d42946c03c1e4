import RampartModels
import Synchronization

/// Ends work whose deadline has passed, with one sweep for all the work of its owner (an
/// `RPCServer`, whose `run()` runs `sweep()`). Each piece of work runs beside a waiter that the
/// sweep wakes at the deadline, so none arms a timer of its own: a sleeping task per request
/// would leave a timer armed until it fires, long after its request is done (at thousands of
/// requests a second, tens of thousands of them).
final class DeadlineWatch: Sendable {
    private struct Entry {
        var deadline: ContinuousClock.Instant
        var expired = false
        /// The waiter, once it waits: resumed with true at the deadline, false when released.
        var waiter: CheckedContinuation<Bool, Never>?
    }

    private enum Outcome<Value: Sendable>: Sendable {
        case finished(Result<Value, any Error>)
        case expired, released
    }

    private let entries = Mutex<(next: UInt64, byID: [UInt64: Entry])>((0, [:]))

    /// How late past its deadline work may be cancelled.
    static let resolution = Duration.milliseconds(20)

    /// Wakes the waiters whose deadline has passed, every `resolution`, until cancelled.
    func sweep() async {
        while (try? await Task.sleep(for: Self.resolution)) != nil {
            let now = ContinuousClock.now
            let due = entries.withLock { entries in
                var due: [CheckedContinuation<Bool, Never>] = []
                for (id, entry) in entries.byID where !entry.expired && entry.deadline <= now {
                    if let waiter = entry.waiter {
                        entries.byID[id] = nil
                        due.append(waiter)
                    } else {
                        entries.byID[id]?.expired = true
                    }
                }
                return due
            }
            for waiter in due { waiter.resume(returning: true) }
        }
    }

    /// `body`'s result, unless `deadline` passes first: then `body` is cancelled, and once it
    /// has returned, `deadline_exceeded` is thrown (nobody waits for its answer any more).
    func run<Value: Sendable>(
        until deadline: ContinuousClock.Instant,
        _ body: @escaping @Sendable () async throws -> Value
    ) async throws -> Value {
        let id = entries.withLock { entries in
            entries.next += 1
            entries.byID[entries.next] = Entry(deadline: deadline)
            return entries.next
        }
        let (result, expired) = await withTaskGroup(of: Outcome<Value>.self) { group in
            group.addTask {
                let result: Result<Value, any Error>
                do {
                    result = .success(try await body())
                } catch {
                    result = .failure(error)
                }
                self.release(id)
                return .finished(result)
            }
            group.addTask { await self.expiry(id) ? .expired : .released }
            var result: Result<Value, any Error>?
            var expired = false
            for await outcome in group {
                switch outcome {
                case .finished(let finished): result = finished
                case .expired:
                    expired = true
                    group.cancelAll()
                case .released: break
                }
            }
            return (result, expired)
        }
        guard !expired, let result else { throw RampartError(.deadlineExceeded, "deadline exceeded") }
        return try result.get()
    }

    /// Work watched now.
    var watching: Int { entries.withLock { $0.byID.count } }

    /// Waits for `id`'s deadline (true) or its release (false).
    private func expiry(_ id: UInt64) async -> Bool {
        await withTaskCancellationHandler {
            await withCheckedContinuation { waiter in
                let now: Bool? = entries.withLock { entries in
                    guard let entry = entries.byID[id] else { return false }
                    guard !entry.expired else {
                        entries.byID[id] = nil
                        return true
                    }
                    entries.byID[id]?.waiter = waiter
                    return nil
                }
                if let now { waiter.resume(returning: now) }
            }
        } onCancel: {
            release(id)
        }
    }

    /// Stops watching `id`, waking its waiter.
    private func release(_ id: UInt64) {
        entries.withLock { $0.byID.removeValue(forKey: id) }?.waiter?.resume(returning: false)
    }
}
