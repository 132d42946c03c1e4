import Logging
import RampartModels
import ServiceKit
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
        let destinations = DestinationGuard(policy: AddressPolicy(allowlist: settings.allowedNetworks), resolve: resolver)
        // Shared by the routes (a redelivery is due now) and the delivery loop.
        let wake = WakeSignal()
        let clients = DeliveryClients(timeoutSeconds: settings.timeoutSeconds)
        @Sendable func endpoints(_ context: ServiceContext) throws -> Endpoints {
            guard let database = context.database else { throw RampartError(.internal, "webhooks has no database") }
            return Endpoints(
                settings: settings,
                database: database,
                destinations: destinations,
                audit: AuditPublisher(jetStream: try context.nats.jetStream(), service: .webhooks, logger: context.logger),
                clock: clock,
                logger: context.logger
            )
        }
        return ServiceDescriptor(
            name: .webhooks,
            migrations: WebhooksMigrations.set,
            prepare: { context in
                let jetStream = try context.nats.jetStream()
                try await AuditPublisher(jetStream: jetStream, service: .webhooks, logger: context.logger).requireStream()
                try await jetStream.requireStream(Subjects.eventsStream)
                if !settings.allowedNetworks.isEmpty {
                    context.logger.warning(
                        "webhook deliveries may reach these non-public networks (RAMPART_WEBHOOKS_ALLOWED_NETWORKS)",
                        metadata: ["networks": "\(settings.allowedNetworks.map(\.description).joined(separator: ","))"]
                    )
                }
            },
            routes: { router, context in
                let made = Result { try endpoints(context) }
                let log = Result {
                    let endpoints = try made.get()
                    return DeliveryLog(endpoints: endpoints, database: endpoints.database, clock: clock, wake: wake, logger: context.logger)
                }
                router.register(Subjects.Webhooks.pauseDeliveries, requires: [.tenant, .principal]) {
                    (request: Rampart_V1_PauseDeliveriesRequest, call) in
                    try await log.get().pause(request, call: call)
                }
                router.register(Subjects.Webhooks.createEndpoint, requires: [.tenant, .principal]) {
                    (request: Rampart_V1_CreateEndpointRequest, call) in
                    try await made.get().create(request, call: call)
                }
                router.register(Subjects.Webhooks.listEndpoints, requires: [.tenant, .principal]) {
                    (request: Rampart_V1_ListEndpointsRequest, call) in
                    try await made.get().list(request, call: call)
                }
                router.register(Subjects.Webhooks.getEndpoint, requires: [.tenant, .principal]) { (request: Rampart_V1_EndpointRequest, call) in
                    try await made.get().get(request, call: call)
                }
                router.register(Subjects.Webhooks.updateEndpoint, requires: [.tenant, .principal]) {
                    (request: Rampart_V1_UpdateEndpointRequest, call) in
                    try await made.get().update(request, call: call)
                }
                router.register(Subjects.Webhooks.deleteEndpoint, requires: [.tenant, .principal]) { (request: Rampart_V1_EndpointRequest, call) in
                    try await made.get().delete(request, call: call)
                }
                router.register(Subjects.Webhooks.rotateSecret, requires: [.tenant, .principal]) { (request: Rampart_V1_RotateSecretRequest, call) in
                    try await made.get().rotateSecret(request, call: call)
                }
                router.register(Subjects.Webhooks.listDeliveries, requires: [.tenant, .principal]) {
                    (request: Rampart_V1_ListDeliveriesRequest, call) in
                    try await log.get().list(request, call: call)
                }
                router.register(Subjects.Webhooks.redeliver, requires: [.tenant, .principal]) { (request: Rampart_V1_RedeliverRequest, call) in
                    try await log.get().redeliver(request, call: call)
                }
                router.register(Subjects.Webhooks.testEndpoint, requires: [.tenant, .principal]) { (request: Rampart_V1_TestEndpointRequest, call) in
                    try await log.get().test(request, call: call)
                }
                let inbound = Result {
                    guard let database = context.database else { throw RampartError(.internal, "webhooks has no database") }
                    return Inbound(
                        settings: settings,
                        database: database,
                        jetStream: try context.nats.jetStream(),
                        clock: clock,
                        logger: context.logger
                    )
                }
                // WH-5: no credential; the provider's signature is the proof.
                router.register(Subjects.Webhooks.receiveInbound) { (request: Rampart_V1_InboundRequest, call) in
                    try await inbound.get().receive(request, call: call)
                }
            },
            services: { context in
                guard let database = context.database else { return [] }
                let audit = AuditPublisher(jetStream: try context.nats.jetStream(), service: .webhooks, logger: context.logger)
                return [
                    Fanout(database: database, connection: context.nats, clock: clock, wake: wake, health: context.health, logger: context.logger),
                    InboundPruning(database: database, clock: clock, health: context.health, logger: context.logger),
                    Deliverer(
                        settings: settings,
                        database: database,
                        destinations: destinations,
                        clients: clients,
                        audit: audit,
                        clock: clock,
                        wake: wake,
                        health: context.health,
                        logger: context.logger
                    ),
                ]
            }
        )
    }
}
