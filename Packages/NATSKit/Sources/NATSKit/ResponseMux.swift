import CNATS
import Dispatch
import Synchronization

/// Request/reply without a blocked thread: one wildcard inbox subscription per connection
/// (`_INBOX.<unique>.*`), a token per request, and a continuation resumed straight from
/// nats.c's delivery thread when the reply arrives.
///
/// Timeouts are enforced by one sweep every 25 ms rather than a timer per request: arming a
/// Dispatch timer per request woke Dispatch's timer thread on every call, which showed in
/// request/reply latency.
final class ResponseMux: Sendable {
    private struct Waiter {
        var continuation: CheckedContinuation<NATSMessage, any Error>
        var deadline: ContinuousClock.Instant
        var timeout: Duration
        var subject: String
    }

    private struct State {
        var nextToken: UInt64 = 0
        var waiters: [UInt64: Waiter] = [:]
        var subscription: CPointer?
    }

    static let sweepInterval = Duration.milliseconds(25)

    let prefix: String
    private let state = Mutex(State())
    /// Dispatch sources are thread-safe; the protocol just does not say so.
    nonisolated(unsafe) private let sweeper: any DispatchSourceTimer

    init(connection: CPointer) throws {
        var inbox: UnsafeMutablePointer<CChar>?
        try check(natsInbox_Create(&inbox), "create inbox")
        defer { natsInbox_Destroy(inbox) }
        prefix = String(cString: inbox!) + "."
        sweeper = DispatchSource.makeTimerSource(queue: DispatchQueue.global())

        // Retained for nats.c; released by the subscription's completion callback.
        let closure = Unmanaged.passRetained(self).toOpaque()
        var subscription: OpaquePointer?
        let status = natsConnection_Subscribe(
            &subscription,
            connection.raw,
            prefix + "*",
            { _, _, message, closure in
                guard let message else { return }
                defer { natsMsg_Destroy(message) }
                let mux = Unmanaged<ResponseMux>.fromOpaque(closure!).takeUnretainedValue()
                if natsMsg_IsNoResponders(message) {
                    mux.resolve(subject: String(cString: natsMsg_GetSubject(message)), with: .failure(NATSError(.noResponders, "no responders")))
                } else {
                    let reply = NATSMessage(copying: message)
                    mux.resolve(subject: reply.subject, with: .success(reply))
                }
            },
            closure
        )
        guard status == NATS_OK, let subscription else {
            Unmanaged<ResponseMux>.fromOpaque(closure).release()
            throw NATSError(status: status, operation: "subscribe to the reply inbox")
        }
        if natsSubscription_SetOnCompleteCB(subscription, { Unmanaged<ResponseMux>.fromOpaque($0!).release() }, closure) != NATS_OK {
            // Already closed: its handler has run for the last time.
            Unmanaged<ResponseMux>.fromOpaque(closure).release()
        }
        state.withLock { $0.subscription = CPointer(raw: subscription) }
        let interval = DispatchTimeInterval.milliseconds(Int(Self.sweepInterval.milliseconds))
        sweeper.schedule(deadline: .now() + interval, repeating: interval, leeway: .milliseconds(5))
        sweeper.setEventHandler { [weak self] in self?.failExpired() }
        sweeper.resume()
    }

    /// Called by the owning connection's deinit, before the connection is destroyed.
    func destroy() {
        sweeper.cancel()
        let subscription = state.withLock { state in
            defer { state.subscription = nil }
            return state.subscription
        }
        if let subscription { natsSubscription_Destroy(subscription.raw) }
        failAll(NATSError(.connectionClosed, "connection closed"))
    }

    func nextReplySubject() -> (UInt64, String) {
        let token = state.withLock { state in
            state.nextToken &+= 1
            return state.nextToken
        }
        return (token, prefix + String(token))
    }

    /// Registers a request that fails with `.timeout` once `timeout` has passed without a reply.
    func register(_ token: UInt64, _ continuation: CheckedContinuation<NATSMessage, any Error>, timeout: Duration, subject: String) {
        let waiter = Waiter(continuation: continuation, deadline: .now + timeout, timeout: timeout, subject: subject)
        state.withLock { $0.waiters[token] = waiter }
    }

    func fail(_ token: UInt64, _ error: any Error) {
        state.withLock { $0.waiters.removeValue(forKey: token) }?.continuation.resume(throwing: error)
    }

    private func failExpired() {
        let now = ContinuousClock.now
        let expired = state.withLock { state in
            let tokens = state.waiters.filter { $0.value.deadline <= now }.map(\.key)
            return tokens.compactMap { state.waiters.removeValue(forKey: $0) }
        }
        for waiter in expired {
            waiter.continuation.resume(throwing: NATSError(.timeout, "no reply from \(waiter.subject) within \(waiter.timeout)"))
        }
    }

    private func resolve(subject: String, with result: Result<NATSMessage, any Error>) {
        guard subject.hasPrefix(prefix), let token = UInt64(subject.dropFirst(prefix.count)) else { return }
        // A reply after the timeout finds no waiter and is dropped.
        state.withLock { $0.waiters.removeValue(forKey: token) }?.continuation.resume(with: result)
    }

    private func failAll(_ error: any Error) {
        let waiters = state.withLock { state in
            defer { state.waiters = [:] }
            return state.waiters
        }
        for waiter in waiters.values { waiter.continuation.resume(throwing: error) }
    }
}
