import AuthService
import Foundation
import Logging
import NATSKit
import RampartModels
import ServiceKit
import Synchronization
import TestSupport
import TokenKit

/// auth against its release executable with the shipped bcrypt cost (12): sign-ins per second
/// next to the floor the hardware sets (cores ÷ one hash's time, measured in this run), auth's
/// `/healthz` latency while sign-ins keep every core hashing, access token verifications on one
/// core, and calls through the release gateway that present an API key (verified once by auth,
/// then from the gateway's cache, each within the key's rate limit) or an access token.
@concurrent
func authBenchmarks(bin: String, logins: Int, gatewayCalls: Int, logger: Logger) async throws -> (rows: [Row], notes: [String]) {
    let cores = ProcessInfo.processInfo.activeProcessorCount
    let clock = ContinuousClock()

    // The floor: one hash at a time on an idle machine, as auth will run it.
    progress("auth: timing bcrypt at cost \(PasswordAlgorithm.defaultBcryptCost)")
    let hasher = try PasswordHasher(algorithm: .bcrypt(cost: PasswordAlgorithm.defaultBcryptCost), threads: 1)
    var hashTimes: [Double] = []
    for _ in 0..<5 {
        let t0 = clock.now
        _ = try await hasher.hash("Tr0ub4dor&3xkcd!")
        hashTimes.append(seconds(clock.now - t0))
    }
    let hashTime = hashTimes.sorted()[2]
    let floor = Double(cores) / hashTime

    let authOpsPort = Ports.free()
    let gatewayPort = Ports.free()
    // The bench signs one account in from one address, far past the sign-in limits, and calls
    // the gateway far past the general one: lifted.
    let policies = try liftedAPIPolicyFile()
    defer { try? FileManager.default.removeItem(at: policies) }
    let cluster = try await BenchCluster.start(
        ["rate-limit", "auth", "tenants", "gateway"],
        bin: bin,
        environment: [
            "rate-limit": [
                "RAMPART_RATELIMIT_POLICIES_FILE": policies.path,
                "RAMPART_RATELIMIT_POLICY_LOGIN": "1000/60", "RAMPART_RATELIMIT_POLICY_LOGIN_ACCOUNT": "1000/900",
                "RAMPART_RATELIMIT_POLICY_REGISTER": "1000/3600", "RAMPART_RATELIMIT_POLICY_REGISTER_DAILY": "1000/86400",
            ],
            "auth": ["RAMPART_OPS_PORT": String(authOpsPort)],
            "tenants": ["RAMPART_TENANTS_SAGA_SERVICES": "auth,tenants"],
            "gateway": ["RAMPART_GATEWAY_HOST": "127.0.0.1", "RAMPART_GATEWAY_PORT": String(gatewayPort)],
        ],
        logger: logger
    )
    let rpc = cluster.rpc

    let (registered, login, tokens) = try await cluster.signUp(email: "bench@bench-auth.example", organization: "Bench")
    @Sendable func signIn() async throws -> Rampart_V1_TokenReply {
        try await rpc.call(Subjects.Auth.login, login, context: CallContext(clientIP: "198.51.100.7", timeout: .seconds(60)))
    }

    // Sign-ins, twice as many in flight as cores, while a client asks auth's /healthz every 5 ms.
    progress("auth: \(logins) sign-ins at bcrypt cost \(PasswordAlgorithm.defaultBcryptCost), \(cores * 2) in flight")
    let done = Mutex(false)
    let sampler = Task {
        try await offloaded { () throws -> [Double] in
            let health = try KeepAliveHTTPConnection(port: authOpsPort)
            var latencies: [Double] = []
            let clock = ContinuousClock()
            while !done.withLock({ $0 }) {
                let t0 = clock.now
                guard try health.get("/healthz") == 200 else { throw TestInfrastructureError("auth unhealthy under load") }
                latencies.append(seconds(clock.now - t0) * 1e6)
                usleep(5_000)
            }
            return latencies.sorted()
        }
    }
    let loginStart = clock.now
    let loginLatencies = try await withThrowingTaskGroup(of: [Double].self) { group in
        let perWorker = logins / (cores * 2)
        for _ in 0..<(cores * 2) {
            group.addTask {
                var latencies: [Double] = []
                for _ in 0..<perWorker {
                    let t0 = ContinuousClock.now
                    _ = try await signIn()
                    latencies.append(seconds(ContinuousClock.now - t0) * 1e6)
                }
                return latencies
            }
        }
        return try await group.reduce(into: []) { $0 += $1 }.sorted()
    }
    let loginRate = Double(loginLatencies.count) / seconds(clock.now - loginStart)
    done.withLock { $0 = true }
    let healthLatencies = try await sampler.value
    var rows = [
        Row(
            name: "sign-in, bcrypt 12 (\(cores * 2) in flight)",
            rate: loginRate,
            unit: "login/s",
            p50: percentile(loginLatencies, 0.5),
            p99: percentile(loginLatencies, 0.99)
        ),
        Row(
            name: "auth /healthz during sign-ins",
            rate: Double(healthLatencies.count) / seconds(clock.now - loginStart),
            unit: "req/s",
            p50: percentile(healthLatencies, 0.5),
            p99: percentile(healthLatencies, 0.99)
        ),
    ]

    // What one sign-in asks of other services (issue 27: at most 4 one after another).
    let signInTrips = try await RoundTrips.count(server: cluster.nats.url, excluding: [Subjects.Auth.login.subject], logger: logger) {
        _ = try await signIn()
    }

    // Access token verification in this process, one core: what the gateway does per request.
    let jwks = try await rpc.call(Subjects.Auth.jwks, Rampart_V1_JwksRequest(), context: CallContext())
    let verifier = AccessTokenVerifier(issuer: "rampart", publicKeys: try JWKS.parse(jwks.json))
    let now = WallClock.milliseconds() / 1000
    for _ in 0..<1_000 { _ = try verifier.verify(tokens.accessToken, now: now) }
    let verifications = 20_000
    let verifyStart = clock.now
    for _ in 0..<verifications { _ = try verifier.verify(tokens.accessToken, now: now) }
    rows.append(Row(name: "access token verification (1 core)", rate: Double(verifications) / seconds(clock.now - verifyStart), unit: "verify/s"))

    // Through the gateway: GET /v1/auth/whoami does nothing but authenticate.
    var keyRequest = Rampart_V1_CreateApiKeyRequest()
    keyRequest.name = "bench"
    keyRequest.scopes = ["boards:read"]
    keyRequest.rateLimitPerMinute = 10_000
    let key = try await rpc.call(
        Subjects.Auth.createAPIKey,
        keyRequest,
        context: CallContext(tenantID: TenantID(registered.tenantID), principal: .user(registered.userID))
    )
    let connections = 16
    for (label, credential) in [("API key", key.key), ("access token", tokens.accessToken)] {
        progress("auth: \(gatewayCalls) gateway calls with an \(label), \(connections) connections")
        let start = clock.now
        let latencies = try await withThrowingTaskGroup(of: [Double].self) { group in
            for _ in 0..<connections {
                group.addTask {
                    try await offloaded {
                        let http = try KeepAliveHTTPConnection(port: gatewayPort)
                        var latencies: [Double] = []
                        let clock = ContinuousClock()
                        for _ in 0..<(gatewayCalls / connections) {
                            let t0 = clock.now
                            let status = try http.get("/v1/auth/whoami", headers: ["Authorization": "Bearer \(credential)"])
                            guard status == 200 else { throw TestInfrastructureError("whoami answered \(status)") }
                            latencies.append(seconds(clock.now - t0) * 1e6)
                        }
                        return latencies
                    }
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }.sorted()
        }
        rows.append(
            Row(
                name: "gateway call with \(label) (\(connections) conns)",
                rate: Double(latencies.count) / seconds(clock.now - start),
                unit: "req/s",
                p50: percentile(latencies, 0.5),
                p99: percentile(latencies, 0.99)
            )
        )
    }
    try await cluster.stop()
    let notes = [
        String(
            format: "bcrypt cost 12: %.0f ms a hash, floor %d cores ÷ that = %.2f login/s; sign-ins reached %.0f%% of it (target ≥ 85%%)",
            hashTime * 1000,
            cores,
            floor,
            loginRate / floor * 100
        ),
        String(format: "auth /healthz p99 while sign-ins saturate the cores: %.1f ms (target < 20 ms)", percentile(healthLatencies, 0.99) / 1000),
        "one sign-in: \(signInTrips)",
    ]
    return (rows, notes)
}
