import Synchronization

/// Wakes a polling loop early: work arrived, so the loop need not wait for its next poll. A
/// signal while nobody waits is kept (one, however many arrive) for the next wait.
///
/// Each round of waiting shares a `OneTimeSignal`. (An `AsyncStream` does not do here: the
/// iteration a timeout cancels finishes the stream, and every later wait returns at once, so
/// the loop spins.)
public final class WakeSignal: Sendable {
    private let state = Mutex<(pending: Bool, round: OneTimeSignal?)>((false, nil))

    public init() {}

    public func signal() {
        let round = state.withLock { state -> OneTimeSignal? in
            guard let round = state.round else {
                state.pending = true
                return nil
            }
            state.round = nil
            return round
        }
        round?.signal()
    }

    /// Returns at the next signal (at once if one is pending), after `timeout`, or when the
    /// task is cancelled.
    public func wait(upTo timeout: Duration) async {
        let round = state.withLock { state -> OneTimeSignal? in
            if state.pending {
                state.pending = false
                return nil
            }
            if let round = state.round { return round }
            let round = OneTimeSignal()
            state.round = round
            return round
        }
        guard let round else { return }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await round.wait() }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
        }
    }
}
