import Foundation
import RampartModels
import ServiceKit
import ServicesTestSupport
import TestSupport
import Testing

@testable import TenantsService

@Suite("TEN-10 members and invitations, TEN-11 the IP allowlist's storage")
struct TenantMembersTests {
    /// tenants (and rate-limit) alone, with one active tenant and its owner: the saga waits for
    /// tenants only.
    static func activeTenant() async throws -> (TenantsCluster, TenantID, String) {
        let cluster = try await TenantsCluster.start(
            settings: TenantsSettings(sagaServices: [.tenants]),
            without: [.auth, .permissions, .audit, .webhooks]
        )
        let (registered, owner) = try await cluster.register()
        #expect(try await cluster.waitFor(.active, registered.tenantID))
        return (cluster, TenantID(registered.tenantID)!, owner)
    }

    func invite(
        _ cluster: TenantsCluster,
        _ tenant: TenantID,
        by principal: String,
        email: String,
        role: Rampart_V1_MemberRole
    ) async throws
        -> Rampart_V1_InviteMemberReply
    {
        var request = Rampart_V1_InviteMemberRequest()
        request.email = email
        request.role = role
        return try await cluster.call(Subjects.Tenants.inviteMember, request, tenant: tenant, principal: principal)
    }

    /// Accepts as auth does, vouching for `principal`'s user and address.
    func accept(
        _ cluster: TenantsCluster,
        token: String,
        as principal: String,
        email: String,
        caller: String = "system:auth"
    ) async throws
        -> Rampart_V1_AcceptInvitationReply
    {
        var request = Rampart_V1_AcceptInvitationRequest()
        request.token = token
        request.email = email
        request.userID = String(principal.dropFirst(5))
        return try await cluster.call(Subjects.Tenants.acceptInvitation, request, principal: caller)
    }

    func invitationCount(_ cluster: TenantsCluster, _ tenant: TenantID, where condition: String = "true") async throws -> String {
        try await TestPostgres.psql(
            "SELECT count(*) FROM \(tenant.schemaName).invitations WHERE \(condition)",
            database: cluster.databases[.tenants]!
        )
    }

    func update(
        _ cluster: TenantsCluster,
        _ tenant: TenantID,
        by principal: String,
        user: String,
        role: Rampart_V1_MemberRole? = nil,
        status: Rampart_V1_MemberStatus? = nil
    )
        async throws -> Rampart_V1_MemberReply
    {
        var request = Rampart_V1_UpdateMemberRequest()
        request.userID = String(user.dropFirst(5))
        if let role { request.role = role }
        if let status { request.status = status }
        return try await cluster.call(Subjects.Tenants.updateMember, request, tenant: tenant, principal: principal)
    }

    @Test("TEN-10 invite, accept once, by the invited address only, through auth alone; admins cannot make owners")
    func invitations() async throws {
        let (cluster, tenant, owner) = try await Self.activeTenant()
        let invited = try await invite(cluster, tenant, by: owner, email: "Ada@Acme.example", role: .admin)
        #expect(invited.invitation.email == "ada@acme.example")
        // The token went to the mailbox, never back to the inviter.
        let mail = try #require(try await cluster.mails().last)
        #expect(mail.template == "invitation" && mail.to == "ada@acme.example" && mail.tenantName == "Acme")
        #expect(mail.values["role"] == "admin" && mail.values["inviter"]?.hasPrefix("owner-") == true)
        let token = mail.token
        #expect(token.hasPrefix(tenant.hex + "."))
        let ada = "user:\(UUID().uuidString.lowercased())"

        // Only auth vouches for who accepts: a user, a key or another service is refused.
        for caller in [ada, "api_key:\(UUID().uuidString.lowercased())", "system:gateway"] {
            await expectError(.permissionDenied) { _ = try await accept(cluster, token: token, as: ada, email: "ada@acme.example", caller: caller) }
        }
        // Someone else with the token: refused, and the invitation stays usable.
        await expectError(.permissionDenied) {
            _ = try await accept(cluster, token: token, as: "user:\(UUID().uuidString)", email: "eve@evil.example")
        }
        // Tampered, foreign and garbage tokens get the one answer used ones get.
        for bad in [token + "x", TenantID.random().hex + "." + token.split(separator: ".")[1], "garbage", "'; DROP TABLE members; --"] {
            await expectError(.invalidArgument) { _ = try await accept(cluster, token: bad, as: ada, email: "ada@acme.example") }
        }
        let joined = try await accept(cluster, token: token, as: ada, email: "ada@acme.example")
        #expect(joined.tenantID == tenant.hex)
        #expect(joined.member.role == .admin)
        // Single use, and nothing more written by the second try.
        await expectError(.invalidArgument) {
            _ = try await accept(cluster, token: token, as: "user:\(UUID().uuidString)", email: "ada@acme.example")
        }
        let members = try await TestPostgres.psql("SELECT count(*) FROM \(tenant.schemaName).members", database: cluster.databases[.tenants]!)
        #expect(members == "2")
        let joinedEvents = try await cluster.events(Subjects.audit(tenant: tenant), as: Rampart_V1_AuditEvent.self, stream: Subjects.auditStream)
            .filter { $0.action == AuditAction.memberJoined.rawValue }
        #expect(joinedEvents.map(\.actor.id) == [String(ada.dropFirst(5))])

        // The new admin can invite members, not owners.
        _ = try await invite(cluster, tenant, by: ada, email: "bob@acme.example", role: .member)
        await expectError(.permissionDenied) { _ = try await invite(cluster, tenant, by: ada, email: "mallory@acme.example", role: .owner) }
        await expectError(.alreadyExists) { _ = try await invite(cluster, tenant, by: ada, email: "ADA@acme.example", role: .member) }
        await expectError(.invalidArgument) { _ = try await invite(cluster, tenant, by: ada, email: "not an address", role: .member) }
        await expectError(.invalidArgument) {
            _ = try await invite(cluster, tenant, by: ada, email: "a@b.example\r\nBcc: all@corp.example", role: .member)
        }
        let list: Rampart_V1_ListMembersReply = try await cluster.call(
            Subjects.Tenants.listMembers,
            Rampart_V1_ListMembersRequest(),
            tenant: tenant,
            principal: ada
        )
        #expect(list.members.count == 2)
        #expect(list.invitations.map(\.email) == ["bob@acme.example"])
        await cluster.stop()
    }

    @Test("TEN-10 an expired, a cancelled and a re-sent invitation's token are refused alike, with nothing written")
    func deadTokens() async throws {
        let (cluster, tenant, owner) = try await Self.activeTenant()
        _ = try await invite(cluster, tenant, by: owner, email: "late@acme.example", role: .member)
        let late = try await cluster.invitationToken(to: "late@acme.example", in: tenant)
        _ = try await TestPostgres.psql(
            "UPDATE \(tenant.schemaName).invitations SET expires_at = now() - interval '1 second'",
            database: cluster.databases[.tenants]!
        )
        await expectError(.invalidArgument) {
            _ = try await accept(cluster, token: late, as: "user:\(UUID().uuidString)", email: "late@acme.example")
        }

        let cancelled = try await invite(cluster, tenant, by: owner, email: "gone@acme.example", role: .member)
        let cancelledToken = try await cluster.invitationToken(to: "gone@acme.example", in: tenant)
        var cancel = Rampart_V1_CancelInvitationRequest()
        cancel.invitationID = cancelled.invitation.invitationID
        _ = try await cluster.call(Subjects.Tenants.cancelInvitation, cancel, tenant: tenant, principal: owner)
        await expectError(.invalidArgument) {
            _ = try await accept(cluster, token: cancelledToken, as: "user:\(UUID().uuidString)", email: "gone@acme.example")
        }
        // A cancelled invitation is no longer open: neither cancelled again nor re-sent.
        await expectError(.notFound) {
            _ = try await cluster.call(Subjects.Tenants.cancelInvitation, cancel, tenant: tenant, principal: owner)
        }

        let resent = try await invite(cluster, tenant, by: owner, email: "again@acme.example", role: .member)
        let first = try await cluster.invitationToken(to: "again@acme.example", in: tenant)
        var resend = Rampart_V1_ResendInvitationRequest()
        resend.invitationID = resent.invitation.invitationID
        let renewed = try await cluster.call(Subjects.Tenants.resendInvitation, resend, tenant: tenant, principal: owner)
        #expect(renewed.invitation.invitationID == resent.invitation.invitationID)
        let second = try await cluster.invitationToken(to: "again@acme.example", in: tenant)
        #expect(second != first)
        await expectError(.invalidArgument) {
            _ = try await accept(cluster, token: first, as: "user:\(UUID().uuidString)", email: "again@acme.example")
        }
        let members = try await TestPostgres.psql("SELECT count(*) FROM \(tenant.schemaName).members", database: cluster.databases[.tenants]!)
        #expect(members == "1")
        let joined = try await accept(cluster, token: second, as: "user:\(UUID().uuidString.lowercased())", email: "again@acme.example")
        #expect(joined.member.email == "again@acme.example")
        #expect(try await invitationCount(cluster, tenant, where: "accepted_at IS NOT NULL") == "1")

        // Hostile IDs: refused before any query; another tenant's invitation is not found here.
        for id in ["", "not-a-uuid", "'; DROP TABLE invitations; --"] {
            cancel.invitationID = id
            await expectError(.invalidArgument) {
                _ = try await cluster.call(Subjects.Tenants.cancelInvitation, cancel, tenant: tenant, principal: owner)
            }
        }
        let (other, otherOwner) = try await cluster.register()
        #expect(try await cluster.waitFor(.active, other.tenantID))
        let foreign = try await invite(cluster, TenantID(other.tenantID)!, by: otherOwner, email: "x@other.example", role: .member)
        cancel.invitationID = foreign.invitation.invitationID
        await expectError(.notFound) {
            _ = try await cluster.call(Subjects.Tenants.cancelInvitation, cancel, tenant: tenant, principal: owner)
        }
        await cluster.stop()
    }

    @Test("TEN-10 a person's memberships across tenants, in the order joined; an admin cannot cancel an owner's invitation")
    func memberships() async throws {
        let (cluster, first, owner) = try await Self.activeTenant()
        let (registered, secondOwner) = try await cluster.register()
        #expect(try await cluster.waitFor(.active, registered.tenantID))
        let second = TenantID(registered.tenantID)!
        let person = "user:\(UUID().uuidString.lowercased())"
        try await cluster.addMember(to: second, role: .admin, invitedBy: secondOwner, user: person, email: "pat@acme.example")
        try await cluster.addMember(to: first, role: .member, invitedBy: owner, user: person, email: "pat@acme.example")
        let listed: Rampart_V1_ListMembershipsReply = try await cluster.call(
            Subjects.Tenants.listMemberships,
            Rampart_V1_ListMembershipsRequest(),
            principal: person
        )
        #expect(listed.memberships.map(\.tenantID) == [second.hex, first.hex])
        #expect(listed.memberships.map(\.role) == [.admin, .member])
        #expect(listed.memberships.allSatisfy { $0.status == .active && $0.tenantStatus == .active && $0.tenantName == "Acme" })

        // Removed from one: listed in the other only.
        var remove = Rampart_V1_RemoveMemberRequest()
        remove.userID = String(person.dropFirst(5))
        _ = try await cluster.call(Subjects.Tenants.removeMember, remove, tenant: first, principal: owner)
        let after: Rampart_V1_ListMembershipsReply = try await cluster.call(
            Subjects.Tenants.listMemberships,
            Rampart_V1_ListMembershipsRequest(),
            principal: person
        )
        #expect(after.memberships.map(\.tenantID) == [second.hex])

        // Only an owner cancels or re-sends an invitation to be an owner.
        let ownerInvite = try await invite(cluster, second, by: secondOwner, email: "heir@acme.example", role: .owner)
        var cancel = Rampart_V1_CancelInvitationRequest()
        cancel.invitationID = ownerInvite.invitation.invitationID
        await expectError(.permissionDenied) {
            _ = try await cluster.call(Subjects.Tenants.cancelInvitation, cancel, tenant: second, principal: person)
        }
        #expect(try await invitationCount(cluster, second, where: "cancelled_at IS NOT NULL") == "0")
        await cluster.stop()
    }

    @Test("disable takes effect at once and tells auth; remove; the last owner stays")
    func disableAndRemove() async throws {
        let (cluster, tenant, owner) = try await Self.activeTenant()
        let leaver = try await cluster.addMember(to: tenant, role: .admin, invitedBy: owner, email: "leaver@acme.example")

        let disabled = try await update(cluster, tenant, by: owner, user: leaver, status: .disabled)
        #expect(disabled.member.status == .disabled)
        await expectError(.permissionDenied) {
            let _: Rampart_V1_ListMembersReply = try await cluster.call(
                Subjects.Tenants.listMembers,
                Rampart_V1_ListMembersRequest(),
                tenant: tenant,
                principal: leaver
            )
        }
        let events = try await cluster.events(Subjects.MemberEvents.disabled, as: Rampart_V1_MemberDisabled.self)
        #expect(events.map(\.userID) == [String(leaver.dropFirst(5))])
        #expect(events.first?.tenantID == tenant.hex)

        // The only owner cannot leave the tenant ownerless, however it is asked.
        let ownerID = owner
        await expectError(.failedPrecondition) { _ = try await update(cluster, tenant, by: owner, user: ownerID, status: .disabled) }
        await expectError(.failedPrecondition) { _ = try await update(cluster, tenant, by: owner, user: ownerID, role: .member) }
        await expectError(.failedPrecondition) {
            var request = Rampart_V1_RemoveMemberRequest()
            request.userID = String(ownerID.dropFirst(5))
            _ = try await cluster.call(Subjects.Tenants.removeMember, request, tenant: tenant, principal: owner)
        }
        // Promote the leaver back and make them owner: then the first owner may step down.
        _ = try await update(cluster, tenant, by: owner, user: leaver, role: .owner, status: .active)
        _ = try await update(cluster, tenant, by: owner, user: ownerID, role: .admin)
        var remove = Rampart_V1_RemoveMemberRequest()
        remove.userID = String(ownerID.dropFirst(5))
        let removed = try await cluster.call(Subjects.Tenants.removeMember, remove, tenant: tenant, principal: leaver)
        #expect(removed.member.email.hasPrefix("owner-"))
        let list: Rampart_V1_ListMembersReply = try await cluster.call(
            Subjects.Tenants.listMembers,
            Rampart_V1_ListMembersRequest(),
            tenant: tenant,
            principal: leaver
        )
        #expect(list.members.map(\.role) == [.owner])
        await expectError(.notFound) {
            _ = try await cluster.call(Subjects.Tenants.removeMember, remove, tenant: tenant, principal: leaver)
        }
        await cluster.stop()
    }

    @Test("the IP allowlist is validated, canonical, bounded, and cannot lock its editor out")
    func ipAllowlist() async throws {
        let (cluster, tenant, owner) = try await Self.activeTenant()
        func set(_ cidrs: [String], from ip: String = "203.0.113.10") async throws -> [String] {
            var request = Rampart_V1_IpAllowlist()
            request.cidrs = cidrs
            let reply: Rampart_V1_IpAllowlist = try await RPCClient(connection: cluster.client).call(
                Subjects.Tenants.setIPAllowlist,
                request,
                context: CallContext(tenantID: tenant, principal: Principal(owner), clientIP: ip)
            )
            return reply.cidrs
        }
        let stored = try await set(["203.0.113.77/24", "2001:db8:abcd:12::1/48", "198.51.100.7"])
        #expect(stored == ["198.51.100.7/32", "203.0.113.0/24", "2001:db8:abcd::/48"])
        await expectError(.invalidArgument) { _ = try await set(["203.0.113.0/33"]) }
        await expectError(.invalidArgument) { _ = try await set(["not-an-ip"]) }
        await expectError(.invalidArgument) { _ = try await set(["10.0.0.0/8'); DROP TABLE ip_allowlist; --"]) }
        await expectError(.invalidArgument) { _ = try await set((0..<101).map { "10.0.\($0).0/24" }) }
        await expectError(.failedPrecondition) { _ = try await set(["10.0.0.0/8"], from: "203.0.113.10") }
        // A refused change leaves the list as it was.
        let tenantView = try await cluster.tenant(tenant.hex, as: owner)
        #expect(tenantView.policies.ipAllowlist.count == 3)
        #expect(try await set([]) == [])
        await cluster.stop()
    }

    @Test("policies and plan changes: admins set policies, only owners change the plan, Starter claims move")
    func policies() async throws {
        let (cluster, tenant, owner) = try await Self.activeTenant()
        var request = Rampart_V1_UpdateTenantRequest()
        request.mfaRequirement = .admins
        request.passwordRotationDays = 90
        var updated: Rampart_V1_Tenant = try await cluster.call(Subjects.Tenants.update, request, tenant: tenant, principal: owner)
        #expect(updated.policies.mfaRequirement == .admins)
        #expect(updated.policies.passwordRotationDays == 90)
        #expect(!updated.policies.ssoEnforced)

        // Out of range, and a requirement this build does not know: refused, nothing written.
        for refused in [{ $0.passwordRotationDays = 5000 }, { $0.mfaRequirement = .UNRECOGNIZED(7) }]
            as [(inout Rampart_V1_UpdateTenantRequest) -> Void]
        {
            request = Rampart_V1_UpdateTenantRequest()
            refused(&request)
            await expectError(.invalidArgument) {
                _ = try await cluster.call(Subjects.Tenants.update, request, tenant: tenant, principal: owner)
            }
        }
        #expect(try await cluster.tenant(tenant.hex, as: owner).policies.mfaRequirement == .admins)

        request = Rampart_V1_UpdateTenantRequest()
        request.plan = "pro"
        updated = try await cluster.call(Subjects.Tenants.update, request, tenant: tenant, principal: owner)
        #expect(updated.plan == "pro")
        #expect(updated.policies.auditRetentionDays == 365)
        let changes = try await cluster.events(Subjects.TenantEvents.planChanged, as: Rampart_V1_TenantPlanChanged.self)
        #expect(changes.map(\.plan) == ["pro"])
        await cluster.stop()
    }
}
