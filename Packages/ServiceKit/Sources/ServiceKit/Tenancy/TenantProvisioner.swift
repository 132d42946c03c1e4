public import Logging
public import NATSKit
public import RampartModels
public import ServiceLifecycle
import SwiftProtobuf

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The domain-events stream, as every publisher and consumer declares it.
public enum DomainEvents {
    public static let stream = JetStream.StreamConfiguration(
        name: Subjects.eventsStream,
        subjects: [Subjects.eventsPrefix + ".>"],
        maxAge: .seconds(30 * 24 * 3600),
        duplicateWindow: .seconds(120),
        maxMessageSize: 64 * 1024
    )
}

extension JetStream {
    /// The two streams services share, as a deployment's setup would make them. In service each
    /// has one owner that alone may create it (tenants this one, audit the audit stream; OPS-4);
    /// a test or bench that starts a service without its streams' owners calls this first.
    public func ensureSharedStreams() async throws {
        try await ensureStream(DomainEvents.stream)
        try await ensureStream(AuditPublisher.stream)
    }
}

/// What a service does beyond its schema when a tenant's life changes (all default to nothing).
/// Each runs before the event is acknowledged and is retried while it throws.
public struct TenantLifecycleHooks: Sendable {
    /// Once the new tenant's schema exists, before the service reports it provisioned.
    public var created: @Sendable (Rampart_V1_TenantCreated) async throws -> Void
    /// When the tenant changes plan.
    public var planChanged: @Sendable (Rampart_V1_TenantPlanChanged) async throws -> Void

    public init(
        created: @escaping @Sendable (Rampart_V1_TenantCreated) async throws -> Void = { _ in },
        planChanged: @escaping @Sendable (Rampart_V1_TenantPlanChanged) async throws -> Void = { _ in }
    ) {
        self.created = created
        self.planChanged = planChanged
    }
}

/// A data-owning service's part of the tenant sagas (ARCHITECTURE "Data"): on `tenant.created`
/// it creates and migrates the tenant's schema in its own database and publishes
/// `tenant.provisioned.<service>`; on `tenant.deleted` it drops the schema and publishes
/// `tenant.deprovisioned.<service>`; each event is acknowledged only after.
///
/// One durable consumer follows `rampart.events.tenant.*` in stream order: a service that was
/// down provisions (or drops) when it comes back, a redelivered event changes nothing (both
/// steps are idempotent and each receipt's message ID is fixed per tenant and service), and a
/// deleted tenant is remembered so a late `tenant.created` cannot bring its schema back.
public struct TenantProvisioner: Service {
    let service: ServiceName
    let database: Database
    let migrations: MigrationSet
    let connection: NATSConnection
    let health: HealthChecks
    let logger: Logger
    let hooks: TenantLifecycleHooks

    public init(
        service: ServiceName,
        database: Database,
        migrations: MigrationSet,
        connection: NATSConnection,
        health: HealthChecks,
        logger: Logger,
        hooks: TenantLifecycleHooks = TenantLifecycleHooks()
    ) {
        self.service = service
        self.database = database
        self.migrations = migrations
        self.connection = connection
        self.health = health
        self.logger = logger
        self.hooks = hooks
    }

    public func run() async throws {
        await repeatUntilShutdown("tenant provisioning", logger: logger) {
            // After the service's own migrations: they create the registry tables used here.
            await health.waitUntilStarted()
            try await consume()
        }
    }

    private func consume() async throws {
        let jetStream = try connection.jetStream()
        let consumer = try await jetStream.durableConsumer(
            stream: Subjects.eventsStream,
            .init(durableName: "tenant-lifecycle-\(service.subjectToken)", filterSubject: Subjects.TenantEvents.lifecycle, ackWait: .seconds(60))
        )
        defer { consumer.unsubscribe() }
        while !Task.isCancelled {
            for message in try await consumer.fetch(batch: 16, timeout: .seconds(1)) {
                await handle(message, jetStream: jetStream)
            }
        }
    }

    private func handle(_ message: JetStreamMessage, jetStream: JetStream) async {
        let tenant: TenantID?
        let step: () async throws -> Void
        switch message.subject {
        case Subjects.TenantEvents.created:
            let event = try? Rampart_V1_TenantCreated(serializedBytes: message.payload)
            tenant = event.flatMap { TenantID($0.tenantID) }
            step = { try await provision(tenant!, event!, jetStream: jetStream) }
        case Subjects.TenantEvents.deleted:
            let event = try? Rampart_V1_TenantDeleted(serializedBytes: message.payload)
            tenant = event.flatMap { TenantID($0.tenantID) }
            step = { try await deprovision(tenant!, jetStream: jetStream) }
        case Subjects.TenantEvents.planChanged:
            let event = try? Rampart_V1_TenantPlanChanged(serializedBytes: message.payload)
            tenant = event.flatMap { TenantID($0.tenantID) }
            step = { try await hooks.planChanged(event!) }
        default:
            // Another tenant.* event: not this consumer's business.
            try? await message.ack()
            return
        }
        guard let tenant else {
            // Malformed: it can never succeed, so it must not come back and block the others.
            logger.error("unreadable tenant event dropped", metadata: ["subject": "\(message.subject)", "sequence": "\(message.streamSequence)"])
            try? message.terminate()
            return
        }
        do {
            try await step()
            try await message.ack()
        } catch {
            logger.warning(
                "tenant event failed, will retry",
                metadata: ["subject": "\(message.subject)", "tenant": "\(tenant.hex)", "error": "\(loggable(error))"]
            )
            try? message.nak(delay: .seconds(2))
        }
    }

    private func provision(_ tenant: TenantID, _ event: Rampart_V1_TenantCreated, jetStream: JetStream) async throws {
        guard try await !database.isDeleted(tenant) else {
            logger.warning("tenant.created for a deleted tenant ignored", metadata: ["tenant": "\(tenant.hex)"])
            return
        }
        try await database.provision(tenant, migrations)
        // A deletion handled meanwhile by another replica wins: drop what was just made.
        if try await database.isDeleted(tenant) {
            try await database.deprovision(tenant)
            return
        }
        try await hooks.created(event)
        var receipt = Rampart_V1_TenantProvisioned()
        receipt.eventID = UUID().uuidString.lowercased()
        receipt.tenantID = tenant.hex
        receipt.service = service.rawValue
        receipt.occurredAtMs = WallClock.milliseconds()
        try await publishReceipt(receipt, step: "provisioned", subject: Subjects.TenantEvents.provisioned(by: service), tenant, jetStream)
    }

    private func deprovision(_ tenant: TenantID, jetStream: JetStream) async throws {
        try await database.deprovision(tenant)
        var receipt = Rampart_V1_TenantDeprovisioned()
        receipt.eventID = UUID().uuidString.lowercased()
        receipt.tenantID = tenant.hex
        receipt.service = service.rawValue
        receipt.occurredAtMs = WallClock.milliseconds()
        try await publishReceipt(receipt, step: "deprovisioned", subject: Subjects.TenantEvents.deprovisioned(by: service), tenant, jetStream)
    }

    /// The message ID is fixed per step, service and tenant: a repeated receipt is stored once.
    private func publishReceipt(
        _ receipt: some SwiftProtobuf.Message,
        step: String,
        subject: String,
        _ tenant: TenantID,
        _ jetStream: JetStream
    ) async throws {
        _ = try await jetStream.publish(try receipt.serializedBytes(), to: subject, messageID: "tenant-\(step)-\(service.subjectToken)-\(tenant.hex)")
        logger.info("tenant \(step)", metadata: ["tenant": "\(tenant.hex)"])
    }
}

/// Feeds each message of the durable consumer `durable` on `filter` (in `RAMPART_EVENTS`) to
/// `handle`, from when the service has started until shutdown, resuming after NATS or database
/// trouble; `handle` acknowledges. For services that react to other services' domain events.
public func followEvents(
    _ jetStream: JetStream,
    _ durable: String,
    _ filter: String,
    health: HealthChecks,
    logger: Logger,
    _ handle: @escaping @Sendable (JetStreamMessage) async throws -> Void
) async {
    await repeatUntilShutdown(durable, logger: logger) {
        await health.waitUntilStarted()
        let consumer = try await jetStream.durableConsumer(
            stream: Subjects.eventsStream,
            .init(durableName: durable, filterSubject: filter, ackWait: .seconds(30))
        )
        defer { consumer.unsubscribe() }
        while !Task.isCancelled {
            for message in try await consumer.fetch(batch: 64, timeout: .seconds(1)) { try await handle(message) }
        }
    }
}
