import NATSKit
import RampartModels
import ServiceKit
import Synchronization

/// Sends checks to rate-limit, several to a request once they queue up.
///
/// Up to `maximumRequestsOut` checks go out at once, each as its own `check` request, so a
/// quiet client waits for nothing. Checks that arrive while that many are out wait, and when a
/// request comes back, everything waiting leaves as one `batch_check` (up to `maximumBatch`).
/// Under load this trades a request and a reply per decision for one per batch, for the client,
/// the NATS server and rate-limit alike, without holding any check back for a timer.
final class CheckBatcher: Sendable {
    typealias Answer = Result<Rampart_V1_RateLimitDecision, RampartError>

    private struct Waiting {
        var check: Rampart_V1_RateLimitBatchCheck
        /// Unix milliseconds, the caller's.
        var deadline: Int64
        var continuation: CheckedContinuation<Answer, Never>
    }

    private struct State {
        var requestsOut = 0
        var waiting: [Waiting] = []

        /// Takes a request slot if one is free.
        mutating func takeRequestSlot() -> Bool {
            guard requestsOut < CheckBatcher.maximumRequestsOut else { return false }
            requestsOut += 1
            return true
        }
    }

    static let maximumRequestsOut = 4
    static let maximumBatch = 128

    private let rpc: RPCClient
    private let state = Mutex(State())

    init(rpc: RPCClient) {
        self.rpc = rpc
    }

    func check(_ request: Rampart_V1_RateLimitCheckRequest, context: CallContext) async -> Answer {
        if state.withLock({ $0.takeRequestSlot() }) {
            let answer = await single(request, context: context)
            requestDone()
            return answer
        }
        var check = Rampart_V1_RateLimitBatchCheck()
        check.check = request
        check.clientIp = context.clientIP ?? ""
        return await withCheckedContinuation { continuation in
            let waiting = Waiting(check: check, deadline: context.deadline, continuation: continuation)
            let sendNow = state.withLock { state in
                // A request came back between the two looks: nothing else is waiting.
                if state.takeRequestSlot() { return true }
                state.waiting.append(waiting)
                return false
            }
            if sendNow { Task { await self.send([waiting]) } }
        }
    }

    /// A request came back: its slot takes whatever waits, or is given up.
    private func requestDone() {
        let batch: [Waiting]? = state.withLock { state in
            guard !state.waiting.isEmpty else {
                state.requestsOut -= 1
                return nil
            }
            let batch = Array(state.waiting.prefix(Self.maximumBatch))
            state.waiting.removeFirst(batch.count)
            return batch
        }
        if let batch { Task { await self.send(batch) } }
    }

    private func single(_ request: Rampart_V1_RateLimitCheckRequest, context: CallContext) async -> Answer {
        do {
            return .success(try await rpc.call(Subjects.RateLimit.check, request, context: context))
        } catch {
            return .failure(Self.rampartError(error))
        }
    }

    private func send(_ batch: [Waiting]) async {
        defer { requestDone() }
        let now = WallClock.milliseconds()
        let live = batch.filter { $0.deadline > now }
        for expired in batch where expired.deadline <= now {
            expired.continuation.resume(returning: .failure(RampartError(.deadlineExceeded, "deadline passed before the check was sent")))
        }
        guard let deadline = live.map(\.deadline).min() else { return }
        var context = CallContext()
        context.deadline = deadline
        var request = Rampart_V1_RateLimitBatchCheckRequest()
        request.checks = live.map(\.check)
        do {
            let reply = try await rpc.call(Subjects.RateLimit.batchCheck, request, context: context)
            guard reply.results.count == live.count else {
                throw RampartError(.internal, "\(Subjects.RateLimit.batchCheck) answered \(reply.results.count) of \(live.count) checks")
            }
            for (waiting, result) in zip(live, reply.results) {
                switch result.result {
                case .decision(let decision): waiting.continuation.resume(returning: .success(decision))
                case .error(let error): waiting.continuation.resume(returning: .failure(RampartError(error)))
                case nil: waiting.continuation.resume(returning: .failure(RampartError(.internal, "a check came back unanswered")))
                }
            }
        } catch {
            let failure = Self.rampartError(error)
            for waiting in live { waiting.continuation.resume(returning: .failure(failure)) }
        }
    }

    private static func rampartError(_ error: any Error) -> RampartError {
        error as? RampartError ?? RampartError(.unavailable, "the rate limiter cannot be reached: try again shortly")
    }
}
