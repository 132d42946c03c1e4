import HTTPTypes
import Hummingbird
import RampartModels
import ServiceKit
import TokenKit

/// PERM-2 for the caller as its credential says, before the owning service is called (which
/// checks again with its own data): a member by their roles, an API key by its scopes and its
/// creator's roles, a super-admin by the audited bypass. Cached per policy revision; a
/// presented consistency token is honoured. Permissions unreachable: 503.
struct PermissionMiddleware: RouterMiddleware {
    typealias Context = CallerContext

    let action: String
    let permissions: PermissionChecker

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var check = context.caller.permissionQuestion
        check.action = action
        check.atLeastRevision = try request.consistencyToken()
        let decision = try await permissions.check(check, context: context.call)
        guard decision.allowed else {
            throw RampartError(
                .permissionDenied,
                "this needs the \(action) permission, which you do not have here",
                details: ["reason": decision.reason]
            )
        }
        return try await next(request, context)
    }
}

/// AUTH-11 for a route that gives power beyond the caller's own account, as the access token
/// says (auth sets the claim from its table at every issue). An API key passes: auth makes
/// keys only for verified accounts.
struct VerifiedEmailMiddleware: RouterMiddleware {
    typealias Context = CallerContext

    /// What the route does, as the refusal names it ("Inviting a member").
    let doing: String

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if case .accessToken(let claims) = context.caller.credential, !claims.isEmailVerified { throw RampartError.emailUnverified(doing) }
        return try await next(request, context)
    }
}

/// Step-up (RFC 9470's challenge) for a route that cannot be undone or sheds a defence: a
/// session alone, stolen or left open, must not do it. The access token's `auth_time` says
/// when the person last proved every factor their account has (at sign-in, or by
/// `POST /v1/auth/step-up`); older than `maxAge`, 401 with `insufficient_user_authentication`.
struct RecentProofMiddleware: RouterMiddleware {
    typealias Context = CallerContext

    static let reason = "step_up_required"

    /// What the route does, as the refusal names it ("Deleting the organization").
    let doing: String
    let maxAgeSeconds: Int64

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        try requireRecentProof(context.caller)
        return try await next(request, context)
    }

    func requireRecentProof(_ caller: Caller, now: Int64 = WallClock.milliseconds() / 1000) throws {
        if case .accessToken(let claims) = caller.credential, let authTime = claims.auth_time, now - authTime <= maxAgeSeconds { return }
        throw RampartError(
            .unauthenticated,
            "\(doing) needs a recent proof that it is you: POST /v1/auth/step-up with a code from your app (or your password, without MFA), then retry with the access token it answers",
            details: ["reason": Self.reason, "max_age": String(maxAgeSeconds)]
        )
    }
}

/// PERM-3: platform operations, for a super-admin's access token only (never an API key).
struct SuperAdminMiddleware: RouterMiddleware {
    typealias Context = CallerContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard context.caller.isSuperAdmin else { throw RampartError(.permissionDenied, "only a platform super-admin may do this") }
        return try await next(request, context)
    }
}

extension RouterGroup<CallerContext> {
    /// A group of this one whose routes each pass `requirements` first, in order.
    func requiring(_ requirements: any MiddlewareProtocol<Request, Response, CallerContext>...) -> RouterGroup<CallerContext> {
        let requiring = self.group()
        for requirement in requirements { requiring.add(middleware: requirement) }
        return requiring
    }
}

extension Request {
    /// The `Rampart-Consistency-Token` a client presents (0 without one).
    func consistencyToken() throws -> UInt64 {
        guard let text = headers[.consistencyToken] else { return 0 }
        guard text.utf8.count <= 20, let revision = UInt64(text) else {
            throw RampartError(.invalidArgument, "Rampart-Consistency-Token must be a revision a write returned")
        }
        return revision
    }
}
