import Hummingbird

/// What a credential opens, as route groups in the request path's order (ARCHITECTURE): after
/// the edge, a group authenticates the caller, then, under `/v1/tenants/{tenant_id}/`, checks
/// that the path names the caller's tenant, then the tenant's IP allowlist. A route area adds
/// its permission and other requirements on the group it is given (`requiring`).
struct RouteScopes {
    let router: Router<GatewayRequestContext>
    let authenticator: Authenticator
    let allowlists: TenantAllowlists
    let permissions: PermissionChecker
    /// How recent the proof of a `recentProof` route must be.
    let stepUpSeconds: Int64

    /// Routes for a verified caller calling from an address their tenant allows.
    func signedIn(_ path: RouterPath = "", accepts: Caller.Accepts = .accessToken) -> RouterGroup<CallerContext> {
        authenticated(path, accepts).add(middleware: AllowlistMiddleware(allowlists: allowlists))
    }

    /// `/v1/tenants/{tenant_id}/…`: as `signedIn`, and only the caller's own tenant, checked
    /// before the allowlist is asked of tenants.
    func tenant(_ path: RouterPath = "", accepts: Caller.Accepts = .accessToken) -> RouterGroup<CallerContext> {
        authenticated(RouterPath("/v1/tenants/:tenant_id").appendingPath(path), accepts)
            .add(middleware: TenantPathMiddleware())
            .add(middleware: AllowlistMiddleware(allowlists: allowlists))
    }

    /// PERM-2: the permission `action` needs.
    func permission(_ action: String) -> PermissionMiddleware {
        PermissionMiddleware(action: action, permissions: permissions)
    }

    /// AUTH-11, for a route that gives power beyond the caller's own account.
    func verifiedEmail(_ doing: String) -> VerifiedEmailMiddleware {
        VerifiedEmailMiddleware(doing: doing)
    }

    /// Step-up, for a route that cannot be undone or sheds a defence.
    func recentProof(_ doing: String) -> RecentProofMiddleware {
        RecentProofMiddleware(doing: doing, maxAgeSeconds: stepUpSeconds)
    }

    private func authenticated(_ path: RouterPath, _ accepts: Caller.Accepts) -> RouterGroup<CallerContext> {
        router.group(path)
            .add(middleware: AuthenticateMiddleware(authenticator: authenticator, accepts: accepts))
            .group(context: CallerContext.self)
    }
}
