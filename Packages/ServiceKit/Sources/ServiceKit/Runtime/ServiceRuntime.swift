import Hummingbird
public import Logging
import Metrics
public import NATSKit
import NIOCore
public import RampartModels
public import ServiceLifecycle
import Synchronization
public import UnixSignals

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What makes one service different from another: its name, its migrations, and the one step
/// that builds everything else of it.
public struct ServiceDescriptor: Sendable {
    public var name: ServiceName
    public var version: String
    public var migrations: MigrationSet
    /// Called once, after the migrations and before the first request is taken: makes each
    /// dependency once (creating the service's JetStream streams or buckets, loading state) and
    /// returns the handlers and long-lived services that share them. Retried with backoff while
    /// it throws, like the database wait; a `ConfigurationError` stops the service at once.
    public var build: @Sendable (ServiceContext) async throws -> ServiceParts

    public init(
        name: ServiceName,
        version: String = "0.1.0",
        migrations: MigrationSet = .none,
        build: @escaping @Sendable (ServiceContext) async throws -> ServiceParts = { _ in ServiceParts() }
    ) {
        self.name = name
        self.version = version
        self.migrations = migrations
        self.build = build
    }
}

/// What a service's build step makes: its NATS handlers, its long-lived services (run beside the
/// handlers, stopped before them) and what it does when a tenant's life changes.
public struct ServiceParts: Sendable {
    public var routes: RPCRouter
    public var services: [any Service]
    /// What the service does beyond its schema when a tenant is created or changes plan (audit
    /// records the plan its retention follows). Retried while it throws.
    public var tenantLifecycle: TenantLifecycleHooks
    /// Awaited while the services run, before the handlers take requests (rate-limit loads every
    /// ban first).
    public var beforeServing: @Sendable () async -> Void

    public init(
        routes: RPCRouter = RPCRouter(),
        services: [any Service] = [],
        tenantLifecycle: TenantLifecycleHooks = TenantLifecycleHooks(),
        beforeServing: @escaping @Sendable () async -> Void = {}
    ) {
        self.routes = routes
        self.services = services
        self.tenantLifecycle = tenantLifecycle
        self.beforeServing = beforeServing
    }
}

/// What every service's build step starts from: configuration, connections and the health state.
public struct ServiceContext: Sendable {
    public let configuration: ServiceConfiguration
    public let nats: NATSConnection
    /// The process's one JetStream context.
    public let jetStream: JetStream
    /// Publishes this service's audit events.
    public let audit: AuditPublisher
    public let health: HealthChecks
    public let logger: Logger
    let ownDatabase: Database?

    /// The service's own database: every service that owns one is configured with it
    /// (`ServiceConfiguration.ownsDatabase`), so this throws only for one that owns none.
    public var database: Database {
        get throws(ConfigurationError) {
            guard let ownDatabase else { throw ConfigurationError(problems: ["\(configuration.service.rawValue) has no database"]) }
            return ownDatabase
        }
    }
}

/// A service assembled and ready to run: `run()` it; graceful shutdown (SIGTERM, or the
/// returned group's `triggerGracefulShutdown()`) stops taking work, finishes what is in flight
/// and drains NATS.
public struct AssembledService: Sendable {
    public let group: ServiceGroup
    public let context: ServiceContext
    private let opsPort: ListeningPort

    init(group: ServiceGroup, context: ServiceContext, opsPort: ListeningPort) {
        self.group = group
        self.context = context
        self.opsPort = opsPort
    }

    public func run() async throws {
        try await group.run()
    }

    /// The ops listener's port, once it listens (useful with port 0).
    public func opsListeningPort() async -> Int {
        await opsPort.wait()
    }
}

/// A port that becomes known once a listener is bound (port 0 in tests picks a free one).
public final class ListeningPort: Sendable {
    public init() {}

    private let state = Mutex<(port: Int?, waiters: [CheckedContinuation<Int, Never>])>((nil, []))

    public func set(_ port: Int) {
        let waiters = state.withLock { state in
            state.port = port
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(returning: port) }
    }

    public func wait() async -> Int {
        await withCheckedContinuation { continuation in
            let port = state.withLock { state in
                if state.port == nil { state.waiters.append(continuation) }
                return state.port
            }
            if let port { continuation.resume(returning: port) }
        }
    }
}

public enum ServiceRuntime {
    /// Builds the service group: NATS connection, database client, start-up (migrations, the
    /// service's build step, then its RPC server and services) and the ops HTTP listener, which
    /// answers `/healthz` from the first moment. Tests call this too.
    public static func assemble(
        _ descriptor: ServiceDescriptor,
        configuration: ServiceConfiguration,
        logger: Logger,
        gracefulShutdownSignals: [UnixSignal] = []
    ) async throws -> AssembledService {
        Observability.bootstrapMetrics()
        // Always present, so a scrape tells which service and version answer even before traffic.
        Gauge(label: "rampart_service_info", dimensions: [("service", descriptor.name.rawValue), ("version", descriptor.version)]).record(1)
        let nats = try await NATSConnection.connect(configuration.nats, logger: logger)
        let database = try configuration.postgres.map { try Database($0, logger: logger) }

        var checks = [HealthChecks.Check(name: "nats") { nats.isConnected }]
        if let database {
            checks.append(HealthChecks.Check(name: "database") { await database.isReachable() })
        }
        let health = HealthChecks(checks: checks)
        let jetStream = try nats.jetStream()
        let context = ServiceContext(
            configuration: configuration,
            nats: nats,
            jetStream: jetStream,
            audit: AuditPublisher(jetStream: jetStream, service: descriptor.name, logger: logger),
            health: health,
            logger: logger,
            ownDatabase: database
        )

        let opsPort = ListeningPort()
        let opsRouter = Router()
        addOpsRoutes(to: opsRouter, health: health)
        let ops = Application(
            router: opsRouter,
            configuration: .init(address: .hostname(configuration.ops.host, port: configuration.ops.port), serverName: nil),
            onServerRunning: { channel in opsPort.set(channel.localAddress?.port ?? 0) },
            logger: logger
        )
        // Shutdown runs in reverse: the ops listener stops first, then the service's own parts
        // (see `StartupService`), then the database pool closes, and NATS drains last.
        var services: [any Service] = [nats]
        if let database { services.append(database.client) }
        services.append(StartupService(descriptor: descriptor, context: context))
        services.append(ops)
        let group = ServiceGroup(
            configuration: .init(services: services, gracefulShutdownSignals: gracefulShutdownSignals, logger: logger)
        )
        return AssembledService(group: group, context: context, opsPort: opsPort)
    }

    /// The whole life of a service executable: read the environment, set up logging and metrics,
    /// run until SIGTERM or SIGINT. Configuration problems are printed together and exit 2.
    public static func main(_ descriptor: ServiceDescriptor) async {
        await main(descriptor.name) { _ in descriptor }
    }

    /// `main` for a service with settings of its own: `makeDescriptor` reads them with the same
    /// reader, so its problems are reported together with the common ones.
    public static func main(_ name: ServiceName, makeDescriptor: (inout EnvironmentReader) -> ServiceDescriptor) async {
        let environment = ProcessInfoEnvironment.current
        var reader = EnvironmentReader(environment: environment)
        let configuration = ServiceConfiguration(service: name, environment: environment, reader: &reader)
        let descriptor = makeDescriptor(&reader)
        do {
            try reader.validate()
        } catch {
            writeLine("\(name.rawValue): \(error)\n", to: STDERR_FILENO)
            exit(2)
        }
        Observability.bootstrapLogging(service: descriptor.name, level: configuration.logLevel)
        Observability.bootstrapMetrics()
        var logger = Logger(label: "rampart.\(descriptor.name.rawValue)")
        logger[metadataKey: "instance"] = "\(configuration.instanceID)"
        do {
            let service = try await assemble(descriptor, configuration: configuration, logger: logger, gracefulShutdownSignals: [.sigterm, .sigint])
            logger.info("starting", metadata: ["nats": "\(configuration.nats)", "ops_port": "\(configuration.ops.port)"])
            try await service.run()
            logger.info("stopped")
        } catch {
            logger.critical("service failed", metadata: ["error": "\(loggable(error))"])
            exit(1)
        }
    }
}

/// Brings a service up in order: waits for its database, applies migrations, runs the build
/// step, then serves NATS requests and runs the built services. Retries with backoff, so the
/// service may start before PostgreSQL or JetStream.
struct StartupService: Service {
    let descriptor: ServiceDescriptor
    let context: ServiceContext

    func run() async throws {
        let parts: ServiceParts
        // A shutdown while the database or NATS is still unreachable must not wait for them.
        do {
            parts = try await cancelWhenGracefulShutdown {
                if let database = context.ownDatabase {
                    try await retryWhileUnreachable("database") { try await database.migrate(descriptor.migrations) }
                }
                return try await retryWhileUnreachable("build") { try await descriptor.build(context) }
            }
        } catch {
            if Task.isShuttingDownGracefully || Task.isCancelled { return }
            throw error
        }
        // Stopped in reverse: the built services (the gateway's public listener) first, then the
        // tenant sagas, and the RPC server last, so work in flight can still ask this service.
        var services: [any Service] = [
            RPCService(server: rpcServer(parts.routes), beforeServing: parts.beforeServing, health: context.health)
        ]
        if let database = context.ownDatabase {
            services.append(
                TenantProvisioner(
                    service: descriptor.name,
                    database: database,
                    migrations: descriptor.migrations,
                    connection: context.nats,
                    health: context.health,
                    logger: context.logger,
                    hooks: parts.tenantLifecycle
                )
            )
        }
        services.append(contentsOf: parts.services)
        // A group inside the service's group: it shuts down when the outer one does.
        try await ServiceGroup(configuration: .init(services: services, logger: context.logger)).run()
    }

    /// The built handlers and the health handler every service answers.
    private func rpcServer(_ routes: RPCRouter) -> RPCServer {
        var router = routes
        let (descriptor, configuration, health) = (descriptor, context.configuration, context.health)
        router.register(Subjects.health(descriptor.name)) { (_, _) in
            let (ready, results) = await health.evaluate()
            var reply = Rampart_V1_HealthReply()
            reply.service = descriptor.name.rawValue
            reply.version = descriptor.version
            reply.instanceID = configuration.instanceID
            reply.healthy = ready
            reply.checks = results
            return reply
        }
        return RPCServer(
            connection: context.nats,
            router: router,
            queueGroup: descriptor.name.subjectToken,
            logger: context.logger,
            maxRequestsInFlight: configuration.maxRequestsInFlight,
            onListening: { health.markStarted() }
        )
    }

    /// Retries `body` with backoff until it succeeds; a migration or configuration error is a
    /// bug or an operator's mistake, not an outage, and is thrown at once.
    private func retryWhileUnreachable<T>(_ what: String, _ body: () async throws -> T) async throws -> T {
        var delay = Duration.milliseconds(200)
        while true {
            do {
                return try await body()
            } catch let error as MigrationError {
                throw error
            } catch let error as ConfigurationError {
                throw error
            } catch {
                try Task.checkCancellation()
                context.logger.warning("\(what) not ready, retrying", metadata: ["error": "\(loggable(error))"])
                try await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(5))
            }
        }
    }
}

/// The RPC server, marked stopping (readiness off) as its drain begins.
struct RPCService: Service {
    let server: RPCServer
    let beforeServing: @Sendable () async -> Void
    let health: HealthChecks

    func run() async throws {
        await cancelWhenGracefulShutdown(beforeServing)
        if Task.isShuttingDownGracefully || Task.isCancelled { return }
        try await withGracefulShutdownHandler {
            try await server.run()
        } onGracefulShutdown: {
            health.markStopping()
        }
    }
}

enum ProcessInfoEnvironment {
    static var current: [String: String] {
        var result: [String: String] = [:]
        var pointer = environ
        while let entry = pointer.pointee {
            let text = String(cString: entry)
            if let equals = text.firstIndex(of: "=") {
                result[String(text[..<equals])] = String(text[text.index(after: equals)...])
            }
            pointer += 1
        }
        return result
    }
}
