public import NATSKit
public import RampartModels
public import ServiceKit

/// Asks `rate-limit` whether a call may go ahead, and decides what happens when it cannot be
/// asked: login and registration fail closed (an attacker must not get unlimited guesses by
/// knocking the limiter over); other policies fail open only when configured to.
public struct RateLimitClient: Sendable {
    /// Policies that must never be let through unchecked, whatever the configuration says.
    public static let alwaysClosed: Set<String> = ["login", "login_account", "login_device", "register", "register_daily", "account_proof"]

    public enum Outcome: Sendable, Equatable {
        case allowed(Rampart_V1_RateLimitDecision)
        case refused(Rampart_V1_RateLimitDecision)
        /// The limiter could not be asked and the policy fails open: go ahead, without fields.
        case allowedUnchecked(RampartError)
        /// The limiter could not be asked (or refused the request as invalid) and the policy
        /// fails closed.
        case unavailable(RampartError)

        public var isAllowed: Bool {
            switch self {
            case .allowed, .allowedUnchecked: true
            case .refused, .unavailable: false
            }
        }
    }

    private let rpc: RPCClient
    private let checks: CheckBatcher
    private let failOpen: Set<String>

    /// `failOpen`: policies let through when the limiter is unreachable (`alwaysClosed` ones are
    /// ignored). Copies share one batcher: make one client and pass it around.
    public init(connection: NATSConnection, failOpen: Set<String> = []) {
        rpc = RPCClient(connection: connection)
        checks = CheckBatcher(rpc: rpc)
        self.failOpen = failOpen.subtracting(Self.alwaysClosed)
    }

    public func check(policy: String, key: String, cost: UInt32 = 1, limit: UInt32 = 0, context: CallContext) async -> Outcome {
        var request = Rampart_V1_RateLimitCheckRequest()
        request.policy = policy
        request.key = key
        request.cost = cost
        request.limit = limit
        switch await checks.check(request, context: context) {
        case .success(let decision):
            return decision.allowed ? .allowed(decision) : .refused(decision)
        case .failure(let error):
            let unreachable = [.unavailable, .deadlineExceeded, .internal].contains(error.code)
            return unreachable && failOpen.contains(policy) ? .allowedUnchecked(error) : .unavailable(error)
        }
    }

    /// Gives back a unit `check` took for `key`: the call turned out not to count. Best effort:
    /// when rate-limit cannot be told, the unit stays counted until it leaves the window.
    public func refund(policy: String, key: String, context: CallContext) async {
        var request = Rampart_V1_RateLimitCheckRequest()
        request.policy = policy
        request.key = key
        request.refund = true
        _ = try? await rpc.call(Subjects.RateLimit.refund, request, context: context)
    }

    /// Tells fail2ban (RL-3) that the client at `context.clientIP` failed a `kind` of check.
    /// Best effort: when rate-limit cannot be told, the caller still answers as it would.
    public func reportFailure(_ kind: Rampart_V1_FailureKind, context: CallContext) async {
        guard let ip = context.clientIP else { return }
        var report = Rampart_V1_ReportFailureRequest()
        report.ip = ip
        report.kind = kind
        _ = try? await rpc.call(Subjects.RateLimit.reportFailure, report, context: context)
    }
}

/// The response fields of RL-4: the IETF structured fields (draft-ietf-httpapi-ratelimit-headers)
/// `RateLimit-Policy: "api";q=60;w=60` and `RateLimit: "api";r=12;t=41`, the older
/// `RateLimit-Limit`/`-Remaining`/`-Reset` many clients still read, and `Retry-After` when refused.
public enum RateLimitFields {
    public static func headers(for decision: Rampart_V1_RateLimitDecision) -> [(name: String, value: String)] {
        headers(for: [decision])
    }

    /// Several policies applied to one request (the client's address and its API key, say): the
    /// structured fields list each; the older fields, which hold one policy, describe the one
    /// closest to refusing; `Retry-After` the longest wait among those refused.
    public static func headers(for decisions: [Rampart_V1_RateLimitDecision]) -> [(name: String, value: String)] {
        guard let tightest = decisions.min(by: { ($0.allowed ? 1 : 0, $0.remaining) < ($1.allowed ? 1 : 0, $1.remaining) }) else { return [] }
        let reset = seconds(roundingUp: tightest.resetMs)
        var fields: [(name: String, value: String)] = [
            ("RateLimit-Policy", decisions.map { "\"\($0.policy)\";q=\($0.limit);w=\($0.windowSeconds)" }.joined(separator: ", ")),
            ("RateLimit", decisions.map { "\"\($0.policy)\";r=\($0.remaining);t=\(seconds(roundingUp: $0.resetMs))" }.joined(separator: ", ")),
            ("RateLimit-Limit", String(tightest.limit)),
            ("RateLimit-Remaining", String(tightest.remaining)),
            ("RateLimit-Reset", String(reset)),
        ]
        if let wait = decisions.filter({ !$0.allowed }).map(\.retryAfterMs).max() {
            // Never 0: a client told to retry at once would hammer the limit.
            fields.append(("Retry-After", String(max(1, seconds(roundingUp: wait)))))
        }
        return fields
    }

    static func seconds(roundingUp milliseconds: UInt64) -> UInt64 {
        (milliseconds + 999) / 1000
    }
}

extension Rampart_V1_RateLimitDecision {
    /// The 429 a refused call answers: what was refused (`refusal`), when to try again in whole
    /// seconds (at least 1), and the policy.
    public func refusal(_ refusal: String) -> RampartError {
        RampartError(
            .rateLimited,
            "\(refusal): try again in \(max(1, (retryAfterMs + 999) / 1000)) s",
            details: ["retry_after_ms": String(retryAfterMs), "policy": policy]
        )
    }
}
