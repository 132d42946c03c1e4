import RampartModels

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A typed resource, `<type>/<id>`: the type names a role scope of the tenant's role table, the
/// id is 1 to 64 of A-Z a-z 0-9 _ - (what a product's board IDs look like; never a path).
struct Resource: Hashable, Sendable, CustomStringConvertible {
    var type: String
    var id: String

    static let maximumIDLength = 64

    /// Parses `text`; nil for anything else, the empty string included.
    init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 2, let type = parts.first, let id = parts.last,
            Self.isToken(type, maximum: 32, allowed: Self.typeCharacters),
            Self.isToken(id, maximum: Self.maximumIDLength, allowed: Self.idCharacters)
        else { return nil }
        self.type = String(type)
        self.id = String(id)
    }

    init(type: String, id: String) {
        self.type = type
        self.id = id
    }

    var description: String { "\(type)/\(id)" }

    private static let typeCharacters = Set("abcdefghijklmnopqrstuvwxyz0123456789_".utf8)
    private static let idCharacters = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-".utf8)

    private static func isToken(_ text: Substring, maximum: Int, allowed: Set<UInt8>) -> Bool {
        !text.isEmpty && text.utf8.count <= maximum && text.utf8.allSatisfy(allowed.contains)
    }
}

/// Who a check is about.
enum Subject: Sendable, Equatable {
    case user(UUID, superAdmin: Bool)
    /// An API key acts for its creator, within its scopes (PERM-2).
    case apiKey(UUID, creator: UUID, scopes: [String])
}

/// An answer of the check API and why (PERM-2).
struct Decision: Sendable, Equatable {
    var allowed: Bool
    var reason: String

    static func allow(_ reason: String) -> Decision { Decision(allowed: true, reason: reason) }
    static func deny(_ reason: String) -> Decision { Decision(allowed: false, reason: reason) }

    static let superAdminBypass = "superadmin_bypass"
}

/// One tenant's whole authorization state at one revision: the tenant roles, every resource
/// binding, the role → permission table and the scope → permission table. Immutable, so a check
/// reads it without a lock and without a query.
struct Policy: Sendable {
    struct Member: Sendable, Equatable {
        var email: String
        var role: String
        var isActive: Bool
    }

    let revision: UInt64
    let members: [UUID: Member]
    /// Resource → user → role.
    let resourceRoles: [Resource: [UUID: String]]
    /// Scope (`tenant` or a resource type) → role → permissions.
    let rolePermissions: [String: [String: Set<String>]]
    /// API key scope → permissions.
    let scopePermissions: [String: Set<String>]

    static let tenantScope = "tenant"

    /// Every permission some role or scope grants: anything else is not an action.
    let actions: Set<String>

    init(
        revision: UInt64,
        members: [UUID: Member],
        resourceRoles: [Resource: [UUID: String]],
        rolePermissions: [String: [String: Set<String>]],
        scopePermissions: [String: Set<String>]
    ) {
        self.revision = revision
        self.members = members
        self.resourceRoles = resourceRoles
        self.rolePermissions = rolePermissions
        self.scopePermissions = scopePermissions
        actions = rolePermissions.values.reduce(into: Set(scopePermissions.values.joined())) { $0.formUnion($1.values.joined()) }
    }

    /// The policy one write later: `user`'s role on `resource` set, or removed when nil. The
    /// writer installs it instead of reloading the tenant (it held the revision lock, so this is
    /// exactly what it committed).
    func replacing(role: String?, of user: UUID, on resource: Resource, revision: UInt64) -> Policy {
        var resourceRoles = resourceRoles
        resourceRoles[resource, default: [:]][user] = role
        if resourceRoles[resource]?.isEmpty == true { resourceRoles[resource] = nil }
        return Policy(
            revision: revision,
            members: members,
            resourceRoles: resourceRoles,
            rolePermissions: rolePermissions,
            scopePermissions: scopePermissions
        )
    }

    /// Resource types: every role scope but the tenant's.
    func isResourceType(_ type: String) -> Bool { type != Self.tenantScope && rolePermissions[type] != nil }

    func roles(of type: String) -> Set<String> { Set(rolePermissions[type].map { Array($0.keys) } ?? []) }

    func check(_ subject: Subject, _ action: String, on resource: Resource?) -> Decision {
        switch subject {
        case .user(_, superAdmin: true):
            return .allow(Decision.superAdminBypass)
        case .user(let user, superAdmin: false):
            return check(user, action, on: resource)
        case .apiKey(_, let creator, let scopes):
            guard scopes.contains(where: { scopePermissions[$0]?.contains(action) == true }) else { return .deny("scope_missing") }
            return check(creator, action, on: resource)
        }
    }

    private func check(_ user: UUID, _ action: String, on resource: Resource?) -> Decision {
        guard let member = members[user] else { return .deny("not_a_member") }
        guard member.isActive else { return .deny("member_disabled") }
        if rolePermissions[Self.tenantScope]?[member.role]?.contains(action) == true {
            return .allow("tenant_role:\(member.role)")
        }
        if let resource, let role = resourceRoles[resource]?[user], rolePermissions[resource.type]?[role]?.contains(action) == true {
            return .allow("resource_role:\(role)@\(resource)")
        }
        return .deny("no_role_grants")
    }

    /// What `subject` may do on `resource` (or the tenant), and the roles that grant it.
    func permissions(_ subject: Subject, on resource: Resource?) -> (permissions: Set<String>, grants: [String]) {
        var permissions: Set<String> = []
        var grants: [String] = []
        for action in actions.sorted() {
            let decision = check(subject, action, on: resource)
            guard decision.allowed else { continue }
            permissions.insert(action)
            if !grants.contains(decision.reason) { grants.append(decision.reason) }
        }
        return (permissions, grants)
    }
}
