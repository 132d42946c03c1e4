import Logging
import RampartModels
import ServiceKit

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A session after its sign-in: refreshed (AUTH-6), ended (sign-out, AUTH-4's revocations),
/// listed, moved to another tenant and stepped up. Every revocation is recorded where the
/// gateway watches, so it refuses the session's access tokens at once rather than when they
/// expire.
struct Sessions: Sendable {
    let settings: AuthSettings
    let store: SessionStore
    let users: UserStore
    let memberships: Memberships
    let signInGuard: SignInGuard
    let factors: SecondFactors
    let issuer: SessionIssuer
    let revocations: Revocations
    let audit: AuditPublisher
    let logger: Logger

    static let invalidRefresh = RampartError(.unauthenticated, "the refresh token is not valid: sign in again")

    // MARK: Refresh

    /// Rotates: the presented token is spent, a new one comes back. A token presented a second
    /// time means two parties hold it: the session ends for both, and that is audited.
    func refresh(_ request: Rampart_V1_RefreshRequest, call: CallContext) async throws -> Rampart_V1_TokenReply {
        guard let presented = RefreshToken(request.refreshToken), try await store.database.isProvisioned(presented.tenant) else {
            throw Self.invalidRefresh
        }
        let tenant = presented.tenant
        // TEN-11 is decided before the token is spent, so that a refresh refused from outside the
        // allowlist leaves the token for one from inside.
        let policies: Rampart_V1_TenantPolicies
        do {
            policies = try await memberships.tenantPolicies(tenant)
        } catch let error as RampartError where error.code == .notFound {
            throw Self.invalidRefresh
        }
        let admitted = SignInGuard.allowlistAdmits(policies, call: call)
        let successor = try presented.successor(keyRing: settings.keyEncryption)
        switch try await store.rotate(presented, to: successor, admitted: admitted) {
        case .invalid:
            throw Self.invalidRefresh
        case .outsideAllowlist(let user):
            try await signInGuard.admitAddress(policies, tenant: tenant, user: user, call: call)
            throw Self.invalidRefresh
        case .reused(let session, let user):
            logger.warning("refresh token reused: session revoked", metadata: ["tenant": "\(tenant.hex)", "session": "\(session)"])
            try? await revocations.record(.session, tenant: tenant, id: session, user: user, reason: "refresh_token_reused")
            var event = SessionIssuer.auditEvent(.logout, tenant: tenant, user: user, session: session, call: call)
            event.outcome = .failure
            event.reason = "refresh token reused: the session is revoked"
            await audit.record(event)
            throw Self.invalidRefresh
        case .rotated(let session, let user, let amr, let authTime):
            // The member's current standing, not the one at sign-in: a disabled member stops here.
            guard let member = try await memberships.activeMember(user, tenant: tenant) else {
                try await end(session, of: user, in: tenant, reason: "member_disabled")
                throw Self.invalidRefresh
            }
            // MFA-7: a session opened without MFA ends once the tenant requires it of this member.
            if !amr.contains("mfa"), policies.mfaRequirement.covers(member.role) {
                try await end(session, of: user, in: tenant, reason: "mfa_required")
                throw RampartError(
                    .unauthenticated,
                    "this organization requires MFA: sign in again to set it up",
                    details: ["reason": "mfa_required"]
                )
            }
            // SSO-2: a session that did not come through the tenant's SSO ends once the tenant
            // enforces it (a break-glass owner's excepted), as one without MFA does above.
            if !amr.contains("sso"), !policies.admitsWithoutSSO(user, role: member.role) {
                try await end(session, of: user, in: tenant, reason: "sso_required")
                throw RampartError(
                    .unauthenticated,
                    "this organization signs its members in through SSO: sign in with SSO",
                    details: ["reason": "sso_required"]
                )
            }
            // How the session was established (pwd, or pwd otp mfa) stays true of its later tokens.
            return try await issuer.tokens(
                user: user,
                tenant: tenant,
                session: session,
                role: member.role,
                refresh: successor.text,
                amr: amr,
                authTime: authTime
            )
        }
    }

    /// Ends a session the refresh found live but no longer allowed.
    private func end(_ session: UUID, of user: UUID, in tenant: TenantID, reason: String) async throws {
        try await store.revoke(session, reason: reason, in: tenant)
        try? await revocations.record(.session, tenant: tenant, id: session, user: user, reason: reason)
    }

    // MARK: Sign-out

    func logout(_ request: Rampart_V1_LogoutRequest, call: CallContext) async throws -> Rampart_V1_LogoutReply {
        let (tenant, user) = try call.signedIn()
        guard let session = UUID(uuidString: request.sessionID) else {
            throw RampartError.invalidArgument("session_id must be a UUID", field: "session_id")
        }
        // Another user's session, or one already ended: the same answer.
        guard try await store.end(session, of: user, in: tenant, reason: "logout") else { throw RampartError(.notFound, "no such session") }
        try await revocations.record(.session, tenant: tenant, id: session, user: user, reason: "logout")
        await audit.record(SessionIssuer.auditEvent(.logout, tenant: tenant, user: user, session: session, call: call))
        return Rampart_V1_LogoutReply()
    }
}
