import Logging
import RampartModels
import ServiceKit
import ServiceLifecycle

/// Registration, login, tokens, sessions, MFA, SSO and API keys (SPEC sections 1-4).
///
/// So far: registration (the user, then the tenant through `tenants`), with the password policy
/// and hashing on a thread pool of its own. Login, tokens and the rest follow.
public enum AuthService {
    public static func descriptor(settings: AuthSettings = AuthSettings()) -> ServiceDescriptor {
        @Sendable func registration(_ context: ServiceContext, _ hasher: PasswordHasher) throws -> Registration {
            guard let database = context.database else { throw RampartError(.internal, "auth has no database") }
            return Registration(
                settings: settings,
                hasher: hasher,
                database: database,
                rpc: RPCClient(connection: context.nats),
                audit: AuditPublisher(jetStream: try context.nats.jetStream(), logger: context.logger),
                logger: context.logger
            )
        }
        // One pool per service instance, made when the first of routes or services asks.
        let hasher = Result { try PasswordHasher(algorithm: settings.passwordAlgorithm, threads: settings.hashThreads) }
        return ServiceDescriptor(
            name: .auth,
            migrations: AuthMigrations.set,
            prepare: { context in
                try await AuditPublisher(jetStream: try context.nats.jetStream(), logger: context.logger).ensureStream()
            },
            routes: { router, context in
                let made = Result { try registration(context, try hasher.get()) }
                router.register(Subjects.Auth.register) { (request: Rampart_V1_RegisterRequest, call) in
                    try await made.get().register(request, call: call)
                }
            },
            services: { context in
                guard context.database != nil else { return [] }
                return [
                    AbandonedRegistrations(registration: try registration(context, try hasher.get()), health: context.health, logger: context.logger)
                ]
            }
        )
    }
}

/// Removes users a registration left pending, once a minute.
struct AbandonedRegistrations: Service {
    let registration: Registration
    let health: HealthChecks
    let logger: Logger

    func run() async throws {
        await repeatEvery(.seconds(60), "abandoned registrations", health: health, logger: logger) { try await registration.removeAbandoned() }
    }
}
