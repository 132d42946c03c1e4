import Logging
import NATSKit
import RampartModels
import ServiceKit
import ServiceLifecycle
import SwiftProtobuf

/// The coordinating side of the sagas (TEN-1, TEN-7): collects every service's
/// `tenant.provisioned.<service>` and `tenant.deprovisioned.<service>` receipts and moves the
/// tenant to `active` or `deleted` when the last one arrives.
struct TenantSagaReceipts: Service {
    let tenants: Tenants
    let health: HealthChecks
    let logger: Logger

    func run() async throws {
        await followEvents(tenants.jetStream, "tenants-saga", Subjects.TenantEvents.all, health: health, logger: logger) { await handle($0) }
    }

    private func handle(_ message: JetStreamMessage) async {
        let step: String
        let payload: (tenantID: String, service: String)?
        if message.subject.hasPrefix(Subjects.eventsPrefix + ".tenant.provisioned.") {
            step = "provisioned"
            payload = (try? Rampart_V1_TenantProvisioned(serializedBytes: message.payload)).map { ($0.tenantID, $0.service) }
        } else if message.subject.hasPrefix(Subjects.eventsPrefix + ".tenant.deprovisioned.") {
            step = "deprovisioned"
            payload = (try? Rampart_V1_TenantDeprovisioned(serializedBytes: message.payload)).map { ($0.tenantID, $0.service) }
        } else {
            try? await message.ack()  // created, deleted, plan_changed: this service published them
            return
        }
        // The receipt must come from the subject's own service (its NATS user may publish only there).
        guard let payload, let tenant = TenantID(payload.tenantID), let service = ServiceName(rawValue: payload.service),
            message.subject.hasSuffix("." + service.subjectToken)
        else {
            logger.error("unreadable saga receipt dropped", metadata: ["subject": "\(message.subject)"])
            try? message.terminate()
            return
        }
        do {
            switch try await tenants.registry.recordReceipt(tenant, step: step, service: service.rawValue) {
            case .active?:
                logger.info("tenant active", metadata: ["tenant": "\(tenant.hex)"])
                await tenants.record(tenants.auditEvent(.tenantActivated, tenant: tenant, call: nil))
            case .deleted?:
                logger.info("tenant deleted", metadata: ["tenant": "\(tenant.hex)"])
                // The tenant's own log is gone with its schema: the receipt goes to the platform log.
                var event = tenants.auditEvent(.tenantDeleted, tenant: tenant, call: nil)
                event.tenantID = ""
                event.details = ["services": tenants.settings.sagaServices.map(\.rawValue).joined(separator: ",")]
                await tenants.record(event)
            default:
                break
            }
            try await message.ack()
        } catch {
            logger.warning("saga receipt not recorded, will retry", metadata: ["tenant": "\(tenant.hex)", "error": "\(loggable(error))"])
            try? message.nak(delay: .seconds(1))
        }
    }
}

/// Keeps the sagas moving and deletes inactive Starter tenants (TEN-7): every sweep interval,
/// publishes again the step of any tenant stuck in provisioning or deleting (a publish that
/// failed, a stream lost), and starts the deletion of Starter tenants idle for too long.
struct TenantSweeper: Service {
    let tenants: Tenants
    let health: HealthChecks
    let logger: Logger

    func run() async throws {
        await repeatEvery(.seconds(tenants.settings.sweepIntervalSeconds), "tenant sweep", health: health, logger: logger) { try await sweep() }
    }

    func sweep() async throws {
        for (tenant, status, plan) in try await tenants.registry.stalledInSaga(olderThan: tenants.settings.sagaRetrySeconds) {
            logger.info("saga step published again", metadata: ["tenant": "\(tenant.hex)", "status": "\(status.name ?? "")"])
            if status == .provisioning {
                await tenants.publishCreated(tenant, plan: plan, owner: try await tenants.registry.owner(tenant))
            } else {
                await tenants.publishDeleted(tenant, reason: "retry")
            }
        }
        for tenant in try await tenants.registry.inactiveStarters(days: tenants.settings.inactiveStarterDays) {
            logger.info("inactive Starter tenant deleted", metadata: ["tenant": "\(tenant.hex)"])
            try await tenants.startDeletion(tenant, reason: "inactive_starter", call: nil)
        }
    }
}

/// Follows `member.logged_in` from auth: a tenant's last activity, which the inactive-Starter
/// sweep reads.
struct TenantActivity: Service {
    let tenants: Tenants
    let health: HealthChecks
    let logger: Logger

    func run() async throws {
        await followEvents(tenants.jetStream, "tenants-activity", Subjects.MemberEvents.loggedIn, health: health, logger: logger) { message in
            guard let event = try? Rampart_V1_MemberLoggedIn(serializedBytes: message.payload), let tenant = TenantID(event.tenantID),
                event.occurredAtMs > 0
            else {
                try? message.terminate()
                return
            }
            // Never in the future: a skewed clock must not keep a tenant alive for ever.
            try await tenants.registry.recordActivity(tenant, at: min(event.occurredAtMs, WallClock.milliseconds()))
            try await message.ack()
        }
    }
}
