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
struct IsolationHandlers: Sendable {
    let users: UserStore
    let sessions: Sessions
    let apiKeys: APIKeyHandlers
    let challenges: SecondFactorStore
    let revocations: Revocations
    let audit: AuditPublisher

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
            let (endedSessions, revokedKeys) = try await revokeEveryone(in: tenant, reason: request.reason)
            (reply.sessionsRevoked, reply.apiKeysRevoked) = (Int32(endedSessions), Int32(revokedKeys))
            try await challenges.spendChallenges(in: tenant, of: nil)
        } else {
            guard let user = UUID(uuidString: request.userID) else { throw RampartError.invalidArgument("user_id must be a UUID", field: "user_id") }
            reply.sessionsRevoked = Int32(try await sessions.revokeAll(user, tenant: tenant, reason: request.reason))
            reply.apiKeysRevoked = Int32(try await apiKeys.revokeAll(createdBy: user, tenant: tenant, reason: request.reason))
            try await challenges.spendChallenges(in: tenant, of: user)
        }
        return reply
    }

    /// Every live session and API key in `tenant`, whoever's.
    private func revokeEveryone(in tenant: TenantID, reason: String) async throws -> (sessions: Int, apiKeys: Int) {
        let ended = try await sessions.store.revokeEveryone(in: tenant, reason: reason)
        for (session, user) in ended { try await revocations.record(.session, tenant: tenant, id: session, user: user, reason: reason) }
        let revoked = try await apiKeys.store.revokeEveryone(in: tenant, reason: reason)
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
        var reply = Rampart_V1_UserIsolationReply()
        reply.userID = user.uuidString.lowercased()
        if let at = try await users.isolate(user, by: by, reason: reason) {
            reply.isolation.reason = reason
            reply.isolation.isolatedBy = by
            reply.isolation.isolatedAtMs = at
        }
        guard reply.hasIsolation else { throw RampartError(.notFound, "no such user", details: ["field": "user_id"]) }
        try await challenges.spendChallenges(of: user)
        let tenants = try await users.tenantsWithSessions(user)
        for tenant in tenants {
            reply.sessionsRevoked += Int32(try await sessions.revokeAll(user, tenant: tenant, reason: "user_isolated"))
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
        let lifted = try await users.liftIsolation(user)
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
        guard try await users.isActiveSuperAdmin(user) else { throw RampartError(.permissionDenied, "only a platform super-admin may do this") }
        return user
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
