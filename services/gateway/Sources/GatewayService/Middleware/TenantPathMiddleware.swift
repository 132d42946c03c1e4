import Hummingbird
import RampartModels
import ServiceKit

/// A route under `/v1/tenants/{tenant_id}/` is for the credential's own tenant: checked as
/// soon as the caller is known, before anything is asked of another service (the allowlist
/// comes from tenants). A malformed ID is a 404, another tenant's a 403.
struct TenantPathMiddleware: RouterMiddleware {
    typealias Context = CallerContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard try context.pathTenant() == context.caller.tenant else {
            throw RampartError(.permissionDenied, "your credentials are for another tenant")
        }
        return try await next(request, context)
    }
}

extension CallerContext {
    /// The tenant the path names, well-formed (any tenant: the caller's is checked apart).
    func pathTenant() throws -> TenantID {
        guard let text = parameters.get("tenant_id"), let tenant = TenantID(text), tenant.hex == text else {
            throw RampartError.noSuchTenant
        }
        return tenant
    }
}
