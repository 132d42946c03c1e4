import Logging
import NATSKit
import RampartModels
import RateLimitKit
import RateLimitService
import ServiceKit
import ServicesTestSupport
import Synchronization
import TestSupport
import Testing

/// A clock the test moves by hand, shared by every replica it starts: windows and bans expire
/// when the test says, not when a slow machine happens to get there.
final class TestClock: Sendable {
    private let now = Mutex(WallClock.milliseconds())

    var read: @Sendable () -> Int64 { { self.now.withLock { $0 } } }
    var milliseconds: Int64 { now.withLock { $0 } }

    func advance(milliseconds: Int64) {
        now.withLock { $0 += milliseconds }
    }
}

/// rate-limit replicas on a nats-server of their own, and a client connection.
struct RateLimitCluster {
    let nats: NATSServer
    let replicas: [RunningService]
    let client: NATSConnection
    let clock: TestClock

    static func start(replicas count: Int = 1, settings: RateLimitSettings = RateLimitSettings()) async throws -> RateLimitCluster {
        let nats = try await NATSServer.start()
        let clock = TestClock()
        var replicas: [RunningService] = []
        for index in 0..<count {
            replicas.append(
                try await RunningService.start(
                    RateLimitService.descriptor(settings: settings, clock: clock.read),
                    nats: nats,
                    instance: "rate-limit-\(index)"
                )
            )
        }
        let client = try await NATSConnection.connect(NATSConfiguration(servers: [nats.url], name: "test-client"), logger: quietLogger())
        return RateLimitCluster(nats: nats, replicas: replicas, client: client, clock: clock)
    }

    func stop() async {
        for replica in replicas { await replica.stop() }
        await client.drain()
    }

    func check(
        _ policy: String,
        _ key: String,
        cost: UInt32 = 0,
        limit: UInt32 = 0,
        // Generous: a parallel test run on 2 cores has held a decision past the default 5 s.
        context: CallContext = CallContext(timeout: .seconds(20))
    ) async throws -> Rampart_V1_RateLimitDecision {
        var request = Rampart_V1_RateLimitCheckRequest()
        request.policy = policy
        request.key = key
        request.cost = cost
        request.limit = limit
        return try await RPCClient(connection: client).call(Subjects.RateLimit.check, request, context: context)
    }

    func reportFailure(_ ip: String, _ kind: Rampart_V1_FailureKind = .login) async throws -> Rampart_V1_ReportFailureReply {
        var request = Rampart_V1_ReportFailureRequest()
        request.ip = ip
        request.kind = kind
        // As generous as `check`'s.
        return try await RPCClient(connection: client).call(Subjects.RateLimit.reportFailure, request, context: CallContext(timeout: .seconds(20)))
    }

    var admin: CallContext { CallContext(principal: .user("admin")) }

    func listBans(context: CallContext) async throws -> Rampart_V1_ListBansReply {
        try await RPCClient(connection: client).call(Subjects.RateLimit.listBans, Rampart_V1_ListBansRequest(), context: context)
    }

    func unban(_ network: String) async throws -> Rampart_V1_UnbanReply {
        var request = Rampart_V1_UnbanRequest()
        request.network = network
        return try await RPCClient(connection: client).call(Subjects.RateLimit.unban, request, context: admin)
    }
}

@Suite("RL-1 RL-2 rate-limit over NATS: exact limits, shared by every replica")
struct RateLimitRPCTests {
    @Test("each default policy admits exactly its limit, then refuses with the exact Retry-After")
    func exactLimits() async throws {
        let cluster = try await RateLimitCluster.start()
        let cases: [(policy: String, key: String, limit: UInt32, window: UInt32)] = [
            ("login", "198.51.100.1", 5, 60),
            ("login_account", "Someone@Example.com", 5, 900),
            ("register", "198.51.100.2", 3, 3600),
            ("register_daily", "198.51.100.3", 3, 86400),
            ("api", "2001:db8::1", 60, 60),
            ("upload", "198.51.100.4", 10, 60),
            ("api_key", "key_0123456789", 60, 60),
        ]
        for (policy, key, limit, window) in cases {
            let start = cluster.clock.milliseconds
            // GCRA earns a call back every window/limit: its burst is measured at one instant.
            let step: Int64 = policy == "api_key" ? 0 : 100
            for index in 0..<limit {
                let decision = try await cluster.check(policy, key)
                #expect(decision.allowed, "\(policy): call \(index + 1) of \(limit)")
                #expect(decision.remaining == limit - index - 1, "\(policy)")
                #expect(decision.limit == limit, "\(policy)")
                #expect(decision.windowSeconds == window, "\(policy)")
                cluster.clock.advance(milliseconds: step)
            }
            let refused = try await cluster.check(policy, key)
            #expect(!refused.allowed, "\(policy)")
            #expect(!refused.banned, "\(policy)")
            #expect(refused.remaining == 0, "\(policy)")
            let elapsed = cluster.clock.milliseconds - start
            if policy == "api_key" {
                #expect(refused.retryAfterMs == UInt64(window) * 1000 / UInt64(limit), "\(policy)")
            } else {
                // The sliding window: exactly when the first call leaves it.
                #expect(refused.retryAfterMs == UInt64(Int64(window) * 1000 - elapsed), "\(policy)")
            }
            cluster.clock.advance(milliseconds: Int64(refused.retryAfterMs) - 1)
            #expect(try await cluster.check(policy, key).allowed == false, "\(policy): 1 ms early")
            cluster.clock.advance(milliseconds: 1)
            #expect(try await cluster.check(policy, key).allowed, "\(policy): on time")
            // Leave every window behind before the next policy.
            cluster.clock.advance(milliseconds: Int64(window) * 1000)
        }
        await cluster.stop()
    }

    @Test("an API key's own limit replaces the policy's; other policies refuse one")
    func perKeyLimit() async throws {
        let cluster = try await RateLimitCluster.start()
        for _ in 0..<7 { #expect(try await cluster.check("api_key", "key_seven", limit: 7).allowed) }
        #expect(try await cluster.check("api_key", "key_seven", limit: 7).allowed == false)
        await expectError(.invalidArgument) { _ = try await cluster.check("login", "198.51.100.9", limit: 100) }
        await cluster.stop()
    }

    @Test("two replicas hammered by 40 concurrent clients admit exactly the limit, per key")
    func replicasShareCounts() async throws {
        let cluster = try await RateLimitCluster.start(replicas: 2)
        let keys = ["203.0.113.10", "203.0.113.11", "2001:db8:aa::1"]
        let admitted = try await admittedPerKey(callers: 40, rounds: 6, keys: keys) { key in
            try await cluster.check("api", key).allowed
        }
        // 40 × 6 = 240 calls, 80 per key, limit 60.
        for key in keys { #expect(admitted[key] == 60, "\(key)") }
        await cluster.stop()
    }

    @Test("the batching client: 64 callers over two replicas admit exactly the limit, and queued checks go as batches")
    func batchedChecks() async throws {
        let cluster = try await RateLimitCluster.start(replicas: 2)
        let batches = try cluster.client.subscribe(to: Subjects.RateLimit.batchCheck.subject)
        try await cluster.client.flush()
        let counting = Task {
            var count = 0
            for await _ in batches { count += 1 }
            return count
        }
        let client = RateLimitClient(connection: cluster.client)
        let keys = ["203.0.113.20", "203.0.113.21", "2001:db8:bb::1"]
        let admitted = try await admittedPerKey(callers: 64, rounds: 3, keys: keys) { key in
            switch await client.check(policy: "api", key: key, context: CallContext(timeout: .seconds(20))) {
            case .allowed: true
            case .refused: false
            case .allowedUnchecked(let error), .unavailable(let error): throw error
            }
        }
        // 64 × 3 = 192 calls, 64 per key, limit 60.
        for key in keys { #expect(admitted[key] == 60, "\(key)") }
        await batches.drain()
        #expect(await counting.value > 0)
        await cluster.stop()
    }

    @Test("batch_check: each check is decided or refused alone, in order; a banned client is refused; bad batches count nothing")
    func batchCheck() async throws {
        var settings = RateLimitSettings()
        settings.fail2ban.threshold = 2
        let cluster = try await RateLimitCluster.start(settings: settings)
        for _ in 0..<2 { _ = try await cluster.reportFailure("198.51.100.90") }
        func item(_ policy: String, _ key: String, cost: UInt32 = 0, clientIP: String = "") -> Rampart_V1_RateLimitBatchCheck {
            var item = Rampart_V1_RateLimitBatchCheck()
            item.check.policy = policy
            item.check.key = key
            item.check.cost = cost
            item.clientIp = clientIP
            return item
        }
        func send(_ items: [Rampart_V1_RateLimitBatchCheck]) async throws -> [Rampart_V1_RateLimitBatchResult] {
            var request = Rampart_V1_RateLimitBatchCheckRequest()
            request.checks = items
            let reply: Rampart_V1_RateLimitBatchCheckReply = try await RPCClient(connection: cluster.client).call(
                Subjects.RateLimit.batchCheck,
                request,
                context: CallContext(timeout: .seconds(20))
            )
            return reply.results
        }
        let results = try await send([
            item("api", "203.0.113.30"),
            item("nope", "203.0.113.30"),
            item("api", "203.0.113.31", clientIP: "198.51.100.90"),
            item("api", "203.0.113.30", clientIP: "not-an-ip"),
            item("login", "203.0.113.30", cost: 6),
            item("api", "203.0.113.30"),
        ])
        try #require(results.count == 6)
        #expect(Set([results[0].decision.remaining, results[5].decision.remaining]) == [59, 58])
        #expect(results[0].decision.allowed && results[5].decision.allowed)
        #expect(results[1].error.code == .invalidArgument && results[1].error.details["field"] == "policy")
        #expect(results[2].decision.banned && !results[2].decision.allowed)
        #expect(results[3].error.code == .invalidArgument && results[3].error.details["field"] == "client_ip")
        #expect(results[4].error.code == .invalidArgument && results[4].error.details["field"] == "cost")

        await expectError(.invalidArgument) { _ = try await send([]) }
        await expectError(.invalidArgument) { _ = try await send(Array(repeating: item("api", "203.0.113.40"), count: 257)) }
        #expect(try await cluster.check("api", "203.0.113.40").remaining == 59)
        #expect(try await cluster.check("api", "203.0.113.31").remaining == 59)
        await cluster.stop()
    }

    @Test("addresses in one IPv6 /64 share a limit; the next /64 has its own")
    func ipv6Prefix() async throws {
        let cluster = try await RateLimitCluster.start()
        for index in 0..<5 {
            #expect(try await cluster.check("login", "2001:db8:5:6::\(index + 1)").allowed)
        }
        #expect(try await cluster.check("login", "2001:db8:5:6:ffff::1").allowed == false)
        #expect(try await cluster.check("login", "2001:db8:5:7::1").allowed)
        // IPv4 written as IPv4-mapped IPv6 is the same client.
        for _ in 0..<5 { _ = try await cluster.check("login", "192.0.2.44") }
        #expect(try await cluster.check("login", "::ffff:192.0.2.44").allowed == false)
        await cluster.stop()
    }

    @Test("bad input gets a precise error and consumes nothing")
    func badInput() async throws {
        var settings = RateLimitSettings()
        settings.policies["tenant_api"] = RateLimitPolicy(name: "tenant_api", key: .tenant, limit: 100, windowSeconds: 60)
        let cluster = try await RateLimitCluster.start(settings: settings)
        await expectError(.invalidArgument) { _ = try await cluster.check("nope", "198.51.100.1") }
        await expectError(.invalidArgument) { _ = try await cluster.check("login", "not-an-ip") }
        await expectError(.invalidArgument) { _ = try await cluster.check("login", "198.51.100.1; DROP TABLE") }
        await expectError(.invalidArgument) { _ = try await cluster.check("login_account", "") }
        await expectError(.invalidArgument) { _ = try await cluster.check("login_account", String(repeating: "a", count: 257)) }
        await expectError(.invalidArgument) { _ = try await cluster.check("login_account", "a\u{0}b") }
        await expectError(.invalidArgument) { _ = try await cluster.check("login", "198.51.100.1", cost: 6) }
        await expectError(.invalidArgument) { _ = try await cluster.check("tenant_api", "../other-tenant") }
        await expectError(.invalidArgument) { _ = try await cluster.reportFailure("999.1.1.1") }
        await expectError(.invalidArgument) { _ = try await cluster.reportFailure("198.51.100.1", .unspecified) }
        // A refund through the check subject: refused, nothing given back.
        var refund = Rampart_V1_RateLimitCheckRequest()
        refund.policy = "login_account"
        refund.key = "ada@lovelace.example"
        refund.refund = true
        await expectError(.invalidArgument) {
            _ = try await RPCClient(connection: cluster.client).call(
                Subjects.RateLimit.check,
                refund,
                context: CallContext()
            )
        }
        // Not a protobuf message at all.
        let reply = try await cluster.client.request(
            [0xFF, 0xFF, 0xFF],
            to: Subjects.RateLimit.check.subject,
            headers: CallContext().headers,
            timeout: .seconds(5)
        )
        #expect(reply.headers[CallHeader.error] != nil)
        #expect(try Rampart_V1_Error(serializedBytes: reply.payload).code == .malformedRequest)
        // Admin operations need a principal.
        await expectError(.missingHeader) { _ = try await cluster.listBans(context: CallContext()) }
        await expectError(.invalidArgument) { _ = try await cluster.unban("everyone") }
        // Nothing was counted: the full quota is still there.
        #expect(try await cluster.check("login", "198.51.100.1").remaining == 4)
        #expect(try await cluster.check("tenant_api", TenantID.random().hex).remaining == 99)
        await cluster.stop()
    }

    @Test("when rate-limit cannot be reached, login and registration fail closed; API traffic as configured")
    func failureModes() async throws {
        let nats = try await NATSServer.start()  // no rate-limit replica at all
        let connection = try await NATSConnection.connect(NATSConfiguration(servers: [nats.url], name: "gateway"), logger: quietLogger())
        let open = RateLimitClient(connection: connection, failOpen: ["api", "login", "register"])
        let closed = RateLimitClient(connection: connection)
        let context = CallContext(timeout: .seconds(2))
        for policy in ["login", "login_account", "register", "register_daily"] {
            guard case .unavailable = await open.check(policy: policy, key: "198.51.100.1", context: context) else {
                Issue.record("\(policy) must fail closed")
                continue
            }
        }
        guard case .allowedUnchecked = await open.check(policy: "api", key: "198.51.100.1", context: context) else {
            Issue.record("api is configured to fail open")
            return
        }
        #expect(await closed.check(policy: "api", key: "198.51.100.1", context: context).isAllowed == false)
        await connection.drain()
    }
}

@Suite("RL-3 fail2ban: bans apply everywhere, grow, expire and can be lifted")
struct BanTests {
    static var settings: RateLimitSettings {
        var settings = RateLimitSettings()
        settings.fail2ban.threshold = 3
        settings.fail2ban.windowSeconds = 60
        settings.fail2ban.banSeconds = 10
        settings.fail2ban.growth = 4
        settings.fail2ban.maximumSeconds = 100
        settings.allowlist = [IPNetwork(cidr: "10.0.0.0/8")!]
        return settings
    }

    @Test("the threshold bans the network; the ban is refused everywhere, grows on repeat, expires and lifts")
    func lifecycle() async throws {
        let cluster = try await RateLimitCluster.start(replicas: 2, settings: Self.settings)
        // A gateway-like watcher on its own connection.
        let watcherConnection = try await NATSConnection.connect(
            NATSConfiguration(servers: [cluster.nats.url], name: "gateway"),
            logger: quietLogger()
        )
        let watcher = BanList(connection: watcherConnection, logger: quietLogger())
        let watching = Task { try await watcher.run() }
        await watcher.waitUntilCaughtUp()

        let ip = "203.0.113.50"
        #expect(try await cluster.reportFailure(ip).failures == 1)
        #expect(try await cluster.reportFailure(ip, .mfa).failures == 2)
        let banned = try await cluster.reportFailure(ip, .apiKey)
        #expect(banned.banned)
        #expect(banned.ban.offences == 1)
        #expect(banned.ban.network == "203.0.113.50/32")
        #expect(banned.ban.untilMs - banned.ban.bannedAtMs == 10_000)

        // The gateway's watcher and every replica enforce it within a second, whatever the policy.
        #expect(await eventually { watcher.ban(covering: ip, now: cluster.clock.milliseconds) != nil })
        for _ in 0..<4 {
            #expect(try await eventually { try await cluster.check("api", ip).banned })
        }
        let decision = try await cluster.check("api", ip)
        #expect(!decision.allowed)
        #expect(decision.retryAfterMs == 10_000)
        let byHeader = try await cluster.check("login_account", "victim@example.com", context: CallContext(clientIP: ip))
        #expect(byHeader.banned)

        // It expires (on the test's clock: no replica needs telling).
        cluster.clock.advance(milliseconds: 10_001)
        for _ in 0..<4 { #expect(try await cluster.check("api", ip).allowed) }
        // Failures count afresh after a ban; the next ban is 4 times longer.
        #expect(try await cluster.reportFailure(ip).failures == 1)
        _ = try await cluster.reportFailure(ip)
        let second = try await cluster.reportFailure(ip)
        #expect(second.ban.offences == 2)
        #expect(second.ban.untilMs - second.ban.bannedAtMs == 40_000)

        let listed = try await cluster.listBans(context: cluster.admin)
        #expect(listed.bans.map(\.network) == ["203.0.113.50/32"])

        // An admin lifts it: allowed again at once, on every replica and in the watcher.
        let lifted = try await cluster.unban(ip)
        #expect(lifted.lifted)
        #expect(lifted.ban.liftedBy == "user:admin")
        #expect(await eventually { watcher.ban(covering: ip, now: cluster.clock.milliseconds) == nil })
        for _ in 0..<4 {
            #expect(try await eventually { try await cluster.check("upload", ip).allowed })
        }
        await expectError(.notFound) { _ = try await cluster.unban("198.51.100.200") }

        // The offence count was kept: the third ban is 160 s, capped at 100.
        for _ in 0..<3 { _ = try await cluster.reportFailure(ip) }
        let third = try await cluster.check("api", ip)
        #expect(third.banned)
        #expect(third.retryAfterMs == 100_000)

        // Each ban and the unban are audit events on the platform's subject, with who did it.
        let consumer = try await cluster.client.jetStream().durableConsumer(
            stream: Subjects.auditStream,
            .init(durableName: "test-audit", filterSubject: Subjects.audit(tenant: nil))
        )
        var events: [Rampart_V1_AuditEvent] = []
        while events.count < 4, let batch = try? await consumer.fetch(batch: 10, timeout: .seconds(2)), !batch.isEmpty {
            events += try batch.map { try Rampart_V1_AuditEvent(serializedBytes: $0.payload) }
        }
        #expect(events.map(\.action) == ["network.banned", "network.banned", "network.unbanned", "network.banned"])
        #expect(events.map { $0.details["offences"] } == ["1", "2", "2", "3"])
        #expect(events.allSatisfy { $0.target.type == "network" && $0.target.id == "203.0.113.50/32" && $0.tenantID.isEmpty })
        #expect(events[0].actor.kind == .system && events[0].actor.id == "rate-limit")
        #expect(events[2].actor.kind == .user && events[2].actor.id == "admin")
        #expect(Set(events.map(\.id)).count == 4)
        consumer.unsubscribe()

        watching.cancel()
        await watcherConnection.drain()
        await cluster.stop()
    }

    @Test("an IPv6 ban covers the whole /64; allowlisted networks are never banned")
    func networksAndAllowlist() async throws {
        let cluster = try await RateLimitCluster.start(settings: Self.settings)
        for index in 1...3 { _ = try await cluster.reportFailure("2001:db8:9:9::\(index)") }
        #expect(try await cluster.check("api", "2001:db8:9:9:abcd::1").banned)
        #expect(try await cluster.check("api", "2001:db8:9:a::1").allowed)

        for _ in 0..<20 {
            let reply = try await cluster.reportFailure("10.20.30.40")
            #expect(!reply.banned)
        }
        #expect(try await cluster.check("api", "10.20.30.40").allowed)
        await cluster.stop()
    }

    @Test("concurrent failures from many clients across two replicas ban exactly once")
    func concurrentBan() async throws {
        let cluster = try await RateLimitCluster.start(replicas: 2, settings: Self.settings)
        let replies = try await withThrowingTaskGroup(of: Rampart_V1_ReportFailureReply.self) { group in
            for _ in 0..<30 { group.addTask { try await cluster.reportFailure("198.51.100.77") } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let bans = Set(replies.filter(\.banned).map { "\($0.ban.bannedAtMs)-\($0.ban.offences)" })
        #expect(bans.count == 1)
        #expect(replies.filter(\.banned).allSatisfy { $0.ban.offences == 1 })
        await cluster.stop()
    }

    @Test(
        "issue 26, finding 8, concurrently across two replicas: eight /64s of a /56 failing and hammering at once ban the /56 once and limit it as one network"
    )
    func concurrentEscalation() async throws {
        let cluster = try await RateLimitCluster.start(replicas: 2, settings: Self.settings)
        let subnets = (0..<8).map { "2001:db8:7:70\($0)::1" }
        let replies = try await withThrowingTaskGroup(of: Rampart_V1_ReportFailureReply.self) { group in
            for subnet in subnets { for _ in 0..<3 { group.addTask { try await cluster.reportFailure(subnet) } } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(replies.filter(\.banned).count >= 8)
        let bucket = try await cluster.client.jetStream().keyValue(Subjects.RateLimit.bansBucket)
        let wide = try #require(try await bucket.latest(IPNetwork(cidr: "2001:db8:7:700::/56")!.storageKey))
        // Written once (revision of its first write; two replicas escalating at once ban it once).
        #expect(try Rampart_V1_Ban(serializedBytes: wide.value).offences == 1)
        #expect(try await eventually { try await cluster.check("api", "2001:db8:7:7ff::1").banned })

        // Limits: eight /64s of another /56 over their login limit at once, on both replicas.
        let decisions = try await withThrowingTaskGroup(of: Bool.self) { group in
            for index in 0..<8 { for _ in 0..<6 { group.addTask { try await cluster.check("login", "2001:db8:8:80\(index)::1").allowed } } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        // Each /64 had its 5, minus what the /56 took once it was limited as one network.
        #expect(decisions.filter { $0 }.count <= 40)
        // Then every /64 of the /56, on whichever replica answers, shares one count of 5: at
        // most what is left of it goes to fresh /64s, then none. (The replicas learn the /56's
        // escalation from each other's writes within milliseconds; a moment's wait covers it.)
        try await Task.sleep(for: .milliseconds(500))
        var admitted: [Bool] = []
        for index in 0..<12 { admitted.append(try await cluster.check("login", "2001:db8:8:8\(String(0xf0 + index, radix: 16))::1").allowed) }
        #expect(admitted.filter { $0 }.count <= 5, "\(admitted)")
        #expect(admitted.suffix(7).allSatisfy { !$0 }, "\(admitted)")
        #expect(try await cluster.check("login", "2001:db8:8:900::1").allowed)
        await cluster.stop()
    }
}

@Suite("OPS-4 rate-limit and the gateway work as their own NATS users (deploy/nats/nats-server.conf)")
struct RateLimitPermissionsTests {
    @Test("rate-limit keeps its buckets and audits as user rate-limit; the gateway user watches bans")
    func shippedPermissions() async throws {
        let nats = try await NATSServer.startShipped()
        let passwords = nats.passwords
        var settings = RateLimitSettings()
        settings.fail2ban.threshold = 2
        let rateLimit = try await RunningService.start(
            RateLimitService.descriptor(settings: settings),
            nats: nats,
            instance: "rate-limit-0",
            user: "rate-limit",
            password: passwords["rate-limit"]
        )
        let gateway = try await NATSConnection.connect(
            NATSConfiguration(servers: [nats.url], name: "gateway", user: "gateway", password: passwords["gateway"]),
            logger: quietLogger()
        )
        let auth = try await NATSConnection.connect(
            NATSConfiguration(servers: [nats.url], name: "auth", user: "auth", password: passwords["auth"]),
            logger: quietLogger()
        )
        let bans = BanList(connection: gateway, logger: quietLogger())
        let watching = Task { try await bans.run() }
        await bans.waitUntilCaughtUp()

        // auth reports failed logins; the gateway asks for decisions and sees the ban.
        var failure = Rampart_V1_ReportFailureRequest()
        failure.ip = "198.51.100.66"
        failure.kind = .login
        for _ in 0..<2 {
            _ = try await RPCClient(connection: auth).call(
                Subjects.RateLimit.reportFailure,
                failure,
                context: CallContext()
            )
        }
        #expect(await eventually { bans.ban(covering: "198.51.100.66") != nil })
        let outcome = await RateLimitClient(connection: gateway).check(policy: "api", key: "198.51.100.67", context: CallContext())
        #expect(outcome.isAllowed)
        // The ban's audit event was stored (rate-limit may publish its own audit events).
        let setup = try await NATSConnection.connect(
            NATSConfiguration(servers: [nats.url], name: "test", user: NATSServer.testUser, password: passwords[NATSServer.testUser]),
            logger: quietLogger()
        )
        let consumer = try await setup.jetStream().durableConsumer(
            stream: Subjects.auditStream,
            .init(durableName: "witness", filterSubject: Subjects.audit(tenant: nil))
        )
        let events = try await consumer.fetch(batch: 5, timeout: .seconds(2)).map { try Rampart_V1_AuditEvent(serializedBytes: $0.payload) }
        #expect(events.map(\.action) == [AuditAction.networkBanned.rawValue])
        consumer.unsubscribe()

        watching.cancel()
        await setup.drain()
        await gateway.drain()
        await auth.drain()
        await rateLimit.stop()
    }
}

/// `callers` concurrent callers, each checking `rounds` times, cycling through `keys` from its
/// own offset: how many checks each key admitted.
func admittedPerKey(
    callers: Int,
    rounds: Int,
    keys: [String],
    check: @escaping @Sendable (String) async throws -> Bool
) async throws -> [String: Int] {
    try await withThrowingTaskGroup(of: [String: Int].self) { group in
        for caller in 0..<callers {
            group.addTask {
                var counts: [String: Int] = [:]
                for round in 0..<rounds {
                    let key = keys[(caller + round) % keys.count]
                    if try await check(key) { counts[key, default: 0] += 1 }
                }
                return counts
            }
        }
        var total: [String: Int] = [:]
        for try await counts in group { total.merge(counts, uniquingKeysWith: +) }
        return total
    }
}
