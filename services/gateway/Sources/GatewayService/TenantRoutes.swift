import HTTPTypes
import Hummingbird
import RampartModels
import ServiceKit

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension APICaller {
    /// SPEC section 14: the tenant (read by its members and keys, changed by those with
    /// `settings.manage`, deleted by an owner) and its members (TEN-10: listed by any member,
    /// invited, changed, disabled and removed with `members.manage`).
    func addTenantRoutes(to router: Router<GatewayRequestContext>) {
        router.get("/v1/tenants/:tenant_id") { request, context in
            await tenantRoute(request, context, accepts: .accessTokenOrAPIKey) { _, call in
                let reply = try await rpc.call(Subjects.Tenants.get, Rampart_V1_GetTenantRequest(), context: call)
                return try json(reply)
            }
        }
        router.patch("/v1/tenants/:tenant_id") { request, context in
            await tenantRoute(request, context, requires: "settings.manage") { _, call in
                let message = try await decode(request, as: Rampart_V1_UpdateTenantRequest.self)
                let reply = try await rpc.call(Subjects.Tenants.update, message, context: call)
                return try json(reply)
            }
        }
        router.delete("/v1/tenants/:tenant_id") { request, context in
            await tenantRoute(request, context, requires: "tenant.delete", needsRecentProof: "Deleting the organization") { _, call in
                let reply = try await rpc.call(Subjects.Tenants.delete, Rampart_V1_DeleteTenantRequest(), context: call)
                return try json(reply, status: .accepted)
            }
        }
        router.get("/v1/tenants/:tenant_id/members") { request, context in
            await tenantRoute(request, context) { _, call in
                let reply = try await rpc.call(
                    Subjects.Tenants.listMembers,
                    Rampart_V1_ListMembersRequest(),
                    context: call
                )
                return try json(reply)
            }
        }
        router.post("/v1/tenants/:tenant_id/members") { request, context in
            await tenantRoute(request, context, requires: "members.manage", needsVerifiedEmail: "Inviting a member") { _, call in
                let message = try await decode(request, as: Rampart_V1_InviteMemberRequest.self)
                let reply = try await rpc.call(Subjects.Tenants.inviteMember, message, context: call)
                return try json(reply, status: .created)
            }
        }
        router.patch("/v1/tenants/:tenant_id/members/:user_id") { request, context in
            await tenantRoute(request, context, requires: "members.manage") { _, call in
                let user = try pathUser(context)
                var message = try await decode(request, as: Rampart_V1_UpdateMemberRequest.self)
                guard message.userID.isEmpty || message.userID.lowercased() == user else {
                    throw Problem(.badRequest, .invalidArgument, "user_id in the body names another member than the path").field("user_id")
                }
                message.userID = user
                return try member(try await rpc.call(Subjects.Tenants.updateMember, message, context: call))
            }
        }
        router.delete("/v1/tenants/:tenant_id/invitations/:invitation_id") { request, context in
            await tenantRoute(request, context, requires: "members.manage") { _, call in
                var message = Rampart_V1_CancelInvitationRequest()
                message.invitationID = try pathID(context, "invitation_id", naming: "an invitation ID")
                _ = try await rpc.call(Subjects.Tenants.cancelInvitation, message, context: call)
                return Response(status: .noContent)
            }
        }
        router.post("/v1/tenants/:tenant_id/invitations/:invitation_id/resend") { request, context in
            await tenantRoute(request, context, requires: "members.manage", needsVerifiedEmail: "Sending an invitation") { _, call in
                var message = Rampart_V1_ResendInvitationRequest()
                message.invitationID = try pathID(context, "invitation_id", naming: "an invitation ID")
                let reply = try await rpc.call(Subjects.Tenants.resendInvitation, message, context: call)
                return try json(reply)
            }
        }
        // MFA-6: a member who lost phone and backup codes, reset by those who manage members.
        router.delete("/v1/tenants/:tenant_id/members/:user_id/mfa") { request, context in
            await tenantRoute(request, context, requires: "members.manage", needsRecentProof: "Resetting a member's MFA") { _, call in
                var message = Rampart_V1_MfaResetRequest()
                message.userID = try pathUser(context)
                let reply = try await rpc.call(Subjects.Auth.mfaReset, message, context: call)
                return try json(reply)
            }
        }
        // IR-1: isolate a member (their credentials refused everywhere at once) and lift it.
        router.post("/v1/tenants/:tenant_id/members/:user_id/isolate") { request, context in
            await tenantRoute(request, context, requires: "members.manage") { _, call in
                var message = try await decode(request, as: Rampart_V1_IsolateMemberRequest.self)
                let user = try pathUser(context)
                guard message.userID.isEmpty || message.userID.lowercased() == user else {
                    throw Problem(.badRequest, .invalidArgument, "user_id in the body names another member than the path").field("user_id")
                }
                message.userID = user
                let reply = try await rpc.call(Subjects.Tenants.isolateMember, message, context: call)
                return try json(reply)
            }
        }
        router.delete("/v1/tenants/:tenant_id/members/:user_id/isolate") { request, context in
            await tenantRoute(request, context, requires: "members.manage") { _, call in
                var message = Rampart_V1_LiftMemberIsolationRequest()
                message.userID = try pathUser(context)
                let reply = try await rpc.call(Subjects.Tenants.liftMemberIsolation, message, context: call)
                return try json(reply)
            }
        }
        // IR-1: isolate the whole tenant (its owners, or a platform super-admin for any tenant);
        // lifted by a platform super-admin only, as the owners are locked out too.
        router.post("/v1/tenants/:tenant_id/isolate") { request, context in
            await signedIn(request, context) { caller, call in
                var message = try await decode(request, as: Rampart_V1_IsolateTenantRequest.self)
                message.superAdmin = Self.isSuperAdmin(caller)
                var call = call
                call.tenantID = try isolatedTenant(context, caller, superAdmin: message.superAdmin)
                let reply = try await rpc.call(Subjects.Tenants.isolateTenant, message, context: call)
                return try json(reply)
            }
        }
        router.delete("/v1/tenants/:tenant_id/isolate") { request, context in
            await signedIn(request, context) { caller, call in
                guard Self.isSuperAdmin(caller) else {
                    throw Problem(.forbidden, .permissionDenied, "only a platform super-admin lifts a tenant's isolation")
                }
                var message = Rampart_V1_LiftTenantIsolationRequest()
                message.superAdmin = true
                var call = call
                call.tenantID = try isolatedTenant(context, caller, superAdmin: true)
                let reply = try await rpc.call(Subjects.Tenants.liftTenantIsolation, message, context: call)
                return try json(reply)
            }
        }
        router.delete("/v1/tenants/:tenant_id/members/:user_id") { request, context in
            await tenantRoute(request, context, requires: "members.manage") { _, call in
                var message = Rampart_V1_RemoveMemberRequest()
                message.userID = try pathUser(context)
                return try member(try await rpc.call(Subjects.Tenants.removeMember, message, context: call))
            }
        }
    }

    /// The tenant an isolation names: the caller's own, or any for a platform super-admin.
    func isolatedTenant(_ context: GatewayRequestContext, _ caller: Caller, superAdmin: Bool) throws -> TenantID {
        guard superAdmin else { return try pathTenant(context, caller) }
        guard let text = context.parameters.get("tenant_id"), let tenant = TenantID(text), tenant.hex == text else {
            throw Problem(.notFound, .notFound, "no such tenant")
        }
        return tenant
    }

    /// PERM-3's flag, from a verified access token (never an API key).
    static func isSuperAdmin(_ caller: Caller) -> Bool {
        if case .accessToken(let claims) = caller.credential { claims.isSuperAdmin } else { false }
    }

    /// A member's user ID from the path, in the lower-case form the services store.
    func pathUser(_ context: GatewayRequestContext, parameter: String = "user_id") throws -> String {
        try pathID(context, parameter, naming: "a member's user ID")
    }

    /// A member change answers with the permissions revision that reflects it, as a write of
    /// roles does (PERM-6): presented back, no later check is answered from before the change.
    private func member(_ reply: Rampart_V1_MemberReply) throws -> Response {
        var response = try json(reply)
        if reply.permissionsRevision > 0 { response.headers[.consistencyToken] = String(reply.permissionsRevision) }
        return response
    }
}
