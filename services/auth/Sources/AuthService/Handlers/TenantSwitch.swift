import PostgresNIO
import RampartModels
import ServiceKit

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A person in several tenants moves between them without the password again: the live
/// session they hold proves the password step, and the target tenant's own rules apply as at a
/// sign-in to it (membership, MFA-7, AUTH-9, TEN-11).
extension Sessions {
    func switchTenant(_ request: Rampart_V1_SwitchTenantRequest, call: CallContext) async throws -> Rampart_V1_TokenReply {
        let (current, user) = try call.signedIn()
        guard let target = TenantID(request.tenantID), target.hex == request.tenantID else {
            throw RampartError.invalidArgument("tenant_id must be a tenant ID (32 hex digits)", field: "tenant_id")
        }
        guard let session = UUID(uuidString: request.sessionID), let (amr, authTime) = try await liveSession(session, user: user, tenant: current)
        else {
            throw RampartError(.unauthenticated, "the session has ended: sign in again")
        }
        guard let account = try await activeAccount(user), let email = EmailAddress(account.email), let found = try await findUser(email) else {
            throw RampartError(.unauthenticated, "sign in first")
        }
        // Not a member, disabled, or no such tenant: one answer, which reveals nothing.
        guard let (member, policies) = try await memberships.activeMemberAndPolicies(user, tenant: target) else {
            throw RampartError(.permissionDenied, "you are not an active member of that organization", details: ["field": "tenant_id"])
        }
        try await admitAddress(policies, tenant: target, user: user, call: call)
        try checkRotation(found, policies: policies)
        // A session that passed MFA carries it; one that did not meets the target's MFA step.
        if !amr.contains("mfa") {
            if try await mfaEnabled(user) { return try await mfaChallenge(.verify, user: user, tenant: target) }
            if policies.mfaRequirement.covers(member.role) { return try await mfaChallenge(.enroll, user: user, tenant: target) }
        }
        // The proof the source session holds, from when it was made: a switch proves nothing new.
        return try await openSession(user: user, email: email, tenant: target, role: member.role, amr: amr, authenticatedAt: authTime, call: call)
    }

    /// How a live session of `user` in `tenant` was established and when its factors were last
    /// proved (Unix seconds), or nil when it has ended.
    func liveSession(_ session: UUID, user: UUID, tenant: TenantID) async throws -> (amr: [String], authTime: Int64)? {
        guard try await database.isProvisioned(tenant) else { return nil }
        let rows = try await database.query(
            """
            SELECT amr, extract(epoch FROM authenticated_at)::bigint FROM \(schema: tenant).sessions
            WHERE id = \(session) AND user_id = \(user) AND revoked_at IS NULL AND expires_at > now()
            """
        )
        return try await rows.first(decoding: (String, Int64).self).map { (amr, authTime) in (amr.split(separator: " ").map(String.init), authTime) }
    }

    /// TEN-11 for a session about to open or refresh in `tenant`: the client's address must be
    /// in the tenant's allowlist (when it has one). A refusal is audited in the tenant's log and
    /// answered with `refusal` (by default a 403 that says why).
    func admitAddress(
        _ policies: Rampart_V1_TenantPolicies,
        tenant: TenantID,
        user: UUID,
        call: CallContext,
        refusal: RampartError = RampartError(.permissionDenied, "your address is not in this organisation's IP allowlist")
    ) async throws {
        if Self.allowlistAdmits(policies, call: call) { return }
        var event = Rampart_V1_AuditEvent(
            .ipAllowlistDenied,
            tenant: tenant,
            target: ("user", user.uuidString.lowercased()),
            call: call,
            actor: Rampart_V1_AuditActor(principal: Principal(user: user)),
            service: .auth
        )
        event.outcome = .failure
        event.reason = "address \(call.clientIP ?? "unknown") is outside the tenant's IP allowlist"
        await audit.record(event)
        throw refusal
    }

    static func allowlistAdmits(_ policies: Rampart_V1_TenantPolicies, call: CallContext) -> Bool {
        guard !policies.ipAllowlist.isEmpty else { return true }
        guard let ip = call.clientIP, let client = IPNetwork(address: ip) else { return false }
        return policies.ipAllowlist.contains(where: { IPNetwork(cidr: $0)?.contains(client) == true })
    }
}
