import Logging
import NATSKit
import RampartModels
import ServiceKit
import ServiceLifecycle
import TestSupport

/// One service instance running in this test process, on a NATS server of the test's own.
package final class RunningService: Sendable {
    package let service: AssembledService
    private let task: Task<Void, any Error>

    private init(service: AssembledService, task: Task<Void, any Error>) {
        self.service = service
        self.task = task
    }

    /// Assembles and starts `descriptor`; returns once it is ready (its RPC server listening).
    package static func start(
        _ descriptor: ServiceDescriptor,
        nats: NATSServer,
        instance: String,
        user: String? = nil,
        password: String? = nil,
        database: String? = nil,
        publicHTTP: ServiceConfiguration.HTTP? = nil
    ) async throws -> RunningService {
        try await ensureSharedStreams(nats)
        // On a server with the shipped users, each service connects as its own.
        let user = user ?? (nats.passwords[descriptor.name.rawValue] == nil ? nil : descriptor.name.rawValue)
        let password = password ?? user.flatMap { nats.passwords[$0] }
        let configuration = ServiceConfiguration(
            service: descriptor.name,
            instanceID: instance,
            nats: NATSConfiguration(servers: [nats.url], name: instance, user: user, password: password),
            // Test databases are named after their role, whose password is the name too.
            postgres: database.map {
                .init(host: TestPostgres.server.host, port: TestPostgres.server.port, user: $0, password: $0, database: $0)
            },
            ops: .init(host: "127.0.0.1", port: 0),
            publicHTTP: publicHTTP
        )
        let service = try await ServiceRuntime.assemble(descriptor, configuration: configuration, logger: quietLogger())
        let task = Task { try await service.run() }
        let port = await service.opsListeningPort()
        for _ in 0..<400 {
            if (try? await httpGet(port: port, path: "/readyz"))?.status == 200 {
                return RunningService(service: service, task: task)
            }
            try await Task.sleep(for: .milliseconds(25))
        }
        task.cancel()
        throw TestInfrastructureError("\(instance) did not become ready")
    }

    /// The streams two services share, which only their owners create (tenants the domain
    /// events, audit the audit events; OPS-4): as a deployment's operator or its owners would
    /// have, so that a test may start any service alone.
    package static func ensureSharedStreams(_ nats: NATSServer) async throws {
        let user = nats.passwords.isEmpty ? nil : NATSServer.testUser
        let connection = try await NATSConnection.connect(
            NATSConfiguration(servers: [nats.url], name: "test-setup", user: user, password: user.flatMap { nats.passwords[$0] }),
            logger: quietLogger()
        )
        try await connection.jetStream().ensureSharedStreams()
        await connection.close()
    }

    package func stop() async {
        await service.group.triggerGracefulShutdown()
        _ = await task.result
    }
}
