import AuditService
import Foundation
import Logging
import NATSKit
import RampartModels
import ServiceKit
import ServicesTestSupport
import SodiumKit
import TestSupport
import Testing

/// The audit service on a database and a nats-server of its own, with a publisher.
struct AuditHarness {
    let database: String
    let nats: NATSServer
    let connection: NATSConnection
    let publisher: AuditPublisher

    static func start() async throws -> AuditHarness {
        let database = try await TestPostgres.createDatabase(prefix: "rampart_audit")
        let nats = try await NATSServer.start()
        let connection = try await NATSConnection.connect(NATSConfiguration(servers: [nats.url], name: "producer"), logger: quietLogger())
        let publisher = AuditPublisher(jetStream: try connection.jetStream(), service: .auth, logger: quietLogger())
        try await connection.jetStream().ensureStream(AuditPublisher.stream)
        return AuditHarness(database: database, nats: nats, connection: connection, publisher: publisher)
    }

    func startAudit() async throws -> RunningService {
        try await RunningService.start(
            AuditService.descriptor(settings: AuditSettings(signingKey: .generate())),
            nats: nats,
            instance: "audit-1",
            database: database
        )
    }

    func provision(_ tenant: TenantID, plan: String = "starter") async throws {
        var event = Rampart_V1_TenantCreated()
        event.eventID = UUID().uuidString
        event.tenantID = tenant.hex
        event.plan = plan
        try await connection.jetStream().ensureStream(DomainEvents.stream)
        _ = try await connection.jetStream().publish(try event.serializedBytes(), to: Subjects.TenantEvents.created, messageID: event.eventID)
    }

    func count(_ schema: String) async throws -> Int {
        Int(try await TestPostgres.psql("SELECT count(*) FROM \"\(schema)\".audit_events", database: database)) ?? -1
    }

    /// Recomputes the chain from the stored rows; nil when it holds, else the first bad position.
    func firstBrokenPosition(_ schema: String) async throws -> Int? {
        let rows = try await TestPostgres.psql(
            "SELECT position, encode(event, 'hex'), encode(previous_hash, 'hex'), encode(hash, 'hex') FROM \"\(schema)\".audit_events ORDER BY position",
            database: database
        )
        var previous = [UInt8](repeating: 0, count: 32)
        var expected = 1
        for line in rows.split(separator: "\n") {
            let fields = line.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
            guard fields.count == 4, Int(fields[0]) == expected, fields[2] == hexString(previous) else { return expected }
            let next = sha256(previous + bytes(hex: fields[1])!)
            guard fields[3] == hexString(next) else { return expected }
            previous = next
            expected += 1
        }
        return nil
    }

    func event(_ tenant: TenantID?, _ index: Int) -> Rampart_V1_AuditEvent {
        var event = Rampart_V1_AuditEvent()
        event.tenantID = tenant?.hex ?? ""
        event.action = AuditAction.loginSucceeded.rawValue
        event.actor.kind = .user
        event.actor.id = "user-\(index)"
        event.outcome = .success
        event.origin.ip = "198.51.100.\(index % 250)"
        event.details = ["index": String(index), "b": "2", "a": "1"]
        return event
    }
}

@Suite("AUD-2 audit stores every published event once, in its tenant's chain")
struct AuditIngestTests {
    @Test("events land in their own tenant's schema (platform ones in public), once each, chained")
    func ingest() async throws {
        let harness = try await AuditHarness.start()
        let audit = try await harness.startAudit()
        let alpha = TenantID.random()
        let beta = TenantID.random()
        try await harness.provision(alpha)
        try await harness.provision(beta)
        // Provisioned first, so that no batch waits for the saga (which would reorder it).
        #expect(
            try await eventually(within: .seconds(30)) {
                (try? await TestPostgres.psql("SELECT count(*) FROM public.rampart_tenant_schemas", database: harness.database)) == "2"
            }
        )

        var published: [Rampart_V1_AuditEvent] = []
        for index in 0..<150 { published.append(try await harness.publisher.publish(harness.event(alpha, index))) }
        for index in 0..<40 { published.append(try await harness.publisher.publish(harness.event(beta, index))) }
        for index in 0..<10 { try await harness.publisher.publish(harness.event(nil, index)) }
        // A redelivery that JetStream's duplicate window would not catch: a new message ID.
        let jetStream = try harness.connection.jetStream()
        _ = try await jetStream.publish(try published[0].serializedBytes(), to: Subjects.audit(tenant: alpha, by: .auth), messageID: "again")
        // Hostile: beta's event on alpha's subject, a sign-in recorded by webhooks (whose NATS
        // user may publish under its own name only, and which records no sign-ins), garbage.
        // Each valid but for where it arrives (AuditPublisher fills in the ID and time).
        for (event, subject) in [
            (harness.event(beta, 999), Subjects.audit(tenant: alpha, by: .auth)),
            (harness.event(alpha, 998), Subjects.audit(tenant: alpha, by: .webhooks)),
        ] {
            var event = event
            event.id = UUID().uuidString.lowercased()
            event.occurredAtMs = 1_700_000_000_000
            _ = try await jetStream.publish(try event.serializedBytes(), to: subject)
        }
        _ = try await jetStream.publish([0xFF, 0x00, 0x13], to: Subjects.audit(tenant: alpha, by: .auth))

        #expect(try await eventually(within: .seconds(20)) { try await harness.count(alpha.schemaName) == 150 })
        #expect(try await eventually(within: .seconds(10)) { try await harness.count(beta.schemaName) == 40 })
        #expect(try await eventually(within: .seconds(10)) { try await harness.count("public") == 10 })
        try await Task.sleep(for: .milliseconds(300))
        #expect(try await harness.count(alpha.schemaName) == 150)
        #expect(try await harness.count(beta.schemaName) == 40)
        #expect(
            try await TestPostgres.psql(
                "SELECT count(*) FROM \"\(alpha.schemaName)\".audit_events WHERE actor_id IN ('user-999', 'user-998')",
                database: harness.database
            ) == "0"
        )
        // Stored in publish order, each chain intact.
        #expect(
            try await TestPostgres.psql("SELECT actor_id FROM \"\(alpha.schemaName)\".audit_events WHERE position = 150", database: harness.database)
                == "user-149"
        )
        for schema in [alpha.schemaName, beta.schemaName, "public"] {
            #expect(try await harness.firstBrokenPosition(schema) == nil, "\(schema)")
        }

        // Verify over NATS: each tenant its own log only, named by the call context.
        let rpc = RPCClient(connection: harness.connection)
        func verify(_ tenant: TenantID?) async throws -> Rampart_V1_AuditVerifyReply {
            try await rpc.call(Subjects.Audit.verify, Rampart_V1_AuditVerifyRequest(), context: CallContext(tenantID: tenant))
        }
        #expect(try await verify(alpha).valid)
        #expect(try await verify(alpha).verifiedEvents == 150)
        _ = try await TestPostgres.psql(
            "UPDATE \"\(alpha.schemaName)\".audit_events SET ip = '10.6.6.6' WHERE position = 42",
            database: harness.database
        )
        let broken = try await verify(alpha)
        #expect(!broken.valid)
        #expect(broken.firstBadPosition == 42)
        #expect(try await verify(beta).valid)
        await expectError(.notFound) { _ = try await verify(TenantID.random()) }
        await expectError(.missingHeader) { _ = try await verify(nil) }

        await audit.stop()
        await harness.connection.drain()
    }

    @Test("events for a tenant not yet provisioned wait for the saga, then are stored")
    func waitsForProvisioning() async throws {
        let harness = try await AuditHarness.start()
        let audit = try await harness.startAudit()
        let late = TenantID.random()
        for index in 0..<5 { try await harness.publisher.publish(harness.event(late, index)) }
        try await Task.sleep(for: .milliseconds(500))
        try await harness.provision(late)
        #expect(try await eventually(within: .seconds(20)) { (try? await harness.count(late.schemaName)) == 5 })
        #expect(try await harness.firstBrokenPosition(late.schemaName) == nil)
        await audit.stop()
        await harness.connection.drain()
    }

    @Test("10,000 events published while audit is killed (SIGKILL) and restarted twice: all stored once, chain valid")
    func lossless() async throws {
        let harness = try await AuditHarness.start()
        let tenant = TenantID.random()
        let binary = repositoryRoot.appendingPathComponent(".build/debug/audit").path
        func launch() throws -> Process {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: binary)
            process.environment = [
                "RAMPART_NATS_URL": harness.nats.url, "RAMPART_OPS_HOST": "127.0.0.1", "RAMPART_OPS_PORT": "0",
                "RAMPART_POSTGRES_HOST": TestPostgres.server.host, "RAMPART_POSTGRES_PORT": String(TestPostgres.server.port),
                "RAMPART_POSTGRES_USER": harness.database, "RAMPART_POSTGRES_PASSWORD": harness.database,
                "RAMPART_POSTGRES_DATABASE": harness.database, "RAMPART_LOG_LEVEL": "critical",
                "RAMPART_AUDIT_SIGNING_KEY": "test-1:" + Base64.encode(randomBytes(32)),
            ]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try ChildProcess.launch(process)
            return process
        }
        var audit = try launch()
        try await harness.provision(tenant)
        #expect(try await eventually(within: .seconds(20)) { (try? await harness.count(tenant.schemaName)) == 0 })

        let total = 10_000
        let publishing = Task {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in 0..<32 {
                    group.addTask {
                        for index in stride(from: worker, to: total, by: 32) {
                            try await harness.publisher.publish(harness.event(tenant, index))
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
        for _ in 0..<2 {
            // Kill it mid-stream, once some events are stored.
            _ = await eventually(within: .seconds(20)) { ((try? await harness.count(tenant.schemaName)) ?? 0) > 0 }
            try await Task.sleep(for: .milliseconds(300))
            kill(audit.processIdentifier, SIGKILL)
            audit.waitUntilExit()
            audit = try launch()
        }
        try await publishing.value
        #expect(try await eventually(within: .seconds(60)) { (try? await harness.count(tenant.schemaName)) == total })
        try await Task.sleep(for: .milliseconds(500))
        #expect(try await harness.count(tenant.schemaName) == total)
        let distinct = try await TestPostgres.psql(
            "SELECT count(DISTINCT actor_id) FROM \"\(tenant.schemaName)\".audit_events",
            database: harness.database
        )
        #expect(distinct == String(total))
        #expect(try await harness.firstBrokenPosition(tenant.schemaName) == nil)
        kill(audit.processIdentifier, SIGTERM)
        audit.waitUntilExit()
        await harness.connection.drain()
    }
}
