import GuardedHTTP
import Logging
import NATSKit
import RampartModels
public import ServiceKit
import ServiceLifecycle

/// Signed, SSRF-safe outbound webhooks (SPEC section 9).
///
/// A tenant registers endpoints (WH-1); every event of the tenant's audit log whose type an
/// endpoint lists becomes a delivery, signed the Standard Webhooks way and retried on WH-2's
/// schedule until it succeeds or dies; each URL passes the SSRF guard at registration and again
/// before every attempt, and the attempt connects to the address that was checked (WH-3). The
/// log shows every delivery and sends one again on request (WH-4). Providers' events come in
/// verified and once each (WH-5).
public enum WebhooksService {
    public static func descriptor(
        settings: WebhooksSettings = WebhooksSettings(),
        clock: DeliveryClock = .wall,
        resolver: @escaping DestinationGuard.Resolver = SystemResolver.addresses
    ) -> ServiceDescriptor {
        ServiceDescriptor(name: .webhooks, migrations: WebhooksMigrations.set) { context in
            try await build(context, settings: settings, clock: clock, resolver: resolver)
        }
    }

    static func build(
        _ context: ServiceContext,
        settings: WebhooksSettings,
        clock: DeliveryClock,
        resolver: @escaping DestinationGuard.Resolver
    ) async throws -> ServiceParts {
        let database = try context.database
        try await context.audit.requireStream()
        try await context.jetStream.requireStream(Subjects.eventsStream)
        if !settings.allowedNetworks.isEmpty {
            context.logger.warning(
                "webhook deliveries may reach these non-public networks (RAMPART_WEBHOOKS_ALLOWED_NETWORKS)",
                metadata: ["networks": "\(settings.allowedNetworks.map(\.description).joined(separator: ","))"]
            )
        }
        let destinations = DestinationGuard(policy: AddressPolicy(allowlist: settings.allowedNetworks), resolve: resolver)
        // Shared by the routes (a redelivery is due now) and the delivery loop.
        let wake = WakeSignal()
        let endpointStore = EndpointStore(database: database, keyRing: settings.keyEncryption, clock: clock, logger: context.logger)
        let queue = DeliveryQueue(database: database, logger: context.logger)
        let endpoints = Endpoints(
            settings: settings,
            store: endpointStore,
            destinations: destinations,
            audit: context.audit,
            logger: context.logger
        )
        let log = DeliveryLog(endpoints: endpoints, queue: queue, clock: clock, wake: wake, logger: context.logger)
        let inboundEvents = InboundEvents(database: database, logger: context.logger)
        let inbound = Inbound(settings: settings, events: inboundEvents, jetStream: context.jetStream, clock: clock, logger: context.logger)

        var router = RPCRouter()
        router.register(Subjects.Webhooks.pauseDeliveries, requires: [.tenant, .principal]) {
            (request, call) in
            try await log.pause(request, call: call)
        }
        router.register(Subjects.Webhooks.createEndpoint, requires: [.tenant, .principal]) {
            (request, call) in
            try await endpoints.create(request, call: call)
        }
        router.register(Subjects.Webhooks.listEndpoints, requires: [.tenant, .principal]) {
            (request, call) in
            try await endpoints.list(request, call: call)
        }
        router.register(Subjects.Webhooks.getEndpoint, requires: [.tenant, .principal]) { (request, call) in
            try await endpoints.get(request, call: call)
        }
        router.register(Subjects.Webhooks.updateEndpoint, requires: [.tenant, .principal]) {
            (request, call) in
            try await endpoints.update(request, call: call)
        }
        router.register(Subjects.Webhooks.deleteEndpoint, requires: [.tenant, .principal]) { (request, call) in
            try await endpoints.delete(request, call: call)
        }
        router.register(Subjects.Webhooks.rotateSecret, requires: [.tenant, .principal]) { (request, call) in
            try await endpoints.rotateSecret(request, call: call)
        }
        router.register(Subjects.Webhooks.listDeliveries, requires: [.tenant, .principal]) {
            (request, call) in
            try await log.list(request, call: call)
        }
        router.register(Subjects.Webhooks.redeliver, requires: [.tenant, .principal]) { (request, call) in
            try await log.redeliver(request, call: call)
        }
        router.register(Subjects.Webhooks.testEndpoint, requires: [.tenant, .principal]) { (request, call) in
            try await log.test(request, call: call)
        }
        // WH-5: no credential; the provider's signature is the proof.
        router.register(Subjects.Webhooks.receiveInbound) { (request, call) in
            try await inbound.receive(request, call: call)
        }
        return ServiceParts(
            routes: router,
            services: [
                Fanout(
                    queue: queue,
                    endpointStore: endpointStore,
                    connection: context.nats,
                    clock: clock,
                    wake: wake,
                    health: context.health,
                    logger: context.logger
                ),
                InboundPruning(events: inboundEvents, clock: clock, health: context.health, logger: context.logger),
                Deliverer(
                    settings: settings,
                    database: database,
                    queue: queue,
                    destinations: destinations,
                    clients: GuardedHTTPClient(destinations: destinations, timeoutSeconds: settings.timeoutSeconds),
                    audit: context.audit,
                    clock: clock,
                    wake: wake,
                    health: context.health,
                    logger: context.logger
                ),
            ]
        )
    }
}
