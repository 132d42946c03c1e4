import PostgresNIO
import RampartModels
import ServiceKit
import SodiumKit

#if canImport(FoundationEssentials)
import FoundationEssentials
import NATSKit
import SwiftProtobuf
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
                return (known, try await members.find(user, in: tenant))
            } catch RampartError.noSuchTenant {
                return (known, nil)  // a deletion dropped the schema since: no members any more
            }
        }
        guard let user, try await database.isProvisioned(tenant) else { return (try await registry.status(tenant), nil) }
        do {
            guard let (status, member) = try await members.withTenantStatus(user, in: tenant) else { return (nil, nil) }
            return (status, member)
        } catch RampartError.noSuchTenant {
            return (try await registry.status(tenant), nil)
        }
    }

    // MARK: Members (TEN-10)

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
        guard let member = try await members.find(user, in: tenant) else {
            throw RampartError(.notFound, "no such member", details: ["field": "user_id"])
        }
        var reply = Rampart_V1_MemberReply()
        reply.member = member
        if let found { reply.tenantPolicies = found.policies }
        return reply
    }

    /// tenants' own step of the provisioning saga: the owner named at sign-up becomes the first
    /// member. Idempotent.
    func addOwner(_ tenant: TenantID) async throws {
        guard let owner = try await registry.owner(tenant) else { return }
        try await members.insertOwner(owner.userID, email: owner.email, in: tenant)
    }

    // MARK: Memberships (a person in several tenants)

    /// The calling user's tenants, in the order they joined, with their role and status in each.
    func listMemberships(_ call: CallContext) async throws -> Rampart_V1_ListMembershipsReply {
        guard let user = call.userID else { throw RampartError(.permissionDenied, "only a signed-in person has memberships") }
        let found = try await members.tenants(of: user)
        var reply = Rampart_V1_ListMembershipsReply()
        for (tenant, name, status) in found {
            var membership = Rampart_V1_Membership()
            membership.tenantID = tenant.hex
            membership.tenantName = name
            membership.tenantStatus = status
            if let member = try await members.find(user, in: tenant) {
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
        reply.members = try await members.list(in: tenant)
        reply.invitations = try await invitations.open(in: tenant)
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
            return try await members.update(user, role: role?.name ?? current.role, status: status ?? current.status, in: tenant, on: connection)
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
            try await members.remove(user, from: tenant, on: connection)
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
            let activeOwners = try await members.lockActiveOwners(in: tenant, on: connection)
            guard let before = try await members.find(user, in: tenant, on: connection, lock: true), let role = before.role.name else {
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
