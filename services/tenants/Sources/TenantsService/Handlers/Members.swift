import PostgresNIO
import RampartModels
import ServiceKit
import SodiumKit

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Who is calling, as far as this tenant is concerned.
struct Caller: Sendable {
    var userID: UUID?
    var role: Rampart_V1_MemberRole?
    /// Another Rampart service acting on its own (`system:<service>`).
    var isService = false
}

extension Tenants {
    // MARK: Authorization

    /// The caller's standing in `tenant`, refusing anyone below `needed`. Members are looked up
    /// in the tenant's own schema, so a member of tenant A is nobody in tenant B. API keys read
    /// only; their roles arrive with the permissions service.
    /// `status`: the tenant's, when the caller has just read its registry row.
    func authorize(
        _ call: CallContext,
        _ tenant: TenantID,
        _ needed: Rampart_V1_MemberRole,
        allowInactive: Bool = false,
        status known: Rampart_V1_TenantStatus? = nil
    ) async throws -> Caller {
        let (status, member) = try await standing(of: call.userID, in: tenant, status: known)
        guard let status, status != .deleted else {
            throw RampartError.noSuchTenant
        }
        if !allowInactive, status != .active {
            throw RampartError(.failedPrecondition, "the tenant is \(status.name ?? "unavailable")")
        }
        guard let principal = call.principal else { throw RampartError(.unauthenticated, "sign in first") }
        switch principal {
        case .service:
            return Caller(isService: true)
        case .apiKey:
            guard needed == .member else { throw RampartError(.permissionDenied, "API keys cannot manage the tenant") }
            return Caller()
        case .user:
            guard let user = call.userID else { throw RampartError(.unauthenticated, "sign in first") }
            guard let member, member.status == .active, let role = member.role.held else {
                // During provisioning the owner is known from the registry before the member row exists.
                if allowInactive, status == .provisioning, try await registry.owner(tenant)?.userID == user {
                    return Caller(userID: user, role: .owner)
                }
                throw RampartError(.permissionDenied, "you are not a member of this tenant")
            }
            guard role.includes(needed) else { throw RampartError(.permissionDenied, "this needs the \(needed.name ?? "") role") }
            return Caller(userID: user, role: role)
        }
    }

    /// The tenant's status and, for a user, their member row: one query once the tenant is
    /// provisioned here, the registry alone until then, or once a deletion has dropped the schema.
    private func standing(
        of user: UUID?,
        in tenant: TenantID,
        status known: Rampart_V1_TenantStatus?
    ) async throws -> (Rampart_V1_TenantStatus?, Rampart_V1_Member?) {
        if let known {
            guard let user else { return (known, nil) }
            do {
                return (known, try await member(user, in: tenant))
            } catch RampartError.noSuchTenant {
                return (known, nil)  // a deletion dropped the schema since: no members any more
            }
        }
        guard let user, try await database.isProvisioned(tenant) else { return (try await registry.status(tenant), nil) }
        let query: PostgresQuery = """
            SELECT t.status, m.* FROM tenants t
            LEFT JOIN (SELECT \(unescaped: Self.memberColumns) FROM \(schema: tenant).members WHERE user_id = \(user)) m ON true
            WHERE t.id = \(tenant.hex)
            """
        do {
            let rows = try await database.query(query)
            let columns = (String, UUID?, String?, String?, String?, Int64?, String?, String?, Int64?).self
            for try await (status, id, email, role, memberStatus, joined, reason, by, at) in rows.decode(columns) {
                let status = Rampart_V1_TenantStatus(name: status)
                guard let id, let email, let role, let memberStatus, let joined else { return (status, nil) }
                return (status, Self.member((id, email, role, memberStatus, joined, reason, by, at)))
            }
            return (nil, nil)
        } catch RampartError.noSuchTenant {
            return (try await registry.status(tenant), nil)
        }
    }

    // MARK: Members (TEN-10)

    static let memberColumns = """
        user_id, email, role, status, (extract(epoch FROM joined_at) * 1000)::bigint,
        isolation_reason, isolated_by, (extract(epoch FROM isolated_at) * 1000)::bigint
        """

    typealias MemberRow = (UUID, String, String, String, Int64, String?, String?, Int64?)

    static func member(_ row: MemberRow) -> Rampart_V1_Member {
        var member = Rampart_V1_Member()
        member.userID = row.0.uuidString.lowercased()
        member.email = row.1
        member.role = Rampart_V1_MemberRole(name: row.2) ?? .unspecified
        member.status = row.3 == "active" ? .active : .disabled
        member.joinedAtMs = row.4
        if let reason = row.5, let by = row.6, let at = row.7 {
            member.isolation.reason = reason
            member.isolation.isolatedBy = by
            member.isolation.isolatedAtMs = at
        }
        return member
    }

    func member(_ user: UUID, in tenant: TenantID, on connection: PostgresConnection? = nil, lock: Bool = false) async throws -> Rampart_V1_Member? {
        guard try await database.isProvisioned(tenant) else { return nil }
        let query: PostgresQuery =
            "SELECT \(unescaped: Self.memberColumns) FROM \(schema: tenant).members WHERE user_id = \(user)\(unescaped: lock ? " FOR UPDATE" : "")"
        let rows =
            if let connection { try await connection.query(query, logger: logger) } else { try await database.query(query) }
        return try await rows.first(decoding: MemberRow.self).map { row in Self.member(row) }
    }

    /// One member, for another service acting on its own (auth at sign-in) or the member.
    func getMember(_ request: Rampart_V1_GetMemberRequest, call: CallContext) async throws -> Rampart_V1_MemberReply {
        let tenant = try call.requireTenant()
        guard let user = UUID(uuidString: request.userID) else { throw RampartError.invalidArgument("user_id must be a UUID", field: "user_id") }
        // A service signing the member in needs the tenant's policies too: one round trip instead
        // of two, and the registry row read for them gives the status the caller is judged by.
        let found = request.includeTenantPolicies && call.principal?.isService == true ? try await load(tenant) : nil
        // Only in an active tenant: a suspended (isolated, IR-1) one signs nobody in.
        let caller = try await authorize(call, tenant, .member, status: found?.status)
        guard caller.isService || caller.userID == user else { throw RampartError(.permissionDenied, "only the member or a service") }
        guard let member = try await member(user, in: tenant) else { throw RampartError(.notFound, "no such member", details: ["field": "user_id"]) }
        var reply = Rampart_V1_MemberReply()
        reply.member = member
        if let found { reply.tenantPolicies = found.policies }
        return reply
    }

    /// tenants' own step of the provisioning saga: the owner named at sign-up becomes the first
    /// member. Idempotent.
    func addOwner(_ tenant: TenantID) async throws {
        guard let owner = try await registry.owner(tenant) else { return }
        try await database.transaction { connection in
            try await connection.query(
                "INSERT INTO \(schema: tenant).members (user_id, email, role, status) VALUES (\(owner.userID), \(owner.email), 'owner', 'active') ON CONFLICT DO NOTHING",
                logger: logger
            )
            try await addMembership(owner.userID, tenant, on: connection)
        }
    }

    // MARK: Memberships (a person in several tenants)

    /// `public.memberships` indexes which tenants each user belongs to, so a person's tenants
    /// can be listed without visiting every schema. Written in the transaction that adds or
    /// removes the member row.
    func addMembership(_ user: UUID, _ tenant: TenantID, on connection: PostgresConnection) async throws {
        try await connection.query(
            "INSERT INTO memberships (user_id, tenant_id) VALUES (\(user), \(tenant.hex)) ON CONFLICT DO NOTHING",
            logger: logger
        )
    }

    /// The calling user's tenants, in the order they joined, with their role and status in each.
    func listMemberships(_ call: CallContext) async throws -> Rampart_V1_ListMembershipsReply {
        guard let user = call.userID else { throw RampartError(.permissionDenied, "only a signed-in person has memberships") }
        let rows = try await database.query(
            """
            SELECT t.id, t.name, t.status FROM memberships m JOIN tenants t ON t.id = m.tenant_id
            WHERE m.user_id = \(user) AND t.status NOT IN ('deleting', 'deleted') ORDER BY m.joined_at, t.id
            """
        )
        var found: [(TenantID, String, Rampart_V1_TenantStatus)] = []
        for try await (id, name, status) in rows.decode((String, String, String).self) {
            if let tenant = TenantID(id), let status = Rampart_V1_TenantStatus(name: status) { found.append((tenant, name, status)) }
        }
        var reply = Rampart_V1_ListMembershipsReply()
        for (tenant, name, status) in found {
            var membership = Rampart_V1_Membership()
            membership.tenantID = tenant.hex
            membership.tenantName = name
            membership.tenantStatus = status
            if let member = try await member(user, in: tenant) {
                membership.role = member.role
                membership.status = member.status
                membership.joinedAtMs = member.joinedAtMs
            } else if status == .provisioning {
                // The owner named at sign-up, before tenants' own schema has the member row.
                membership.role = .owner
                membership.status = .active
            } else {
                continue
            }
            reply.memberships.append(membership)
        }
        return reply
    }

    func listMembers(_ call: CallContext) async throws -> Rampart_V1_ListMembersReply {
        let tenant = try call.requireTenant()
        _ = try await authorize(call, tenant, .member)
        var reply = Rampart_V1_ListMembersReply()
        let members = try await database.query(
            "SELECT \(unescaped: Self.memberColumns) FROM \(schema: tenant).members ORDER BY joined_at, user_id"
        )
        for try await row in members.decode(MemberRow.self) { reply.members.append(Self.member(row)) }
        let invitations = try await database.query(
            """
            SELECT id, email, role, (extract(epoch FROM expires_at) * 1000)::bigint, invited_by FROM \(schema: tenant).invitations
            WHERE accepted_at IS NULL AND cancelled_at IS NULL AND expires_at > now() ORDER BY created_at
            """
        )
        for try await (id, email, role, expires, by) in invitations.decode((UUID, String, String, Int64, String).self) {
            var invitation = Rampart_V1_Invitation()
            invitation.invitationID = id.uuidString.lowercased()
            invitation.email = email
            invitation.role = Rampart_V1_MemberRole(name: role) ?? .unspecified
            invitation.expiresAtMs = expires
            invitation.invitedBy = by
            reply.invitations.append(invitation)
        }
        return reply
    }

    /// Role and status changes. Disabling is immediate: member.disabled goes out before the
    /// reply, so auth revokes the user's sessions and keys.
    func updateMember(_ request: Rampart_V1_UpdateMemberRequest, call: CallContext) async throws -> Rampart_V1_MemberReply {
        let tenant = try call.requireTenant()
        let caller = try await authorize(call, tenant, .admin)
        guard let user = UUID(uuidString: request.userID) else { throw RampartError.invalidArgument("user_id must be a UUID", field: "user_id") }
        let role: Rampart_V1_MemberRole? =
            try request.hasRole
            ? request.role.held.orThrow(.invalidArgument("the role must be owner, admin or member", field: "role")) : nil
        let status: String?
        switch (request.hasStatus, request.status) {
        case (false, _): status = nil
        case (true, .active): status = "active"
        case (true, .disabled): status = "disabled"
        default: throw RampartError.invalidArgument("the status must be active or disabled", field: "status")
        }
        let (before, after) = try await changeMember(tenant, user, caller: caller) { current, connection in
            if status == "active", current.proto.hasIsolation {
                throw RampartError(.failedPrecondition, "this member is isolated: lift the isolation (DELETE …/members/{user_id}/isolate)")
            }
            let rows = try await connection.query(
                "UPDATE \(schema: tenant).members SET role = \(role?.name ?? current.role), status = \(status ?? current.status), updated_at = now() WHERE user_id = \(user) RETURNING \(unescaped: Self.memberColumns)",
                logger: logger
            )
            for try await row in rows.decode(MemberRow.self) { return Self.member(row) }
            throw RampartError.internalError()
        }
        if before.status == .active, after.status == .disabled {
            try await publishMemberDisabled(tenant, user, reason: "disabled")
            await recordMember(.memberDisabled, tenant, after, call: call)
        } else if before.status == .disabled, after.status == .active {
            await recordMember(.memberEnabled, tenant, after, call: call)
        }
        if before.role != after.role {
            var event = memberEvent(.permissionChanged, tenant, after, call: call)
            event.details = ["role_before": before.role.name ?? "", "role_after": after.role.name ?? ""]
            await record(event)
        }
        var reply = Rampart_V1_MemberReply()
        reply.member = after
        let synced = await memberChanged(tenant, user, call: call)
        reply.permissionsRevision = synced.revision
        reply.warnings = synced.warnings
        return reply
    }

    func removeMember(_ request: Rampart_V1_RemoveMemberRequest, call: CallContext) async throws -> Rampart_V1_MemberReply {
        let tenant = try call.requireTenant()
        let caller = try await authorize(call, tenant, .admin)
        guard let user = UUID(uuidString: request.userID) else { throw RampartError.invalidArgument("user_id must be a UUID", field: "user_id") }
        let (removed, _) = try await changeMember(tenant, user, caller: caller, removing: true) { current, connection in
            try await connection.query(
                "DELETE FROM \(schema: tenant).members WHERE user_id = \(user)",
                logger: logger
            )
            try await connection.query("DELETE FROM memberships WHERE user_id = \(user) AND tenant_id = \(tenant.hex)", logger: logger)
            var gone = current.proto
            gone.status = .disabled
            return gone
        }
        try await publishMemberDisabled(tenant, user, reason: "removed")
        await recordMember(.memberRemoved, tenant, removed, call: call)
        var reply = Rampart_V1_MemberReply()
        reply.member = removed
        let synced = await memberChanged(tenant, user, call: call)
        reply.permissionsRevision = synced.revision
        reply.warnings = synced.warnings
        return reply
    }

    struct StoredMember {
        var role: String
        var status: String
        var proto: Rampart_V1_Member
    }

    /// Runs `change` on one member under a lock on the tenant's active owners, after the rules:
    /// only an owner touches an owner or makes one, and the last active owner can be neither
    /// demoted, disabled nor removed.
    func changeMember(
        _ tenant: TenantID,
        _ user: UUID,
        caller: Caller,
        removing: Bool = false,
        _ change: @escaping @Sendable (StoredMember, PostgresConnection) async throws -> Rampart_V1_Member
    ) async throws -> (before: Rampart_V1_Member, after: Rampart_V1_Member) {
        try await database.transaction { connection in
            let owners = try await connection.query(
                "SELECT user_id FROM \(schema: tenant).members WHERE role = 'owner' AND status = 'active' FOR UPDATE",
                logger: logger
            )
            var activeOwners: Set<UUID> = []
            for try await owner in owners.decode(UUID.self) { activeOwners.insert(owner) }
            guard let before = try await member(user, in: tenant, on: connection, lock: true), let role = before.role.name else {
                throw RampartError(.notFound, "no such member", details: ["field": "user_id"])
            }
            let current = StoredMember(role: role, status: before.status == .active ? "active" : "disabled", proto: before)
            let after = try await change(current, connection)
            try MemberRules.check(
                user,
                from: before,
                to: after,
                removing: removing,
                activeOwners: activeOwners,
                changer: (caller.role, caller.isService)
            )
            return (before, after)
        }
    }

    /// Tells permissions, which keeps a copy of every member's tenant role: through the event
    /// (durable: permissions catches up whatever happens) and, to reply with a revision that
    /// already reflects the change, directly. Returns its answer: that revision and its
    /// least-privilege warnings, or nothing (revision 0) when permissions did not answer in time.
    func memberChanged(_ tenant: TenantID, _ user: UUID, call: CallContext) async -> Rampart_V1_SyncMemberReply {
        var event = Rampart_V1_MemberChanged()
        event.eventID = UUID().uuidString.lowercased()
        event.tenantID = tenant.hex
        event.userID = user.uuidString.lowercased()
        event.occurredAtMs = WallClock.milliseconds()
        do {
            _ = try await jetStream.publish(try event.serializedBytes(), to: Subjects.MemberEvents.changed, messageID: event.eventID)
        } catch {
            logger.error("member.changed not published", metadata: ["tenant": "\(tenant.hex)", "error": "\(loggable(error))"])
        }
        var sync = Rampart_V1_SyncMemberRequest()
        sync.userID = event.userID
        let context = CallContext(requestID: call.requestID, tenantID: tenant, principal: Principal(service: .tenants), timeout: .seconds(2))
        do {
            return try await rpc.call(Subjects.Permissions.syncMember, sync, context: context)
        } catch {
            logger.warning("permissions not told of a member change in time", metadata: ["tenant": "\(tenant.hex)", "error": "\(loggable(error))"])
            return Rampart_V1_SyncMemberReply()
        }
    }

    func publishMemberDisabled(_ tenant: TenantID, _ user: UUID, reason: String) async throws {
        var event = Rampart_V1_MemberDisabled()
        event.eventID = UUID().uuidString.lowercased()
        event.tenantID = tenant.hex
        event.userID = user.uuidString.lowercased()
        event.occurredAtMs = WallClock.milliseconds()
        event.reason = reason
        _ = try await jetStream.publish(try event.serializedBytes(), to: Subjects.MemberEvents.disabled, messageID: event.eventID)
    }

    func memberEvent(_ action: AuditAction, _ tenant: TenantID, _ member: Rampart_V1_Member, call: CallContext) -> Rampart_V1_AuditEvent {
        var event = auditEvent(action, tenant: tenant, call: call)
        event.target.type = "user"
        event.target.id = member.userID
        event.details = ["email": member.email]
        return event
    }

    private func recordMember(_ action: AuditAction, _ tenant: TenantID, _ member: Rampart_V1_Member, call: CallContext) async {
        await record(memberEvent(action, tenant, member, call: call))
    }
}

extension Optional {
    func orThrow(_ error: RampartError) throws -> Wrapped {
        guard let self else { throw error }
        return self
    }
}
