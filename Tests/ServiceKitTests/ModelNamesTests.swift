import RampartModels
import Testing

@Suite("The names roles, statuses and MFA policies have in tables and tokens")
struct ModelNamesTests {
    @Test("a member role's name reads back as the role; an owner includes an admin, an admin a member, never the reverse")
    func memberRoles() {
        let roles: [Rampart_V1_MemberRole] = [.member, .admin, .owner]
        for role in roles {
            #expect(Rampart_V1_MemberRole(name: role.name ?? "") == role)
            #expect(role.held == role)
        }
        #expect(Rampart_V1_MemberRole.unspecified.name == nil && Rampart_V1_MemberRole.unspecified.held == nil)
        #expect(Rampart_V1_MemberRole(name: "Owner") == nil && Rampart_V1_MemberRole(name: "") == nil)
        for (index, role) in roles.enumerated() {
            for (otherIndex, other) in roles.enumerated() {
                #expect(role.includes(other) == (index >= otherIndex), "\(role) includes \(other)")
            }
            #expect(!Rampart_V1_MemberRole.unspecified.includes(role))
        }
    }

    @Test("a tenant status's name reads back as the status; unspecified has none")
    func tenantStatuses() {
        for status in [Rampart_V1_TenantStatus.provisioning, .active, .suspended, .deleting, .deleted] {
            #expect(Rampart_V1_TenantStatus(name: status.name ?? "") == status)
        }
        #expect(Rampart_V1_TenantStatus.unspecified.name == nil)
        #expect(Rampart_V1_TenantStatus(name: "ACTIVE") == nil)
    }
}
