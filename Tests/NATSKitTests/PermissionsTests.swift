import Logging
import NATSKit
import TestSupport
import Testing

func connect(_ server: NATSServer, as user: String, password: String? = nil) async throws -> NATSConnection {
    var logger = Logger(label: "test.permissions")
    logger.logLevel = .critical
    return try await NATSConnection.connect(
        NATSConfiguration(servers: [server.url], name: user, user: user, password: password ?? server.passwords[user]),
        logger: logger
    )
}

@Suite("OPS-4 each service is its own NATS user, limited to its own subjects (deploy/nats/nats-server.conf)")
struct NATSPermissionsTests {
    @Test("a service serves its own subjects and calls another's")
    func ownSubjects() async throws {
        let server = try await NATSServer.startShipped()
        let auth = try await connect(server, as: "auth")
        let gateway = try await connect(server, as: "gateway")
        let responder = try echo(on: auth, subject: "rampart.v1.auth.health", queue: "auth")
        defer { responder.cancel() }
        try await auth.flush()
        let reply = try await gateway.request([7], to: "rampart.v1.auth.health", timeout: .seconds(10))
        #expect(reply.payload == [7])
    }

    @Test("a service cannot take requests meant for another service")
    func cannotServeAnother() async throws {
        let server = try await NATSServer.startShipped()
        let auth = try await connect(server, as: "auth")
        let gateway = try await connect(server, as: "gateway")
        // auth tries to listen on the tenants service's subject: the server refuses the
        // subscription, so the request finds nobody (rather than reaching auth).
        let impostor = try echo(on: auth, subject: "rampart.v1.tenants.health", queue: "tenants")
        defer { impostor.cancel() }
        try await auth.flush()
        do {
            _ = try await gateway.request([1], to: "rampart.v1.tenants.health", timeout: .seconds(3))
            Issue.record("auth served a tenants subject")
        } catch let error as NATSError {
            #expect(error.kind == .noResponders || error.kind == .timeout)
        }
    }

    @Test("a service cannot publish events it does not own")
    func cannotForgeEvents() async throws {
        let server = try await NATSServer.startShipped()
        let tenants = try await connect(server, as: "tenants")
        let gateway = try await connect(server, as: "gateway")
        // Only an unrestricted listener could watch events; the tenants user may not subscribe
        // to them, so a JetStream stream (made by the operator) is the witness: the gateway's
        // publish must not land.
        try await connect(server, as: NATSServer.testUser).jetStream()
            .ensureStream(.init(name: "WITNESS", subjects: ["rampart.events.>"], storage: .memory))
        let jetStream = try tenants.jetStream()
        _ = try await jetStream.publish([1], to: "rampart.events.tenant.created")  // allowed for tenants
        await #expect(throws: NATSError.self) {
            _ = try await gateway.jetStream().publish([2], to: "rampart.events.tenant.created", timeout: .seconds(2))
        }
    }

    @Test("a service calls only the services it needs: webhooks and audit cannot sign anyone in")
    func callsOnlyWhatItNeeds() async throws {
        let server = try await NATSServer.startShipped()
        let auth = try await connect(server, as: "auth")
        let responder = try echo(on: auth, subject: "rampart.v1.auth.login", queue: "auth")
        defer { responder.cancel() }
        try await auth.flush()
        let gateway = try await connect(server, as: "gateway")
        #expect(try await gateway.request([1], to: "rampart.v1.auth.login", timeout: .seconds(10)).payload == [1])
        for caller in ["webhooks", "audit", "permissions"] {
            let connection = try await connect(server, as: caller)
            await #expect(throws: NATSError.self, "\(caller) reached auth.login") {
                _ = try await connection.request([2], to: "rampart.v1.auth.login", timeout: .seconds(2))
            }
        }
    }

    @Test(
        "a service publishes only its own events: webhooks cannot create a tenant or speak for auth in the saga; mail is queued under one's own name"
    )
    func ownEventsOnly() async throws {
        let server = try await NATSServer.startShipped()
        let tenants = try await connect(server, as: "tenants")
        try await connect(server, as: NATSServer.testUser).jetStream()
            .ensureStream(.init(name: "WITNESS", subjects: ["rampart.events.>"], storage: .memory))
        let jetStream = try tenants.jetStream()
        let webhooks = try await connect(server, as: "webhooks").jetStream(timeout: .seconds(2))
        _ = try await webhooks.publish([1], to: "rampart.events.inbound.stripe")
        _ = try await webhooks.publish([2], to: "rampart.events.tenant.provisioned.webhooks")
        for forged in [
            "rampart.events.tenant.created", "rampart.events.tenant.provisioned.auth", "rampart.events.member.disabled",
            "rampart.events.mail.auth", "rampart.events.mail.tenants",
        ] {
            await #expect(throws: NATSError.self, "webhooks published \(forged)") { _ = try await webhooks.publish([3], to: forged) }
        }
        let auth = try await connect(server, as: "auth").jetStream(timeout: .seconds(2))
        _ = try await auth.publish([4], to: "rampart.events.tenant.provisioned.auth")
        await #expect(throws: NATSError.self) { _ = try await auth.publish([5], to: "rampart.events.tenant.created") }
        await #expect(throws: NATSError.self) { _ = try await auth.publish([6], to: "rampart.events.inbound.stripe") }
        // AUTH-10: each service queues mail under its own name only, and the sender queues none.
        _ = try await auth.publish([7], to: "rampart.events.mail.auth")
        await #expect(throws: NATSError.self) { _ = try await auth.publish([8], to: "rampart.events.mail.tenants") }
        _ = try await jetStream.publish([9], to: "rampart.events.mail.tenants")
        await #expect(throws: NATSError.self) { _ = try await jetStream.publish([10], to: "rampart.events.mail.auth") }
        let mail = try await connect(server, as: "mail").jetStream(timeout: .seconds(2))
        await #expect(throws: NATSError.self) { _ = try await mail.publish([11], to: "rampart.events.mail.auth") }
    }

    @Test("permissions announces revisions in its own bucket, which the gateway watches; it cannot touch auth's revocations")
    func policyRevisions() async throws {
        let server = try await NATSServer.startShipped()
        let permissions = try await connect(server, as: "permissions")
        let gateway = try await connect(server, as: "gateway")
        let auth = try await connect(server, as: "auth")
        let bucket = try await permissions.jetStream().ensureKeyValue(.init(bucket: "rampart_policy_revisions", storage: .memory))
        _ = try await bucket.put("0123456789abcdef0123456789abcdef", Array("7".utf8))
        var seen: [UInt8]?
        for try await event in try await gateway.jetStream().keyValue("rampart_policy_revisions").watch() {
            if case .entry(let entry) = event { seen = entry.value }
            break
        }
        #expect(seen == Array("7".utf8))
        // auth's revocations: auth writes them; permissions may not.
        let revocations = try await auth.jetStream().ensureKeyValue(.init(bucket: "rampart_revocations", storage: .memory))
        _ = try await revocations.put("session.x.y", [1])
        await #expect(throws: NATSError.self) {
            _ = try await permissions.jetStream(timeout: .seconds(2)).keyValue("rampart_revocations").put("session.x.y", [2])
        }
    }

    @Test("JetStream rights are per stream: webhooks' credential cannot read mail events, empty the revocations, or touch the audit stream")
    func jetStreamPerStream() async throws {
        let server = try await NATSServer.startShipped()
        // The owners make their streams and buckets, as each service does at start.
        let tenants = try await connect(server, as: "tenants").jetStream(timeout: .seconds(2))
        try await tenants.ensureStream(.init(name: "RAMPART_EVENTS", subjects: ["rampart.events.>"], storage: .memory))
        let audit = try await connect(server, as: "audit").jetStream(timeout: .seconds(2))
        let auditStream = JetStream.StreamConfiguration(name: "RAMPART_AUDIT", subjects: ["rampart.audit.*.*"], storage: .memory)
        try await audit.ensureStream(auditStream)
        let auth = try await connect(server, as: "auth").jetStream(timeout: .seconds(2))
        let revocations = try await auth.ensureKeyValue(.init(bucket: "rampart_revocations", storage: .memory))
        _ = try await revocations.put("session.t.s", [1])
        _ = try await auth.publish([2], to: "rampart.events.mail.auth")  // a reset link's mail
        _ = try await auth.publish([3], to: "rampart.audit.platform.auth")

        let webhooks = try await connect(server, as: "webhooks")
        let stolen = try webhooks.jetStream(timeout: .seconds(1))
        // Its own durable consumers work; any other name, on any stream, is refused.
        _ = try await stolen.durableConsumer(
            stream: "RAMPART_AUDIT",
            .init(durableName: "webhooks-fanout", filterSubject: "rampart.audit.*.*")
        )
        await #expect(throws: NATSError.self, "webhooks read the mail events") {
            _ = try await stolen.durableConsumer(stream: "RAMPART_EVENTS", .init(durableName: "thief", filterSubject: "rampart.events.mail.>"))
        }
        await #expect(throws: NATSError.self, "webhooks took over auth's consumer") {
            _ = try await stolen.durableConsumer(
                stream: "RAMPART_EVENTS",
                .init(durableName: "auth-member-disabled", filterSubject: "rampart.events.>")
            )
        }
        // No stream or bucket may be created, changed, purged or deleted, nor a message read
        // or deleted, by a service that does not own it.
        await #expect(throws: NATSError.self) { try await stolen.ensureStream(.init(name: "RAMPART_AUDIT", subjects: ["x.>"], storage: .memory)) }
        await #expect(throws: NATSError.self) {
            try await stolen.ensureStream(.init(name: "SHADOW", subjects: ["rampart.audit.>"], storage: .memory))
        }
        await #expect(throws: NATSError.self) { try await stolen.deleteStream("RAMPART_AUDIT") }
        await #expect(throws: NATSError.self) { try await stolen.deleteKeyValue("rampart_revocations") }
        for (subject, body) in [
            ("$JS.API.STREAM.PURGE.KV_rampart_revocations", "{}"),
            ("$JS.API.STREAM.MSG.DELETE.RAMPART_AUDIT", #"{"seq":1}"#),
            ("$JS.API.STREAM.MSG.GET.RAMPART_EVENTS", #"{"seq":1}"#),
            ("$JS.API.DIRECT.GET.KV_rampart_revocations.$KV.rampart_revocations.session.t.s", ""),
            ("$JS.API.CONSUMER.DELETE.RAMPART_AUDIT.audit-store", ""),
        ] {
            await #expect(throws: NATSError.self, "webhooks called \(subject)") {
                _ = try await webhooks.request(Array(body.utf8), to: subject, timeout: .seconds(1))
            }
        }
        await #expect(throws: NATSError.self) { _ = try await stolen.keyValue("rampart_revocations").put("session.t.s", [9]) }
        // Audit events only under its own name.
        _ = try await stolen.publish([4], to: "rampart.audit.platform.webhooks")
        await #expect(throws: NATSError.self) { _ = try await stolen.publish([5], to: "rampart.audit.platform.auth") }

        // What the owners wrote is all there.
        let operatorView = try await connect(server, as: NATSServer.testUser).jetStream().keyValue("rampart_revocations")
        #expect(try await operatorView.get("session.t.s")?.value == [1])
        let mail = try await connect(server, as: "mail").jetStream(timeout: .seconds(2))
        let queued = try await mail.durableConsumer(
            stream: "RAMPART_EVENTS",
            .init(durableName: "mail-sender", filterSubject: "rampart.events.mail.>")
        )
        #expect(try await queued.fetch(batch: 5, timeout: .seconds(2)).map(\.payload) == [[2]])
        let stored = try await audit.durableConsumer(stream: "RAMPART_AUDIT", .init(durableName: "audit-store", filterSubject: "rampart.audit.*.*"))
        #expect(try await stored.fetch(batch: 5, timeout: .seconds(2)).map(\.payload) == [[3], [4]])
    }

    @Test(
        "audit's published checkpoints (issue 26, finding 14): audit appends and reads the last per chain, and nobody deletes, purges or reshapes them"
    )
    func publishedCheckpoints() async throws {
        let server = try await NATSServer.startShipped()
        let connection = try await connect(server, as: "audit")
        let audit = try connection.jetStream(timeout: .seconds(2))
        let stream = JetStream.StreamConfiguration(
            name: "RAMPART_AUDIT_CHECKPOINTS",
            subjects: ["rampart.audit_checkpoints.*"],
            storage: .memory,
            maxMessagesPerSubject: 16,
            appendOnly: true
        )
        try await audit.ensureStream(stream)
        try await audit.ensureStream(stream)  // again at the next start: the same stream, no change
        _ = try await audit.publish([1], to: "rampart.audit_checkpoints.platform")
        _ = try await audit.publish([2], to: "rampart.audit_checkpoints.platform")
        #expect(try await audit.lastMessage(stream: "RAMPART_AUDIT_CHECKPOINTS", subject: "rampart.audit_checkpoints.platform")?.payload == [2])
        #expect(try await audit.lastMessage(stream: "RAMPART_AUDIT_CHECKPOINTS", subject: "rampart.audit_checkpoints.other") == nil)

        // audit's credential may not loosen the stream, nor delete from it; nor may an operator's.
        var loosened = stream
        loosened.appendOnly = false
        await #expect(throws: NATSError.self) { try await audit.ensureStream(loosened) }
        await #expect(throws: NATSError.self) { try await audit.deleteStream("RAMPART_AUDIT_CHECKPOINTS") }
        let operatorConnection = try await connect(server, as: NATSServer.testUser)
        for caller in [connection, operatorConnection] {
            for (subject, body) in [
                ("$JS.API.STREAM.MSG.DELETE.RAMPART_AUDIT_CHECKPOINTS", #"{"seq":2}"#),
                ("$JS.API.STREAM.PURGE.RAMPART_AUDIT_CHECKPOINTS", "{}"),
            ] {
                let refused: Bool
                do {
                    let reply = try await caller.request(Array(body.utf8), to: subject, timeout: .seconds(1))
                    refused = String(decoding: reply.payload, as: UTF8.self).contains("\"error\"")
                } catch {
                    refused = true
                }
                #expect(refused, "\(subject)")
            }
        }
        #expect(try await audit.lastMessage(stream: "RAMPART_AUDIT_CHECKPOINTS", subject: "rampart.audit_checkpoints.platform")?.payload == [2])
    }

    @Test("a wrong password or an unknown user is refused")
    func authentication() async throws {
        let server = try await NATSServer.startShipped()
        await #expect(throws: NATSError.self) { _ = try await connect(server, as: "auth", password: "wrong") }
        await #expect(throws: NATSError.self) { _ = try await connect(server, as: "intruder", password: "x") }
    }
}
