import Foundation
import RampartModels
import RateLimitKit
import RateLimitService
import ServiceKit
import ServicesTestSupport
import TenantsService
import TestSupport
import Testing

@testable import GatewayService

/// RL-1's `api` policy and RL-3's bans at the gateway, with RL-4's response fields, against the
/// real rate-limit service.
@Suite("RL-1, RL-3, RL-4 the gateway's general limit: RateLimit fields, 429, bans, failure mode", .serialized)
struct GatewayRateLimitTests {
    static func cluster(
        apiLimit: UInt32 = 5,
        fail2ban: RateLimitSettings.Fail2Ban = RateLimitSettings.Fail2Ban(),
        gateway: GatewaySettings = GatewaySettings()
    ) async throws -> (TenantsCluster, Int) {
        var settings = RateLimitSettings(fail2ban: fail2ban)
        settings.policies["api"] = RateLimitPolicy(name: "api", key: .ip, limit: apiLimit, windowSeconds: 60)
        let cluster = try await TenantsCluster.start(
            settings: TenantsSettings(sagaServices: [.tenants, .auth]),
            rateLimitSettings: settings,
            without: [.permissions, .audit, .webhooks]
        )
        cluster.gatewaySettings = gateway
        try await cluster.start(.gateway)
        return (cluster, await cluster.gatewayPort.wait())
    }

    @Test("every limited response carries the fields; past the limit 429 problem+json with Retry-After; probes are not limited")
    func limit() async throws {
        let (cluster, port) = try await Self.cluster()
        try await stopping(cluster) {
            for expected in (0..<5).reversed() {
                // Unauthenticated requests count too: a flood of bad tokens is limited before any is verified.
                let response = try await httpRequest(port: port, "GET", "/v1/auth/whoami")
                #expect(response.status == 401)
                #expect(response.headers["ratelimit-policy"] == "\"api\";q=5;w=60")
                #expect(response.headers["ratelimit-remaining"] == String(expected))
                #expect(response.headers["ratelimit"]?.hasPrefix("\"api\";r=\(expected);t=") == true)
                #expect(response.headers["ratelimit-limit"] == "5")
                #expect(response.headers["retry-after"] == nil)
            }
            let refused = try await httpRequest(port: port, "GET", "/.well-known/jwks.json")
            #expect(refused.status == 429)
            #expect(refused.headers["content-type"] == "application/problem+json")
            let wait = try #require(Int(refused.headers["retry-after"] ?? ""))
            #expect((1...60).contains(wait))
            #expect(refused.headers["ratelimit-remaining"] == "0")
            #expect(refused.headers["x-request-id"] != nil && refused.headers["strict-transport-security"] != nil)
            // The limit is per client address: another client behind no proxy is 127.0.0.1 too, so
            // health probes are the only way through, and they are.
            #expect(try await httpRequest(port: port, "GET", "/healthz").status == 200)
            #expect(try await httpRequest(port: port, "GET", "/readyz").status == 200)
        }
    }

    @Test("the console's pages count against the same limit as the API: past it, 429")
    func console() async throws {
        let (cluster, port) = try await Self.cluster()
        try await stopping(cluster) {
            for _ in 0..<5 { #expect(try await httpRequest(port: port, "GET", "/console/sign-in").status == 200) }
            let refused = try await httpRequest(port: port, "GET", "/console/sign-in")
            #expect(refused.status == 429 && refused.headers["retry-after"] != nil, "\(refused.body)")
        }
    }

    @Test("behind a trusted proxy each forwarded client has its own count")
    func perClient() async throws {
        let (cluster, port) = try await Self.cluster(apiLimit: 2, gateway: GatewaySettings(trustedProxies: [IPNetwork(cidr: "127.0.0.1/32")!]))
        func whoami(_ client: String) async throws -> Int {
            try await httpRequest(port: port, "GET", "/v1/auth/whoami", headers: ["X-Forwarded-For": client]).status
        }
        try await stopping(cluster) { () async throws in
            #expect(try await whoami("203.0.113.5") == 401)
            #expect(try await whoami("203.0.113.5") == 401)
            #expect(try await whoami("203.0.113.5") == 429)
            #expect(try await whoami("203.0.113.6") == 401)
            // IPv6 clients are counted per /64: another address in the same /64 shares the count.
            #expect(try await whoami("2001:db8:1:2::1") == 401)
            #expect(try await whoami("2001:db8:1:2::ffff") == 401)
            #expect(try await whoami("2001:db8:1:2:abcd::9") == 429)
            #expect(try await whoami("2001:db8:1:3::1") == 401)
        }
    }

    @Test("issue 26, finding 8: four limited /64s of a /56 limit the /56 as one network, four such /56s their /48; forged through a trusted proxy")
    func escalatedLimits() async throws {
        let (cluster, port) = try await Self.cluster(apiLimit: 2, gateway: GatewaySettings(trustedProxies: [IPNetwork(cidr: "127.0.0.1/32")!]))
        func whoami(_ client: String) async throws -> Int {
            try await httpRequest(port: port, "GET", "/v1/auth/whoami", headers: ["X-Forwarded-For": client]).status
        }
        try await stopping(cluster) {
            /// Uses up the limit of one /64 and is refused once.
            func exhaust(_ client: String) async throws {
                #expect(try await whoami(client) == 401)
                #expect(try await whoami(client) == 401)
                #expect(try await whoami(client) == 429, "\(client)")
            }
            // Three /64s of 2001:db8:1:100::/56 refused: the fourth /64 and the rest still count alone.
            for subnet in 0x100..<0x103 { try await exhaust("2001:db8:1:\(String(subnet, radix: 16))::1") }
            try await exhaust("2001:db8:1:103::1")
            // That was the fourth: from now on the /56 shares one count, fresh, of 2.
            #expect(try await whoami("2001:db8:1:1aa::1") == 401)
            #expect(try await whoami("2001:db8:1:1bb::1") == 401)
            #expect(try await whoami("2001:db8:1:1cc::1") == 429)
            #expect(try await whoami("2001:db8:1:1ff:ffff::9") == 429)
            // The next /56 of the same /48 still counts per /64.
            #expect(try await whoami("2001:db8:1:200::1") == 401)

            // Three more /56s of 2001:db8:1::/48 escalated the same way: the /48 shares one count.
            for block in [0x200, 0x300, 0x400] {
                for subnet in 0..<4 { try await exhaust("2001:db8:1:\(String(block + subnet * 0x10 + (block == 0x200 ? 1 : 0), radix: 16))::1") }
            }
            #expect(try await whoami("2001:db8:1:ee00::1") == 401)
            #expect(try await whoami("2001:db8:1:ef00::1") == 401)
            #expect(try await whoami("2001:db8:1:f000::1") == 429)
            // Another /48 and IPv4 clients are untouched.
            #expect(try await whoami("2001:db8:2::1") == 401)
            #expect(try await whoami("203.0.113.9") == 401)
        }
    }

    @Test("issue 26, finding 8: four banned /64s of a /56 ban the /56, four banned /56s their /48; audited; forged through a trusted proxy")
    func escalatedBans() async throws {
        var fail2ban = RateLimitSettings.Fail2Ban()
        fail2ban.threshold = 2
        let (cluster, port) = try await Self.cluster(
            apiLimit: 1000,
            fail2ban: fail2ban,
            gateway: GatewaySettings(trustedProxies: [IPNetwork(cidr: "127.0.0.1/32")!])
        )
        try await stopping(cluster) {
            func jwks(_ client: String) async throws -> Int {
                try await httpRequest(port: port, "GET", "/.well-known/jwks.json", headers: ["X-Forwarded-For": client]).status
            }
            /// Two wrong sign-ins (each for an address of its own, so no account limit counts): banned.
            func offend(_ client: String) async throws {
                for _ in 0..<2 {
                    let body = #"{"email":"nobody-\#(UUID().uuidString.prefix(8))@unknown.example","password":"Wr0ng-passw0rd-123"}"#
                    let answer = try await httpRequest(
                        port: port,
                        "POST",
                        "/v1/auth/login",
                        headers: ["Content-Type": "application/json", "X-Forwarded-For": client],
                        body: Array(body.utf8)
                    )
                    #expect(answer.status == 401, "\(client): \(answer.body)")
                }
                #expect(try await eventually { try await jwks(client) == 429 }, "\(client) not banned")
            }
            for subnet in 0x100..<0x104 { try await offend("2001:db8:1:\(String(subnet, radix: 16))::1") }
            #expect(try await eventually { try await jwks("2001:db8:1:1ff::1") == 429 }, "the /56 not banned")
            #expect(try await jwks("2001:db8:1:200::1") == 200)
            for block in [0x200, 0x300, 0x400] {
                for subnet in 0..<4 { try await offend("2001:db8:1:\(String(block + subnet * 0x10, radix: 16))::1") }
            }
            #expect(try await eventually { try await jwks("2001:db8:1:f000::1") == 429 }, "the /48 not banned")
            #expect(try await jwks("2001:db8:2::1") == 200)
            // Each wider ban says why, and is audited like any.
            let bans = try await cluster.bans().map(\.network)
            #expect(bans.contains("2001:db8:1:100::/56") && bans.contains("2001:db8:1::/48"), "\(bans)")
            let audited = try await cluster.events(Subjects.audit(tenant: nil), as: Rampart_V1_AuditEvent.self, stream: Subjects.auditStream)
            #expect(audited.contains { $0.action == "network.banned" && $0.target.id == "2001:db8:1::/48" && $0.reason.contains("/56 networks") })
        }
    }

    @Test("a banned address is refused on every route, with the ban's Retry-After")
    func bans() async throws {
        var fail2ban = RateLimitSettings.Fail2Ban()
        fail2ban.threshold = 3
        let (cluster, port) = try await Self.cluster(apiLimit: 100, fail2ban: fail2ban)
        try await stopping(cluster) {
            #expect(try await httpRequest(port: port, "GET", "/.well-known/jwks.json").status == 200)
            let limiter = RateLimitClient(connection: cluster.client)
            for _ in 0..<3 { await limiter.reportFailure(.login, context: CallContext(clientIP: "127.0.0.1")) }
            let refused = try await httpRequest(port: port, "GET", "/.well-known/jwks.json")
            #expect(refused.status == 429)
            #expect(refused.body.contains("blocked"))
            #expect(Int(refused.headers["retry-after"] ?? "") ?? 0 > 800)
        }
    }

    @Test("limiter unreachable: 503 by default; `open` lets general traffic through, never sign-in")
    func failureMode() async throws {
        let (closed, closedPort) = try await Self.cluster()
        try await stopping(closed) {
            await closed.stop(.rateLimit)
            let refused = try await httpRequest(port: closedPort, "GET", "/v1/auth/whoami")
            #expect(refused.status == 503)
            #expect(refused.headers["content-type"] == "application/problem+json")

            let (open, openPort) = try await Self.cluster(gateway: GatewaySettings(apiLimitFailsOpen: true))
            try await stopping(open) {
                await open.stop(.rateLimit)
                let through = try await httpRequest(port: openPort, "GET", "/v1/auth/whoami")
                #expect(through.status == 401)
                #expect(through.headers["ratelimit-policy"] == nil)
                let login = try await httpRequest(
                    port: openPort,
                    "POST",
                    "/v1/auth/login",
                    headers: ["Content-Type": "application/json"],
                    body: Array(#"{"email":"ada@lovelace.example","password":"Tr0ub4dor&3xkcd!"}"#.utf8)
                )
                #expect(login.status == 503)
            }
        }
    }
}
