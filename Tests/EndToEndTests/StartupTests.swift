import AuditService
import AuthService
import Foundation
import GatewayService
import Logging
import NATSKit
import PermissionsService
import RampartModels
import RateLimitService
import ServiceKit
import ServicesTestSupport
import SodiumKit
import TenantsService
import TestSupport
import Testing
import WebhooksService

@Suite("SHAPE-1 the seven services start and answer")
struct ServicesTests {
    static let descriptors: [ServiceDescriptor] = [
        AuthService.descriptor(), TenantsService.descriptor(), PermissionsService.descriptor(),
        AuditService.descriptor(settings: AuditSettings(signingKey: .generate())),
        RateLimitService.descriptor(), WebhooksService.descriptor(),
    ]

    @Test("each service migrates its own database and answers health over NATS and HTTP", arguments: descriptors.map(\.name))
    func startsAndAnswers(_ name: ServiceName) async throws {
        let descriptor = try #require(Self.descriptors.first { $0.name == name })
        let postgres: ServiceConfiguration.Postgres?
        if ServiceConfiguration.ownsDatabase(name) {
            let database = try await TestPostgres.createDatabase(prefix: name.databaseName)
            postgres = .init(host: TestPostgres.server.host, port: TestPostgres.server.port, user: database, password: database, database: database)
        } else {
            postgres = nil
        }
        let nats = try await NATSServer.start()  // its own: no other test's replicas answer here
        try await RunningService.ensureSharedStreams(nats)
        let configuration = ServiceConfiguration(
            service: name,
            instanceID: "\(name.rawValue)-1",
            nats: NATSConfiguration(servers: [nats.url], name: name.rawValue),
            postgres: postgres,
            ops: .init(host: "127.0.0.1", port: 0)
        )
        let service = try await ServiceRuntime.assemble(descriptor, configuration: configuration, logger: quietLogger())
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await service.run() }
            let port = await service.opsListeningPort()
            var ready = false
            for _ in 0..<400 where !ready {
                ready = (try? await httpGet(port: port, path: "/readyz"))?.status == 200
                if !ready { try await Task.sleep(for: .milliseconds(50)) }
            }
            #expect(ready)
            let reply = try await RPCClient(connection: service.context.nats).call(
                Subjects.health(name),
                Rampart_V1_HealthRequest(),
                context: CallContext()
            )
            #expect(reply.service == name.rawValue)
            #expect(reply.instanceID == "\(name.rawValue)-1")
            #expect(reply.healthy)
            if let postgres {
                // Its own database, migrated.
                #expect(
                    try await TestPostgres.psql("SELECT to_regclass('public.rampart_migrations') IS NOT NULL", database: postgres.database) == "t"
                )
            }
            await service.group.triggerGracefulShutdown()
            try await group.waitForAll()
        }
    }

    @Test("the gateway answers GET /healthz on its public port, with no metrics there; it is ready once the revocations are read")
    func gateway() async throws {
        let publicPort = ListeningPort()
        let nats = try await NATSServer.start()
        try await RunningService.ensureSharedStreams(nats)
        let configuration = ServiceConfiguration(
            service: .gateway,
            instanceID: "gateway-1",
            nats: NATSConfiguration(servers: [nats.url], name: "gateway"),
            postgres: nil,
            ops: .init(host: "127.0.0.1", port: 0),
            publicHTTP: .init(host: "127.0.0.1", port: 0)
        )
        let service = try await ServiceRuntime.assemble(
            // No rate-limit service here: general traffic is let through unlimited.
            GatewayService.descriptor(settings: GatewaySettings(apiLimitFailsOpen: true), publicPort: publicPort),
            configuration: configuration,
            logger: quietLogger()
        )
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await service.run() }
            let port = await publicPort.wait()
            let health = try await httpGet(port: port, path: "/healthz")
            #expect(health.status == 200)
            #expect(health.body == #"{"status":"ok"}"#)
            #expect(try await httpGet(port: port, path: "/metrics").status == 404)
            let reply = try await RPCClient(connection: service.context.nats).call(
                Subjects.health(.gateway),
                Rampart_V1_HealthRequest(),
                context: CallContext()
            )
            #expect(reply.service == "gateway")
            // Not ready while auth's revocations cannot be read (credentials would get 503)...
            #expect(!reply.healthy)
            #expect(reply.checks.first { $0.name == "revocations" }?.healthy == false)
            let opsPort = await service.opsListeningPort()
            #expect(try await httpGet(port: opsPort, path: "/readyz").status == 503)
            // ...and ready once they have been.
            _ = try await service.context.nats.jetStream().ensureKeyValue(
                .init(bucket: Subjects.Auth.revocationsBucket, ttl: .seconds(3600), maxValueSize: 1024)
            )
            #expect(await eventually(within: .seconds(20)) { (try? await httpGet(port: opsPort, path: "/readyz"))?.status == 200 })
            await service.group.triggerGracefulShutdown()
            try await group.waitForAll()
        }
    }
}
