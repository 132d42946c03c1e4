import Foundation
import GatewayService
import Logging
import NATSKit
import RampartModels
import ServiceKit
import Synchronization
import TestSupport

/// permissions against its release executable (with tenants and rate-limit for the tenant and
/// its members): one tenant with `members` members and `members` boards, every member holding a
/// role on every board (`members`² bindings, 10,000 by default); then checks over NATS, one and
/// 16 in flight, and checks answered from the gateway's decision cache in this process.
@concurrent
func permissionsBenchmarks(bin: String, members: Int, checks: Int, logger: Logger) async throws -> (rows: [Row], notes: [String]) {
    let services = ["rate-limit", "tenants", "permissions"]
    let cluster = try await BenchCluster.start(
        services,
        bin: bin,
        environment: ["tenants": ["RAMPART_TENANTS_SAGA_SERVICES": "tenants,permissions"]],
        logger: logger
    )
    let (connection, rpc) = (cluster.connection, cluster.rpc)

    var registration = Rampart_V1_RegisterTenantRequest()
    registration.organization.name = "Bench"
    registration.organization.country = "US"
    registration.organization.registrationNumber = "94-2404110"
    registration.ownerUserID = UUID().uuidString.lowercased()
    registration.ownerEmail = "owner@permissions-bench.example"
    let registered = try await rpc.call(
        Subjects.Tenants.register,
        registration,
        context: CallContext(principal: Principal(service: .auth), clientIP: "100.64.0.1")
    )
    let tenant = TenantID(registered.tenant.tenantID)!
    let owner = Principal.user(registration.ownerUserID)
    for _ in 0..<3_000 {
        let status = try await rpc.call(
            Subjects.Tenants.get,
            Rampart_V1_GetTenantRequest(),
            context: CallContext(tenantID: tenant, principal: Principal(service: .gateway))
        )
        if status.status == .active { break }
        try await Task.sleep(for: .milliseconds(10))
    }

    progress("permissions: \(members) members, \(members * members) bindings")
    for index in 0..<members {
        var invite = Rampart_V1_InviteMemberRequest()
        invite.email = "member-\(index)@permissions-bench.example"
        invite.role = .member
        _ = try await rpc.call(
            Subjects.Tenants.inviteMember,
            invite,
            context: CallContext(tenantID: tenant, principal: owner)
        )
    }
    // Each invitation's token is in its mail only: accepted as auth accepts for a new person.
    var joined: [String] = []
    for mail in try await queuedMails(connection, from: .tenants, count: members) {
        var accept = Rampart_V1_AcceptInvitationRequest()
        accept.token = try mailToken(mail, from: .tenants)
        accept.email = mail.to
        accept.userID = UUID().uuidString.lowercased()
        _ = try await rpc.call(
            Subjects.Tenants.acceptInvitation,
            accept,
            context: CallContext(principal: Principal(service: .auth))
        )
        joined.append("user:\(accept.userID)")
    }
    let users = joined
    let roles = ["owner", "editor", "viewer"]
    let clock = ContinuousClock()
    let writesStarted = clock.now
    try await withThrowingTaskGroup(of: Void.self) { group in
        for writer in 0..<8 {
            group.addTask {
                for index in stride(from: writer, to: members * members, by: 8) {
                    var request = Rampart_V1_SetResourceRoleRequest()
                    request.resource = "boards/b\(index / members)"
                    request.principal = users[index % members]
                    // Each board's first member owns it; the rest get any role.
                    request.role = index % members == 0 ? "owner" : roles[index % 3]
                    _ = try await rpc.call(
                        Subjects.Permissions.setResourceRole,
                        request,
                        context: CallContext(tenantID: tenant, principal: owner, timeout: .seconds(30))
                    )
                }
            }
        }
        try await group.waitForAll()
    }
    let writeRate = Double(members * members) / seconds(clock.now - writesStarted)

    let actions = ["boards.read", "boards.write", "boards.delete", "items.write"]
    func question(_ index: Int) -> Rampart_V1_CheckRequest {
        var check = Rampart_V1_CheckRequest()
        let mixed = index &* 2_654_435_761 & 0x7fff_ffff
        check.principal = users[mixed % members]
        check.resource = "boards/b\(mixed / members % members)"
        check.action = actions[mixed / (members * members) % actions.count]
        return check
    }
    func overNATS(count: Int, inFlight: Int, offset: Int) async throws -> (seconds: Double, latencies: [Double]) {
        let start = clock.now
        let latencies = try await withThrowingTaskGroup(of: [Double].self) { group in
            for worker in 0..<inFlight {
                group.addTask {
                    var latencies: [Double] = []
                    let context = CallContext(tenantID: tenant, principal: Principal(service: .gateway))
                    for index in stride(from: worker, to: count, by: inFlight) {
                        let t0 = clock.now
                        _ = try await rpc.call(Subjects.Permissions.check, question(index + offset), context: context)
                        latencies.append(seconds(clock.now - t0) * 1e6)
                    }
                    return latencies
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        return (seconds(clock.now - start), latencies.sorted())
    }
    _ = try await overNATS(count: 2_000, inFlight: 4, offset: 0)  // warm-up
    var rows: [Row] = []
    for (inFlight, share) in [(1, 4), (16, 1)] {
        let (elapsed, latencies) = try await overNATS(count: checks / share, inFlight: inFlight, offset: inFlight * 31)
        rows.append(
            Row(
                name: "permission check, \(members * members / 1000)k bindings, \(inFlight) in flight",
                rate: Double(latencies.count) / elapsed,
                unit: "chk/s",
                p50: percentile(latencies, 0.5),
                p99: percentile(latencies, 0.99)
            )
        )
    }

    // The gateway's cache: 1,000 distinct questions, asked again and again from 2 tasks.
    let checker = PermissionChecker(rpc: rpc, connection: connection, logger: logger)
    let watching = Task { try await checker.run() }
    let context = CallContext(tenantID: tenant, principal: Principal(service: .gateway), timeout: .seconds(60))
    for index in 0..<1_000 { _ = try await checker.check(question(index), context: context) }
    let cachedCount = 2_000_000
    let cachedStart = clock.now
    try await withThrowingTaskGroup(of: Void.self) { group in
        for worker in 0..<2 {
            group.addTask {
                for index in stride(from: worker, to: cachedCount, by: 2) {
                    _ = try await checker.check(question(index % 1_000), context: context)
                }
            }
        }
        try await group.waitForAll()
    }
    rows.append(
        Row(
            name: "cached check in the gateway, 2 tasks",
            rate: Double(cachedCount) / seconds(clock.now - cachedStart),
            unit: "chk/s",
            p50: nil,
            p99: nil
        )
    )
    watching.cancel()
    try await cluster.stop()
    return (rows, [String(format: "permissions: %d role writes at %.0f writes/s (8 writers, one tenant)", members * members, writeRate)])
}

/// The first `count` mails `publisher` queued for the mail sender.
func queuedMails(_ connection: NATSConnection, from publisher: ServiceName, count: Int) async throws -> [Rampart_V1_MailRequest] {
    let consumer = try await connection.jetStream().durableConsumer(
        stream: Subjects.eventsStream,
        .init(durableName: "bench-mail-\(UUID().uuidString.prefix(8))", filterSubject: Subjects.MailEvents.requested(by: publisher))
    )
    defer { consumer.unsubscribe() }
    var mails: [Rampart_V1_MailRequest] = []
    while mails.count < count {
        let batch = try await consumer.fetch(batch: min(100, count - mails.count), timeout: .seconds(5))
        guard !batch.isEmpty else { throw TestInfrastructureError("only \(mails.count) of \(count) mails were queued") }
        for message in batch {
            mails.append(try Rampart_V1_MailRequest(serializedBytes: message.payload))
            try await message.ack()
        }
    }
    return mails
}
