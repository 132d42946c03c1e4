import Logging
import PostgresNIO
import RampartModels
import ServiceKit

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The check API, resource roles and the tenant-role mirror (SPEC section 6).
struct Permissions: Sendable {
    let database: Database
    let store: PolicyStore
    let revisions: PolicyRevisions
    let rpc: RPCClient
    let audit: AuditPublisher
    let logger: Logger

    static let maximumBatch = 100
    static let maximumScopes = 32

    // MARK: Checks (PERM-2, PERM-3, PERM-6)

    func check(_ request: Rampart_V1_CheckRequest, call: CallContext) async throws -> Rampart_V1_CheckReply {
        let tenant = try call.requireTenant()
        let policy = try await store.policy(tenant, atLeast: request.atLeastRevision)
        return Self.reply(try await decide(request, policy: policy, tenant: tenant, call: call), at: policy.revision)
    }

    /// Every check at one revision: the newest any of them asks for.
    func batchCheck(_ request: Rampart_V1_BatchCheckRequest, call: CallContext) async throws -> Rampart_V1_BatchCheckReply {
        let tenant = try call.requireTenant()
        guard !request.checks.isEmpty, request.checks.count <= Self.maximumBatch else {
            throw RampartError.invalidArgument("1 to \(Self.maximumBatch) checks", field: "checks")
        }
        let policy = try await store.policy(tenant, atLeast: request.checks.map(\.atLeastRevision).max() ?? 0)
        var reply = Rampart_V1_BatchCheckReply()
        reply.revision = policy.revision
        for (index, check) in request.checks.enumerated() {
            let decision: Decision
            do {
                decision = try await decide(check, policy: policy, tenant: tenant, call: call)
            } catch var error as RampartError {
                if let field = error.details["field"] { error.details["field"] = "checks[\(index)].\(field)" }
                throw error
            }
            reply.results.append(Self.reply(decision, at: policy.revision))
        }
        return reply
    }

    static func reply(_ decision: Decision, at revision: UInt64) -> Rampart_V1_CheckReply {
        var reply = Rampart_V1_CheckReply()
        reply.allowed = decision.allowed
        reply.reason = decision.reason
        reply.revision = revision
        return reply
    }

    private func decide(_ request: Rampart_V1_CheckRequest, policy: Policy, tenant: TenantID, call: CallContext) async throws -> Decision {
        let subject = try Self.subject(
            request.principal,
            creator: request.apiKeyCreator,
            scopes: request.apiKeyScopes,
            superAdmin: request.superAdmin
        )
        try authorizeQuestion(about: request.principal, policy: policy, call: call)
        let action = try Self.action(request.action, in: policy)
        let resource = try Self.resource(request.resource, in: policy)
        let decision = policy.check(subject, action, on: resource)
        if decision.reason == Decision.superAdminBypass {
            // Every use is recorded (PERM-3), or the bypass is not granted.
            var event = Rampart_V1_AuditEvent(
                .superAdminBypass,
                tenant: tenant,
                target: resource.map { ($0.type, $0.id) } ?? ("tenant", tenant.hex),
                call: call,
                actor: Principal(request.principal).map { Rampart_V1_AuditActor(principal: $0) },
                service: .permissions
            )
            event.superAdmin = true
            event.details = ["action": action, "revision": String(policy.revision)]
            do {
                try await audit.publish(event)
            } catch {
                logger.error("super-admin bypass not audited, refused", metadata: ["error": "\(loggable(error))"])
                throw RampartError(.unavailable, "the super-admin bypass cannot be audited right now")
            }
        }
        return decision
    }

    func listPermissions(_ request: Rampart_V1_ListPermissionsRequest, call: CallContext) async throws -> Rampart_V1_ListPermissionsReply {
        let tenant = try call.requireTenant()
        let policy = try await store.policy(tenant, atLeast: request.atLeastRevision)
        let subject = try Self.subject(request.principal, creator: request.apiKeyCreator, scopes: request.apiKeyScopes, superAdmin: false)
        try authorizeQuestion(about: request.principal, policy: policy, call: call)
        let resource = try Self.resource(request.resource, in: policy)
        let (permissions, grants) = policy.permissions(subject, on: resource)
        var reply = Rampart_V1_ListPermissionsReply()
        reply.permissions = permissions.sorted()
        reply.grants = grants
        reply.revision = policy.revision
        return reply
    }

    /// Who reaches `resource`: its own bindings, and the members whose tenant role grants
    /// something on its type. Asked by whoever may share the resource.
    func listAccess(_ request: Rampart_V1_ListAccessRequest, call: CallContext) async throws -> Rampart_V1_ListAccessReply {
        let tenant = try call.requireTenant()
        let policy = try await store.policy(tenant, atLeast: request.atLeastRevision)
        guard let resource = try Self.resource(request.resource, in: policy) else {
            throw RampartError.invalidArgument("name a resource, e.g. boards/<id>", field: "resource")
        }
        try requireCaller(call, may: "\(resource.type).share", on: resource, policy: policy)
        let typePermissions = Set(policy.rolePermissions[resource.type, default: [:]].values.joined())
        let tenantRoles = policy.rolePermissions[Policy.tenantScope, default: [:]]
        var reply = Rampart_V1_ListAccessReply()
        reply.revision = policy.revision
        for (user, member) in policy.members.sorted(by: { $0.key.uuidString < $1.key.uuidString }) where member.isActive {
            if !(tenantRoles[member.role] ?? []).isDisjoint(with: typePermissions) {
                reply.bindings.append(Self.binding(user, role: member.role, resource: nil))
            }
            if let role = policy.resourceRoles[resource]?[user] {
                reply.bindings.append(Self.binding(user, role: role, resource: resource))
            }
        }
        return reply
    }

    // MARK: Resource roles (PERM-1, PERM-5, PERM-6)

    func setResourceRole(_ request: Rampart_V1_SetResourceRoleRequest, call: CallContext) async throws -> Rampart_V1_PermissionsWriteReply {
        try await changeResourceRole(request.resource, request.principal, to: request.role, call: call)
    }

    func removeResourceRole(_ request: Rampart_V1_RemoveResourceRoleRequest, call: CallContext) async throws -> Rampart_V1_PermissionsWriteReply {
        try await changeResourceRole(request.resource, request.principal, to: nil, call: call)
    }

    /// Sets (or, with `role` nil, removes) one user's role on one resource, under the tenant's
    /// revision lock: the rules are checked against exactly the state the write changes.
    private func changeResourceRole(
        _ resourceText: String,
        _ principal: String,
        to role: String?,
        call: CallContext
    ) async throws
        -> Rampart_V1_PermissionsWriteReply
    {
        let tenant = try call.requireTenant()
        if case .apiKey = call.principal { throw RampartError(.permissionDenied, "API keys cannot change roles") }
        guard let user = Self.user(principal) else {
            throw RampartError.invalidArgument("the principal must be user:<uuid> of a member", field: "principal")
        }
        // One write per tenant at a time in this replica, so each finds its predecessor's result
        // installed in the cache instead of reloading the tenant (the row lock alone would not).
        let (revision, binding) = try await store.writers.exclusively(tenant) { try await writeResourceRole() }
        func writeResourceRole() async throws -> (UInt64, Rampart_V1_RoleBinding) {
            let (revision, binding, updated) = try await database.transaction { connection -> (UInt64, Rampart_V1_RoleBinding, Policy) in
                let current = try await Self.lockRevision(tenant, connection, logger: logger)
                let policy = try await store.policy(tenant, atLeast: current)
                guard let resource = try Self.resource(resourceText, in: policy) else {
                    throw RampartError.invalidArgument("name a resource, e.g. boards/<id>", field: "resource")
                }
                let holders = policy.resourceRoles[resource] ?? [:]
                // A new resource is being created; an existing one is shared by who may share it,
                // even when its last holder has left (then only tenant roles grant that).
                let created = try await create(resource, in: tenant, by: call.principal?.description ?? "system:unknown", connection)
                try requireCaller(call, may: created ? "\(resource.type).create" : "\(resource.type).share", on: resource, policy: policy)
                // A user of another tenant is nobody here (PERM-5); a disabled member keeps what they
                // hold, which can be taken away, but is given nothing new.
                if role != nil, policy.members[user]?.isActive != true {
                    throw RampartError(.failedPrecondition, "the principal is not an active member of this tenant", details: ["field": "principal"])
                }
                if let role, !policy.roles(of: resource.type).contains(role) {
                    let roles = policy.roles(of: resource.type).sorted().joined(separator: ", ")
                    throw RampartError.invalidArgument("the role must be one of \(roles)", field: "role")
                }
                let owners = holders.filter { $0.value == "owner" }.map(\.key)
                if owners == [user], role != "owner" {
                    throw RampartError(.failedPrecondition, "the last owner of \(resource) cannot lose ownership: make someone else owner first")
                }
                if let role {
                    let grantedBy = call.principal?.description ?? "system:unknown"
                    try await connection.query(
                        """
                        INSERT INTO \(schema: tenant).resource_roles (resource_type, resource_id, user_id, role, granted_by)
                        VALUES (\(resource.type), \(resource.id), \(user), \(role), \(grantedBy))
                        ON CONFLICT (resource_type, resource_id, user_id) DO UPDATE SET role = EXCLUDED.role, granted_by = EXCLUDED.granted_by, granted_at = now()
                        """,
                        logger: logger
                    )
                } else {
                    guard holders[user] != nil else {
                        throw RampartError(.notFound, "the principal holds no role on \(resource)", details: ["field": "principal"])
                    }
                    try await connection.query(
                        """
                        DELETE FROM \(schema: tenant).resource_roles
                        WHERE resource_type = \(resource.type) AND resource_id = \(resource.id) AND user_id = \(user)
                        """,
                        logger: logger
                    )
                }
                let revision = try await Self.bumpRevision(tenant, from: current, connection, logger: logger)
                var binding = Self.binding(user, role: role ?? "", resource: resource)
                binding.grantedBy = call.principal?.description ?? ""
                binding.grantedAtMs = WallClock.milliseconds()
                return (revision, binding, policy.replacing(role: role, of: user, on: resource, revision: revision))
            }
            store.install(updated, replacing: revision - 1, for: tenant)
            return (revision, binding)
        }
        await revisions.announce(revision, of: tenant)
        var event = Rampart_V1_AuditEvent(
            .permissionChanged,
            tenant: tenant,
            target: ("user", user.uuidString.lowercased()),
            call: call,
            service: .permissions
        )
        event.details = ["resource": binding.resource, "role": role ?? "", "change": role == nil ? "removed" : "set", "revision": String(revision)]
        await record(event)
        var reply = Rampart_V1_PermissionsWriteReply()
        reply.revision = revision
        reply.binding = binding
        return reply
    }

    /// Records `resource` in the tenant's schema unless it is there: whether this call made it.
    /// A resource is the tenant's own (PERM-5): another tenant's board of the same ID is another
    /// board, so no tenant can squat an ID or learn whether another tenant uses it. A concurrent
    /// creation waits on the row and then finds it made.
    private func create(_ resource: Resource, in tenant: TenantID, by principal: String, _ connection: PostgresConnection) async throws -> Bool {
        let rows = try await connection.query(
            """
            INSERT INTO \(schema: tenant).resources (resource_type, resource_id, created_by) VALUES (\(resource.type), \(resource.id), \(principal))
            ON CONFLICT (resource_type, resource_id) DO NOTHING RETURNING 1
            """,
            logger: logger
        )
        return try await rows.collect().count == 1
    }

    // MARK: Tenant roles, mirrored from tenants

    /// Re-reads `user`'s membership from tenants and stores it here: the tenant role a check
    /// uses. Idempotent, and order-free: whichever event comes last reads the latest state.
    func syncMember(_ user: UUID, of tenant: TenantID, call: CallContext) async throws -> Rampart_V1_SyncMemberReply {
        var lookup = Rampart_V1_GetMemberRequest()
        lookup.userID = user.uuidString.lowercased()
        var asked = CallContext(requestID: call.requestID, tenantID: tenant, principal: Principal(service: .permissions))
        asked.deadline = call.deadline
        let member: Rampart_V1_Member?
        do {
            member = try await rpc.call(Subjects.Tenants.getMember, lookup, context: asked).member
        } catch let error as RampartError where error.code == .notFound {
            member = nil
        }
        guard try await database.isProvisioned(tenant) else {
            throw RampartError(.failedPrecondition, "permissions has not provisioned this tenant yet")
        }
        let statement: PostgresQuery
        if let member, let role = member.role.name {
            let status = member.status == .active ? "active" : "disabled"
            statement = """
                INSERT INTO \(schema: tenant).members (user_id, email, role, status) VALUES (\(user), \(member.email), \(role), \(status))
                ON CONFLICT (user_id) DO UPDATE SET email = EXCLUDED.email, role = EXCLUDED.role, status = EXCLUDED.status, synced_at = now()
                    WHERE (members.email, members.role, members.status) IS DISTINCT FROM (EXCLUDED.email, EXCLUDED.role, EXCLUDED.status)
                RETURNING 1
                """
        } else {
            statement = "DELETE FROM \(schema: tenant).members WHERE user_id = \(user) RETURNING 1"
        }
        let revision = try await changeMembers(tenant, statement)
        var reply = Rampart_V1_SyncMemberReply()
        reply.revision = revision
        reply.warnings = try await warnings(tenant, atLeast: revision)
        return reply
    }

    /// The owner named at sign-up, from tenant.created. Idempotent.
    func addOwner(_ user: UUID, email: String, of tenant: TenantID) async throws {
        _ = try await changeMembers(
            tenant,
            "INSERT INTO \(schema: tenant).members (user_id, email, role, status) VALUES (\(user), \(email), 'owner', 'active') ON CONFLICT DO NOTHING RETURNING 1"
        )
    }

    /// Runs `statement` (one row back per member it changed) under the tenant's revision lock,
    /// bumps the revision if it changed anything, and announces the revision it leaves.
    private func changeMembers(_ tenant: TenantID, _ statement: PostgresQuery) async throws -> UInt64 {
        let revision: UInt64 = try await database.transaction { connection in
            let current = try await Self.lockRevision(tenant, connection, logger: logger)
            let changed = try await connection.query(statement, logger: logger).collect().count > 0
            return changed ? try await Self.bumpRevision(tenant, from: current, connection, logger: logger) : current
        }
        await revisions.announce(revision, of: tenant)
        return revision
    }

    /// PERM-4's least-privilege hints.
    func warnings(_ tenant: TenantID, atLeast revision: UInt64) async throws -> [String] {
        let policy = try await store.policy(tenant, atLeast: revision)
        let admins = policy.members.values.filter { $0.isActive && ($0.role == "admin" || $0.role == "owner") }.count
        return admins > 3 ? ["\(admins) owners and admins: keep 2 or 3"] : []
    }

    func recordActivity(_ user: UUID, of tenant: TenantID, at milliseconds: Int64) async throws {
        try await database.query(
            """
            UPDATE \(schema: tenant).members SET last_active_at = to_timestamp(\(milliseconds) / 1000.0)
            WHERE user_id = \(user) AND (last_active_at IS NULL OR last_active_at < to_timestamp(\(milliseconds) / 1000.0))
            """
        )
    }

    // MARK: Shared rules

    /// A principal may ask about itself; asking about anyone else takes `members.manage`.
    private func authorizeQuestion(about principal: String, policy: Policy, call: CallContext) throws {
        guard let caller = call.principal else { throw RampartError(.unauthenticated, "sign in first") }
        if caller.description == principal || caller.isService { return }
        try requireCaller(call, may: "members.manage", on: nil, policy: policy)
    }

    /// The calling user (or a service) may do `action` on `resource`.
    func requireCaller(_ call: CallContext, may action: String, on resource: Resource?, policy: Policy) throws {
        guard let caller = call.principal else { throw RampartError(.unauthenticated, "sign in first") }
        if caller.isService { return }
        guard let user = call.userID else { throw RampartError(.permissionDenied, "this needs \(action)") }
        let decision = policy.check(.user(user, superAdmin: false), action, on: resource)
        guard decision.allowed else { throw RampartError(.permissionDenied, "this needs \(action) (\(decision.reason))") }
    }

    static func user(_ principal: String) -> UUID? {
        Principal(principal)?.userID
    }

    static func subject(_ principal: String, creator: String, scopes: [String], superAdmin: Bool) throws -> Subject {
        if let user = user(principal) {
            guard creator.isEmpty, scopes.isEmpty else {
                throw RampartError.invalidArgument("api_key_creator and api_key_scopes are for api_key principals", field: "api_key_scopes")
            }
            return .user(user, superAdmin: superAdmin)
        }
        guard let key = Principal(principal)?.apiKeyID else {
            throw RampartError.invalidArgument("the principal must be user:<uuid> or api_key:<uuid>", field: "principal")
        }
        guard !superAdmin else { throw RampartError.invalidArgument("an API key is never a super-admin", field: "super_admin") }
        guard let creator = user(creator) else {
            throw RampartError.invalidArgument("an API key's creator must be user:<uuid>", field: "api_key_creator")
        }
        guard scopes.count <= maximumScopes, scopes.allSatisfy({ !$0.isEmpty && $0.utf8.count <= 64 }) else {
            throw RampartError.invalidArgument("at most \(maximumScopes) scopes of 1 to 64 characters", field: "api_key_scopes")
        }
        return .apiKey(key, creator: creator, scopes: scopes)
    }

    static func action(_ text: String, in policy: Policy) throws -> String {
        guard text.utf8.count <= 65, policy.actions.contains(text) else {
            throw RampartError.invalidArgument("unknown action: use a permission such as boards.read", field: "action")
        }
        return text
    }

    /// Nil for the tenant itself (an empty resource).
    static func resource(_ text: String, in policy: Policy) throws -> Resource? {
        if text.isEmpty { return nil }
        guard let resource = Resource(text), policy.isResourceType(resource.type) else {
            throw RampartError.invalidArgument("the resource must be <type>/<id> of a known type, e.g. boards/<id>", field: "resource")
        }
        return resource
    }

    static func binding(_ user: UUID, role: String, resource: Resource?) -> Rampart_V1_RoleBinding {
        var binding = Rampart_V1_RoleBinding()
        binding.principal = Principal(user: user).description
        binding.role = role
        binding.resource = resource?.description ?? ""
        return binding
    }

    static func lockRevision(_ tenant: TenantID, _ connection: PostgresConnection, logger: Logger) async throws -> UInt64 {
        let rows = try await connection.query("SELECT revision FROM \(schema: tenant).policy_revision FOR UPDATE", logger: logger)
        for try await revision in rows.decode(Int64.self) { return UInt64(revision) }
        throw RampartError.internalError()
    }

    static func bumpRevision(_ tenant: TenantID, from current: UInt64, _ connection: PostgresConnection, logger: Logger) async throws -> UInt64 {
        try await connection.query("UPDATE \(schema: tenant).policy_revision SET revision = revision + 1", logger: logger)
        return current + 1
    }

    func record(_ event: Rampart_V1_AuditEvent) async {
        do {
            try await audit.publish(event)
        } catch {
            logger.error("audit event lost", metadata: ["action": "\(event.action)", "error": "\(loggable(error))"])
        }
    }
}
