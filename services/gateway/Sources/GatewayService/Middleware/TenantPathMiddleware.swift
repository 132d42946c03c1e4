import Hummingbird
import RampartModels
import ServiceKit

/// A route under `/v1/tenants/{tenant_id}/` is for the credential's own tenant: checked as
/// soon as the caller is known, before anything is asked of another service (the allowlist
/// comes from tenants). A malformed ID is a 404, another tenant's a 403.
struct TenantPathMiddleware: RouterMiddleware {
    typealias Context = CallerContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        _ = try context.pathTenant()
        return try await next(request, context)
    }
}

extension CallerContext {
    /// The tenant the path names: the caller's own, or, where `superAdminMayNameAny`, any
    /// tenant for a platform super-admin. A malformed ID is a 404, another tenant's a 403.
    func pathTenant(superAdminMayNameAny: Bool = false) throws -> TenantID {
        guard let text = parameters.get("tenant_id"), let tenant = TenantID(text), tenant.hex == text else {
            throw RampartError.noSuchTenant
        }
        guard tenant == caller.tenant || (superAdminMayNameAny && caller.isSuperAdmin) else {
            throw RampartError(.permissionDenied, "your credentials are for another tenant")
        }
        return tenant
    }
}
