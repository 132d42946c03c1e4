import RampartModels
import ServiceKit

/// The tamper-evident audit log (SPEC section 7).
///
/// So far: events published through `AuditPublisher` are consumed from `RAMPART_AUDIT` and
/// stored once each, per tenant schema (platform events in `public`), as a SHA-256 hash chain.
/// Queries, exports, verification, signed checkpoints and retention come with the rest of the
/// audit issue.
public enum AuditService {
    public static func descriptor() -> ServiceDescriptor {
        ServiceDescriptor(
            name: .audit,
            migrations: AuditMigrations.set,
            services: { context in
                guard let database = context.database else { return [] }
                return [
                    AuditIngest(
                        store: AuditStore(database: database, logger: context.logger),
                        connection: context.nats,
                        health: context.health,
                        logger: context.logger
                    )
                ]
            }
        )
    }
}
