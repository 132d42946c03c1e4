import RampartModels
import ServiceKit

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// What tenants, which owns memberships, says of a person in a tenant now (TEN-10).
struct Memberships: Sendable {
    let rpc: RPCClient

    /// The tenant's policies (MFA, allowlist, password rotation).
    func tenantPolicies(_ tenant: TenantID) async throws -> Rampart_V1_TenantPolicies {
        let context = CallContext(tenantID: tenant, principal: Principal(service: .auth))
        return try await rpc.call(Subjects.Tenants.get, Rampart_V1_GetTenantRequest(), context: context).policies
    }

    /// The member, when active in an active tenant.
    func activeMember(_ user: UUID, tenant: TenantID) async throws -> Rampart_V1_Member? {
        try await activeMemberReply(user, tenant: tenant, includingPolicies: false)?.member
    }

    /// The active member with the tenant's policies, in one call: what a sign-in asks.
    func activeMemberAndPolicies(_ user: UUID, tenant: TenantID) async throws -> (member: Rampart_V1_Member, policies: Rampart_V1_TenantPolicies)? {
        try await activeMemberReply(user, tenant: tenant, includingPolicies: true).map { ($0.member, $0.tenantPolicies) }
    }

    /// SSO-3: makes `user` a member of `tenant` at their first SSO sign-in; the member as it is
    /// when they were one already.
    func provision(_ user: UUID, email: EmailAddress, tenant: TenantID, connection: UUID) async throws -> Rampart_V1_ProvisionMemberReply {
        var request = Rampart_V1_ProvisionMemberRequest()
        request.userID = user.uuidString.lowercased()
        request.email = email.description
        request.connectionID = connection.uuidString.lowercased()
        let context = CallContext(requestID: CallContext.newRequestID(), tenantID: tenant, principal: Principal(service: .auth))
        return try await rpc.call(Subjects.Tenants.provisionMember, request, context: context)
    }

    private func activeMemberReply(_ user: UUID, tenant: TenantID, includingPolicies: Bool) async throws -> Rampart_V1_MemberReply? {
        var request = Rampart_V1_GetMemberRequest()
        request.userID = user.uuidString.lowercased()
        request.includeTenantPolicies = includingPolicies
        let context = CallContext(requestID: CallContext.newRequestID(), tenantID: tenant, principal: Principal(service: .auth))
        do {
            let reply = try await rpc.call(Subjects.Tenants.getMember, request, context: context)
            return reply.member.status == .active ? reply : nil
        } catch let error as RampartError where [.notFound, .failedPrecondition, .permissionDenied].contains(error.code) {
            return nil
        }
    }
}

extension Rampart_V1_TenantPolicies {
    /// SSO-2: whether `user`, a member as `role`, may act here by a way in other than the
    /// tenant's SSO (a password, or a session switched in from elsewhere). Always, unless the
    /// tenant enforces SSO; then only a named break-glass owner who is still an owner.
    func admitsWithoutSSO(_ user: UUID, role: Rampart_V1_MemberRole) -> Bool {
        !ssoEnforced || (breakGlassOwners.contains(user.uuidString.lowercased()) && role == .owner)
    }

    /// SSO-2's refusal of what a session that did not come through the tenant's SSO asks.
    static func ssoRequired(_ doing: String) -> RampartError {
        RampartError(
            .permissionDenied,
            "\(doing) needs a session signed in through this organization's SSO: sign in with SSO, then retry",
            details: ["reason": "sso_required"]
        )
    }
}

extension CallContext {
    /// The signed-in person calling (`user:<id>` in a tenant).
    func signedIn() throws -> (tenant: TenantID, user: UUID) {
        guard let tenant = tenantID, let user = userID else { throw RampartError(.unauthenticated, "sign in first") }
        return (tenant, user)
    }
}
