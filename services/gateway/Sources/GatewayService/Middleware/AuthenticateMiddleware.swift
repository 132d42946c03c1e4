import HTTPTypes
import Hummingbird
import RampartModels
import RateLimitKit
import ServiceKit
import TokenKit

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The caller a bearer credential proves (ARCHITECTURE "Request path"): an access token
/// verified here against auth's keys and the revocation list, or an API key verified by auth
/// (cached briefly) and held to its own rate limit (KEY-3).
struct Authenticator: Sendable {
    let tokens: AccessTokenCache
    let apiKeys: APIKeyCache
    let revocations: RevocationList
    let rateLimit: RateLimitClient
    /// How long a service has to answer: past it 504. The request's calls share one deadline,
    /// counted from here.
    let callTimeout: Duration

    /// 401 without a valid credential (403 for an API key where only a person may act; 429 for a
    /// key over its limit), 503 while the revocation list is loading.
    func authenticate(_ request: Request, _ context: GatewayRequestContext, accepts: Caller.Accepts) async throws -> Authenticated {
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer "), header.utf8.count < 8192 else {
            throw RampartError(.unauthenticated, "sign in: send Authorization: Bearer <access token or API key>")
        }
        // Until the revocation list is loaded, nothing is let in that might have been revoked.
        guard revocations.isCaughtUp else { throw RampartError(.unavailable, "the gateway is starting: try again shortly") }
        let credential = String(header.dropFirst(7))
        let caller: Caller
        if credential.hasPrefix("rk_") {
            guard accepts == .accessTokenOrAPIKey else { throw RampartError(.permissionDenied, "API keys cannot do this: sign in as a member") }
            caller = try await apiKeyCaller(credential, context)
        } else {
            caller = try await accessTokenCaller(credential)
        }
        return authenticated(caller, context)
    }

    /// An access token held elsewhere than the Authorization header (the console's cookie).
    func authenticate(accessToken token: String, _ context: GatewayRequestContext) async throws -> Authenticated {
        guard revocations.isCaughtUp else { throw RampartError(.unavailable, "the gateway is starting: try again shortly") }
        return authenticated(try await accessTokenCaller(token), context)
    }

    private func authenticated(_ caller: Caller, _ context: GatewayRequestContext) -> Authenticated {
        var call = context.anonymousCall(timeout: callTimeout)
        call.tenantID = caller.tenant
        call.principal = caller.principal
        return Authenticated(caller: caller, call: call)
    }

    private func accessTokenCaller(_ token: String) async throws -> Caller {
        do {
            let claims = try await tokens.verify(token)
            guard let tenant = TenantID(claims.tenant), UUID(uuidString: claims.sub) != nil else { throw TokenError.malformed }
            guard !revocations.isRevoked(.session, tenant: tenant, id: claims.sid) else {
                throw RampartError(.unauthenticated, "the session has ended: sign in again")
            }
            return Caller(credential: .accessToken(claims), tenant: tenant, principal: .user(claims.sub), sessionID: claims.sid)
        } catch let error as TokenError {
            throw RampartError(.unauthenticated, "the access token is not valid: \(error)")
        }
    }

    private func apiKeyCaller(_ key: String, _ context: GatewayRequestContext) async throws -> Caller {
        let call = context.anonymousCall(timeout: callTimeout)
        let verified = try await apiKeys.verify(key, context: call)
        guard let tenant = TenantID(verified.tenantID) else { throw RampartError(.unauthenticated, "the API key is not valid") }
        let caller = Caller(credential: .apiKey(verified), tenant: tenant, principal: .apiKey(verified.apiKeyID), sessionID: "")
        // KEY-3: each key within its own limit.
        switch await rateLimit.check(policy: "api_key", key: verified.apiKeyID, limit: verified.rateLimitPerMinute, context: call) {
        case .allowed(let decision):
            context.rateLimits?.add(decision)
            return caller
        case .allowedUnchecked:
            return caller
        case .refused(let decision):
            context.rateLimits?.add(decision)
            throw RampartError(
                .rateLimited,
                "this API key is over its limit of \(decision.limit) requests a minute",
                details: ["retry_after_ms": String(decision.retryAfterMs)]
            )
        case .unavailable(let error):
            throw RampartError(.unavailable, "the rate limiter is unavailable: try again shortly (\(error.code.name))")
        }
    }
}

/// The routes after it are for a verified caller only: it puts the caller in the context, and
/// the group then turns the context into a `CallerContext`.
struct AuthenticateMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext

    let authenticator: Authenticator
    let accepts: Caller.Accepts

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        context.authenticated = try await authenticator.authenticate(request, context, accepts: accepts)
        return try await next(request, context)
    }
}
