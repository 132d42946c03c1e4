import HTTPTypes
import Hummingbird
import RampartModels
import RateLimitKit
import ServiceKit
import Synchronization

/// RL-1's `api` policy on every request but the health probes, keyed by the client's address
/// (the limiter groups IPv6 by /64), which also enforces fail2ban's bans (RL-3) at the edge. It
/// runs before authentication: its key needs nothing from the credential, and a flood of bad
/// tokens is limited before any is verified. When the limiter cannot be asked the request gets
/// 503, unless `RAMPART_GATEWAY_API_LIMIT_FAILURE` is `open`. Every decision of the request
/// (an API key's own limit too) goes out in the RateLimit fields (RL-4), refusals included.
struct APIRateLimitMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext

    let rateLimit: RateLimitClient

    static let policy = "api"
    /// Probes come from the platform, often many a second, and answer nothing about tenants.
    static let exempt: Set<String> = ["/healthz", "/readyz"]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard !Self.exempt.contains(request.uri.path), !context.fromConsole, let ip = context.clientIP else {
            return try await next(request, context)
        }
        let record = RateLimitRecord()
        var context = context
        context.rateLimits = record
        var response: Response
        switch await rateLimit.check(policy: Self.policy, key: ip, context: context.anonymousCall(timeout: .seconds(2))) {
        case .allowed(let decision):
            record.add(decision)
            response = try await next(request, context)
        case .allowedUnchecked:
            response = try await next(request, context)
        case .refused(let decision):
            record.add(decision)
            let detail =
                decision.banned
                ? "requests from your network are blocked for a while after repeated failures"
                : "too many requests from your address: at most \(decision.limit) in \(decision.windowSeconds) s"
            response = Problem(RampartError(.rateLimited, detail), requestID: context.requestID).response()
        case .unavailable:
            response = Problem(RampartError(.unavailable, "the rate limiter is unavailable: try again shortly"), requestID: context.requestID)
                .response()
        }
        for field in RateLimitFields.headers(for: record.all) {
            if let name = HTTPField.Name(field.name) { response.headers[name] = field.value }
        }
        return response
    }
}

/// The rate-limit decisions taken for one request (the client's address, then perhaps its API
/// key), so that the response can carry all of them (RL-4). A reference: authentication adds
/// to it after this middleware has passed the context on.
final class RateLimitRecord: Sendable {
    private let decisions = Mutex<[Rampart_V1_RateLimitDecision]>([])

    func add(_ decision: Rampart_V1_RateLimitDecision) {
        decisions.withLock { $0.append(decision) }
    }

    var all: [Rampart_V1_RateLimitDecision] { decisions.withLock { $0 } }
}
