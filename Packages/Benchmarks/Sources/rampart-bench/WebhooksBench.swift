import Foundation
import Hummingbird
import Logging
import NATSKit
import RampartModels
import ServiceKit
import Synchronization
import TestSupport

/// WH-2's throughput against the release `webhooks` executable and PostgreSQL: audit events
/// published to RAMPART_AUDIT, fanned out to one endpoint, each signed, posted to a local
/// Hummingbird receiver (loopback allowlisted) and recorded. Measured end to end: from the first
/// publish until the receiver has every delivery; then, paced at a quarter of that rate, the
/// time from an event's publish to its arrival.
@concurrent
func webhooksBenchmarks(bin: String, deliveries: Int, logger: Logger) async throws -> ([Row], [String]) {
    let cluster = try await BenchCluster.start(
        ["rate-limit", "tenants", "webhooks"],
        bin: bin,
        environment: [
            "tenants": ["RAMPART_TENANTS_SAGA_SERVICES": "tenants,webhooks"],
            "webhooks": ["RAMPART_WEBHOOKS_ALLOWED_NETWORKS": "127.0.0.1/32"],
        ],
        logger: logger
    )
    let arrivals = Arrivals()
    let port = Ports.free()
    let router = Router()
    router.post("/hook") { request, _ -> Response in
        _ = try await request.body.collect(upTo: 1 << 20)
        arrivals.record(request.headers.first { $0.name.canonicalName == "webhook-id" }?.value ?? "")
        return Response(status: .noContent)
    }
    let receiver = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)), logger: logger)
    let receiverTask = Task { try await receiver.runService() }
    defer { receiverTask.cancel() }

    var registration = Rampart_V1_RegisterTenantRequest()
    registration.organization.name = "Bench"
    registration.organization.country = "US"
    registration.organization.registrationNumber = "94-2404110"
    registration.ownerUserID = UUID().uuidString.lowercased()
    registration.ownerEmail = "owner@webhooks-bench.example"
    let registered: Rampart_V1_RegisterTenantReply = try await cluster.rpc.call(
        Subjects.Tenants.register,
        registration,
        context: CallContext(principal: Principal(service: .auth), clientIP: "198.51.100.9", timeout: .seconds(30))
    )
    let tenant = TenantID(registered.tenant.tenantID)!
    let owner = CallContext(tenantID: tenant, principal: .user(registration.ownerUserID), timeout: .seconds(30))
    var endpoint = Rampart_V1_CreateEndpointRequest()
    endpoint.url = "http://127.0.0.1:\(port)/hook"
    endpoint.eventTypes = ["member.invited"]
    for attempt in 0..<500 {
        do {
            _ = try await cluster.rpc.call(Subjects.Webhooks.createEndpoint, endpoint, context: owner)
            break
        } catch let error as RampartError where error.code == .failedPrecondition && attempt < 499 {
            try await Task.sleep(for: .milliseconds(20))  // the saga has not reached webhooks yet
        }
    }
    let publisher = AuditPublisher(jetStream: try cluster.connection.jetStream(), service: .tenants, logger: logger)
    func event() -> Rampart_V1_AuditEvent {
        Rampart_V1_AuditEvent(.memberInvited, tenant: tenant, target: ("user", UUID().uuidString.lowercased()), call: nil, service: .tenants)
    }
    func waitFor(_ count: Int) async throws {
        let deadline = ContinuousClock.now + .seconds(300)
        while arrivals.count < count {
            guard ContinuousClock.now < deadline else { throw TestInfrastructureError("only \(arrivals.count) of \(count) deliveries arrived") }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    // Warm-up: connections, caches, the JIT-free code paths alike.
    for _ in 0..<200 { try await publisher.publish(event()) }
    try await waitFor(200)

    progress("webhooks: \(deliveries) deliveries, burst")
    let clock = ContinuousClock()
    let started = clock.now
    try await withThrowingTaskGroup(of: Void.self) { group in
        for worker in 0..<16 {
            group.addTask {
                for _ in stride(from: worker, to: deliveries, by: 16) { try await publisher.publish(event()) }
            }
        }
        try await group.waitForAll()
    }
    try await waitFor(200 + deliveries)
    let burst = Double(deliveries) / seconds(clock.now - started)

    progress("webhooks: paced at a quarter of \(Int(burst))/s")
    let paced = max(100, deliveries / 4)
    let interval = Duration.seconds(4.0 / burst)
    var sent: [String: ContinuousClock.Instant] = [:]
    let before = arrivals.count
    var next = clock.now
    for _ in 0..<paced {
        try await clock.sleep(until: next)
        next = next + interval
        let published = try await publisher.publish(event())
        sent["msg_\(published.id)"] = clock.now
    }
    try await waitFor(before + paced)
    let latencies = arrivals.times(for: Set(sent.keys)).compactMap { id, at in sent[id].map { seconds(at - $0) * 1e6 } }.sorted()
    try await cluster.stop()
    return (
        [
            Row(name: "webhooks: signed deliveries, burst", rate: burst, unit: "deliveries/s"),
            Row(
                name: "webhooks: event → delivery at 1/4 rate",
                rate: Double(paced) / seconds(interval * paced),
                unit: "deliveries/s",
                p50: percentile(latencies, 0.5),
                p99: percentile(latencies, 0.99)
            ),
        ],
        [String(format: "webhooks: %.0f signed deliveries/s end to end (target ≥ 1,000)", burst)]
    )
}

/// When each `webhook-id` reached the receiver.
final class Arrivals: Sendable {
    private let state = Mutex<(count: Int, times: [String: ContinuousClock.Instant])>((0, [:]))

    var count: Int { state.withLock { $0.count } }

    func record(_ id: String) {
        let now = ContinuousClock.now
        state.withLock {
            $0.count += 1
            if $0.times[id] == nil { $0.times[id] = now }
        }
    }

    func times(for ids: Set<String>) -> [(String, ContinuousClock.Instant)] {
        state.withLock { state in ids.compactMap { id in state.times[id].map { (id, $0) } } }
    }
}
