import Logging
import NATSKit
import RampartModels
import ServiceKit
import TestSupport
import Testing

@Suite("AUD-2 the audit publisher: stored once, acknowledged, validated")
struct AuditPublisherTests {
    func event(tenant: TenantID? = TenantID.random()) -> Rampart_V1_AuditEvent {
        var event = Rampart_V1_AuditEvent()
        event.tenantID = tenant?.hex ?? ""
        event.action = AuditAction.loginFailed.rawValue
        event.actor.kind = .anonymous
        event.actor.email = "someone@example.com"
        event.outcome = .failure
        event.reason = "wrong password"
        return event
    }

    @Test("a retried event (same ID) is stored once; each event lands on its tenant's subject")
    func storedOnce() async throws {
        let nats = try await NATSServer.start()
        let connection = try await NATSConnection.connect(NATSConfiguration(servers: [nats.url], name: "test"), logger: quietLogger())
        let jetStream = try connection.jetStream()
        let publisher = AuditPublisher(jetStream: jetStream, service: .auth, logger: quietLogger())
        try await jetStream.ensureStream(AuditPublisher.stream)
        try await jetStream.ensureStream(AuditPublisher.stream)  // idempotent

        let tenant = TenantID.random()
        let stored = try await publisher.publish(event(tenant: tenant))
        #expect(!stored.id.isEmpty && stored.occurredAtMs > 0)
        try await publisher.publish(stored)  // a retry after a lost acknowledgement
        try await publisher.publish(event(tenant: nil))

        let consumer = try await jetStream.durableConsumer(
            stream: Subjects.auditStream,
            .init(durableName: "check", filterSubject: "rampart.audit.>")
        )
        let messages = try await consumer.fetch(batch: 10, timeout: .seconds(1))
        #expect(messages.map(\.subject) == [Subjects.audit(tenant: tenant, by: .auth), "rampart.audit.platform.auth"])
        #expect(try Rampart_V1_AuditEvent(serializedBytes: messages[0].payload) == stored)
        consumer.unsubscribe()
        await connection.drain()
    }

    @Test("malformed events are refused before anything is published")
    func validation() async throws {
        let nats = try await NATSServer.start()
        let connection = try await NATSConnection.connect(NATSConfiguration(servers: [nats.url], name: "test"), logger: quietLogger())
        let publisher = AuditPublisher(jetStream: try connection.jetStream(), service: .auth, logger: quietLogger())
        var unknown = event()
        unknown.action = "everything.deleted"
        var noActor = event()
        noActor.actor = Rampart_V1_AuditActor()
        var badTenant = event()
        badTenant.tenantID = "../../etc"
        var badID = event()
        badID.id = "1; DROP TABLE"
        for bad in [unknown, noActor, badTenant, badID] {
            await #expect(throws: RampartError.self) { try await publisher.publish(bad) }
        }
        // auth records no bans: a publisher speaks only for its own service's actions.
        var ban = event(tenant: nil)
        ban.action = AuditAction.networkBanned.rawValue
        await #expect(throws: RampartError.self) { try await publisher.publish(ban) }
        await connection.drain()
    }

    @Test("the actor named by a call context's principal")
    func actorFromPrincipal() throws {
        func actor(_ text: String) throws -> Rampart_V1_AuditActor { Rampart_V1_AuditActor(principal: try #require(Principal(text))) }
        #expect(try actor("user:u1").kind == .user)
        #expect(try actor("user:u1").id == "u1")
        #expect(try actor("api_key:k9").kind == .apiKey)
        #expect(try actor("system:tenants").kind == .system)
        #expect(Rampart_V1_AuditActor(service: .rateLimit).id == "rate-limit")
    }
}
