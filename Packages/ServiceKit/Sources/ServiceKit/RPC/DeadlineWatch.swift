import Dispatch
import Synchronization

/// Cancels tasks whose deadline has passed, with one timer for the whole process. A sleeping
/// task per request would arm a dispatch timer per request that stays armed until it fires, even
/// after the request is long done (at thousands of requests a second, tens of thousands of
/// them), and a task of its own per request costs a thread hop each.
final class DeadlineWatch: Sendable {
    /// The watched task, cancelled only under `entries`' lock: `finish`, which the task calls
    /// before it ends, takes the same lock, so the task is alive whenever it is cancelled.
    private struct Entry: @unchecked Sendable {
        var deadline: ContinuousClock.Instant
        var task: UnsafeCurrentTask
    }

    private let entries = Mutex<(next: UInt64, byID: [UInt64: Entry])>((0, [:]))
    /// Dispatch sources are thread-safe; the protocol just does not say so.
    nonisolated(unsafe) private let timer: any DispatchSourceTimer

    /// How late past its deadline work may be cancelled.
    static let resolution = Duration.milliseconds(20)

    init() {
        timer = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "servicekit.deadlines"))
        timer.setEventHandler { [weak self] in self?.sweep() }
        let interval = DispatchTimeInterval.milliseconds(Int(Self.resolution.components.attoseconds / 1_000_000_000_000_000))
        timer.schedule(deadline: .now() + interval, repeating: interval, leeway: .milliseconds(5))
        timer.resume()
    }

    deinit {
        timer.cancel()
    }

    /// Cancels the calling task once `deadline` has passed, unless it calls `finish(_:)` first
    /// (which it must, before it ends).
    func watchCurrentTask(until deadline: ContinuousClock.Instant) -> UInt64 {
        withUnsafeCurrentTask { task in
            guard let task else { preconditionFailure("DeadlineWatch needs a task") }
            return entries.withLock { entries in
                entries.next += 1
                entries.byID[entries.next] = Entry(deadline: deadline, task: task)
                return entries.next
            }
        }
    }

    /// Stops watching; false when the deadline had already passed (and the task was cancelled).
    func finish(_ id: UInt64) -> Bool {
        entries.withLock { $0.byID.removeValue(forKey: id) != nil }
    }

    private func sweep() {
        let now = ContinuousClock.now
        entries.withLock { entries in
            for (id, entry) in entries.byID where entry.deadline <= now {
                entries.byID[id] = nil
                entry.task.cancel()
            }
        }
    }
}
