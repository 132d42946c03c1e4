import Logging
import NATSKit
import RampartModels
import ServiceKit
import TestSupport

func quietLogger(_ label: String = "test") -> Logger {
    var logger = Logger(label: label)
    logger.logLevel = .critical
    return logger
}

/// Settings for a fresh database of its own, owned by a role of its own.
func freshPostgres() async throws -> ServiceConfiguration.Postgres {
    let name = try await TestPostgres.createDatabase()
    let server = TestPostgres.server
    return ServiceConfiguration.Postgres(host: server.host, port: server.port, user: name, password: name, database: name)
}

/// A configuration for `service` against `nats` and (when it owns one) a fresh database, with
/// every listener on a free port. Each test that runs a service gives it a nats-server of its
/// own: two tests' replicas in one queue group would answer each other's requests.
func testConfiguration(_ service: ServiceName, nats: NATSServer) async throws -> ServiceConfiguration {
    ServiceConfiguration(
        service: service,
        instanceID: "\(service.rawValue)-test",
        nats: NATSConfiguration(servers: [nats.url], name: service.rawValue),
        postgres: ServiceConfiguration.ownsDatabase(service) ? try await freshPostgres() : nil,
        ops: .init(host: "127.0.0.1", port: 0),
        publicHTTP: service == .gateway ? .init(host: "127.0.0.1", port: 0) : nil
    )
}

/// Runs `body` against a running `PostgresClient` (it serves only while its `run()` is going).
@discardableResult
func withDatabase<T>(_ settings: ServiceConfiguration.Postgres, _ body: (Database) async throws -> T) async throws -> T {
    let database = try Database(settings, logger: quietLogger())
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { await database.client.run() }
        defer { group.cancelAll() }
        return try await body(database)
    }
}

/// Runs an assembled service while `body` runs, then shuts it down gracefully.
func whileRunning<T>(_ service: AssembledService, _ body: () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await service.run() }
        do {
            let result = try await body()
            await service.group.triggerGracefulShutdown()
            try await group.waitForAll()
            return result
        } catch {
            await service.group.triggerGracefulShutdown()
            try? await group.waitForAll()
            throw error
        }
    }
}

/// Waits until `/readyz` answers 200 (migrations applied, handlers listening).
func waitUntilReady(_ service: AssembledService) async throws {
    let port = await service.opsListeningPort()
    let clock = ContinuousClock()
    let deadline = clock.now + .seconds(30)
    while clock.now < deadline {
        if let (status, _) = try? await httpGet(port: port, path: "/readyz"), status == 200 { return }
        try await Task.sleep(for: .milliseconds(50))
    }
    throw TestInfrastructureError("service did not become ready")
}
