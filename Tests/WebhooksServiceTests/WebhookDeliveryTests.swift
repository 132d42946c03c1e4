import Foundation
import NATSKit
import RampartModels
import ServicesTestSupport
import SodiumKit
import SwiftProtobuf
import Synchronization
import TenantsService
import TestSupport
import Testing

@testable import ServiceKit
@testable import WebhooksService

/// A clock the test moves: retries wait minutes to hours.
final class ManualClock: Sendable {
    private let now = Mutex<Int64>(WallClock.milliseconds())

    var milliseconds: Int64 { now.withLock { $0 } }
    var deliveryClock: DeliveryClock { DeliveryClock { [self] in milliseconds } }

    func advance(seconds: Double) { advance(milliseconds: Int64((seconds * 1000).rounded())) }
    func advance(milliseconds: Int64) { now.withLock { $0 += milliseconds } }
}

/// WH-1, WH-2, WH-4 with the real service, NATS and PostgreSQL, delivering to a local receiver
/// (loopback allowlisted): signed deliveries, the retry schedule on a hand-moved clock, dead
/// letters, redirects, slow and huge answers, 410, the delivery log and redelivery.
@Suite("WH-1, WH-2, WH-4 webhook deliveries to a local receiver", .serialized)
struct WebhookDeliveryTests {
    struct Setup {
        let cluster: TenantsCluster
        let tenant: TenantID
        let owner: String
        let clock: ManualClock
        let receiver: WebhookReceiver

        func call<Request, Reply>(_ endpoint: RPCEndpoint<Request, Reply>, _ request: Request, tenant: TenantID? = nil) async throws -> Reply {
            try await cluster.call(endpoint, request, tenant: tenant ?? self.tenant, principal: owner)
        }

        func endpoint(_ path: String, types: [String] = ["member.*"]) async throws -> Rampart_V1_CreateEndpointReply {
            var request = Rampart_V1_CreateEndpointRequest()
            request.url = "http://127.0.0.1:\(receiver.port)\(path)"
            request.eventTypes = types
            return try await call(Subjects.Webhooks.createEndpoint, request)
        }

        /// An event in the tenant's audit log, as the service that records it would publish it.
        @discardableResult
        func publish(_ action: AuditAction, tenant: TenantID? = nil) async throws -> Rampart_V1_AuditEvent {
            let service = action.publishers.min { $0.rawValue < $1.rawValue }!
            let publisher = AuditPublisher(jetStream: try cluster.client.jetStream(), service: service, logger: quietLogger())
            var event = Rampart_V1_AuditEvent(
                action,
                tenant: tenant ?? self.tenant,
                target: ("user", UUID().uuidString.lowercased()),
                call: nil,
                service: .tenants
            )
            event.occurredAtMs = clock.milliseconds  // the service's time is the test's clock
            return try await publisher.publish(event)
        }

        func deliveries(_ endpoint: String) async throws -> [Rampart_V1_Delivery] {
            var request = Rampart_V1_ListDeliveriesRequest()
            request.endpointID = endpoint
            let reply: Rampart_V1_ListDeliveriesReply = try await call(Subjects.Webhooks.listDeliveries, request)
            return reply.deliveries
        }

        /// Waits until `path` has received `count` requests.
        func expectReceived(
            _ count: Int,
            at path: String,
            within limit: Duration = .seconds(10),
            sourceLocation: SourceLocation = #_sourceLocation
        ) async {
            let arrived = await eventually(within: limit) { receiver.received(at: path).count >= count }
            #expect(arrived, "\(receiver.received(at: path).count) of \(count) at \(path)", sourceLocation: sourceLocation)
        }

        /// Waits until the delivery's record satisfies `condition`.
        func delivery(_ endpoint: String, where condition: @escaping (Rampart_V1_Delivery) -> Bool) async throws -> Rampart_V1_Delivery? {
            var found: Rampart_V1_Delivery?
            _ = try await eventually(within: .seconds(10)) {
                found = try await deliveries(endpoint).first
                return found.map(condition) ?? false
            }
            return found.flatMap { condition($0) ? $0 : nil }
        }
    }

    static func start(timeoutSeconds: Int = 10, resolver: DestinationGuard.Resolver? = nil) async throws -> Setup {
        let cluster = try await TenantsCluster.start(
            settings: TenantsSettings(sagaServices: [.tenants, .webhooks]),
            without: [.auth, .permissions, .audit, .webhooks]
        )
        let clock = ManualClock()
        cluster.webhooksSettings = WebhooksSettings(allowedNetworks: [IPNetwork(cidr: "127.0.0.1/32")!], timeoutSeconds: timeoutSeconds)
        cluster.webhooksClock = clock.deliveryClock
        if let resolver { cluster.webhooksResolver = resolver }
        try await cluster.start(.webhooks)
        let (registered, owner) = try await cluster.register()
        #expect(try await cluster.waitFor(.active, registered.tenantID))
        return Setup(
            cluster: cluster,
            tenant: TenantID(registered.tenantID)!,
            owner: owner,
            clock: clock,
            receiver: try await WebhookReceiver.start()
        )
    }

    @Test("a matching event is delivered once, signed as Standard Webhooks says (checked with Python's hmac); others are not")
    func signedDelivery() async throws {
        let setup = try await Self.start()
        try await stopping(setup.cluster) {
            let created = try await setup.endpoint("/ok")
            #expect(created.secret.hasPrefix("whsec_") && WebhookSignature.decode(secret: created.secret)?.count == 32)
            #expect(created.endpoint.url == "http://127.0.0.1:\(setup.receiver.port)/ok" && created.endpoint.enabled)

            try await setup.publish(.loginSucceeded)  // not a member.* event
            let event = try await setup.publish(.memberInvited)
            await setup.expectReceived(1, at: "/ok")
            try await Task.sleep(for: .milliseconds(300))
            let received = setup.receiver.received(at: "/ok")
            #expect(received.count == 1)
            let request = try #require(received.first)
            let id = "msg_\(event.id)"
            #expect(request.headers["webhook-id"] == id)
            #expect(request.headers["content-type"] == "application/json")
            let timestamp = try #require(request.headers["webhook-timestamp"].flatMap { Int64($0) })
            #expect(timestamp == setup.clock.milliseconds / 1000)
            let signature = try #require(request.headers["webhook-signature"])
            #expect(try WebhookReceiver.pythonSignature(secret: created.secret, id: id, timestamp: timestamp, body: request.body) == signature)
            let body = try #require(try JSONSerialization.jsonObject(with: Data(request.body)) as? [String: Any])
            #expect(body["type"] as? String == "member.invited")
            #expect((body["data"] as? [String: Any])?["id"] as? String == event.id)
            #expect((body["data"] as? [String: Any])?["tenant_id"] as? String == setup.tenant.hex)

            let logged = try #require(try await setup.delivery(created.endpoint.endpointID) { $0.status == .succeeded })
            #expect(logged.eventID == event.id && logged.eventType == "member.invited")
            #expect(logged.attempts == 1 && logged.responseStatus == 200 && logged.nextAttemptAtMs == 0)
            // A redelivered event (the same ID again on the stream) is not delivered twice.
            try await AuditPublisher(jetStream: try setup.cluster.client.jetStream(), service: .tenants, logger: quietLogger()).publish(event)
            try await Task.sleep(for: .milliseconds(500))
            #expect(setup.receiver.received(at: "/ok").count == 1)
        }
    }

    @Test("WH-2: failures are retried after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h (+ up to 10% jitter), then dead")
    func retrySchedule() async throws {
        let setup = try await Self.start()
        try await stopping(setup.cluster) {
            let created = try await setup.endpoint("/status/500")
            let endpoint = created.endpoint.endpointID
            try await setup.publish(.memberJoined)
            for (index, wait) in WebhooksSettings.defaultRetrySchedule.enumerated() {
                await setup.expectReceived(index + 1, at: "/status/500", within: .seconds(30))
                let pending = try #require(try await setup.delivery(endpoint) { $0.attempts == index + 1 })
                #expect(pending.status == .pending && pending.responseStatus == 500 && pending.lastError == "HTTP 500")
                let delay = pending.nextAttemptAtMs - pending.lastAttemptAtMs
                #expect(delay >= Int64(wait) * 1000 && delay <= Int64(wait) * 1100, "retry \(index + 1): \(delay) ms")
                // Not a moment before it is due. Whole milliseconds: a delay of 5,004 ms moved as
                // 4.004 s then 1 s was 5,003 ms once truncated, and the retry never came due.
                setup.clock.advance(milliseconds: delay - 1000)
                try await Task.sleep(for: .milliseconds(400))
                #expect(setup.receiver.received(at: "/status/500").count == index + 1)
                setup.clock.advance(milliseconds: 1000)
            }
            await setup.expectReceived(8, at: "/status/500")
            let dead = try #require(try await setup.delivery(endpoint) { $0.status == .dead })
            #expect(dead.attempts == 8 && dead.nextAttemptAtMs == 0)
            // Dead letters stay in the log and leave the queue.
            let database = try #require(setup.cluster.databases[.webhooks])
            #expect(try await TestPostgres.psql("SELECT count(*) FROM delivery_queue", database: database) == "0")
            setup.clock.advance(seconds: 86_400)
            try await Task.sleep(for: .milliseconds(400))
            #expect(setup.receiver.received(at: "/status/500").count == 8)
        }
    }

    @Test("Retry-After on 429 and 503 is honoured; a redirect is a failure and is not followed")
    func retryAfterAndRedirects() async throws {
        let setup = try await Self.start()
        try await stopping(setup.cluster) {
            let limited = try await setup.endpoint("/status/429?retry_after=3600")
            let moved = try await setup.endpoint("/redirect")
            try await setup.publish(.memberRemoved)
            await setup.expectReceived(1, at: "/status/429")
            let waiting = try #require(try await setup.delivery(limited.endpoint.endpointID) { $0.attempts == 1 })
            #expect(waiting.nextAttemptAtMs - waiting.lastAttemptAtMs >= 3_600_000)
            await setup.expectReceived(1, at: "/redirect")
            let redirected = try #require(try await setup.delivery(moved.endpoint.endpointID) { $0.attempts == 1 })
            #expect(redirected.status == .pending && redirected.responseStatus == 302 && redirected.lastError == "a redirect (not followed)")
            try await Task.sleep(for: .milliseconds(300))
            #expect(setup.receiver.received(at: "/ok").isEmpty)
        }
    }

    @Test("a receiver that does not answer is cut at the timeout; a huge answer is read only up to the limit")
    func slowAndHuge() async throws {
        let setup = try await Self.start(timeoutSeconds: 2)
        try await stopping(setup.cluster) {
            let slow = try await setup.endpoint("/slow")
            let huge = try await setup.endpoint("/huge")
            let started = ContinuousClock.now
            try await setup.publish(.memberEnabled)
            let cut = try #require(try await setup.delivery(slow.endpoint.endpointID) { $0.attempts == 1 })
            #expect(cut.lastError == "no answer within 2 s" && cut.responseStatus == 0)
            #expect(cut.latencyMs >= 1900 && cut.latencyMs < 5000, "\(cut.latencyMs) ms")
            #expect(ContinuousClock.now - started < .seconds(8))
            let read = try #require(try await setup.delivery(huge.endpoint.endpointID) { $0.attempts == 1 })
            #expect(read.status == .succeeded && read.responseStatus == 200 && read.latencyMs < 2000, "\(read.latencyMs) ms")
        }
    }

    @Test("410 Gone disables the endpoint, audited; an endpoint failing for 5 days is disabled too")
    func disabled() async throws {
        let setup = try await Self.start()
        try await stopping(setup.cluster) {
            let gone = try await setup.endpoint("/status/410")
            let failing = try await setup.endpoint("/status/503")
            try await setup.publish(.memberJoined)
            let dead = try #require(try await setup.delivery(gone.endpoint.endpointID) { $0.status == .dead })
            #expect(dead.responseStatus == 410 && dead.attempts == 1)
            var get = Rampart_V1_EndpointRequest()
            get.endpointID = gone.endpoint.endpointID
            let off = try await setup.call(Subjects.Webhooks.getEndpoint, get)
            #expect(!off.endpoint.enabled && off.endpoint.disabledReason == "gone")

            _ = try #require(try await setup.delivery(failing.endpoint.endpointID) { $0.attempts == 1 })
            get.endpointID = failing.endpoint.endpointID
            let started = try await setup.call(Subjects.Webhooks.getEndpoint, get)
            #expect(started.endpoint.enabled && started.endpoint.failingSinceMs > 0)
            // Five days of failures later, the next failure turns it off; later events are not queued.
            setup.clock.advance(seconds: 5 * 86_400)
            try await setup.publish(.memberJoined)
            _ = await eventually(within: .seconds(10)) {
                let reply: Rampart_V1_EndpointReply? = try? await setup.call(Subjects.Webhooks.getEndpoint, get)
                return reply?.endpoint.enabled == false
            }
            let failed = try await setup.call(Subjects.Webhooks.getEndpoint, get)
            #expect(!failed.endpoint.enabled && failed.endpoint.disabledReason == "failing")
            let audited = try await setup.cluster.events(
                Subjects.audit(tenant: setup.tenant),
                as: Rampart_V1_AuditEvent.self,
                stream: Subjects.auditStream
            )
            let disabledEvents = audited.filter { $0.action == AuditAction.webhookEndpointDisabled.rawValue }
            #expect(Set(disabledEvents.map(\.target.id)) == [gone.endpoint.endpointID, failing.endpoint.endpointID])
            #expect(Set(disabledEvents.compactMap { $0.details["disabled_reason"] }) == ["gone", "failing"])
        }
    }

    @Test("WH-1: a rotated secret keeps signing beside the new one for its grace period")
    func rotation() async throws {
        let setup = try await Self.start()
        try await stopping(setup.cluster) {
            let created = try await setup.endpoint("/ok")
            var rotate = Rampart_V1_RotateSecretRequest()
            rotate.endpointID = created.endpoint.endpointID
            rotate.graceSeconds = 3600
            let rotated = try await setup.call(Subjects.Webhooks.rotateSecret, rotate)
            #expect(rotated.secret != created.secret && rotated.endpoint.previousSecretExpiresAtMs > 0)
            try await setup.publish(.memberInvited)
            await setup.expectReceived(1, at: "/ok")
            let first = try #require(setup.receiver.received(at: "/ok").first)
            let id = try #require(first.headers["webhook-id"])
            let timestamp = try #require(first.headers["webhook-timestamp"].flatMap { Int64($0) })
            let signatures = try #require(first.headers["webhook-signature"]).split(separator: " ").map(String.init)
            #expect(
                signatures == [
                    try WebhookReceiver.pythonSignature(secret: rotated.secret, id: id, timestamp: timestamp, body: first.body),
                    try WebhookReceiver.pythonSignature(secret: created.secret, id: id, timestamp: timestamp, body: first.body),
                ]
            )
            // After the grace period, the new secret alone.
            setup.clock.advance(seconds: 3601)
            try await setup.publish(.memberInvited)
            await setup.expectReceived(2, at: "/ok")
            let second = try #require(setup.receiver.received(at: "/ok").last)
            #expect(second.headers["webhook-signature"]?.split(separator: " ").count == 1)
            #expect(
                try WebhookReceiver.pythonSignature(
                    secret: rotated.secret,
                    id: try #require(second.headers["webhook-id"]),
                    timestamp: try #require(second.headers["webhook-timestamp"].flatMap { Int64($0) }),
                    body: second.body
                ) == second.headers["webhook-signature"]
            )
        }
    }

    @Test("WH-4: the log pages newest first; a delivery is sent again on request; a test event reaches one endpoint")
    func logAndRedelivery() async throws {
        let setup = try await Self.start()
        try await stopping(setup.cluster) {
            let created = try await setup.endpoint("/ok", types: ["member.invited"])
            let endpoint = created.endpoint.endpointID
            for _ in 0..<5 { try await setup.publish(.memberInvited) }
            await setup.expectReceived(5, at: "/ok")
            _ = await eventually(within: .seconds(5)) { (try? await setup.deliveries(endpoint).allSatisfy { $0.status == .succeeded }) == true }
            var page = Rampart_V1_ListDeliveriesRequest()
            page.endpointID = endpoint
            page.pageSize = 2
            var seen: [String] = []
            repeat {
                let reply = try await setup.call(Subjects.Webhooks.listDeliveries, page)
                seen += reply.deliveries.map(\.deliveryID)
                page.cursor = reply.nextCursor
            } while !page.cursor.isEmpty
            #expect(seen.count == 5 && Set(seen).count == 5)
            let all = try await setup.deliveries(endpoint)
            #expect(all.map(\.deliveryID) == seen)
            #expect(zip(all, all.dropFirst()).allSatisfy { $0.createdAtMs >= $1.createdAtMs })

            var again = Rampart_V1_RedeliverRequest()
            again.endpointID = endpoint
            again.deliveryID = seen[2]
            let redelivered = try await setup.call(Subjects.Webhooks.redeliver, again)
            #expect(redelivered.delivery.status == .pending)
            await setup.expectReceived(6, at: "/ok")
            let resent = try #require(setup.receiver.received(at: "/ok").last)
            #expect(resent.headers["webhook-id"] == "msg_\(redelivered.delivery.eventID)")

            var test = Rampart_V1_TestEndpointRequest()
            test.endpointID = endpoint
            let tested = try await setup.call(Subjects.Webhooks.testEndpoint, test)
            #expect(tested.delivery.eventType == "webhook.test")
            await setup.expectReceived(7, at: "/ok")
            let testBody = try #require(setup.receiver.received(at: "/ok").last?.body)
            #expect(String(decoding: testBody, as: UTF8.self).contains(#""type":"webhook.test""#))
        }
    }

    @Test("deliveries survive a restart of webhooks; two replicas share the queue and deliver each event once")
    func restartAndReplicas() async throws {
        let setup = try await Self.start()
        try await stopping(setup.cluster) {
            let failing = try await setup.endpoint("/status/500", types: ["member.removed"])
            try await setup.publish(.memberRemoved)
            _ = try #require(try await setup.delivery(failing.endpoint.endpointID) { $0.attempts == 1 && $0.status == .pending })
            await setup.cluster.stop(.webhooks)
            try await setup.cluster.start(.webhooks)
            setup.clock.advance(seconds: 6)
            await setup.expectReceived(2, at: "/status/500")

            let second = try await setup.cluster.startReplica(.webhooks, number: 2)
            try await stopping(second) {
                _ = try await setup.endpoint("/ok", types: ["member.invited"])
                var published: Set<String> = []
                for _ in 0..<200 { published.insert("msg_\(try await setup.publish(.memberInvited).id)") }
                await setup.expectReceived(200, at: "/ok", within: .seconds(60))  // a debug build on a busy CI machine
                try await Task.sleep(for: .milliseconds(500))
                let ids = setup.receiver.received(at: "/ok").compactMap { $0.headers["webhook-id"] }
                #expect(ids.count == 200 && Set(ids) == published)
            }
        }
    }

    @Test("hostile input gets a precise error and changes nothing; another tenant's endpoint is not found")
    func hostileInput() async throws {
        let setup = try await Self.start()
        try await stopping(setup.cluster) {
            let created = try await setup.endpoint("/ok")
            func refused(_ code: Rampart_V1_ErrorCode, _ what: String = "", _ body: () async throws -> Void) async {
                do {
                    try await body()
                    Issue.record("accepted: \(what)")
                } catch let error as RampartError {
                    #expect(error.code == code, "\(error)")
                } catch {
                    Issue.record("\(error)")
                }
            }
            for (url, types) in [
                ("http://10.0.0.1/", ["*"]), ("http://0x7f.2/", ["*"]), ("http://[::ffff:127.0.0.2]/", ["*"]), ("http://localhost./", ["*"]),
                ("http://169.254.169.254/", ["*"]), ("ftp://example.com/", ["*"]), ("http://127.0.0.1:1/\u{0}", ["*"]),
                ("http://127.0.0.1:1/", []), ("http://127.0.0.1:1/", ["member.bogus"]), ("http://127.0.0.1:1/", ["nothing.*"]),
                ("http://127.0.0.1:1/", ["'; DROP TABLE endpoints; --"]),
                ("http://127.0.0.1:1/", Array(repeating: "*", count: 1) + (0..<60).map { "x\($0)" }),
            ] {
                await refused(.invalidArgument, "\(url) \(types.prefix(3))") {
                    var request = Rampart_V1_CreateEndpointRequest()
                    request.url = url
                    request.eventTypes = types
                    _ = try await setup.call(Subjects.Webhooks.createEndpoint, request)
                }
            }
            await refused(.invalidArgument) {
                var request = Rampart_V1_CreateEndpointRequest()
                request.url = "http://127.0.0.1:1/"
                request.eventTypes = ["*"]
                request.description_p = String(repeating: "d", count: 501)
                _ = try await setup.call(Subjects.Webhooks.createEndpoint, request)
            }
            let listed = try await setup.call(Subjects.Webhooks.listEndpoints, Rampart_V1_ListEndpointsRequest())
            #expect(listed.endpoints.map(\.endpointID) == [created.endpoint.endpointID])

            // Another tenant sees nothing of this one.
            let (other, otherOwner) = try await setup.cluster.register(email: "owner@other-\(UUID().uuidString.prefix(6).lowercased()).example")
            #expect(try await setup.cluster.waitFor(.active, other.tenantID))
            var get = Rampart_V1_EndpointRequest()
            get.endpointID = created.endpoint.endpointID
            await refused(.notFound) {
                let _: Rampart_V1_EndpointReply = try await setup.cluster.call(
                    Subjects.Webhooks.deleteEndpoint,
                    get,
                    tenant: TenantID(other.tenantID),
                    principal: otherOwner
                )
            }
            for bad in ["", "not-a-uuid", "' OR 1=1 --", String(repeating: "a", count: 36)] {
                get.endpointID = bad
                await refused(.invalidArgument) { _ = try await setup.call(Subjects.Webhooks.getEndpoint, get) }
            }
            var page = Rampart_V1_ListDeliveriesRequest()
            page.endpointID = created.endpoint.endpointID
            for cursor in ["x", "1_2", "-5_\(UUID().uuidString)", String(repeating: "9", count: 80)] {
                page.cursor = cursor
                await refused(.invalidArgument) { _ = try await setup.call(Subjects.Webhooks.listDeliveries, page) }
            }
            page.cursor = ""
            page.pageSize = 101
            await refused(.invalidArgument) { _ = try await setup.call(Subjects.Webhooks.listDeliveries, page) }
            // The endpoint is unchanged by all this.
            get.endpointID = created.endpoint.endpointID
            let unchanged = try await setup.call(Subjects.Webhooks.getEndpoint, get)
            #expect(unchanged.endpoint == created.endpoint)
        }
    }

    @Test("WH-3 at delivery time: a name that now resolves to a private address is not called")
    func rebinding() async throws {
        let answers = Mutex<[String]>(["127.0.0.1"])
        let setup = try await Self.start(resolver: { host in
            guard host == "hooks.rebind.example" else { throw SystemResolver.Failure(code: -2) }
            return answers.withLock { $0 }.compactMap { IPNetwork(address: $0) }
        })
        try await stopping(setup.cluster) {
            var request = Rampart_V1_CreateEndpointRequest()
            request.url = "http://hooks.rebind.example:\(setup.receiver.port)/ok"
            request.eventTypes = ["member.*"]
            let created = try await setup.call(Subjects.Webhooks.createEndpoint, request)
            try await setup.publish(.memberInvited)
            await setup.expectReceived(1, at: "/ok")
            // The name was called at the checked address, with its own Host.
            #expect(setup.receiver.received(at: "/ok").first?.headers["host"] == "hooks.rebind.example:\(setup.receiver.port)")

            answers.withLock { $0 = ["10.0.0.1"] }
            setup.clock.advance(seconds: 1)  // the log's newest first
            try await setup.publish(.memberInvited)
            let refused = try #require(try await setup.delivery(created.endpoint.endpointID) { $0.attempts == 1 && $0.status == .pending })
            #expect(refused.lastError == "refused: 10.0.0.1 is not a public address (10.0.0.0/8)" && refused.responseStatus == 0)
            #expect(setup.receiver.received(at: "/ok").count == 1)
        }
    }
}

/// The webhook routes through the gateway, with every service running: `webhooks.manage`, the
/// whole life of an endpoint, and a real member invitation delivered to it.
@Suite("WH-1, WH-4 webhook routes through the gateway", .serialized)
struct WebhookHTTPTests {
    @Test("an owner manages endpoints and sees an invitation delivered; a plain member cannot; hostile requests get a 4xx")
    func routes() async throws {
        let receiver = try await WebhookReceiver.start()
        let world = try await GatewayWorld.start(webhooks: WebhooksSettings(allowedNetworks: [IPNetwork(cidr: "127.0.0.1/32")!]))
        try await stopping(world.cluster) {
            let endpoints = "/v1/tenants/\(world.tenant)/webhooks/endpoints"
            let body = #"{"url":"http://127.0.0.1:\#(receiver.port)/ok","event_types":["member.*"],"description":"CRM sync"}"#
            try HTTP.expectRefused(try await world.send("POST", endpoints, body, token: world.bobToken), needs: "webhooks.manage")
            try HTTP.expectRefused(try await world.send("GET", endpoints, token: world.bobToken), needs: "webhooks.manage")

            let created = try await world.send("POST", endpoints, body, token: world.adaToken)
            #expect(created.status == 201, "\(created.body)")
            let reply = try HTTP.object(created)
            let secret = try #require(reply["secret"] as? String)
            let endpoint = try #require((reply["endpoint"] as? [String: Any])?["endpoint_id"] as? String)
            #expect(secret.hasPrefix("whsec_"))
            let listed = try HTTP.object(try await world.send("GET", endpoints, token: world.adaToken))
            #expect((listed["endpoints"] as? [[String: Any]])?.compactMap { $0["endpoint_id"] as? String } == [endpoint])
            // The SSRF guard answers at registration.
            for url in ["http://10.0.0.1/", "http://0x7f.2/", "http://[::ffff:169.254.169.254]/", "http://localhost./", "gopher://example.com/"] {
                let refused = try await world.send("POST", endpoints, #"{"url":"\#(url)","event_types":["*"]}"#, token: world.adaToken)
                #expect(refused.status == 400, "\(url): \(refused.body)")
            }

            // A real change in the tenant reaches the endpoint, signed with its secret.
            let invited = try await world.send(
                "POST",
                "/v1/tenants/\(world.tenant)/members",
                #"{"email":"carol@example.org","role":"MEMBER_ROLE_MEMBER"}"#,
                token: world.adaToken
            )
            #expect(invited.status == 201, "\(invited.body)")
            #expect(await eventually(within: .seconds(10)) { receiver.received(at: "/ok").count == 1 })
            let delivered = try #require(receiver.received(at: "/ok").first)
            let payload = try #require(try JSONSerialization.jsonObject(with: Data(delivered.body)) as? [String: Any])
            #expect(payload["type"] as? String == "member.invited")
            #expect(
                try WebhookReceiver.pythonSignature(
                    secret: secret,
                    id: try #require(delivered.headers["webhook-id"]),
                    timestamp: try #require(delivered.headers["webhook-timestamp"].flatMap { Int64($0) }),
                    body: delivered.body
                ) == delivered.headers["webhook-signature"]
            )

            let one = "\(endpoints)/\(endpoint)"
            let patched = try await world.send(
                "PATCH",
                one,
                #"{"description":"CRM","set_event_types":true,"event_types":["*"]}"#,
                token: world.adaToken
            )
            #expect(patched.status == 200, "\(patched.body)")
            #expect((try HTTP.object(patched)["endpoint"] as? [String: Any])?["event_types"] as? [String] == ["*"])
            // Now every event: the change just made, and a test event.
            #expect(try await world.send("POST", "\(one)/test", token: world.adaToken).status == 202)
            var deliveries: [[String: Any]] = []
            _ = await eventually(within: .seconds(10)) {
                deliveries =
                    (try? HTTP.object(try await world.send("GET", "\(one)/deliveries?status=DELIVERY_STATUS_SUCCEEDED", token: world.adaToken)))?[
                        "deliveries"
                    ]
                    as? [[String: Any]] ?? []
                return deliveries.count == 3
            }
            #expect(deliveries.compactMap { $0["event_type"] as? String }.sorted() == ["member.invited", "webhook.test", "webhook_endpoint.changed"])
            #expect(receiver.received(at: "/ok").count == 3)
            let invitation = try #require(deliveries.first { $0["event_type"] as? String == "member.invited" }?["delivery_id"] as? String)
            #expect(try await world.send("POST", "\(one)/deliveries/\(invitation)/redeliver", token: world.adaToken).status == 202)
            #expect(await eventually(within: .seconds(10)) { receiver.received(at: "/ok").count == 4 })
            #expect(receiver.received(at: "/ok").last?.headers["webhook-id"] == delivered.headers["webhook-id"])
            let rotated = try await world.send("POST", "\(one)/secret/rotate", #"{"grace_seconds":0}"#, token: world.adaToken)
            #expect(rotated.status == 200)
            #expect(try HTTP.object(rotated)["secret"] as? String != secret)

            // Hostile and malformed requests.
            #expect(try await world.send("GET", "\(endpoints)/not-an-id", token: world.adaToken).status == 400)
            #expect(try await world.send("GET", "\(endpoints)/\(UUID().uuidString.lowercased())", token: world.adaToken).status == 404)
            #expect(try await world.send("PATCH", one, #"{"url":"http://127.0.0.1:1/","secret":"x"}"#, token: world.adaToken).status == 400)
            #expect(try await world.send("PATCH", one, #"{"endpoint_id":"\#(UUID().uuidString)"}"#, token: world.adaToken).status == 400)
            for query in [
                "status=BOGUS", "page_size=0", "page_size=101", "cursor=x", "other=1", "status=DELIVERY_STATUS_DEAD&status=DELIVERY_STATUS_DEAD",
            ] {
                #expect(try await world.send("GET", "\(one)/deliveries?\(query)", token: world.adaToken).status == 400, "\(query)")
            }
            #expect(try await world.send("POST", "\(one)/secret/rotate", #"{"grace_seconds":9999999}"#, token: world.adaToken).status == 400)
            #expect(try await world.send("POST", "\(one)/deliveries/\(UUID().uuidString)/redeliver", token: world.adaToken).status == 404)

            #expect(try await world.send("DELETE", one, token: world.adaToken).status == 200)
            #expect(try await world.send("GET", one, token: world.adaToken).status == 404)
        }
    }
}
