import Foundation
import Hummingbird
import Logging
import RampartModels
import ServiceKit
import Synchronization
import TestSupport

/// The gateway's whole pipeline against a bare Hummingbird route, both loaded by wrk on loopback
/// in this run: an authenticated `GET /v1/tenants/{id}/audit-events?page_size=1` goes through
/// the edge, the access token's verification, the tenant's IP allowlist, the `api` rate limit
/// (a NATS round trip to rate-limit), the `audit.read` permission check and a NATS round trip
/// to audit, which reads PostgreSQL. Then the pipeline at half its measured maximum, paced,
/// for the latency a client sees below saturation.
@concurrent
func gatewayBenchmarks(bin: String, seconds duration: Int, logger: Logger) async throws -> (rows: [Row], notes: [String]) {
    let connections = 32

    // The bare route: Hummingbird alone, in this process, on the same loopback.
    let barePort = Ports.free()
    let router = Router()
    router.get("/hello") { _, _ in "hello" }
    let bareApp = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: barePort)), logger: logger)
    let bareTask = Task { try await bareApp.runService() }
    for _ in 0..<200 where !Ports.isListening(barePort) { try await Task.sleep(for: .milliseconds(10)) }
    progress("gateway: bare Hummingbird route, wrk \(connections) connections, \(duration) s")
    let bare = try await wrk("http://127.0.0.1:\(barePort)/hello", connections: connections, seconds: duration)
    bareTask.cancel()
    _ = await bareTask.result

    // The pipeline, every service it reaches in release.
    let policies = try liftedAPIPolicyFile()
    defer { try? FileManager.default.removeItem(at: policies) }
    let gatewayPort = Ports.free()
    let cluster = try await BenchCluster.start(
        ["rate-limit", "auth", "tenants", "permissions", "audit", "gateway"],
        bin: bin,
        environment: [
            "rate-limit": ["RAMPART_RATELIMIT_POLICIES_FILE": policies.path],
            "tenants": ["RAMPART_TENANTS_SAGA_SERVICES": "auth,tenants,permissions,audit"],
            "gateway": ["RAMPART_GATEWAY_HOST": "127.0.0.1", "RAMPART_GATEWAY_PORT": String(gatewayPort)],
        ],
        logger: logger
    )
    let (registered, _, tokens) = try await cluster.signUp(email: "bench@bench-gateway.example", organization: "Bench Gateway")
    let token = tokens.accessToken
    let path = "/v1/tenants/\(registered.tenantID)/audit-events?page_size=1"
    let headers = ["Authorization": "Bearer \(token)"]
    let probe = try KeepAliveHTTPConnection(port: gatewayPort)
    var status = 0
    for _ in 0..<500 where status != 200 {
        status = try probe.get(path, headers: headers)  // until permissions knows the owner
        if status != 200 { try await Task.sleep(for: .milliseconds(20)) }
    }
    guard status == 200 else { throw TestInfrastructureError("the pipeline answered \(status)") }

    // What one GET tenant asks of other services, once the tenant's allowlist is no longer
    // cached (5 s): the allowlist and the tenant, once each.
    try await Task.sleep(for: .seconds(6))
    let tenantTrips = try await RoundTrips.count(server: cluster.nats.url, logger: logger) {
        let status = try probe.get("/v1/tenants/\(registered.tenantID)", headers: headers)
        guard status == 200 else { throw TestInfrastructureError("GET tenant answered \(status)") }
    }

    // Where the time goes: the edge alone (/healthz takes no limit), then with the rate limit
    // and the token (whoami calls no service), then the allowlist and a call to tenants (no
    // permission needed to read one's tenant).
    progress("gateway: /healthz and whoami, wrk \(connections) connections, \(duration) s each")
    let edge = try await wrk("http://127.0.0.1:\(gatewayPort)/healthz", connections: connections, seconds: duration)
    let whoami = try await wrk("http://127.0.0.1:\(gatewayPort)/v1/auth/whoami", headers: headers, connections: connections, seconds: duration)
    let tenant = try await wrk(
        "http://127.0.0.1:\(gatewayPort)/v1/tenants/\(registered.tenantID)",
        headers: headers,
        connections: connections,
        seconds: duration
    )
    progress("gateway: full pipeline, wrk \(connections) connections, \(duration) s")
    let pipeline = try await wrk("http://127.0.0.1:\(gatewayPort)\(path)", headers: headers, connections: connections, seconds: duration)
    let half = pipeline.rate / 2
    progress(String(format: "gateway: full pipeline paced at %.0f req/s (half of the maximum), %d s", half, duration))
    let paced = try await pacedLoad(port: gatewayPort, path: path, headers: headers, rate: half, seconds: duration)
    try await cluster.stop()

    let rows = [
        Row(name: "bare Hummingbird route (wrk, \(connections) conns)", rate: bare.rate, unit: "req/s", p50: bare.p50, p99: bare.p99),
        Row(name: "gateway /healthz: edge only", rate: edge.rate, unit: "req/s", p50: edge.p50, p99: edge.p99),
        Row(name: "gateway whoami: + rate limit, token", rate: whoami.rate, unit: "req/s", p50: whoami.p50, p99: whoami.p99),
        Row(name: "gateway GET tenant: + allowlist, tenants", rate: tenant.rate, unit: "req/s", p50: tenant.p50, p99: tenant.p99),
        Row(name: "gateway pipeline GET (wrk, \(connections) conns)", rate: pipeline.rate, unit: "req/s", p50: pipeline.p50, p99: pipeline.p99),
        Row(name: "gateway pipeline GET at half of that", rate: paced.rate, unit: "req/s", p50: paced.p50, p99: paced.p99),
    ]
    let notes = [
        String(format: "gateway pipeline / bare Hummingbird route: %.0f%% (target ≥ 40%%)", pipeline.rate / bare.rate * 100),
        String(format: "gateway pipeline p99 at half its maximum: %.1f ms (target < 10 ms)", paced.p99 / 1000),
        "one GET tenant, allowlist not cached: \(tenantTrips)",
    ]
    return (rows, notes)
}

struct LoadResult {
    var rate: Double
    /// Microseconds.
    var p50: Double
    var p99: Double
}

/// wrk (Debian's) for `seconds` with `connections` keep-alive connections on 2 threads: its
/// requests a second and latency percentiles. Any answer but 2xx fails the run.
func wrk(_ url: String, headers: [String: String] = [:], connections: Int, seconds: Int) async throws -> LoadResult {
    var arguments = ["-t", "2", "-c", String(connections), "-d", "\(seconds)s", "--latency"]
    for (name, value) in headers { arguments += ["-H", "\(name): \(value)"] }
    let command = arguments + [url]
    let run = try await offloaded { try ChildProcess.run(URL(fileURLWithPath: "/usr/bin/wrk"), command) }
    guard run.status == 0 else { throw TestInfrastructureError("wrk failed: \(run.errors)") }
    guard !run.output.contains("Non-2xx") else { throw TestInfrastructureError("wrk saw errors:\n\(run.output)") }
    func value(after label: String) -> Substring? {
        run.output.split(separator: "\n").first { $0.trimmingCharacters(in: .whitespaces).hasPrefix(label) }?
            .split(separator: " ", omittingEmptySubsequences: true).last
    }
    /// wrk prints `812.00us`, `1.25ms` or `1.02s`.
    func microseconds(_ text: Substring?) -> Double? {
        guard let text else { return nil }
        for (suffix, scale) in [("us", 1.0), ("ms", 1_000.0), ("s", 1_000_000.0)] where text.hasSuffix(suffix) {
            return Double(text.dropLast(suffix.count)).map { $0 * scale }
        }
        return nil
    }
    guard let rate = value(after: "Requests/sec:").flatMap({ Double($0) }), let p50 = microseconds(value(after: "50%")),
        let p99 = microseconds(value(after: "99%"))
    else { throw TestInfrastructureError("unreadable wrk output:\n\(run.output)") }
    return LoadResult(rate: rate, p50: p50, p99: p99)
}

/// An open-loop load at `rate` requests a second over 16 keep-alive connections: each request
/// has its scheduled time, and its latency counts from then, so a stall shows in full rather
/// than delaying the requests behind it (no coordinated omission).
func pacedLoad(port: Int, path: String, headers: [String: String], rate: Double, seconds: Int) async throws -> LoadResult {
    let connections = 16
    let interval = Double(connections) / rate
    let perConnection = Int(Double(seconds) * rate) / connections
    let start = Date().timeIntervalSince1970 + 0.2
    let latencies = try await withThrowingTaskGroup(of: [Double].self) { group in
        for index in 0..<connections {
            group.addTask {
                try await offloaded {
                    let http = try KeepAliveHTTPConnection(port: port)
                    var latencies: [Double] = []
                    latencies.reserveCapacity(perConnection)
                    let offset = interval * Double(index) / Double(connections)
                    for request in 0..<perConnection {
                        let scheduled = start + offset + interval * Double(request)
                        let wait = scheduled - Date().timeIntervalSince1970
                        if wait > 0 { usleep(UInt32(wait * 1_000_000)) }
                        let status = try http.get(path, headers: headers)
                        guard (200..<300).contains(status) else { throw TestInfrastructureError("paced request answered \(status)") }
                        latencies.append((Date().timeIntervalSince1970 - scheduled) * 1_000_000)
                    }
                    return latencies
                }
            }
        }
        return try await group.reduce(into: []) { $0 += $1 }.sorted()
    }
    let elapsed = Date().timeIntervalSince1970 - start
    return LoadResult(rate: Double(latencies.count) / elapsed, p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99))
}
