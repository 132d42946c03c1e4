// `make bench`: NATS request/reply through NATSKit next to the same loop in C against nats.c
// (both against one C responder, so only the requesting side differs), JetStream
// publish-with-ack, rate-limit decisions against one and two replicas of the release
// `rate-limit` executable, and audit (ingest, queries, verification) against the release
// `audit` executable and PostgreSQL. Release builds only: debug numbers mean nothing.
// tenants (the provisioning saga, tenant-scoped calls with 10 and 2,000 tenants) against every
// data-owning service; auth (sign-ins against the bcrypt floor, health under that load, token
// verification, API key and token calls through the gateway); permissions (checks over NATS
// with 10,000 bindings, cached checks in the gateway); gateway (the whole pipeline next to a bare
// Hummingbird route, under wrk); webhooks (signed deliveries to a local receiver). NATS always runs;
// BENCH_SUITES=rate-limit,audit,tenants,auth,permissions,gateway,webhooks picks the others (all by
// default).
import Foundation
import Logging
import NATSKit
import RampartModels
import RateLimitKit
import ServiceKit
import TestSupport

let requestCount = Int(ProcessInfo.processInfo.environment["BENCH_REQUESTS"] ?? "") ?? 20_000
let publishCount = Int(ProcessInfo.processInfo.environment["BENCH_PUBLISHES"] ?? "") ?? 5_000
let decisionCount = Int(ProcessInfo.processInfo.environment["BENCH_DECISIONS"] ?? "") ?? 20_000
let cBinary = CommandLine.arguments.count > 1 ? CommandLine.arguments[1] : ".build/bench/nats_reqrep"
/// Where the release executables of the services are.
let releaseBin = CommandLine.arguments.count > 2 ? CommandLine.arguments[2] : ".build/release"
let rateLimitBinary = "\(releaseBin)/rate-limit"
let auditEvents = Int(ProcessInfo.processInfo.environment["BENCH_AUDIT_EVENTS"] ?? "") ?? 1_000_000
let tenantsProvisioned = max(10, Int(ProcessInfo.processInfo.environment["BENCH_TENANTS"] ?? "") ?? 200)
let tenantsCrowd = max(tenantsProvisioned, Int(ProcessInfo.processInfo.environment["BENCH_TENANTS_CROWD"] ?? "") ?? 2_000)
let authLogins = max(8, Int(ProcessInfo.processInfo.environment["BENCH_LOGINS"] ?? "") ?? 96)
let gatewayCalls = max(16, Int(ProcessInfo.processInfo.environment["BENCH_GATEWAY_CALLS"] ?? "") ?? 8_000)
let permissionMembers = max(10, Int(ProcessInfo.processInfo.environment["BENCH_PERMISSION_MEMBERS"] ?? "") ?? 100)
let permissionChecks = max(1_000, Int(ProcessInfo.processInfo.environment["BENCH_PERMISSION_CHECKS"] ?? "") ?? 40_000)
let gatewaySeconds = max(2, Int(ProcessInfo.processInfo.environment["BENCH_GATEWAY_SECONDS"] ?? "") ?? 10)
let webhookDeliveries = max(1_000, Int(ProcessInfo.processInfo.environment["BENCH_WEBHOOK_DELIVERIES"] ?? "") ?? 20_000)
let suites = Set(
    (ProcessInfo.processInfo.environment["BENCH_SUITES"] ?? "rate-limit,audit,tenants,auth,permissions,gateway,webhooks").split(separator: ",").map(
        String.init
    )
)
let subject = "bench.echo"
let payload = [UInt8](repeating: UInt8(ascii: "x"), count: 128)

struct Row {
    var name: String
    var rate: Double
    var unit: String
    var p50: Double?
    var p99: Double?
}

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

func percentile(_ sorted: [Double], _ fraction: Double) -> Double {
    sorted[min(sorted.count - 1, Int(Double(sorted.count) * fraction))]
}

/// A long suite says where it is, on standard error (the table goes to standard output).
func progress(_ text: String) {
    FileHandle.standardError.write(Data("bench \(Date().formatted(.iso8601)): \(text)\n".utf8))
}

func launch(_ arguments: [String]) throws -> (Process, Pipe) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: cBinary)
    process.arguments = arguments
    let output = Pipe()
    process.standardOutput = output
    try process.run()
    return (process, output)
}

var logger = Logger(label: "bench")
logger.logLevel = .warning
let server = try await NATSServer.start()
var rows: [Row] = []
var notes: [String] = []

// One C responder for both requesters.
let (responder, responderOutput) = try launch(["responder", server.url, subject])
_ = responderOutput.fileHandleForReading.availableData  // "ready"

// NATSKit, sequential: one request in flight, like the C loop.
let connection = try await NATSConnection.connect(NATSConfiguration(servers: [server.url]), logger: logger)
for _ in 0..<1_000 { _ = try await connection.request(payload, to: subject, timeout: .seconds(5)) }
/// Off the main actor (top-level code is main-actor isolated): services serve on the
/// cooperative pool, and so should the loop that stands for them.
@concurrent
func sequentialRequests(_ connection: NATSConnection, count: Int) async throws -> (seconds: Double, latencies: [Double]) {
    var latencies: [Double] = []
    latencies.reserveCapacity(count)
    let clock = ContinuousClock()
    let start = clock.now
    for _ in 0..<count {
        let t0 = clock.now
        _ = try await connection.request(payload, to: subject, timeout: .seconds(5))
        latencies.append(seconds(clock.now - t0) * 1e6)
    }
    return (seconds(clock.now - start), latencies.sorted())
}

let (sequentialSeconds, latencies) = try await sequentialRequests(connection, count: requestCount)
let clock = ContinuousClock()
rows.append(
    Row(
        name: "request/reply, NATSKit (1 in flight)",
        rate: Double(requestCount) / sequentialSeconds,
        unit: "req/s",
        p50: percentile(latencies, 0.5),
        p99: percentile(latencies, 0.99)
    )
)

// The same loop in C.
let (requester, requesterOutput) = try launch(["requester", server.url, subject, String(requestCount)])
requester.waitUntilExit()
let cLine = String(decoding: requesterOutput.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
var cFields: [String: Double] = [:]
for field in cLine.split(whereSeparator: { $0 == " " || $0 == "\n" }) {
    let parts = field.split(separator: "=")
    if parts.count == 2 { cFields[String(parts[0])] = Double(parts[1]) }
}
let cRate = cFields["rps"] ?? 0
rows.append(Row(name: "request/reply, nats.c (1 in flight)", rate: cRate, unit: "req/s", p50: cFields["p50_us"], p99: cFields["p99_us"]))

// NATSKit with 32 requests in flight: what the async API buys over a blocking one.
let concurrentStart = clock.now
try await withThrowingTaskGroup(of: Void.self) { group in
    for worker in 0..<32 {
        group.addTask {
            for _ in stride(from: worker, to: requestCount, by: 32) {
                _ = try await connection.request(payload, to: subject, timeout: .seconds(5))
            }
        }
    }
    try await group.waitForAll()
}
rows.append(Row(name: "request/reply, NATSKit (32 in flight)", rate: Double(requestCount) / seconds(clock.now - concurrentStart), unit: "req/s"))
responder.terminate()
responder.waitUntilExit()

// JetStream publish with ack (file storage).
let jetStream = try connection.jetStream()
try await jetStream.ensureStream(.init(name: "BENCH", subjects: ["bench.js.>"]))
let publishStart = clock.now
for index in 0..<publishCount {
    _ = try await jetStream.publish(payload, to: "bench.js.one", messageID: "seq-\(index)")
}
rows.append(Row(name: "JetStream publish + ack (1 in flight)", rate: Double(publishCount) / seconds(clock.now - publishStart), unit: "msg/s"))

let windowStart = clock.now
try await withThrowingTaskGroup(of: Void.self) { group in
    for worker in 0..<32 {
        group.addTask {
            for index in stride(from: worker, to: publishCount, by: 32) {
                _ = try await jetStream.publish(payload, to: "bench.js.many", messageID: "many-\(index)")
            }
        }
    }
    try await group.waitForAll()
}
rows.append(Row(name: "JetStream publish + ack (32 in flight)", rate: Double(publishCount) / seconds(clock.now - windowStart), unit: "msg/s"))
await connection.drain()
try await server.stop()  // a global is never deinitialised: stop the server explicitly

// rate-limit decisions: the `api` policy over 10,000 client addresses (a handful of calls each,
// so nearly every decision is an admission, and so a compare-and-set write), on a fresh
// nats-server per replica count.
func startRateLimit(natsURL: String, instance: String) throws -> Process {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: rateLimitBinary)
    process.environment = ProcessInfo.processInfo.environment.merging([
        "RAMPART_NATS_URL": natsURL, "RAMPART_INSTANCE_ID": instance, "RAMPART_OPS_HOST": "127.0.0.1",
        "RAMPART_OPS_PORT": String(Ports.free()), "RAMPART_LOG_LEVEL": "warning",
    ]) { current, _ in current }
    process.standardOutput = FileHandle.nullDevice
    try process.run()
    if ProcessInfo.processInfo.environment["BENCH_VERBOSE"] != nil {
        FileHandle.standardError.write(Data("\(instance) pid \(process.processIdentifier), bench pid \(getpid())\n".utf8))
    }
    return process
}

/// Waits until `replicas` distinct instances answer health.
func waitForReplicas(_ connection: NATSConnection, _ replicas: Int) async throws {
    let rpc = RPCClient(connection: connection)
    var seen: Set<String> = []
    for _ in 0..<2_000 where seen.count < replicas {
        if let reply = try? await rpc.call(
            Subjects.health(.rateLimit),
            Rampart_V1_HealthRequest(),
            context: CallContext()
        ),
            reply.healthy
        {
            seen.insert(reply.instanceID)
        } else {
            try await Task.sleep(for: .milliseconds(10))
        }
    }
    guard seen.count == replicas else { throw TestInfrastructureError("\(replicas) rate-limit replicas did not start") }
}

/// The `api` policy's key for the bench's `client`-th address (of 10,000); `offset` gives each
/// run addresses of its own, so no run starts on counters another has used.
func benchAddress(_ client: Int, offset: Int) -> String {
    let client = (client + offset) % 10_000
    return "10.\(client / 256 % 256).\(client % 256).\(1 + offset % 200)"
}

/// Decisions as the gateway asks for them, through RateLimitClient (which sends the checks that
/// queue up as batches), or with `batched: false` one `check` request each.
@concurrent
func decisions(
    _ connection: NATSConnection,
    count: Int,
    inFlight: Int,
    offset: Int,
    batched: Bool = true
) async throws -> (seconds: Double, latencies: [Double]) {
    let rpc = RPCClient(connection: connection)
    let limiter = RateLimitClient(connection: connection)
    let clock = ContinuousClock()
    let start = clock.now
    let latencies = try await withThrowingTaskGroup(of: [Double].self) { group in
        for worker in 0..<inFlight {
            group.addTask {
                var latencies: [Double] = []
                var request = Rampart_V1_RateLimitCheckRequest()
                request.policy = "api"
                for index in stride(from: worker, to: count, by: inFlight) {
                    request.key = benchAddress(index, offset: offset)
                    let t0 = clock.now
                    let decision: Rampart_V1_RateLimitDecision
                    if batched {
                        switch await limiter.check(policy: request.policy, key: request.key, context: CallContext()) {
                        case .allowed(let allowed), .refused(let allowed): decision = allowed
                        case .allowedUnchecked(let error), .unavailable(let error): throw error
                        }
                    } else {
                        decision = try await rpc.call(
                            Subjects.RateLimit.check,
                            request,
                            context: CallContext()
                        )
                    }
                    latencies.append(seconds(clock.now - t0) * 1e6)
                    precondition(decision.limit == 60)
                }
                return latencies
            }
        }
        return try await group.reduce(into: []) { $0 += $1 }
    }
    return (seconds(clock.now - start), latencies.sorted())
}

/// An open loop at `rate` decisions a second for `duration`, through RateLimitClient: each
/// check has its scheduled time and its latency counts from then, so a stall shows in full.
@concurrent
func pacedDecisions(_ connection: NATSConnection, rate: Double, duration: Duration, offset: Int) async throws -> (rate: Double, latencies: [Double]) {
    let limiter = RateLimitClient(connection: connection)
    let workers = 16
    let interval = Duration.seconds(Double(workers) / rate)
    let perWorker = Int(seconds(duration) * rate) / workers
    let clock = ContinuousClock()
    let start = clock.now + .milliseconds(100)
    let latencies = try await withThrowingTaskGroup(of: [Double].self) { group in
        for worker in 0..<workers {
            group.addTask {
                var latencies: [Double] = []
                for index in 0..<perWorker {
                    let scheduled = start + interval * (Double(worker) / Double(workers)) + interval * index
                    try await Task.sleep(until: scheduled, clock: clock)
                    let key = benchAddress(index * workers + worker, offset: offset)
                    if case .unavailable(let error) = await limiter.check(policy: "api", key: key, context: CallContext()) { throw error }
                    latencies.append(seconds(clock.now - scheduled) * 1e6)
                }
                return latencies
            }
        }
        return try await group.reduce(into: []) { $0 += $1 }
    }
    return (Double(latencies.count) / seconds(clock.now - start), latencies.sorted())
}

for replicas in (ProcessInfo.processInfo.environment["BENCH_REPLICAS"] ?? "1,2").split(separator: ",").compactMap({ Int($0) })
where suites.contains("rate-limit") {
    let natsServer = try await NATSServer.start()
    try await ensureSharedStreams(natsServer.url, logger: logger)
    let processes = try (0..<replicas).map { try startRateLimit(natsURL: natsServer.url, instance: "rate-limit-\($0)") }
    let client = try await NATSConnection.connect(NATSConfiguration(servers: [natsServer.url]), logger: logger)
    try await waitForReplicas(client, replicas)
    _ = try await decisions(client, count: 2_000, inFlight: 8, offset: 0)  // warm-up
    let replicaLabel = "\(replicas) replica\(replicas == 1 ? "" : "s")"
    var maximum = 0.0
    for (inFlight, share, batched) in [(1, 4, true), (8, 1, true), (64, 1, true), (64, 1, false)] {
        let (elapsed, latencies) = try await decisions(
            client,
            count: decisionCount / share,
            inFlight: inFlight,
            offset: inFlight * 7 + (batched ? 0 : 1),
            batched: batched
        )
        maximum = max(maximum, Double(latencies.count) / elapsed)
        rows.append(
            Row(
                name: "rate-limit check, \(replicaLabel), \(inFlight) in flight\(batched ? "" : ", unbatched")",
                rate: Double(latencies.count) / elapsed,
                unit: "dec/s",
                p50: percentile(latencies, 0.5),
                p99: percentile(latencies, 0.99)
            )
        )
    }
    let (pacedRate, paced) = try await pacedDecisions(client, rate: maximum / 2, duration: .seconds(5), offset: 900)
    rows.append(
        Row(
            name: "rate-limit check, \(replicaLabel), paced at half",
            rate: pacedRate,
            unit: "dec/s",
            p50: percentile(paced, 0.5),
            p99: percentile(paced, 0.99)
        )
    )
    notes.append(
        String(
            format: "rate-limit, %@: %.0f decisions/s at most (target ≥ 10,000); p99 %.2f ms at half that (target < 2 ms)",
            replicaLabel,
            maximum,
            percentile(paced, 0.99) / 1000
        )
    )
    await client.drain()
    for process in processes { kill(process.processIdentifier, SIGKILL) }
    for process in processes { process.waitUntilExit() }
    try await natsServer.stop()
}

if suites.contains("audit") {
    rows += try await auditBenchmarks(
        auditBinary: "\(releaseBin)/audit",
        toolBinary: "\(releaseBin)/rampart-audit",
        events: auditEvents,
        logger: logger
    )
}
var tenantScopeRatio: Double?
if suites.contains("tenants") {
    let (tenantRows, ratio) = try await tenantsBenchmarks(bin: releaseBin, provisioned: tenantsProvisioned, crowd: tenantsCrowd, logger: logger)
    rows += tenantRows
    tenantScopeRatio = ratio
}

if suites.contains("auth") {
    let (authRows, authNotes) = try await authBenchmarks(bin: releaseBin, logins: authLogins, gatewayCalls: gatewayCalls, logger: logger)
    rows += authRows
    notes += authNotes
}

if suites.contains("permissions") {
    let (permissionRows, permissionNotes) = try await permissionsBenchmarks(
        bin: releaseBin,
        members: permissionMembers,
        checks: permissionChecks,
        logger: logger
    )
    rows += permissionRows
    notes += permissionNotes
}

if suites.contains("gateway") {
    let (gatewayRows, gatewayNotes) = try await gatewayBenchmarks(bin: releaseBin, seconds: gatewaySeconds, logger: logger)
    rows += gatewayRows
    notes += gatewayNotes
}

if suites.contains("webhooks") {
    let (webhookRows, webhookNotes) = try await webhooksBenchmarks(bin: releaseBin, deliveries: webhookDeliveries, logger: logger)
    rows += webhookRows
    notes += webhookNotes
}

func pad(_ text: String, _ width: Int) -> String { text + String(repeating: " ", count: max(0, width - text.count)) }
func format(_ value: Double?) -> String { value.map { String(format: "%.1f", $0) } ?? "-" }
print("")
print(pad("benchmark", 46) + pad("rate", 16) + pad("p50 µs", 10) + "p99 µs")
print(String(repeating: "-", count: 82))
for row in rows {
    let rate = String(format: row.rate < 100 ? "%.1f %@" : "%.0f %@", row.rate, row.unit)
    print(pad(row.name, 46) + pad(rate, 16) + pad(format(row.p50), 10) + format(row.p99))
}
let ratio = cRate > 0 ? rows[0].rate / cRate : 0
print(String(format: "\nNATSKit / nats.c sequential throughput: %.0f%% (target ≥ 80%%)", ratio * 100))
if let tenantScopeRatio {
    print(String(format: "tenant-scoped call p50, %d tenants / 10 tenants: %.2f (should stay near 1)", tenantsCrowd, tenantScopeRatio))
}
for note in notes { print(note) }
