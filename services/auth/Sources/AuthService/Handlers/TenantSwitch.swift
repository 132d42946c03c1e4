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
        guard let session = UUID(uuidString: request.sessionID), let (amr, authTime) = try await store.live(session, user: user, in: current) else {
            throw RampartError(.unauthenticated, "the session has ended: sign in again")
        }
        guard let account = try await users.activeAccount(user), let email = EmailAddress(account.email), let found = try await users.find(email)
        else {
            throw RampartError(.unauthenticated, "sign in first")
        }
        // Not a member, disabled, or no such tenant: one answer, which reveals nothing.
        guard let (member, policies) = try await memberships.activeMemberAndPolicies(user, tenant: target) else {
            throw RampartError(.permissionDenied, "you are not an active member of that organization", details: ["field": "tenant_id"])
        }
        try await signInGuard.admitAddress(policies, tenant: target, user: user, call: call)
        // SSO-2: a session from elsewhere (a password, or another tenant's SSO) is not this
        // tenant's SSO; where that is enforced, only a break-glass owner switches in.
        guard policies.admitsWithoutSSO(user, role: member.role) else {
            throw Rampart_V1_TenantPolicies.ssoRequired("Switching to this organization")
        }
        try SignInGuard.checkRotation(found, policies: policies)
        // A session that passed MFA carries it; one that did not meets the target's MFA step.
        if !amr.contains("mfa"), let step = try await factors.nextStep(for: user, role: member.role, tenant: target, policies: policies) {
            return step
        }
        // The proof the source session holds, from when it was made: a switch proves nothing new.
        return try await issuer.open(user: user, email: email, tenant: target, role: member.role, amr: amr, authenticatedAt: authTime, call: call)
    }
}
