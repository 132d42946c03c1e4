import Hummingbird
import Logging
import Metrics
import NATSKit
import NIOCore
import RampartModels
import ServiceLifecycle
import Synchronization
import UnixSignals

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What makes one service different from another: its name, its migrations, its NATS
/// handlers, and any long-lived pieces of its own (the gateway's public HTTP server).
/// A descriptor is assembled once: its closures may share state for that one instance.
public struct ServiceDescriptor: Sendable {
    public var name: ServiceName
    public var version: String
    public var migrations: MigrationSet
    /// Runs after the migrations and before the first request is taken (creating the service's
    /// JetStream streams or buckets). Retried with backoff while it throws, like the database wait.
    public var prepare: @Sendable (ServiceContext) async throws -> Void
    public var routes: @Sendable (inout RPCRouter, ServiceContext) -> Void
    public var services: @Sendable (ServiceContext) throws -> [any Service]
    /// What the service does beyond its schema when a tenant is created or changes plan (audit
    /// records the plan its retention follows). Retried while it throws.
    public var tenantLifecycle: @Sendable (ServiceContext) -> TenantLifecycleHooks

    public init(
        name: ServiceName,
        version: String = "0.1.0",
        migrations: MigrationSet = .none,
        prepare: @escaping @Sendable (ServiceContext) async throws -> Void = { _ in },
        routes: @escaping @Sendable (inout RPCRouter, ServiceContext) -> Void = { _, _ in },
        services: @escaping @Sendable (ServiceContext) throws -> [any Service] = { _ in [] },
        tenantLifecycle: @escaping @Sendable (ServiceContext) -> TenantLifecycleHooks = { _ in TenantLifecycleHooks() }
    ) {
        self.name = name
        self.version = version
        self.migrations = migrations
        self.prepare = prepare
        self.routes = routes
        self.services = services
        self.tenantLifecycle = tenantLifecycle
    }
}

/// Shared by a service's handlers: configuration, connections and the health state.
public struct ServiceContext: Sendable {
    public let configuration: ServiceConfiguration
    public let nats: NATSConnection
    public let database: Database?
    public let health: HealthChecks
    public let logger: Logger
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
    /// Builds the service group: NATS connection, database client, startup (migrations, then the
    /// RPC server), the ops HTTP listener and the service's own pieces. Tests call this too.
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
        let context = ServiceContext(configuration: configuration, nats: nats, database: database, health: health, logger: logger)

        var router = RPCRouter()
        router.register(Subjects.health(descriptor.name)) { (_: Rampart_V1_HealthRequest, _) in
            let (ready, results) = await health.evaluate()
            var reply = Rampart_V1_HealthReply()
            reply.service = descriptor.name.rawValue
            reply.version = descriptor.version
            reply.instanceID = configuration.instanceID
            reply.healthy = ready
            reply.checks = results
            return reply
        }
        descriptor.routes(&router, context)

        let opsPort = ListeningPort()
        let opsRouter = Router()
        addOpsRoutes(to: opsRouter, health: health)
        let ops = Application(
            router: opsRouter,
            configuration: .init(address: .hostname(configuration.ops.host, port: configuration.ops.port), serverName: nil),
            onServerRunning: { channel in opsPort.set(channel.localAddress?.port ?? 0) },
            logger: logger
        )

        let startup = StartupService(
            descriptor: descriptor,
            context: context,
            rpc: RPCServer(
                connection: nats,
                router: router,
                queueGroup: descriptor.name.subjectToken,
                logger: logger,
                maxRequestsInFlight: configuration.maxRequestsInFlight,
                onListening: { health.markStarted() }
            )
        )
        // Shutdown runs in reverse: the HTTP listeners stop first, then the RPC server drains,
        // then the database pool closes, and NATS drains last.
        var services: [any Service] = [nats]
        if let database { services.append(database.client) }
        services.append(startup)
        if let database {
            services.append(
                TenantProvisioner(
                    service: descriptor.name,
                    database: database,
                    migrations: descriptor.migrations,
                    connection: nats,
                    health: health,
                    logger: logger,
                    hooks: descriptor.tenantLifecycle(context)
                )
            )
        }
        services.append(contentsOf: try descriptor.services(context))
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

/// Brings a service up in order: waits for its database, applies migrations, prepares the
/// service's own state, then serves NATS requests. Retries with backoff, so the service may
/// start before PostgreSQL or JetStream.
struct StartupService: Service {
    let descriptor: ServiceDescriptor
    let context: ServiceContext
    let rpc: RPCServer

    func run() async throws {
        // A shutdown while the database or NATS is still unreachable must not wait for them.
        do {
            try await cancelWhenGracefulShutdown {
                if let database = context.database {
                    try await retryWhileUnreachable("database") { try await database.migrate(descriptor.migrations) }
                }
                try await retryWhileUnreachable("preparation") { try await descriptor.prepare(context) }
            }
        } catch {
            if Task.isShuttingDownGracefully || Task.isCancelled { return }
            throw error
        }
        try await withGracefulShutdownHandler {
            try await rpc.run()
        } onGracefulShutdown: {
            context.health.markStopping()
        }
    }

    /// Retries `body` with backoff until it succeeds; a migration error is a bug, not an outage,
    /// and is thrown at once.
    private func retryWhileUnreachable(_ what: String, _ body: () async throws -> Void) async throws {
        var delay = Duration.milliseconds(200)
        while true {
            do {
                try await body()
                return
            } catch let error as MigrationError {
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
