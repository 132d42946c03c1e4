import Hummingbird
import RampartModels

/// SPEC section 14, a tenant's members (TEN-10): listed by any member; invited, changed,
/// disabled and removed with `members.manage`, as are their invitations, an MFA reset (MFA-6,
/// with a recent proof) and an isolation (IR-1).
struct MemberRoutes {
    let calls: ServiceCalls

    func add(to scopes: RouteScopes) {
        let tenant = scopes.tenant()
        tenant.get("members") { _, context in
            try Response.json(try await calls.call(Subjects.Tenants.listMembers, Rampart_V1_ListMembersRequest(), context))
        }
        let managing = tenant.requiring(scopes.permission("members.manage"))
        managing.requiring(scopes.verifiedEmail("Inviting a member")).post("members") { request, context in
            try await calls.forward(Subjects.Tenants.inviteMember, request, context, status: .created)
        }
        managing.patch("members/:user_id") { request, context in
            let user = try context.pathUser()
            var message = try await calls.message(request, as: Rampart_V1_UpdateMemberRequest.self)
            message.userID = try sameID(message.userID, as: user, field: "user_id", naming: "member")
            return try Self.member(try await calls.call(Subjects.Tenants.updateMember, message, context))
        }
        managing.delete("members/:user_id") { _, context in
            var message = Rampart_V1_RemoveMemberRequest()
            message.userID = try context.pathUser()
            return try Self.member(try await calls.call(Subjects.Tenants.removeMember, message, context))
        }
        managing.delete("invitations/:invitation_id") { _, context in
            var message = Rampart_V1_CancelInvitationRequest()
            message.invitationID = try context.pathID("invitation_id", naming: "an invitation ID")
            _ = try await calls.call(Subjects.Tenants.cancelInvitation, message, context)
            return Response(status: .noContent)
        }
        managing.requiring(scopes.verifiedEmail("Sending an invitation")).post("invitations/:invitation_id/resend") { _, context in
            var message = Rampart_V1_ResendInvitationRequest()
            message.invitationID = try context.pathID("invitation_id", naming: "an invitation ID")
            return try Response.json(try await calls.call(Subjects.Tenants.resendInvitation, message, context))
        }
        // MFA-6: a member who lost phone and backup codes.
        managing.requiring(scopes.recentProof("Resetting a member's MFA")).delete("members/:user_id/mfa") { _, context in
            var message = Rampart_V1_MfaResetRequest()
            message.userID = try context.pathUser()
            return try Response.json(try await calls.call(Subjects.Auth.mfaReset, message, context))
        }
        // IR-1: a member's credentials refused everywhere at once, and the isolation lifted.
        managing.post("members/:user_id/isolate") { request, context in
            var message = try await calls.message(request, as: Rampart_V1_IsolateMemberRequest.self)
            message.userID = try sameID(message.userID, as: try context.pathUser(), field: "user_id", naming: "member")
            return try Response.json(try await calls.call(Subjects.Tenants.isolateMember, message, context))
        }
        managing.delete("members/:user_id/isolate") { _, context in
            var message = Rampart_V1_LiftMemberIsolationRequest()
            message.userID = try context.pathUser()
            return try Response.json(try await calls.call(Subjects.Tenants.liftMemberIsolation, message, context))
        }
    }

    /// A member change answers with the permissions revision that reflects it, as a write of
    /// roles does (PERM-6): presented back, no later check is answered from before the change.
    private static func member(_ reply: Rampart_V1_MemberReply) throws -> Response {
        var response = try Response.json(reply)
        if reply.permissionsRevision > 0 { response.headers[.consistencyToken] = String(reply.permissionsRevision) }
        return response
    }
}
