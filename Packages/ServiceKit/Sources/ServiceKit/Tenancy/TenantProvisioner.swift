import Logging
import NATSKit
import RampartModels
import ServiceLifecycle

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

/// A data-owning service's part of the provisioning saga (ARCHITECTURE "Data"): on each
/// `tenant.created` it creates and migrates the tenant's schema in its own database, then
/// publishes `tenant.provisioned.<service>`, and only then acknowledges the event.
///
/// The consumer is durable: a service that was down when a tenant was created provisions it
/// when it comes back, and a redelivered event provisions nothing twice (provisioning is
/// idempotent, and the reply's message ID is fixed per tenant and service).
public struct TenantProvisioner: Service {
    let service: ServiceName
    let database: Database
    let migrations: MigrationSet
    let connection: NATSConnection
    let logger: Logger
    let afterProvisioning: @Sendable (Rampart_V1_TenantCreated) async throws -> Void

    public init(
        service: ServiceName,
        database: Database,
        migrations: MigrationSet,
        connection: NATSConnection,
        logger: Logger,
        afterProvisioning: @escaping @Sendable (Rampart_V1_TenantCreated) async throws -> Void = { _ in }
    ) {
        self.service = service
        self.database = database
        self.migrations = migrations
        self.connection = connection
        self.logger = logger
        self.afterProvisioning = afterProvisioning
    }

    public func run() async throws {
        await repeatUntilShutdown("tenant provisioning", logger: logger) { try await consume() }
    }

    private func consume() async throws {
        let jetStream = try connection.jetStream()
        try await jetStream.ensureStream(DomainEvents.stream)
        let consumer = try await jetStream.durableConsumer(
            stream: Subjects.eventsStream,
            .init(durableName: "tenant-provisioning-\(service.subjectToken)", filterSubject: Subjects.TenantEvents.created, ackWait: .seconds(60))
        )
        defer { consumer.unsubscribe() }
        while !Task.isCancelled {
            for message in try await consumer.fetch(batch: 16, timeout: .seconds(1)) {
                await handle(message, jetStream: jetStream)
            }
        }
    }

    private func handle(_ message: JetStreamMessage, jetStream: JetStream) async {
        guard let event = try? Rampart_V1_TenantCreated(serializedBytes: message.payload), let tenant = TenantID(event.tenantID) else {
            // Malformed: it can never succeed, so it must not come back and block the others.
            logger.error("unreadable tenant.created event dropped", metadata: ["sequence": "\(message.streamSequence)"])
            try? message.terminate()
            return
        }
        do {
            try await database.provision(tenant, migrations)
            try await afterProvisioning(event)
            var provisioned = Rampart_V1_TenantProvisioned()
            provisioned.eventID = UUID().uuidString.lowercased()
            provisioned.tenantID = tenant.hex
            provisioned.service = service.rawValue
            provisioned.occurredAtMs = WallClock.milliseconds()
            _ = try await jetStream.publish(
                try provisioned.serializedBytes(),
                to: Subjects.TenantEvents.provisioned(by: service),
                messageID: "tenant-provisioned-\(service.subjectToken)-\(tenant.hex)"
            )
            try await message.ack()
            logger.info("tenant provisioned", metadata: ["tenant": "\(tenant.hex)"])
        } catch {
            logger.warning("tenant provisioning failed, will retry", metadata: ["tenant": "\(tenant.hex)", "error": "\(error)"])
            try? message.nak(delay: .seconds(2))
        }
    }
}
