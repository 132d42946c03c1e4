import Hummingbird
import RampartModels
import ServiceKit

/// SPEC section 14, the tenant: read by its members and keys, changed by those with
/// `settings.manage`, deleted by an owner with a recent proof; isolated (IR-1) by its owners or
/// a platform super-admin, and released by a platform super-admin only, as the owners are
/// locked out too.
struct TenantRoutes {
    let calls: ServiceCalls

    func add(to scopes: RouteScopes) {
        scopes.tenant(accepts: .accessTokenOrAPIKey).get { _, context in
            try Response.json(try await calls.call(Subjects.Tenants.get, Rampart_V1_GetTenantRequest(), context))
        }
        let tenant = scopes.tenant()
        tenant.requiring(scopes.permission("settings.manage")).patch { request, context in
            try await calls.forward(Subjects.Tenants.update, request, context)
        }
        tenant.requiring(scopes.permission("tenant.delete"), scopes.recentProof("Deleting the organization")).delete { _, context in
            try Response.json(try await calls.call(Subjects.Tenants.delete, Rampart_V1_DeleteTenantRequest(), context), status: .accepted)
        }
        // Not the tenant scope: a super-admin names any tenant, so tenants checks the path's.
        let isolation = scopes.signedIn("/v1/tenants/:tenant_id/isolate")
        isolation.post { request, context in
            var message = try await calls.message(request, as: Rampart_V1_IsolateTenantRequest.self)
            message.superAdmin = context.caller.isSuperAdmin
            return try Response.json(try await calls.rpc.call(Subjects.Tenants.isolateTenant, message, context: try isolated(context)))
        }
        isolation.requiring(SuperAdminMiddleware()).delete { _, context in
            var message = Rampart_V1_LiftTenantIsolationRequest()
            message.superAdmin = true
            return try Response.json(try await calls.rpc.call(Subjects.Tenants.liftTenantIsolation, message, context: try isolated(context)))
        }
    }

    /// The call about the tenant an isolation names: the caller's own, or any for a platform
    /// super-admin.
    private func isolated(_ context: CallerContext) throws -> CallContext {
        var call = context.call
        call.tenantID = try context.pathTenant(superAdminMayNameAny: true)
        return call
    }
}
