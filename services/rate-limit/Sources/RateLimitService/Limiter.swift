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
///   revision straight away: one round trip per decision when it is current (or the key is
///   new), three when another replica wrote in between (the failed write, a read, the write);
/// - calls for the same key that arrive while a write is in flight wait and are decided
///   together, then stored in one write, so a hot key costs one write per batch, not per call.
///
/// Every replica also follows the bucket's updates and takes in the other replicas' writes, so a
/// key whose calls land on different replicas (the queue group spreads them) is usually current
/// where the next call lands: one round trip instead of three. The updates only spare round
/// trips; the compare-and-set alone keeps the count right, so a late or lost update costs a
/// retry, never an admission too many.
///
/// A refusal needs no write. Deciding it from a remembered state that another replica has since
/// changed is still right: other replicas only add admissions, which can only make the answer
/// stricter, and time is applied afresh at every decision.
final class Limiter: Sendable {
    struct Call: Sendable {
        var cost: UInt32
        var quota: Quota
        var algorithm: RateLimitPolicy.Algorithm
        /// Gives `cost` back instead of taking it.
        var refund = false
    }

    private struct Waiter {
        var call: Call
        var continuation: CheckedContinuation<Verdict, any Error>
    }

    /// A key's state and revision as last seen. Revision 0: the key is absent.
    private typealias Known = (state: CounterState?, revision: UInt64)

    private struct Slot {
        /// Nil when unknown.
        var known: Known?
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
    ///
    /// The first caller for an idle key decides in its own task (no hop to another task); calls
    /// that arrive while it writes queue up and are decided together by whoever leads next.
    func admit(_ call: Call, key: String) async throws -> Verdict {
        let lead: Known?? = slots.withLock { slots in
            if slots.count >= Self.rememberedKeys, slots[key] == nil { Self.forgetIdle(&slots) }
            if slots[key]?.busy == true { return .none }
            slots[key, default: Slot()].busy = true
            return .some(slots[key]!.known)
        }
        if case .some(let known) = lead {
            let (outcome, remembered) = await decide([call], key: key, known: known)
            let handOff = slots.withLock { slots in
                Self.remember(remembered, for: key, in: &slots)
                if slots[key]?.waiting.isEmpty ?? true {
                    slots[key]?.busy = false
                    return false
                }
                return true
            }
            if handOff { Task { await self.drain(key) } }
            return try outcome.get()[0]
        }
        return try await withCheckedThrowingContinuation { continuation in
            let start = slots.withLock { slots in
                slots[key, default: Slot()].waiting.append(Waiter(call: call, continuation: continuation))
                if slots[key]!.busy { return false }
                slots[key]!.busy = true
                return true
            }
            // The leader finished between our two looks: lead the queue from a task of its own.
            if start { Task { await self.drain(key) } }
        }
    }

    /// Decides queued batches for `key` until nobody waits.
    private func drain(_ key: String) async {
        while true {
            let next: (waiters: [Waiter], known: Known?)? = slots.withLock { slots in
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
            let (outcome, remembered) = await decide(waiters.map(\.call), key: key, known: known)
            slots.withLock { Self.remember(remembered, for: key, in: &$0) }
            switch outcome {
            case .success(let verdicts):
                for (waiter, verdict) in zip(waiters, verdicts) { waiter.continuation.resume(returning: verdict) }
            case .failure(let error):
                for waiter in waiters { waiter.continuation.resume(throwing: error) }
            }
        }
    }

    /// Decides a batch of calls in order and stores the result; returns the verdicts and what
    /// to remember of the key.
    private func decide(_ calls: [Call], key: String, known: Known?) async -> (Result<[Verdict], RampartError>, Known?) {
        var known = known
        for attempt in 1...Self.maximumAttempts {
            do {
                // A key this replica has not seen is most likely new: write it straight away as
                // such, and read it only if that write finds it there.
                let current: Known
                if let known {
                    current = known
                } else if attempt == 1 {
                    current = (nil, 0)
                } else {
                    current = try await read(key)
                }
                let now = clock()
                var state = current.state
                var verdicts: [Verdict] = []
                verdicts.reserveCapacity(calls.count)
                for call in calls {
                    var counter = state.flatMap { $0.counts(call.algorithm) ? $0 : nil } ?? Self.emptyState(call.algorithm)
                    let verdict =
                        call.refund
                        ? counter.refund(cost: call.cost, quota: call.quota, now: now) : counter.admit(cost: call.cost, quota: call.quota, now: now)
                    if verdict.allowed { state = counter }
                    verdicts.append(verdict)
                }
                guard verdicts.contains(where: \.allowed), let state else {
                    return (.success(verdicts), current)
                }
                let value = state.encoded
                let revision =
                    current.revision == 0
                    ? try await bucket.create(key, value)
                    : try await bucket.update(key, value, expectedRevision: current.revision)
                return (.success(verdicts), (state, revision))
            } catch let error as NATSError where error.kind == .wrongLastRevision || error.kind == .keyExists {
                // Another replica wrote first: read its state and decide again.
                known = nil
                if attempt > 2 {
                    try? await Task.sleep(for: .microseconds(Int.random(in: 0...(200 * attempt))))
                }
            } catch {
                logger.error("rate-limit state unavailable", metadata: ["key": "\(key)", "error": "\(error)"])
                return (.failure(RampartError(.unavailable, "rate-limit state is unavailable")), nil)
            }
        }
        logger.warning("rate-limit key too contended", metadata: ["key": "\(key)"])
        return (.failure(RampartError(.unavailable, "rate-limit state is too contended, retry")), nil)
    }

    /// Keeps what a decision learnt of `key`, unless an update has brought a later revision in
    /// meanwhile; after a failure (nil) the key is read afresh next time.
    private static func remember(_ known: Known?, for key: String, in slots: inout [String: Slot]) {
        guard let known else {
            slots[key]?.known = nil
            return
        }
        if let held = slots[key]?.known, held.revision > known.revision { return }
        slots[key]?.known = known
    }

    /// Takes in a write from the bucket's updates: another replica's, or the echo of this one's
    /// (already known, and skipped before decoding).
    func observe(_ entry: KeyValueEntry) {
        func isNews(_ slots: [String: Slot]) -> Bool {
            if let held = slots[entry.key]?.known { return held.revision < entry.revision }
            return slots[entry.key] != nil || slots.count < Self.rememberedKeys
        }
        guard slots.withLock({ isNews($0) }) else { return }
        let known: Known = (entry.operation == .put ? CounterState(decoding: entry.value) : nil, entry.revision)
        slots.withLock { slots in
            if isNews(slots) { slots[entry.key, default: Slot()].known = known }
        }
    }

    /// The units a sliding-window `key` holds within the last `windowMilliseconds`, as this
    /// replica last saw it (its own writes and the updates of the others'); 0 when unknown. For
    /// escalation, which may lag a write by the update's delay: it never admits a call itself.
    func unitsHeld(_ key: String, windowMilliseconds: Int64, now: Int64) -> UInt64 {
        guard case .slidingWindow(let admissions) = slots.withLock({ $0[key]?.known?.state }) else { return 0 }
        return admissions.filter { $0.at > now - windowMilliseconds }.reduce(0) { $0 + UInt64($1.cost) }
    }

    /// The revision this replica holds for `key`, if any.
    func rememberedRevision(of key: String) -> UInt64? {
        slots.withLock { $0[key]?.known?.revision }
    }

    /// Follows the bucket's updates until cancelled or the connection fails.
    func followUpdates() async throws {
        for await entry in try await bucket.updates() {
            observe(entry)
        }
    }

    private func read(_ key: String) async throws -> Known {
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

    private static func forgetIdle(_ slots: inout [String: Slot]) {
        slots = slots.filter { $0.value.busy || !$0.value.waiting.isEmpty }
    }
}
