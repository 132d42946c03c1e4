import Foundation
import RampartModels
import ServiceKit
import ServicesTestSupport
import TestSupport
import Testing

@testable import TenantsService

/// tenants and permissions (and rate-limit, which sign-up asks) with one active tenant: the
/// saga waits for both, so the owner's role is in permissions when the tenant is active.
struct PermissionsWorld {
    let cluster: TenantsCluster
    let tenant: TenantID
    let owner: String

    static func start() async throws -> PermissionsWorld {
        let cluster = try await TenantsCluster.start(
            settings: TenantsSettings(sagaServices: [.tenants, .permissions]),
            without: [.auth, .audit, .webhooks]
        )
        let (registered, owner) = try await cluster.register()
        #expect(try await cluster.waitFor(.active, registered.tenantID))
        return PermissionsWorld(cluster: cluster, tenant: TenantID(registered.tenantID)!, owner: owner)
    }

    /// Another tenant on the same services, with its own owner.
    func otherTenant() async throws -> (TenantID, String) {
        let (registered, owner) = try await cluster.register()
        #expect(try await cluster.waitFor(.active, registered.tenantID))
        return (TenantID(registered.tenantID)!, owner)
    }

    /// A new user, invited by the owner and joined with `role`.
    func member(_ role: Rampart_V1_MemberRole = .member) async throws -> String {
        try await cluster.addMember(to: tenant, role: role, invitedBy: owner)
    }

    func updateMember(
        _ user: String,
        role: Rampart_V1_MemberRole? = nil,
        status: Rampart_V1_MemberStatus? = nil,
        by: String? = nil
    ) async throws
        -> Rampart_V1_MemberReply
    {
        var request = Rampart_V1_UpdateMemberRequest()
        request.userID = String(user.dropFirst(5))
        if let role { request.role = role }
        if let status { request.status = status }
        return try await cluster.call(Subjects.Tenants.updateMember, request, tenant: tenant, principal: by ?? owner)
    }

    func check(
        _ principal: String,
        _ action: String,
        _ resource: String = "",
        atLeast revision: UInt64 = 0,
        key: (creator: String, scopes: [String])? = nil,
        superAdmin: Bool = false,
        in tenant: TenantID? = nil,
        as caller: String = "system:gateway"
    ) async throws -> Rampart_V1_CheckReply {
        var request = Rampart_V1_CheckRequest()
        request.principal = principal
        request.action = action
        request.resource = resource
        request.atLeastRevision = revision
        request.superAdmin = superAdmin
        if let key {
            request.apiKeyCreator = key.creator
            request.apiKeyScopes = key.scopes
        }
        return try await cluster.call(Subjects.Permissions.check, request, tenant: tenant ?? self.tenant, principal: caller)
    }

    @discardableResult
    func setRole(
        _ resource: String,
        _ principal: String,
        _ role: String?,
        by caller: String? = nil,
        in tenant: TenantID? = nil
    ) async throws
        -> Rampart_V1_PermissionsWriteReply
    {
        if let role {
            var request = Rampart_V1_SetResourceRoleRequest()
            request.resource = resource
            request.principal = principal
            request.role = role
            return try await cluster.call(Subjects.Permissions.setResourceRole, request, tenant: tenant ?? self.tenant, principal: caller ?? owner)
        }
        var request = Rampart_V1_RemoveResourceRoleRequest()
        request.resource = resource
        request.principal = principal
        return try await cluster.call(Subjects.Permissions.removeResourceRole, request, tenant: tenant ?? self.tenant, principal: caller ?? owner)
    }

    func stop() async { await cluster.stop() }
}

extension PermissionsWorld: Stoppable {}
