import Logging
import NATSKit
import RampartModels
public import ServiceKit
import ServiceLifecycle
import Synchronization

/// The tamper-evident audit log (SPEC section 7).
///
/// Events published through `AuditPublisher` are consumed from `RAMPART_AUDIT` and stored once
/// each, per tenant schema (platform events in `public`), as a SHA-256 hash chain with
/// Ed25519-signed checkpoints and signed retention cuts. A tenant queries, exports and verifies
/// its own log only: the tenant always comes from the call context.
public enum AuditService {
    public static func descriptor(settings: AuditSettings) -> ServiceDescriptor {
        ServiceDescriptor(name: .audit, migrations: AuditMigrations.set) { context in try await build(context, settings: settings) }
    }

    static func build(_ context: ServiceContext, settings: AuditSettings) async throws -> ServiceParts {
        let database = try context.database
        // audit owns the audit stream: NATS lets no other service create or change it. The
        // checkpoints' stream it may create, never change or delete from.
        try await context.jetStream.ensureStream(AuditPublisher.stream)
        try await context.jetStream.ensureStream(PublishedCheckpoints.stream)
        let store = AuditStore(
            database: database,
            settings: settings,
            logger: context.logger,
            published: PublishedCheckpoints(jetStream: context.jetStream)
        )

        /// The calling tenant's chain, once it exists here.
        @Sendable func tenantChain(_ call: CallContext) async throws -> AuditStore.Chain {
            let tenant = try call.requireTenant()
            guard try await database.isProvisioned(tenant) else {
                throw RampartError(.notFound, "no audit log for this tenant")
            }
            return .tenant(tenant)
        }
        var router = RPCRouter()
        router.register(Subjects.Audit.verify, requires: .tenant) { (_, call) in
            let verdict = try await store.verify(try await tenantChain(call))
            var reply = Rampart_V1_AuditVerifyReply()
            reply.valid = verdict.isValid
            reply.verifiedEvents = verdict.verifiedEvents
            reply.firstBadPosition = verdict.firstBadPosition ?? 0
            reply.problem = verdict.problem ?? ""
            return reply
        }
        router.register(Subjects.Audit.query, requires: .tenant) { (request, call) in
            try await store.query(try await tenantChain(call), request)
        }
        router.register(Subjects.Audit.export, requires: .tenant) { (request, call) in
            try await store.export(try await tenantChain(call), request)
        }
        return ServiceParts(
            routes: router,
            services: [
                AuditIngest(store: store, connection: context.nats, health: context.health, logger: context.logger),
                AuditCheckpointer(store: store, health: context.health, logger: context.logger),
                AuditRetention(store: store, health: context.health, logger: context.logger),
            ],
            tenantLifecycle: TenantLifecycleHooks(
                created: { event in
                    guard let tenant = TenantID(event.tenantID) else { return }
                    try await store.recordPlan(tenant, plan: event.plan, since: event.occurredAtMs)
                },
                planChanged: { event in
                    guard let tenant = TenantID(event.tenantID) else { return }
                    try await store.recordPlan(tenant, plan: event.plan, since: event.occurredAtMs)
                }
            )
        )
    }
}

/// Signs the head of every chain whose newest events have waited `checkpointSeconds` unsigned,
/// and publishes each chain's newest checkpoint (finding 14), whether this made it or an append
/// did.
struct AuditCheckpointer: Service {
    let store: AuditStore
    let health: HealthChecks
    let logger: Logger

    func run() async throws {
        let interval = Duration.seconds(max(1, store.settings.checkpointSeconds / 2))
        // What this replica published, per chain: after a restart each is published once more.
        let published = Mutex<[AuditStore.Chain: Int64]>([:])
        await repeatEvery(interval, "audit checkpoints", health: health, logger: logger) {
            let chains = [AuditStore.Chain.platform] + (try await store.database.provisionedTenants()).map { .tenant($0) }
            for chain in chains {
                let signedUpTo = try await store.checkpointIfDue(chain, now: WallClock.milliseconds())
                let position = try await store.publishLatestCheckpoint(chain, signedUpTo: signedUpTo, published: published.withLock { $0[chain] })
                published.withLock { $0[chain] = position }
            }
        }
    }
}
