import PostgresNIO
import RampartModels
import ServiceKit
import SodiumKit

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Invitations (TEN-10). A token is `<tenant ID>.<32 random bytes, base64url>`: the tenant part
/// says which schema to look in, the secret part is stored only as its SHA-256. The token goes
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
        let existing = try await database.query(
            "SELECT 1 FROM \(schema: tenant).members WHERE email = \(email.description)"
        )
        for try await _ in existing { throw RampartError(.alreadyExists, "\(email) is already a member", details: ["field": "email"]) }

        var invitation = Rampart_V1_Invitation()
        invitation.invitationID = UUID().uuidString.lowercased()
        invitation.email = email.description
        invitation.role = role
        invitation.expiresAtMs = WallClock.milliseconds() + Int64(settings.invitationSeconds) * 1000
        invitation.invitedBy = call.principal?.description ?? "system:tenants"
        let tenantName = try await registry.find(tenant)?.name ?? ""
        try await database.transaction { [invitation] connection in
            let token = Self.newInvitationToken(tenant)
            try await connection.query(
                "INSERT INTO \(schema: tenant).invitations (id, email, role, token_hash, invited_by, expires_at) VALUES (\(invitation.invitationID)::uuid, \(invitation.email), \(roleName), \(ByteBuffer(bytes: token.hash)), \(invitation.invitedBy), to_timestamp(\(Double(invitation.expiresAtMs) / 1000)))",
                logger: logger
            )
            // Inside the transaction: an invitation whose mail could not be queued is not kept.
            try await mail(invitation, token: token.token, tenant: tenant, tenantName: tenantName, inviter: caller, on: connection)
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
        guard let (tenant, secret) = Self.parseInvitationToken(request.token), let registered = try await registry.find(tenant),
            registered.status == .active, try await database.isProvisioned(tenant)
        else { throw Self.invalidInvitation }
        let rows = try await database.query(
            """
            SELECT email, role, (extract(epoch FROM expires_at) * 1000)::bigint FROM \(schema: tenant).invitations
            WHERE token_hash = \(ByteBuffer(bytes: sha256(secret))) AND \(unescaped: Self.usable)
            """
        )
        for try await (email, role, expires) in rows.decode((String, String, Int64).self) {
            var preview = Rampart_V1_InvitationPreview()
            preview.tenantID = tenant.hex
            preview.tenantName = registered.name
            preview.email = email
            preview.role = Rampart_V1_MemberRole(name: role) ?? .unspecified
            preview.expiresAtMs = expires
            return preview
        }
        throw Self.invalidInvitation
    }

    /// Single use, before expiry, by the invited address only, for a user auth vouches for.
    func accept(_ request: Rampart_V1_AcceptInvitationRequest, call: CallContext) async throws -> Rampart_V1_AcceptInvitationReply {
        guard call.principal == Principal(service: .auth) else { throw RampartError(.permissionDenied, "invitations are accepted through auth") }
        guard let user = UUID(uuidString: request.userID) else { throw RampartError.invalidArgument("user_id must be a UUID", field: "user_id") }
        guard let email = EmailAddress(request.email) else { throw RampartError.invalidArgument("the email must be a valid address", field: "email") }
        guard let (tenant, secret) = Self.parseInvitationToken(request.token), try await registry.status(tenant) == .active,
            try await database.isProvisioned(tenant)
        else { throw Self.invalidInvitation }
        let (member, invitation): (Rampart_V1_Member, UUID) = try await database.transaction { connection in
            let rows = try await connection.query(
                "SELECT id, email, role FROM \(schema: tenant).invitations WHERE token_hash = \(ByteBuffer(bytes: sha256(secret))) AND \(unescaped: Self.usable) FOR UPDATE",
                logger: logger
            )
            var found: (UUID, String, String)?
            for try await row in rows.decode((UUID, String, String).self) { found = row }
            guard let (id, invited, role) = found else { throw Self.invalidInvitation }
            guard invited == email.description else { throw RampartError(.permissionDenied, "this invitation is for another address") }
            let inserted = try await connection.query(
                """
                INSERT INTO \(schema: tenant).members (user_id, email, role, status) VALUES (\(user), \(invited), \(role), 'active')
                ON CONFLICT DO NOTHING RETURNING \(unescaped: Self.memberColumns)
                """,
                logger: logger
            )
            var member: Rampart_V1_Member?
            for try await row in inserted.decode(MemberRow.self) { member = Self.member(row) }
            guard let member else { throw RampartError(.alreadyExists, "you are already a member of this tenant") }
            try await addMembership(user, tenant, on: connection)
            try await connection.query(
                "UPDATE \(schema: tenant).invitations SET accepted_at = now(), accepted_by = \(user) WHERE id = \(id)",
                logger: logger
            )
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

    func cancelInvitation(_ request: Rampart_V1_CancelInvitationRequest, call: CallContext) async throws -> Rampart_V1_CancelInvitationReply {
        let tenant = try call.requireTenant()
        let caller = try await authorize(call, tenant, .admin)
        let id = try Self.invitationID(request.invitationID)
        try await changeInvitation(id, in: tenant, caller: caller) { connection, _ in
            try await connection.query(
                "UPDATE \(schema: tenant).invitations SET cancelled_at = now() WHERE id = \(id)",
                logger: logger
            )
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
            let token = Self.newInvitationToken(tenant)
            try await connection.query(
                "UPDATE \(schema: tenant).invitations SET token_hash = \(ByteBuffer(bytes: token.hash)), expires_at = to_timestamp(\(Double(expires) / 1000)) WHERE id = \(id)",
                logger: logger
            )
            try await mail(invitation, token: token.token, tenant: tenant, tenantName: tenantName, inviter: caller, on: connection)
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

    /// The condition on an invitation row that can still be accepted.
    static let usable = "accepted_at IS NULL AND cancelled_at IS NULL AND expires_at > now()"

    static func newInvitationToken(_ tenant: TenantID) -> (token: String, hash: [UInt8]) {
        let secret = randomBytes(32)
        return ("\(tenant.hex).\(Base64.encode(secret, variant: Base64.urlSafeNoPadding))", sha256(secret))
    }

    /// The tenant and the random part of a token, when it has the shape of one.
    static func parseInvitationToken(_ token: String) -> (TenantID, [UInt8])? {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard token.utf8.count <= 128, parts.count == 2, let tenant = TenantID(parts[0]), tenant.hex == parts[0],
            let secret = Base64.decode(String(parts[1]), variant: Base64.urlSafeNoPadding), secret.count == 32
        else { return nil }
        return (tenant, secret)
    }

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
            let rows = try await connection.query(
                """
                SELECT email, role, (extract(epoch FROM expires_at) * 1000)::bigint, invited_by FROM \(schema: tenant).invitations
                WHERE id = \(id) AND \(unescaped: Self.usable) FOR UPDATE
                """,
                logger: logger
            )
            var found: Rampart_V1_Invitation?
            for try await (email, role, expires, by) in rows.decode((String, String, Int64, String).self) {
                var invitation = Rampart_V1_Invitation()
                invitation.invitationID = id.uuidString.lowercased()
                invitation.email = email
                invitation.role = Rampart_V1_MemberRole(name: role) ?? .unspecified
                invitation.expiresAtMs = expires
                invitation.invitedBy = by
                found = invitation
            }
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
        if let inviter = inviter.userID, let member = try await member(inviter, in: tenant, on: connection) {
            mail.values["inviter"] = member.email
        }
        _ = try await jetStream.publish(try mail.serializedBytes(), to: Subjects.MailEvents.requested(by: .tenants), messageID: mail.eventID)
    }
}
