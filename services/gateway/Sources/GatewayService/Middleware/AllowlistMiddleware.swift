import Hummingbird

/// TEN-11: the caller's tenant admits the client's address, on every route a credential
/// opens (403 and an audit record otherwise).
struct AllowlistMiddleware: RouterMiddleware {
    typealias Context = CallerContext

    let allowlists: TenantAllowlists

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        try await allowlists.admit(context.caller, from: context.clientIP, call: context.call)
        return try await next(request, context)
    }
}
