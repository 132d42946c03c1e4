import RampartModels
import ServiceKit

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// IR-1 "Isolate": one action stops a member or the whole tenant. tenants records it (who,
/// when, why) and asks auth to revoke the credentials, and webhooks to hold deliveries, before
/// it answers, so the caller's 200 means every gateway refuses them.
extension Tenants {
    func isolateMember(_ request: Rampart_V1_IsolateMemberRequest, call: CallContext) async throws -> Rampart_V1_IsolationReply {
        let tenant = try call.requireTenant()
        let caller = try await authorize(call, tenant, .admin)
        guard let user = UUID(uuidString: request.userID) else { throw RampartError.invalidArgument("user_id must be a UUID", field: "user_id") }
        let reason = try Rampart_V1_Isolation.reason(request.reason)
        guard caller.userID != user else { throw RampartError(.failedPrecondition, "you cannot isolate yourself") }
        let by = call.principal?.description ?? ""
        // changeMember applies the member rules: only an owner isolates an owner, never the last.
        let (before, after) = try await changeMember(tenant, user, caller: caller) { _, connection in
            try await members.isolate(user, by: by, reason: reason, in: tenant, on: connection)
        }
        // auth at once, for the reply's counts; then the durable event, which ends everything
        // even when auth missed the call (and finds nothing left when it did not).
        let answered = try? await revokeCredentials(tenant, user: user, reason: "member_isolated", call: call)
        if before.status == .active { try await publishMemberDisabled(tenant, user, reason: "isolated") }
        guard let revoked = answered else {
            throw RampartError(.unavailable, "the member is isolated, but auth did not confirm the revocation in time: try again")
        }
        var event = memberEvent(.memberIsolated, tenant, after, call: call)
        event.reason = reason
        event.details["sessions_revoked"] = String(revoked.sessionsRevoked)
        event.details["api_keys_revoked"] = String(revoked.apiKeysRevoked)
        await record(event)
        _ = await memberChanged(tenant, user, call: call)
        var reply = Rampart_V1_IsolationReply()
        reply.member = after
        reply.sessionsRevoked = revoked.sessionsRevoked
        reply.apiKeysRevoked = revoked.apiKeysRevoked
        return reply
    }

    func liftMemberIsolation(_ request: Rampart_V1_LiftMemberIsolationRequest, call: CallContext) async throws -> Rampart_V1_IsolationReply {
        let tenant = try call.requireTenant()
        let caller = try await authorize(call, tenant, .admin)
        guard let user = UUID(uuidString: request.userID) else { throw RampartError.invalidArgument("user_id must be a UUID", field: "user_id") }
        let (_, after) = try await changeMember(tenant, user, caller: caller) { current, connection in
            guard current.proto.hasIsolation else { throw RampartError(.failedPrecondition, "this member is not isolated") }
            return try await members.liftIsolation(user, in: tenant, on: connection)
        }
        await record(memberEvent(.memberIsolationLifted, tenant, after, call: call))
        _ = await memberChanged(tenant, user, call: call)
        var reply = Rampart_V1_IsolationReply()
        reply.member = after
        return reply
    }

    /// Owners, or a platform super-admin (the gateway's flag): the tenant is suspended, every
    /// credential in it revoked and its deliveries held.
    func isolateTenant(_ request: Rampart_V1_IsolateTenantRequest, call: CallContext) async throws -> Rampart_V1_IsolationReply {
        let tenant = try call.requireTenant()
        if !request.superAdmin { _ = try await authorize(call, tenant, .owner) }
        let reason = try Rampart_V1_Isolation.reason(request.reason)
        guard let by = call.principal?.description, call.userID != nil else { throw RampartError(.unauthenticated, "sign in first") }
        let changed = try await registry.isolate(tenant, by: by, reason: reason)
        guard changed else { throw RampartError(.failedPrecondition, "only an active tenant can be isolated") }
        try await pauseDeliveries(tenant, true, call: call)
        let revoked = try await revokeCredentials(tenant, user: nil, reason: "tenant_isolated", call: call)
        var event = auditEvent(.tenantIsolated, tenant: tenant, call: call)
        event.superAdmin = request.superAdmin
        event.reason = reason
        event.details = ["sessions_revoked": String(revoked.sessionsRevoked), "api_keys_revoked": String(revoked.apiKeysRevoked)]
        await record(event)
        var reply = Rampart_V1_IsolationReply()
        reply.tenant = try await load(tenant)
        reply.sessionsRevoked = revoked.sessionsRevoked
        reply.apiKeysRevoked = revoked.apiKeysRevoked
        return reply
    }

    /// A platform super-admin only: the tenant's owners are locked out with everyone else, and
    /// someone holding an owner's stolen password must not undo the isolation.
    func liftTenantIsolation(_ request: Rampart_V1_LiftTenantIsolationRequest, call: CallContext) async throws -> Rampart_V1_IsolationReply {
        let tenant = try call.requireTenant()
        guard request.superAdmin, call.userID != nil else {
            throw RampartError(.permissionDenied, "only a platform super-admin lifts a tenant's isolation")
        }
        let changed = try await registry.liftIsolation(tenant)
        guard changed else { throw RampartError(.failedPrecondition, "this tenant is not isolated") }
        try await pauseDeliveries(tenant, false, call: call)
        var event = auditEvent(.tenantIsolationLifted, tenant: tenant, call: call)
        event.superAdmin = true
        await record(event)
        var reply = Rampart_V1_IsolationReply()
        reply.tenant = try await load(tenant)
        return reply
    }

    private func revokeCredentials(
        _ tenant: TenantID,
        user: UUID?,
        reason: String,
        call: CallContext
    ) async throws -> Rampart_V1_RevokeCredentialsReply {
        var request = Rampart_V1_RevokeCredentialsRequest()
        request.userID = user?.uuidString.lowercased() ?? ""
        request.reason = reason
        return try await rpc.call(Subjects.Auth.revokeCredentials, request, context: asTenants(call, tenant))
    }

    private func pauseDeliveries(_ tenant: TenantID, _ paused: Bool, call: CallContext) async throws {
        guard settings.sagaServices.contains(.webhooks) else { return }
        var request = Rampart_V1_PauseDeliveriesRequest()
        request.paused = paused
        _ = try await rpc.call(Subjects.Webhooks.pauseDeliveries, request, context: asTenants(call, tenant))
    }

    /// The call, made by tenants itself about `tenant` (for the service it asks).
    func asTenants(_ call: CallContext, _ tenant: TenantID) -> CallContext {
        var context = call
        context.tenantID = tenant
        context.principal = Principal(service: .tenants)
        return context
    }
}
