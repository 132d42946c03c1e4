import Logging
import NATSKit
import RampartModels
public import ServiceKit
import ServiceLifecycle

#if canImport(FoundationEssentials)
import FoundationEssentials
import SwiftProtobuf
#else
import Foundation
#endif

/// Roles, bindings and the permission check (SPEC section 6).
///
/// Tenant roles belong to `tenants` and are copied here on every member change; resource roles
/// and the role → permission table live here, in each tenant's schema. Checks are answered from
/// an in-memory `Policy` per tenant, never older than the revision a caller presents (PERM-6).
public enum PermissionsService {
    public static func descriptor() -> ServiceDescriptor {
        ServiceDescriptor(name: .permissions, migrations: PermissionsMigrations.set, build: build)
    }

    static func build(_ context: ServiceContext) async throws -> ServiceParts {
        let database = try context.database
        try await context.jetStream.requireStream(Subjects.eventsStream)
        try await context.audit.requireStream()
        let store = PolicyStore(database: database, logger: context.logger)
        let bucket = try await PolicyRevisions.ensureBucket(context.jetStream)
        let permissions = Permissions(
            database: database,
            store: store,
            revisions: PolicyRevisions(bucket: bucket, store: store, logger: context.logger),
            rpc: RPCClient(connection: context.nats),
            audit: context.audit,
            logger: context.logger
        )

        var router = RPCRouter()
        router.register(Subjects.Permissions.check, requires: [.tenant, .principal]) { (request, call) in
            try await permissions.check(request, call: call)
        }
        router.register(Subjects.Permissions.batchCheck, requires: [.tenant, .principal]) { (request, call) in
            try await permissions.batchCheck(request, call: call)
        }
        router.register(Subjects.Permissions.listPermissions, requires: [.tenant, .principal]) {
            (request, call) in
            try await permissions.listPermissions(request, call: call)
        }
        router.register(Subjects.Permissions.listAccess, requires: [.tenant, .principal]) { (request, call) in
            try await permissions.listAccess(request, call: call)
        }
        router.register(Subjects.Permissions.setResourceRole, requires: [.tenant, .principal]) {
            (request, call) in
            try await permissions.setResourceRole(request, call: call)
        }
        router.register(Subjects.Permissions.removeResourceRole, requires: [.tenant, .principal]) {
            (request, call) in
            try await permissions.removeResourceRole(request, call: call)
        }
        router.register(Subjects.Permissions.syncMember, requires: [.tenant, .principal]) { (request, call) in
            guard call.principal?.isService == true else { throw RampartError(.permissionDenied, "for services only") }
            guard let user = UUID(uuidString: request.userID) else {
                throw RampartError.invalidArgument("user_id must be a UUID", field: "user_id")
            }
            return try await permissions.syncMember(user, of: try call.requireTenant(), call: call)
        }
        router.register(Subjects.Permissions.accessReview, requires: [.tenant, .principal]) {
            (request, call) in
            try await permissions.accessReview(request, call: call)
        }
        router.register(Subjects.Permissions.completeAccessReview, requires: [.tenant, .principal]) {
            (request, call) in
            try await permissions.completeAccessReview(request, call: call)
        }
        return ServiceParts(
            routes: router,
            services: [PermissionsFollower(permissions: permissions, jetStream: context.jetStream, health: context.health, logger: context.logger)],
            // The owner named at sign-up holds the role before the tenant is active.
            tenantLifecycle: TenantLifecycleHooks(created: { event in
                guard let tenant = TenantID(event.tenantID), let owner = UUID(uuidString: event.ownerUserID) else { return }
                try await permissions.addOwner(owner, email: event.ownerEmail, of: tenant)
            })
        )
    }
}

/// Follows what other services say: member changes (re-read from tenants), sign-ins (the
/// access review's last activity), and every replica's revision announcements.
struct PermissionsFollower: Service {
    let permissions: Permissions
    let jetStream: JetStream
    let health: HealthChecks
    let logger: Logger

    func run() async throws {
        await withDiscardingTaskGroup { group in
            group.addTask { try? await permissions.revisions.run() }
            group.addTask {
                await followEvents(jetStream, "permissions-member-changed", Subjects.MemberEvents.changed, health: health, logger: logger) {
                    message in
                    guard let event = try? Rampart_V1_MemberChanged(serializedBytes: message.payload), let tenant = TenantID(event.tenantID),
                        let user = UUID(uuidString: event.userID)
                    else {
                        logger.error("unreadable member.changed dropped", metadata: ["sequence": "\(message.streamSequence)"])
                        try? message.terminate()
                        return
                    }
                    guard try await permissions.database.isProvisioned(tenant) else {
                        // Deleted: nothing to keep. Not provisioned yet: the schema comes soon.
                        if try await permissions.database.isDeleted(tenant) { try await message.ack() } else { try message.nak(delay: .seconds(1)) }
                        return
                    }
                    do {
                        _ = try await permissions.syncMember(user, of: tenant, call: CallContext())
                        try await message.ack()
                    } catch {
                        logger.warning("member sync failed, will retry", metadata: ["tenant": "\(tenant.hex)", "error": "\(loggable(error))"])
                        try message.nak(delay: .seconds(2))
                    }
                }
            }
            group.addTask {
                await followEvents(jetStream, "permissions-member-activity", Subjects.MemberEvents.loggedIn, health: health, logger: logger) {
                    message in
                    guard let event = try? Rampart_V1_MemberLoggedIn(serializedBytes: message.payload), let tenant = TenantID(event.tenantID),
                        let user = UUID(uuidString: event.userID)
                    else {
                        try? message.terminate()
                        return
                    }
                    if try await permissions.database.isProvisioned(tenant) {
                        try await permissions.recordActivity(user, of: tenant, at: event.occurredAtMs)
                    }
                    try await message.ack()
                }
            }
        }
    }
}
