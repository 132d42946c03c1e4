import Logging
import NATSKit
import RampartModels
import Synchronization

/// Counts calls per key in a NATS key-value bucket shared by every replica (RL-2).
///
/// Each key's state is changed only by a compare-and-set on its revision: a replica that lost a
/// race re-reads and decides again, so across replicas no more calls are admitted than the quota
/// allows. Two things keep round trips down:
/// - each replica remembers the last state and revision it saw per key, and writes against that
///   revision straight away: one round trip per decision when it is current, two when another
///   replica wrote in between;
/// - calls for the same key that arrive while a write is in flight wait and are decided
///   together, then stored in one write, so a hot key costs one write per batch, not per call.
///
/// A refusal needs no write. Deciding it from a remembered state that another replica has since
/// changed is still right: other replicas only add admissions, which can only make the answer
/// stricter, and time is applied afresh at every decision.
final class Limiter: Sendable {
    struct Call: Sendable {
        var cost: UInt32
        var quota: Quota
        var algorithm: RateLimitPolicy.Algorithm
    }

    private struct Waiter {
        var call: Call
        var continuation: CheckedContinuation<Verdict, any Error>
    }

    private struct Slot {
        /// The state and revision last seen; nil when unknown. Revision 0: the key is absent.
        var known: (state: CounterState?, revision: UInt64)?
        var waiting: [Waiter] = []
        var busy = false
    }

    private let bucket: KeyValueBucket
    private let logger: Logger
    private let slots = Mutex<[String: Slot]>([:])
    private let clock: @Sendable () -> Int64
    /// Compare-and-set attempts per batch before giving up with `unavailable`.
    static let maximumAttempts = 16
    /// Remembered keys; idle ones beyond this are forgotten (and read again when next used).
    static let rememberedKeys = 100_000

    init(bucket: KeyValueBucket, logger: Logger, clock: @escaping @Sendable () -> Int64) {
        self.bucket = bucket
        self.logger = logger
        self.clock = clock
    }

    /// Decides `call` for `key`, after any calls for the same key already waiting.
    func admit(_ call: Call, key: String) async throws -> Verdict {
        try await withCheckedThrowingContinuation { continuation in
            let start = slots.withLock { slots in
                if slots.count >= Self.rememberedKeys, slots[key] == nil { Self.forgetIdle(&slots) }
                slots[key, default: Slot()].waiting.append(Waiter(call: call, continuation: continuation))
                if slots[key]!.busy { return false }
                slots[key]!.busy = true
                return true
            }
            if start {
                Task { await self.drain(key) }
            }
        }
    }

    /// Decides batches for `key` until nobody waits.
    private func drain(_ key: String) async {
        while true {
            let next: (waiters: [Waiter], known: (state: CounterState?, revision: UInt64)?)? = slots.withLock { slots in
                guard var slot = slots[key], !slot.waiting.isEmpty else {
                    slots[key]?.busy = false
                    return nil
                }
                defer {
                    slot.waiting = []
                    slots[key] = slot
                }
                return (slot.waiting, slot.known)
            }
            guard let (waiters, known) = next else { return }
            let remembered = await decide(waiters, key: key, known: known)
            slots.withLock { $0[key]?.known = remembered }
        }
    }

    /// Decides a batch, writes it, resumes every waiter; returns what to remember.
    private func decide(
        _ waiters: [Waiter],
        key: String,
        known: (state: CounterState?, revision: UInt64)?
    ) async -> (state: CounterState?, revision: UInt64)? {
        var known = known
        for attempt in 1...Self.maximumAttempts {
            do {
                let current: (state: CounterState?, revision: UInt64)
                if let known {
                    current = known
                } else {
                    current = try await read(key)
                }
                let now = clock()
                var state = current.state
                var verdicts: [Verdict] = []
                verdicts.reserveCapacity(waiters.count)
                for waiter in waiters {
                    var counter = state ?? Self.emptyState(waiter.call.algorithm)
                    let verdict = counter.admit(cost: waiter.call.cost, quota: waiter.call.quota, now: now)
                    if verdict.allowed { state = counter }
                    verdicts.append(verdict)
                }
                guard verdicts.contains(where: \.allowed), let state else {
                    resume(waiters, with: verdicts)
                    return current
                }
                let value = state.encoded
                let revision =
                    current.revision == 0
                    ? try await bucket.create(key, value)
                    : try await bucket.update(key, value, expectedRevision: current.revision)
                resume(waiters, with: verdicts)
                return (state, revision)
            } catch let error as NATSError where error.kind == .wrongLastRevision || error.kind == .keyExists {
                // Another replica wrote first: read its state and decide again.
                known = nil
                if attempt > 2 {
                    try? await Task.sleep(for: .microseconds(Int.random(in: 0...(200 * attempt))))
                }
            } catch {
                logger.error("rate-limit state unavailable", metadata: ["key": "\(key)", "error": "\(error)"])
                fail(waiters, RampartError(.unavailable, "rate-limit state is unavailable"))
                return nil
            }
        }
        logger.warning("rate-limit key too contended", metadata: ["key": "\(key)"])
        fail(waiters, RampartError(.unavailable, "rate-limit state is too contended, retry"))
        return nil
    }

    private func read(_ key: String) async throws -> (state: CounterState?, revision: UInt64) {
        guard let entry = try await bucket.latest(key) else { return (nil, 0) }
        guard entry.operation == .put else { return (nil, entry.revision) }
        return (CounterState(decoding: entry.value), entry.revision)
    }

    private static func emptyState(_ algorithm: RateLimitPolicy.Algorithm) -> CounterState {
        switch algorithm {
        case .slidingWindow: .slidingWindow([])
        case .gcra: .gcra(scaledArrival: 0, limit: 1)
        }
    }

    private func resume(_ waiters: [Waiter], with verdicts: [Verdict]) {
        for (waiter, verdict) in zip(waiters, verdicts) { waiter.continuation.resume(returning: verdict) }
    }

    private func fail(_ waiters: [Waiter], _ error: RampartError) {
        for waiter in waiters { waiter.continuation.resume(throwing: error) }
    }

    private static func forgetIdle(_ slots: inout [String: Slot]) {
        slots = slots.filter { $0.value.busy || !$0.value.waiting.isEmpty }
    }
}
