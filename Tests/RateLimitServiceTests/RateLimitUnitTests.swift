import Foundation
import NATSKit
import RampartModels
import RateLimitKit
import ServiceKit
import ServicesTestSupport
import TestSupport
import Testing

@testable import RateLimitService

@Suite("RL-1 counting: the sliding window and GCRA, exactly")
struct CounterTests {
    let minute = Quota(limit: 5, windowMilliseconds: 60_000)

    @Test("the sliding window admits 5 in a minute, refuses the 6th until the 1st leaves the window")
    func slidingWindow() {
        var state = CounterState.slidingWindow([])
        for index in 0..<5 {
            let verdict = state.admit(cost: 1, quota: minute, now: 1_000_000 + Int64(index) * 1000)
            #expect(verdict.allowed)
            #expect(verdict.remaining == UInt32(4 - index))
            #expect(verdict.resetMilliseconds == 60_000 - Int64(index) * 1000)
        }
        let refused = state.admit(cost: 1, quota: minute, now: 1_010_000)
        #expect(!refused.allowed)
        #expect(refused.remaining == 0)
        #expect(refused.retryAfterMilliseconds == 50_000)
        // One millisecond early is still too early; at the edge the first call has left.
        #expect(!state.admit(cost: 1, quota: minute, now: 1_059_999).allowed)
        let again = state.admit(cost: 1, quota: minute, now: 1_060_000)
        #expect(again.allowed)
        #expect(again.remaining == 0)
        // A refusal consumes nothing: the window still holds exactly 5.
        guard case .slidingWindow(let admissions) = state else { return #expect(Bool(false)) }
        #expect(admissions.reduce(0) { $0 + $1.cost } == 5)
    }

    @Test("a refund gives back the newest units, never below nothing; a call refused for want of them is admitted after")
    func refund() {
        var window = CounterState.slidingWindow([])
        for index in 0..<5 { _ = window.admit(cost: 1, quota: minute, now: 1_000_000 + Int64(index) * 1000) }
        #expect(!window.admit(cost: 1, quota: minute, now: 1_010_000).allowed)
        let given = window.refund(cost: 1, quota: minute, now: 1_010_000)
        #expect(given.allowed && given.remaining == 1)
        // The unit that came back is the newest: the oldest still leaves the window first.
        guard case .slidingWindow(let admissions) = window else { return #expect(Bool(false)) }
        #expect(admissions.map(\.at) == [1_000_000, 1_001_000, 1_002_000, 1_003_000])
        #expect(window.admit(cost: 1, quota: minute, now: 1_010_000).allowed)
        for _ in 0..<10 { _ = window.refund(cost: 1, quota: minute, now: 1_010_000) }
        #expect(window.admit(cost: 1, quota: minute, now: 1_010_000).remaining == 4, "never below nothing")

        var gcra = CounterState.gcra(scaledArrival: 0, limit: 5)
        for _ in 0..<5 { _ = gcra.admit(cost: 1, quota: minute, now: 1_000_000) }
        #expect(!gcra.admit(cost: 1, quota: minute, now: 1_000_000).allowed)
        #expect(gcra.refund(cost: 1, quota: minute, now: 1_000_000).remaining == 1)
        #expect(gcra.admit(cost: 1, quota: minute, now: 1_000_000).allowed)
        for _ in 0..<10 { _ = gcra.refund(cost: 1, quota: minute, now: 1_000_000) }
        #expect(gcra.admit(cost: 1, quota: minute, now: 1_000_000).remaining == 4, "never below nothing")
    }

    @Test("a cost counts as that many calls; retry waits for enough of the oldest to leave")
    func cost() {
        var state = CounterState.slidingWindow([])
        #expect(state.admit(cost: 3, quota: minute, now: 0).allowed)
        #expect(state.admit(cost: 1, quota: minute, now: 10_000).remaining == 1)
        let refused = state.admit(cost: 2, quota: minute, now: 20_000)
        #expect(!refused.allowed)
        // The 3 units from t=0 must leave: at t=60 000.
        #expect(refused.retryAfterMilliseconds == 40_000)
    }

    @Test("GCRA admits the burst, then one call per window/limit, with exact retry times")
    func gcra() {
        var state = CounterState.gcra(scaledArrival: 0, limit: 1)
        for index in 0..<5 {
            let verdict = state.admit(cost: 1, quota: minute, now: 1_000_000)
            #expect(verdict.allowed)
            #expect(verdict.remaining == UInt32(4 - index))
        }
        let refused = state.admit(cost: 1, quota: minute, now: 1_000_000)
        #expect(!refused.allowed)
        #expect(refused.retryAfterMilliseconds == 12_000)
        #expect(!state.admit(cost: 1, quota: minute, now: 1_011_999).allowed)
        #expect(state.admit(cost: 1, quota: minute, now: 1_012_000).allowed)
        // A limit that does not divide the window stays exact: 7 per 1000 ms.
        var odd = CounterState.gcra(scaledArrival: 0, limit: 1)
        let sevenPerSecond = Quota(limit: 7, windowMilliseconds: 1000)
        for _ in 0..<7 { #expect(odd.admit(cost: 1, quota: sevenPerSecond, now: 0).allowed) }
        #expect(odd.admit(cost: 1, quota: sevenPerSecond, now: 0).retryAfterMilliseconds == 143)
    }

    @Test("state survives storage byte for byte; foreign bytes start a fresh counter")
    func encoding() {
        var window = CounterState.slidingWindow([])
        _ = window.admit(cost: 2, quota: minute, now: 42)
        _ = window.admit(cost: 1, quota: minute, now: 43)
        #expect(CounterState(decoding: window.encoded) == window)
        let gcra = CounterState.gcra(scaledArrival: 123_456_789, limit: 60)
        #expect(CounterState(decoding: gcra.encoded) == gcra)
        #expect(CounterState(decoding: []) == nil)
        #expect(CounterState(decoding: [1, 9, 0, 0, 0, 1]) == nil)
        #expect(CounterState(decoding: [7]) == nil)
    }

    @Test("ban time grows ×4 per repeat offence, capped")
    func banGrowth() {
        var fail2ban = RateLimitSettings.Fail2Ban()
        fail2ban.banSeconds = 900
        fail2ban.growth = 4
        fail2ban.maximumSeconds = 86_400
        #expect(fail2ban.banMilliseconds(offence: 1) == 900_000)
        #expect(fail2ban.banMilliseconds(offence: 2) == 3_600_000)
        #expect(fail2ban.banMilliseconds(offence: 3) == 14_400_000)
        #expect(fail2ban.banMilliseconds(offence: 4) == 57_600_000)
        #expect(fail2ban.banMilliseconds(offence: 5) == 86_400_000)
        #expect(fail2ban.banMilliseconds(offence: 40) == 86_400_000)
    }
}

@Suite("RL-3 networks: IPv4 alone, IPv6 by /64, CIDR allowlists")
struct IPNetworkTests {
    @Test("addresses in one /64 share a network; the next /64 does not")
    func ipv6Grouping() throws {
        let grouping = IPGrouping()
        let a = try #require(grouping.network(of: "2001:db8:1:2::1"))
        let b = try #require(grouping.network(of: "2001:db8:1:2:ffff:ffff:ffff:fffe"))
        let c = try #require(grouping.network(of: "2001:db8:1:3::1"))
        #expect(a == b)
        #expect(a != c)
        #expect(a.description == "2001:db8:1:2::/64")
        #expect(IPGrouping(ipv6PrefixLength: 56).network(of: "2001:db8:1:3::1") == IPGrouping(ipv6PrefixLength: 56).network(of: "2001:db8:1:2::1"))
    }

    @Test("IPv4 counts alone, and an IPv4-mapped IPv6 address is the same IPv4 address")
    func ipv4() throws {
        let grouping = IPGrouping()
        #expect(grouping.network(of: "203.0.113.7")?.description == "203.0.113.7/32")
        #expect(grouping.network(of: "::ffff:203.0.113.7") == grouping.network(of: "203.0.113.7"))
        #expect(grouping.network(of: "203.0.113.8") != grouping.network(of: "203.0.113.7"))
    }

    @Test("CIDR networks contain their addresses only")
    func cidr() throws {
        let office = try #require(IPNetwork(cidr: "10.1.2.3/8"))
        #expect(office.description == "10.0.0.0/8")
        #expect(office.contains(try #require(IPNetwork(address: "10.200.0.1"))))
        #expect(!office.contains(try #require(IPNetwork(address: "11.0.0.1"))))
        #expect(!office.contains(try #require(IPNetwork(address: "::1"))))
        let v6 = try #require(IPNetwork(cidr: "2001:db8::/32"))
        #expect(v6.contains(try #require(IPNetwork(address: "2001:db8:ffff::1"))))
    }

    @Test(
        "anything that is not an address is refused",
        arguments: [
            "", "1.2.3", "1.2.3.4.5", "256.1.1.1", "::g", "1.2.3.4/33", "::/129", "1.2.3.4/", "1.2.3.4/x", "a/8/9",
            String(repeating: "1", count: 100),
        ]
    )
    func invalid(_ text: String) {
        #expect(IPNetwork(cidr: text) == nil)
    }

    @Test("storage keys are key-value safe and distinct per network")
    func storageKeys() throws {
        let key = try #require(IPNetwork(cidr: "2001:db8::/64")).storageKey
        #expect(key == "v6_20010db8000000000000000000000000_64")
        #expect(try #require(IPNetwork(address: "203.0.113.7")).storageKey == "v4_cb007107_32")
    }
}

@Suite("RL-4 RateLimit response fields")
struct RateLimitFieldsTests {
    @Test("allowed: the structured fields and the older three, no Retry-After")
    func allowed() {
        var decision = Rampart_V1_RateLimitDecision()
        decision.allowed = true
        decision.policy = "api"
        decision.limit = 60
        decision.windowSeconds = 60
        decision.remaining = 12
        decision.resetMs = 40_001
        let fields = Dictionary(uniqueKeysWithValues: RateLimitFields.headers(for: decision).map { ($0.name, $0.value) })
        #expect(fields["RateLimit-Policy"] == "\"api\";q=60;w=60")
        #expect(fields["RateLimit"] == "\"api\";r=12;t=41")
        #expect(fields["RateLimit-Limit"] == "60")
        #expect(fields["RateLimit-Remaining"] == "12")
        #expect(fields["RateLimit-Reset"] == "41")
        #expect(fields["Retry-After"] == nil)
    }

    @Test("refused: Retry-After in whole seconds, rounded up, never 0")
    func refused() {
        var decision = Rampart_V1_RateLimitDecision()
        decision.policy = "login"
        decision.limit = 5
        decision.windowSeconds = 60
        decision.retryAfterMs = 12_000
        #expect(RateLimitFields.headers(for: decision).first { $0.name == "Retry-After" }?.value == "12")
        decision.retryAfterMs = 1
        #expect(RateLimitFields.headers(for: decision).first { $0.name == "Retry-After" }?.value == "1")
    }

    @Test("two policies on one request: both listed, the older fields from the one closer to refusing")
    func twoPolicies() {
        var address = Rampart_V1_RateLimitDecision()
        address.allowed = true
        address.policy = "api"
        address.limit = 60
        address.windowSeconds = 60
        address.remaining = 50
        address.resetMs = 2_000
        var key = address
        key.policy = "api_key"
        key.limit = 1000
        key.remaining = 3
        key.resetMs = 500
        var fields = Dictionary(uniqueKeysWithValues: RateLimitFields.headers(for: [address, key]).map { ($0.name, $0.value) })
        #expect(fields["RateLimit-Policy"] == "\"api\";q=60;w=60, \"api_key\";q=1000;w=60")
        #expect(fields["RateLimit"] == "\"api\";r=50;t=2, \"api_key\";r=3;t=1")
        #expect(fields["RateLimit-Limit"] == "1000")
        #expect(fields["RateLimit-Remaining"] == "3")
        #expect(fields["Retry-After"] == nil)
        // A refusal wins over any allowance, whatever is left.
        address.allowed = false
        address.remaining = 0
        address.retryAfterMs = 7_500
        fields = Dictionary(uniqueKeysWithValues: RateLimitFields.headers(for: [key, address]).map { ($0.name, $0.value) })
        #expect(fields["RateLimit-Limit"] == "60")
        #expect(fields["Retry-After"] == "8")
        #expect(RateLimitFields.headers(for: []).isEmpty)
    }
}

@Suite("RL-1 policies are configuration: a file, then environment overrides, every problem reported")
struct RateLimitSettingsTests {
    func settings(_ environment: [String: String]) -> (RateLimitSettings, [String]) {
        var reader = EnvironmentReader(environment: environment)
        let settings = RateLimitSettings(reader: &reader)
        return (settings, reader.problems)
    }

    @Test("the defaults are the SPEC's limits")
    func defaults() {
        let (settings, problems) = settings([:])
        #expect(problems.isEmpty)
        #expect(settings.policies["login"] == RateLimitPolicy(name: "login", key: .ip, limit: 5, windowSeconds: 60))
        #expect(settings.policies["login_account"]?.windowSeconds == 900)
        #expect(settings.policies["register"]?.limit == 3)
        #expect(settings.policies["register_daily"]?.windowSeconds == 86400)
        #expect(settings.policies["api"]?.limit == 60)
        #expect(settings.policies["upload"]?.limit == 10)
        #expect(settings.policies["api_key"]?.algorithm == .gcra)
        #expect(settings.grouping == IPGrouping(ipv4PrefixLength: 32, ipv6PrefixLength: 64))
    }

    @Test("a policies file changes and adds policies; the environment has the last word")
    func fileAndOverrides() throws {
        let path = "/tmp/rampart-policies-\(UInt32.random(in: 0...UInt32.max)).json"
        try
            #"{"policies": [{"name": "api", "limit": 100}, {"name": "search", "key": "tenant", "limit": 5000, "window_seconds": 60, "algorithm": "gcra"}]}"#
            .write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let (settings, problems) = settings([
            "RAMPART_RATELIMIT_POLICIES_FILE": path,
            "RAMPART_RATELIMIT_POLICY_LOGIN": "10/30",
            "RAMPART_RATELIMIT_IPV6_PREFIX": "56",
            "RAMPART_RATELIMIT_ALLOWLIST": "10.0.0.0/8, 2001:db8::/32",
        ])
        #expect(problems.isEmpty)
        #expect(settings.policies["api"]?.limit == 100)
        #expect(settings.policies["api"]?.windowSeconds == 60)
        #expect(settings.policies["search"] == RateLimitPolicy(name: "search", key: .tenant, limit: 5000, windowSeconds: 60, algorithm: .gcra))
        #expect(settings.policies["login"]?.limit == 10)
        #expect(settings.policies["login"]?.windowSeconds == 30)
        #expect(settings.grouping.ipv6PrefixLength == 56)
        #expect(settings.allowlist.map(\.description) == ["10.0.0.0/8", "2001:db8::/32"])
    }

    @Test("every problem is listed, none stops at the first")
    func problems() {
        let (_, problems) = settings([
            "RAMPART_RATELIMIT_POLICIES_FILE": "/nonexistent/policies.json",
            "RAMPART_RATELIMIT_POLICY_API": "lots",
            "RAMPART_RATELIMIT_POLICY_LOGIN": "5000/60",
            "RAMPART_RATELIMIT_ALLOWLIST": "not-a-network",
            "RAMPART_RATELIMIT_STORAGE": "floppy",
            // Not shorter than the one before.
            "RAMPART_RATELIMIT_ESCALATION_PREFIXES": "56,60",
        ])
        #expect(problems.count == 6, "\(problems)")
        #expect(problems.contains { $0.hasPrefix("RAMPART_RATELIMIT_ESCALATION_PREFIXES: \"60\"") })
        let (off, none) = settings(["RAMPART_RATELIMIT_ESCALATION_PREFIXES": "none", "RAMPART_RATELIMIT_ESCALATION_THRESHOLD": "8"])
        #expect(none.isEmpty && off.escalation.prefixLengths.isEmpty && off.escalation.threshold == 8)
        #expect(
            RateLimitSettings().escalation.ladder(of: IPNetwork(cidr: "2001:db8:1:2::/64")!).map(\.description) == [
                "2001:db8:1:2::/64", "2001:db8:1::/56", "2001:db8:1::/48",
            ]
        )
        #expect(RateLimitSettings().escalation.ladder(of: IPNetwork(cidr: "203.0.113.7/32")!).count == 1)
        #expect(problems.contains { $0.contains("RAMPART_RATELIMIT_POLICY_API") })
        #expect(problems.contains { $0.contains("policy login: limit must be 1 to 1000") })
    }
}

@Suite("RL-2 replicas take in each other's writes")
struct LimiterUpdatesTests {
    @Test("a replica learns the revision another replica wrote, so its next write goes against it")
    func followsOtherReplicas() async throws {
        let url = try await TestNATS.url()
        let first = try await NATSConnection.connect(NATSConfiguration(servers: [url], name: "replica-a"), logger: quietLogger())
        let second = try await NATSConnection.connect(NATSConfiguration(servers: [url], name: "replica-b"), logger: quietLogger())
        let bucketName = "limiter_\(UInt32.random(in: 0...UInt32.max))"
        let bucketA = try await first.jetStream().ensureKeyValue(.init(bucket: bucketName, storage: .memory))
        let bucketB = try await second.jetStream().keyValue(bucketName)
        let replicaA = Limiter(bucket: bucketA, logger: quietLogger(), clock: { WallClock.milliseconds() })
        let replicaB = Limiter(bucket: bucketB, logger: quietLogger(), clock: { WallClock.milliseconds() })
        let following = Task { try await replicaB.followUpdates() }
        let call = Limiter.Call(cost: 1, quota: Quota(limit: 10, windowMilliseconds: 60_000), algorithm: .slidingWindow)

        // Updates start from when the consumer exists: write until B has seen one.
        let started = await eventually(within: .seconds(10)) {
            _ = try? await replicaA.admit(call, key: "api.probe")
            return replicaB.rememberedRevision(of: "api.probe") != nil
        }
        #expect(started)

        _ = try await replicaA.admit(call, key: "api.shared")
        _ = try await replicaA.admit(call, key: "api.shared")
        let written = try #require(try await bucketA.latest("api.shared")).revision
        #expect(await eventually(within: .seconds(5)) { replicaB.rememberedRevision(of: "api.shared") == written })
        // B counts on from A's state: two admitted there, this is the third.
        #expect(try await replicaB.admit(call, key: "api.shared").remaining == 7)
        #expect(try await bucketB.latest("api.shared")?.revision == replicaB.rememberedRevision(of: "api.shared"))

        following.cancel()
        try? await first.jetStream().deleteKeyValue(bucketName)
        await first.drain()
        await second.drain()
    }
}
