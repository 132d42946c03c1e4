import Hummingbird
import RampartModels

/// SPEC section 14: the tenant's IP allowlist (TEN-11), read by members, replaced by those with
/// `settings.manage`.
struct AllowlistRoutes {
    let calls: ServiceCalls
    let allowlists: TenantAllowlists

    func add(to scopes: RouteScopes) {
        let allowlist = scopes.tenant("ip-allowlist")
        allowlist.get { _, context in
            try Response.json(try await calls.call(Subjects.Tenants.getIPAllowlist, Rampart_V1_GetIpAllowlistRequest(), context))
        }
        allowlist.requiring(scopes.permission("settings.manage")).put { request, context in
            let response = try await calls.forward(Subjects.Tenants.setIPAllowlist, request, context)
            // This replica applies the change at once; the others within their cache time.
            allowlists.forget(context.caller.tenant)
            return response
        }
    }
}
