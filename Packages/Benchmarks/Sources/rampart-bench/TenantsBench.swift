import Foundation
import Logging
import NATSKit
import RampartModels
import ServiceKit
import SodiumKit
import TestSupport

/// The tenant saga end to end (TEN-1) against the release executables of every data-owning
/// service and rate-limit: time from `tenants.register` to `active` for `provisioned` tenants,
/// one at a time; and the cost of tenant-scoped calls on the first 10 tenants while only they
/// exist, and again once `crowd` tenants do (`provisioned` must be at least 10).
@concurrent
func tenantsBenchmarks(bin: String, provisioned: Int, crowd: Int, logger: Logger) async throws -> ([Row], ratio: Double) {
    let cluster = try await BenchCluster.start(["rate-limit", "auth", "tenants", "permissions", "audit", "webhooks"], bin: bin, logger: logger)
    let rpc = cluster.rpc

    /// Each sign-up from its own address (3 per address per hour) and domain (one Starter each).
    func register(_ index: Int) async throws -> TenantID {
        var request = Rampart_V1_RegisterTenantRequest()
        request.organization.name = "Bench \(index)"
        request.organization.country = "US"
        request.organization.registrationNumber = "94-2404110"
        request.ownerUserID = UUID().uuidString
        request.ownerEmail = "owner@bench-\(index).example"
        let ip = "100.\(64 + index / 65_536 % 64).\(index / 256 % 256).\(index % 256)"
        let context = CallContext(principal: Principal(service: .auth), clientIP: ip, timeout: .seconds(30))
        let reply = try await rpc.call(Subjects.Tenants.register, request, context: context)
        return TenantID(reply.tenant.tenantID)!
    }
    func status(_ tenant: TenantID) async throws -> Rampart_V1_TenantStatus {
        let context = CallContext(tenantID: tenant, principal: Principal(service: .gateway))
        let reply = try await rpc.call(Subjects.Tenants.get, Rampart_V1_GetTenantRequest(), context: context)
        return reply.status
    }
    func waitUntilActive(_ tenant: TenantID) async throws {
        for _ in 0..<30_000 {
            if try await status(tenant) == .active { return }
            try await Task.sleep(for: .milliseconds(2))
        }
        throw TestInfrastructureError("tenant \(tenant.hex) never became active")
    }
    /// Tenant-scoped calls on `tenants`, round robin: the tenant (registry row and its schema's
    /// policies and allowlist) and its members.
    func scopedCalls(_ tenants: [TenantID], count: Int) async throws -> [Double] {
        let clock = ContinuousClock()
        var latencies: [Double] = []
        for index in 0..<count {
            let context = CallContext(tenantID: tenants[index % tenants.count], principal: Principal(service: .gateway))
            let t0 = clock.now
            if index % 2 == 0 {
                _ = try await rpc.call(Subjects.Tenants.get, Rampart_V1_GetTenantRequest(), context: context)
            } else {
                _ = try await rpc.call(
                    Subjects.Tenants.listMembers,
                    Rampart_V1_ListMembersRequest(),
                    context: context
                )
            }
            latencies.append(seconds(clock.now - t0) * 1e6)
        }
        return latencies.sorted()
    }
    func row(_ name: String, _ latencies: [Double]) -> Row {
        Row(
            name: name,
            rate: Double(latencies.count) / (latencies.reduce(0, +) / 1e6),
            unit: "call/s",
            p50: percentile(latencies, 0.5),
            p99: percentile(latencies, 0.99)
        )
    }

    // Provisioning, one tenant at a time: register → every service's receipt → active.
    progress("tenants: provisioning \(provisioned) tenants one by one")
    let clock = ContinuousClock()
    var provisioning: [Double] = []
    var tenants: [TenantID] = []
    var few: [Double] = []
    for index in 0..<provisioned {
        let t0 = clock.now
        let tenant = try await register(index)
        try await waitUntilActive(tenant)
        provisioning.append(seconds(clock.now - t0) * 1e6)
        tenants.append(tenant)
        if tenants.count == 10 {
            // Tenant-scoped calls on these ten while only they exist; again with the crowd below.
            _ = try await scopedCalls(tenants, count: 500)  // warm-up
            few = try await scopedCalls(tenants, count: 4_000)
        }
    }
    provisioning.sort()
    var rows = [
        Row(
            name: "tenant provisioned end to end (\(provisioned))",
            rate: Double(provisioning.count) / (provisioning.reduce(0, +) / 1e6),
            unit: "ten/s",
            p50: percentile(provisioning, 0.5),
            p99: percentile(provisioning, 0.99)
        )
    ]

    let sample = Array(tenants.prefix(10))
    progress("tenants: provisioning up to \(crowd) tenants, 16 at a time")
    var next = provisioned
    while next < crowd {
        let batch = next..<min(crowd, next + 16)
        let made = try await withThrowingTaskGroup(of: TenantID.self) { group in
            for index in batch { group.addTask { try await register(index) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        for tenant in made { try await waitUntilActive(tenant) }
        next = batch.upperBound
    }
    _ = try await scopedCalls(sample, count: 500)
    let many = try await scopedCalls(sample, count: 4_000)
    rows.append(row("tenant-scoped call, 10 tenants", few))
    rows.append(row("tenant-scoped call, \(crowd) tenants", many))

    try await cluster.stop()
    return (rows, percentile(many, 0.5) / percentile(few, 0.5))
}
