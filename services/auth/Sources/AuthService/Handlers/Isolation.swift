import PostgresNIO
import RampartModels
import ServiceKit

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// IR-1, auth's part: the credentials an isolation ends (for tenants, which isolates members
/// and tenants), and the isolation of a person everywhere (for platform super-admins). Every
/// revocation is written where the gateways watch before the reply, so each replica refuses the
/// tokens and keys within moments.
extension Sessions {
    /// tenants, isolating a member (`user_id`) or the whole tenant of the call (empty).
    func revokeCredentials(_ request: Rampart_V1_RevokeCredentialsRequest, call: CallContext) async throws -> Rampart_V1_RevokeCredentialsReply {
        guard call.principal == Principal(service: .tenants) else {
            throw RampartError(.permissionDenied, "only tenants revokes a tenant's credentials")
        }
        let tenant = try call.requireTenant()
        guard (1...32).contains(request.reason.utf8.count), request.reason.utf8.allSatisfy({ (97...122).contains($0) || $0 == 95 }) else {
            throw RampartError.invalidArgument("the reason is a name: 1 to 32 of a-z and _", field: "reason")
        }
        var reply = Rampart_V1_RevokeCredentialsReply()
        if request.userID.isEmpty {
            let (sessions, keys) = try await revokeEveryone(in: tenant, reason: request.reason)
            (reply.sessionsRevoked, reply.apiKeysRevoked) = (Int32(sessions), Int32(keys))
            try await database.query(
                "UPDATE mfa_challenges SET used_at = now() WHERE tenant_id = \(tenant.hex) AND used_at IS NULL"
            )
        } else {
            guard let user = UUID(uuidString: request.userID) else { throw RampartError.invalidArgument("user_id must be a UUID", field: "user_id") }
            reply.sessionsRevoked = Int32(try await revokeAll(user, tenant: tenant, reason: request.reason))
            reply.apiKeysRevoked = Int32(try await apiKeys.revokeAll(createdBy: user, tenant: tenant, reason: request.reason))
            try await database.query(
                "UPDATE mfa_challenges SET used_at = now() WHERE user_id = \(user) AND tenant_id = \(tenant.hex) AND used_at IS NULL"
            )
        }
        return reply
    }

    /// Every live session and API key in `tenant`, whoever's.
    private func revokeEveryone(in tenant: TenantID, reason: String) async throws -> (sessions: Int, apiKeys: Int) {
        guard try await database.isProvisioned(tenant) else { return (0, 0) }
        let sessions = try await database.query(
            "UPDATE \(schema: tenant).sessions SET revoked_at = now(), revoked_reason = \(reason) WHERE revoked_at IS NULL RETURNING id, user_id"
        )
        var ended: [(UUID, UUID)] = []
        for try await row in sessions.decode((UUID, UUID).self) { ended.append(row) }
        for (session, user) in ended { try await revocations.record(.session, tenant: tenant, id: session, user: user, reason: reason) }
        let keys = try await database.query(
            "UPDATE \(schema: tenant).api_keys SET revoked_at = now(), revoked_reason = \(reason) WHERE revoked_at IS NULL RETURNING id, created_by"
        )
        var revoked: [(UUID, UUID)] = []
        for try await row in keys.decode((UUID, UUID).self) { revoked.append(row) }
        for (key, creator) in revoked { try await revocations.record(.apiKey, tenant: tenant, id: key, user: creator, reason: reason) }
        return (ended.count, revoked.count)
    }

    /// A platform super-admin isolates a person: disabled everywhere, every credential of theirs
    /// in every tenant revoked, open sign-in challenges spent.
    func isolateUser(_ request: Rampart_V1_IsolateUserRequest, call: CallContext) async throws -> Rampart_V1_UserIsolationReply {
        let admin = try await superAdmin(call)
        let user = try Self.userID(request.userID)
        let reason = try Rampart_V1_Isolation.reason(request.reason)
        guard user != admin else { throw RampartError(.failedPrecondition, "you cannot isolate yourself") }
        let by = "user:\(admin.uuidString.lowercased())"
        let rows = try await database.query(
            """
            UPDATE users SET status = 'disabled', isolated_at = now(), isolated_by = \(by), isolation_reason = \(reason), updated_at = now()
            WHERE id = \(user) AND status IN ('active', 'disabled') RETURNING (extract(epoch FROM isolated_at) * 1000)::bigint
            """
        )
        var reply = Rampart_V1_UserIsolationReply()
        reply.userID = user.uuidString.lowercased()
        for try await at in rows.decode(Int64.self) {
            reply.isolation.reason = reason
            reply.isolation.isolatedBy = by
            reply.isolation.isolatedAtMs = at
        }
        guard reply.hasIsolation else { throw RampartError(.notFound, "no such user", details: ["field": "user_id"]) }
        try await database.query("UPDATE mfa_challenges SET used_at = now() WHERE user_id = \(user) AND used_at IS NULL")
        let tenants = try await users.tenantsWithSessions(user)
        for tenant in tenants {
            reply.sessionsRevoked += Int32(try await revokeAll(user, tenant: tenant, reason: "user_isolated"))
            reply.apiKeysRevoked += Int32(try await apiKeys.revokeAll(createdBy: user, tenant: tenant, reason: "user_isolated"))
        }
        await recordIsolation(.userIsolated, user: user, tenants: tenants, reason: reason, call: call) {
            $0.details = ["sessions_revoked": String(reply.sessionsRevoked), "api_keys_revoked": String(reply.apiKeysRevoked)]
        }
        return reply
    }

    /// Lets the person sign in again; what was revoked stays revoked.
    func liftUserIsolation(_ request: Rampart_V1_LiftUserIsolationRequest, call: CallContext) async throws -> Rampart_V1_UserIsolationReply {
        _ = try await superAdmin(call)
        let user = try Self.userID(request.userID)
        let rows = try await database.query(
            """
            UPDATE users SET status = 'active', isolated_at = NULL, isolated_by = NULL, isolation_reason = NULL, updated_at = now()
            WHERE id = \(user) AND isolated_at IS NOT NULL RETURNING id
            """
        )
        var lifted = false
        for try await _ in rows.decode(UUID.self) { lifted = true }
        guard lifted else { throw RampartError(.failedPrecondition, "this user is not isolated", details: ["field": "user_id"]) }
        await recordIsolation(.userIsolationLifted, user: user, tenants: try await users.tenantsWithSessions(user), reason: "", call: call) { _ in }
        var reply = Rampart_V1_UserIsolationReply()
        reply.userID = user.uuidString.lowercased()
        return reply
    }

    /// The caller, when auth's own table says they are a platform super-admin (the gateway's
    /// check of the token's flag is not the only one).
    private func superAdmin(_ call: CallContext) async throws -> UUID {
        guard let user = call.userID else { throw RampartError(.permissionDenied, "only a platform super-admin may do this") }
        let rows = try await database.query("SELECT super_admin FROM users WHERE id = \(user) AND status = 'active'")
        for try await flag in rows.decode(Bool.self) where flag { return user }
        throw RampartError(.permissionDenied, "only a platform super-admin may do this")
    }

    private static func userID(_ text: String) throws -> UUID {
        guard text.utf8.count <= 36, let user = UUID(uuidString: text) else {
            throw RampartError.invalidArgument("user_id must be a UUID", field: "user_id")
        }
        return user
    }

    /// In the platform log and in each tenant the person has credentials in, so each tenant's
    /// admins see why their member stopped.
    private func recordIsolation(
        _ action: AuditAction,
        user: UUID,
        tenants: [TenantID],
        reason: String,
        call: CallContext,
        _ fill: (inout Rampart_V1_AuditEvent) -> Void
    ) async {
        for tenant in [nil] + tenants.map(Optional.some) {
            var event = Rampart_V1_AuditEvent(action, tenant: tenant, target: ("user", user.uuidString.lowercased()), call: call, service: .auth)
            event.superAdmin = true
            event.reason = reason
            fill(&event)
            await audit.record(event)
        }
    }
}
