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
                let reply: Rampart_V1_Tenant = try await rpc.call(Subjects.Tenants.get, Rampart_V1_GetTenantRequest(), context: call)
                return try json(reply)
            }
        }
        router.patch("/v1/tenants/:tenant_id") { request, context in
            await tenantRoute(request, context, requires: "settings.manage") { _, call in
                let message = try await decode(request, as: Rampart_V1_UpdateTenantRequest.self)
                let reply: Rampart_V1_Tenant = try await rpc.call(Subjects.Tenants.update, message, context: call)
                return try json(reply)
            }
        }
        router.delete("/v1/tenants/:tenant_id") { request, context in
            await tenantRoute(request, context, requires: "tenant.delete") { _, call in
                let reply: Rampart_V1_Tenant = try await rpc.call(Subjects.Tenants.delete, Rampart_V1_DeleteTenantRequest(), context: call)
                return try json(reply, status: .accepted)
            }
        }
        router.get("/v1/tenants/:tenant_id/members") { request, context in
            await tenantRoute(request, context) { _, call in
                let reply: Rampart_V1_ListMembersReply = try await rpc.call(
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
                let reply: Rampart_V1_InviteMemberReply = try await rpc.call(Subjects.Tenants.inviteMember, message, context: call)
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
                let _: Rampart_V1_CancelInvitationReply = try await rpc.call(Subjects.Tenants.cancelInvitation, message, context: call)
                return Response(status: .noContent)
            }
        }
        router.post("/v1/tenants/:tenant_id/invitations/:invitation_id/resend") { request, context in
            await tenantRoute(request, context, requires: "members.manage", needsVerifiedEmail: "Sending an invitation") { _, call in
                var message = Rampart_V1_ResendInvitationRequest()
                message.invitationID = try pathID(context, "invitation_id", naming: "an invitation ID")
                let reply: Rampart_V1_InviteMemberReply = try await rpc.call(Subjects.Tenants.resendInvitation, message, context: call)
                return try json(reply)
            }
        }
        // MFA-6: a member who lost phone and backup codes, reset by those who manage members.
        router.delete("/v1/tenants/:tenant_id/members/:user_id/mfa") { request, context in
            await tenantRoute(request, context, requires: "members.manage") { _, call in
                var message = Rampart_V1_MfaResetRequest()
                message.userID = try pathUser(context)
                let reply: Rampart_V1_MfaResetReply = try await rpc.call(Subjects.Auth.mfaReset, message, context: call)
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
