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

@Suite("TEN-1 the provisioning saga, audit's side: tenant.created makes the tenant's schema")
struct TenantProvisioningTests {
    @Test("audit creates the schema, answers tenant.provisioned.audit, skips malformed events, and catches up after downtime")
    func provisioning() async throws {
        let database = try await TestPostgres.createDatabase(prefix: "rampart_audit")
        let nats = try await NATSServer.start()
        let connection = try await NATSConnection.connect(NATSConfiguration(servers: [nats.url], name: "tenants"), logger: quietLogger())
        let jetStream = try connection.jetStream()
        try await jetStream.ensureStream(DomainEvents.stream)

        func publishCreated(_ tenant: TenantID, eventID: String = UUID().uuidString) async throws {
            var event = Rampart_V1_TenantCreated()
            event.eventID = eventID
            event.tenantID = tenant.hex
            event.plan = "starter"
            _ = try await jetStream.publish(try event.serializedBytes(), to: Subjects.TenantEvents.created, messageID: eventID)
        }
        func schemaExists(_ tenant: TenantID) async throws -> Bool {
            try await TestPostgres.psql("SELECT count(*) FROM pg_namespace WHERE nspname = '\(tenant.schemaName)'", database: database) == "1"
        }

        // Published while audit is down: provisioned when it comes up.
        let early = TenantID.random()
        try await publishCreated(early)
        // Garbage and a hostile tenant ID must be dropped, not retried forever or obeyed.
        _ = try await jetStream.publish([0xFF, 0x01], to: Subjects.TenantEvents.created)
        var hostile = Rampart_V1_TenantCreated()
        hostile.tenantID = "x; DROP SCHEMA public CASCADE"
        _ = try await jetStream.publish(try hostile.serializedBytes(), to: Subjects.TenantEvents.created)

        let audit = try await RunningService.start(
            AuditService.descriptor(settings: AuditSettings(signingKey: .generate())),
            nats: nats,
            instance: "audit-1",
            database: database
        )

        #expect(try await eventually(within: .seconds(15)) { try await schemaExists(early) })
        let late = TenantID.random()
        let eventID = UUID().uuidString
        try await publishCreated(late, eventID: eventID)
        #expect(try await eventually(within: .seconds(15)) { try await schemaExists(late) })
        // Registered as provisioned, so migrations at the next start include it.
        #expect(
            try await eventually(within: .seconds(15)) {
                try await TestPostgres.psql("SELECT count(*) FROM public.rampart_tenant_schemas", database: database) == "2"
            }
        )
        #expect(try await TestPostgres.psql("SELECT count(*) FROM pg_namespace WHERE nspname = 'public'", database: database) == "1")

        // One receipt per tenant, even when tenant.created comes again.
        try await publishCreated(late)
        let receipts = try await jetStream.durableConsumer(
            stream: Subjects.eventsStream,
            .init(durableName: "tenants-saga", filterSubject: Subjects.TenantEvents.provisioned(by: .audit))
        )
        // A receipt follows its schema: a tenant whose first attempt failed on a loaded machine
        // is receipted at the retry, seconds later. Read until both are in, then a little more
        // for a duplicate that must not come.
        var provisioned: [Rampart_V1_TenantProvisioned] = []
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(20)
        var quiet = 0
        while clock.now < deadline, quiet < 2 {
            let batch = try await receipts.fetch(batch: 10, timeout: .seconds(1))
            provisioned += try batch.map { try Rampart_V1_TenantProvisioned(serializedBytes: $0.payload) }
            quiet = Set(provisioned.map(\.tenantID)).count == 2 && batch.isEmpty ? quiet + 1 : 0
        }
        #expect(Set(provisioned.map(\.tenantID)) == [early.hex, late.hex])
        #expect(provisioned.count == 2)
        #expect(provisioned.allSatisfy { $0.service == "audit" })
        receipts.unsubscribe()

        await audit.stop()
        await connection.drain()
    }
}
