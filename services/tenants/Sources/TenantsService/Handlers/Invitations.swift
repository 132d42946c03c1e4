import PostgresNIO
import RampartModels
import ServiceKit
import SodiumKit

#if canImport(FoundationEssentials)
import FoundationEssentials
import NATSKit
import SwiftProtobuf
#else
import Foundation
#endif

/// Invitations (TEN-10). A token is a `TenantToken`: the tenant part says which schema to look
/// in, the secret part is stored only as its SHA-256. The token goes
/// to the invited address alone, by mail, never back to the inviter: accepting it proves the
/// mailbox, which is why auth may create the account with that address verified.
extension Tenants {
    /// One answer for every token that cannot be used: wrong, spent, expired, cancelled or
    /// replaced by a re-send, so a guesser learns nothing from which it was.
    static let invalidInvitation = RampartError.invalidArgument(
        "this invitation is not valid: it may have expired, been used or been cancelled; ask for a new one",
        field: "token"
    )

    func invite(_ request: Rampart_V1_InviteMemberRequest, call: CallContext) async throws -> Rampart_V1_InviteMemberReply {
        let tenant = try call.requireTenant()
        let caller = try await authorize(call, tenant, .admin)
        guard request.email.utf8.count <= 254, let email = EmailAddress(request.email) else {
            throw RampartError.invalidArgument("the email must be a valid address", field: "email")
        }
        let role = request.role
        guard let roleName = role.name else {
            throw RampartError.invalidArgument("the role must be owner, admin or member", field: "role")
        }
        if role == .owner, !(caller.role == .owner || caller.isService) {
            throw RampartError(.permissionDenied, "only an owner invites an owner")
        }
        if try await members.hasMember(email, in: tenant) {
            throw RampartError(.alreadyExists, "\(email) is already a member", details: ["field": "email"])
        }

        var invitation = Rampart_V1_Invitation()
        invitation.invitationID = UUID().uuidString.lowercased()
        invitation.email = email.description
        invitation.role = role
        invitation.expiresAtMs = WallClock.milliseconds() + Int64(settings.invitationSeconds) * 1000
        invitation.invitedBy = call.principal?.description ?? "system:tenants"
        let tenantName = try await registry.find(tenant)?.name ?? ""
        try await database.transaction { [invitation] connection in
            let token = TenantToken.new(in: tenant)
            try await invitations.insert(invitation, role: roleName, tokenHash: token.hash, in: tenant, on: connection)
            // Inside the transaction: an invitation whose mail could not be queued is not kept.
            try await mail(invitation, token: token.text, tenant: tenant, tenantName: tenantName, inviter: caller, on: connection)
        }
        var event = auditEvent(.memberInvited, tenant: tenant, call: call)
        event.target.type = "invitation"
        event.target.id = invitation.invitationID
        event.details = ["email": email.description, "role": roleName]
        await record(event)

        var reply = Rampart_V1_InviteMemberReply()
        reply.invitation = invitation
        return reply
    }

    /// For auth, before it creates an account for the invitee: whom the token invites.
    func getInvitation(_ request: Rampart_V1_GetInvitationRequest, call: CallContext) async throws -> Rampart_V1_InvitationPreview {
        guard call.principal == Principal(service: .auth) else { throw RampartError(.permissionDenied, "only auth reads an invitation by its token") }
        guard let token = TenantToken(request.token), let registered = try await registry.find(token.tenant),
            registered.status == .active, try await database.isProvisioned(token.tenant),
            let (email, role, expires) = try await invitations.usable(token.hash, in: token.tenant)
        else { throw Self.invalidInvitation }
        var preview = Rampart_V1_InvitationPreview()
        preview.tenantID = token.tenant.hex
        preview.tenantName = registered.name
        preview.email = email
        preview.role = Rampart_V1_MemberRole(name: role) ?? .unspecified
        preview.expiresAtMs = expires
        return preview
    }

    /// Single use, before expiry, by the invited address only, for a user auth vouches for.
    func accept(_ request: Rampart_V1_AcceptInvitationRequest, call: CallContext) async throws -> Rampart_V1_AcceptInvitationReply {
        guard call.principal == Principal(service: .auth) else { throw RampartError(.permissionDenied, "invitations are accepted through auth") }
        guard let user = UUID(uuidString: request.userID) else { throw RampartError.invalidArgument("user_id must be a UUID", field: "user_id") }
        guard let email = EmailAddress(request.email) else { throw RampartError.invalidArgument("the email must be a valid address", field: "email") }
        guard let token = TenantToken(request.token), try await registry.status(token.tenant) == .active,
            try await database.isProvisioned(token.tenant)
        else { throw Self.invalidInvitation }
        let tenant = token.tenant
        let (member, invitation): (Rampart_V1_Member, UUID) = try await database.transaction { connection in
            guard let (id, invited, role) = try await invitations.lockUsable(token.hash, in: tenant, on: connection) else {
                throw Self.invalidInvitation
            }
            guard invited == email.description else { throw RampartError(.permissionDenied, "this invitation is for another address") }
            guard let member = try await members.insert(user, email: invited, role: role, in: tenant, on: connection) else {
                throw RampartError(.alreadyExists, "you are already a member of this tenant")
            }
            try await invitations.markAccepted(id, by: user, in: tenant, on: connection)
            return (member, id)
        }
        _ = await memberChanged(tenant, user, call: call)
        var joinedBy = call
        joinedBy.principal = Principal("user:\(member.userID)")
        var event = auditEvent(.memberJoined, tenant: tenant, call: joinedBy)
        event.target.type = "user"
        event.target.id = member.userID
        event.actor.email = member.email
        event.details = ["invitation": invitation.uuidString.lowercased(), "role": member.role.name ?? ""]
        await record(event)
        var reply = Rampart_V1_AcceptInvitationReply()
        reply.tenantID = tenant.hex
        reply.member = member
        return reply
    }

    /// SSO-3: a person of a domain the tenant verified joins at their first SSO sign-in, as a
    /// member; auth has checked the domain, the connection and the provider's verified address.
    func provision(_ request: Rampart_V1_ProvisionMemberRequest, call: CallContext) async throws -> Rampart_V1_ProvisionMemberReply {
        guard call.principal == Principal(service: .auth) else { throw RampartError(.permissionDenied, "members are provisioned by auth") }
        let tenant = try call.requireTenant()
        guard let user = UUID(uuidString: request.userID) else { throw RampartError.invalidArgument("user_id must be a UUID", field: "user_id") }
        guard let email = EmailAddress(request.email) else { throw RampartError.invalidArgument("the email must be a valid address", field: "email") }
        guard try await registry.status(tenant) == .active, try await database.isProvisioned(tenant) else {
            throw RampartError(.failedPrecondition, "the tenant is not active")
        }
        var reply = Rampart_V1_ProvisionMemberReply()
        let inserted = try await database.transaction { connection in
            try await members.insert(user, email: email.description, role: "member", in: tenant, on: connection)
        }
        guard let member = inserted else {
            reply.member = try await members.find(user, in: tenant).orThrow(RampartError(.conflict, "the member changed meanwhile: try again"))
            return reply
        }
        _ = await memberChanged(tenant, user, call: call)
        var joinedBy = call
        joinedBy.principal = Principal("user:\(member.userID)")
        var event = auditEvent(.memberJoined, tenant: tenant, call: joinedBy)
        event.target.type = "user"
        event.target.id = member.userID
        event.actor.email = member.email
        event.details = ["via": "sso", "sso_connection": String(request.connectionID.prefix(36)), "role": member.role.name ?? ""]
        await record(event)
        reply.member = member
        reply.provisioned = true
        return reply
    }

    func cancelInvitation(_ request: Rampart_V1_CancelInvitationRequest, call: CallContext) async throws -> Rampart_V1_CancelInvitationReply {
        let tenant = try call.requireTenant()
        let caller = try await authorize(call, tenant, .admin)
        let id = try Self.invitationID(request.invitationID)
        try await changeInvitation(id, in: tenant, caller: caller) { connection, _ in
            try await invitations.cancel(id, in: tenant, on: connection)
        }
        var event = auditEvent(.invitationCancelled, tenant: tenant, call: call)
        event.target.type = "invitation"
        event.target.id = id.uuidString.lowercased()
        await record(event)
        return Rampart_V1_CancelInvitationReply()
    }

    /// A new token with a new expiry, mailed again; the old token dies in the same statement.
    func resendInvitation(_ request: Rampart_V1_ResendInvitationRequest, call: CallContext) async throws -> Rampart_V1_InviteMemberReply {
        let tenant = try call.requireTenant()
        let caller = try await authorize(call, tenant, .admin)
        let id = try Self.invitationID(request.invitationID)
        let expires = WallClock.milliseconds() + Int64(settings.invitationSeconds) * 1000
        let tenantName = try await registry.find(tenant)?.name ?? ""
        var invitation = try await changeInvitation(id, in: tenant, caller: caller) { connection, open in
            var invitation = open
            invitation.expiresAtMs = expires
            let token = TenantToken.new(in: tenant)
            try await invitations.replaceToken(id, tokenHash: token.hash, expiresAtMs: expires, in: tenant, on: connection)
            try await mail(invitation, token: token.text, tenant: tenant, tenantName: tenantName, inviter: caller, on: connection)
        }
        var event = auditEvent(.invitationResent, tenant: tenant, call: call)
        event.target.type = "invitation"
        event.target.id = id.uuidString.lowercased()
        await record(event)
        invitation.expiresAtMs = expires
        var reply = Rampart_V1_InviteMemberReply()
        reply.invitation = invitation
        return reply
    }

    // MARK: Pieces

    static func invitationID(_ text: String) throws -> UUID {
        guard let id = UUID(uuidString: text) else { throw RampartError.invalidArgument("invitation_id must be a UUID", field: "invitation_id") }
        return id
    }

    /// Runs `change` on an open invitation of `tenant`, locked, after the rule that only an owner
    /// touches an owner's invitation. An accepted, cancelled or expired one is not found.
    @discardableResult
    private func changeInvitation(
        _ id: UUID,
        in tenant: TenantID,
        caller: Caller,
        _ change: @escaping @Sendable (PostgresConnection, Rampart_V1_Invitation) async throws -> Void
    ) async throws -> Rampart_V1_Invitation {
        try await database.transaction { connection in
            let found = try await invitations.lockOpen(id, in: tenant, on: connection)
            guard let found else { throw RampartError(.notFound, "no such open invitation", details: ["field": "invitation_id"]) }
            if found.role == .owner, !(caller.role == .owner || caller.isService) {
                throw RampartError(.permissionDenied, "only an owner changes an invitation to be an owner")
            }
            try await change(connection, found)
            return found
        }
    }

    /// Queues the invitation's mail (AUTH-10) for the mail sender. The inviter is named by
    /// their address as this tenant knows it.
    private func mail(
        _ invitation: Rampart_V1_Invitation,
        token: String,
        tenant: TenantID,
        tenantName: String,
        inviter: Caller,
        on connection: PostgresConnection
    ) async throws {
        var mail = Rampart_V1_MailRequest()
        mail.eventID = UUID().uuidString.lowercased()
        mail.template = "invitation"
        mail.to = invitation.email
        mail.tenantID = tenant.hex
        mail.tenantName = tenantName
        MailTokens.seal(token, into: &mail, by: .tenants, to: settings.mailTokenKey)
        mail.expiresAtMs = invitation.expiresAtMs
        mail.occurredAtMs = WallClock.milliseconds()
        mail.values["role"] = invitation.role.name ?? ""
        if let inviter = inviter.userID, let member = try await members.find(inviter, in: tenant, on: connection) {
            mail.values["inviter"] = member.email
        }
        _ = try await jetStream.publish(try mail.serializedBytes(), to: Subjects.MailEvents.requested(by: .tenants), messageID: mail.eventID)
    }
}
