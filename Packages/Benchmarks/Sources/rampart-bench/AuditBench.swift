import Foundation
import Logging
import NATSKit
import RampartModels
import ServiceKit
import SodiumKit
import TestSupport

/// audit on one tenant's log of `events` events (one chain: the case that cannot spread over
/// tenants): sustained ingest from a backlog in RAMPART_AUDIT with the chain and a durable
/// commit per batch, queries on the full log through NATS, verification, and an export checked
/// offline by `rampart-audit verify`.
@concurrent
func auditBenchmarks(auditBinary: String, toolBinary: String, events: Int, logger: Logger) async throws -> [Row] {
    let clock = ContinuousClock()
    let nats = try await NATSServer.start()
    let database = try await TestPostgres.createDatabase(prefix: "rampart_bench_audit")
    let seed = randomBytes(32)
    let publicKey = "bench-1:" + Base64.encode(try SigningKey(seed: seed).publicKey)
    func startAudit() throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: auditBinary)
        process.environment = [
            "RAMPART_NATS_URL": nats.url, "RAMPART_OPS_HOST": "127.0.0.1", "RAMPART_OPS_PORT": String(Ports.free()),
            "RAMPART_POSTGRES_HOST": TestPostgres.server.host, "RAMPART_POSTGRES_PORT": String(TestPostgres.server.port),
            "RAMPART_POSTGRES_USER": database, "RAMPART_POSTGRES_PASSWORD": database, "RAMPART_POSTGRES_DATABASE": database,
            "RAMPART_LOG_LEVEL": "warning", "RAMPART_AUDIT_SIGNING_KEY": "bench-1:" + Base64.encode(seed),
        ]
        process.standardOutput = FileHandle.standardError  // its warnings, if any, next to the progress lines
        try process.run()
        return process
    }
    func stop(_ process: Process) {
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
    }
    func psql(_ sql: String) async throws -> String { try await TestPostgres.psql(sql, database: database) }

    let connection = try await NATSConnection.connect(NATSConfiguration(servers: [nats.url]), logger: logger)
    let jetStream = try connection.jetStream()
    // The bench's own NATS has no users: it creates the streams the owners would.
    // Each action from a service that records it, as audit accepts it (issue 26, finding 6).
    let publishers = Dictionary(
        uniqueKeysWithValues: Set(AuditAction.allCases.flatMap(\.publishers)).map {
            ($0, AuditPublisher(jetStream: jetStream, service: $0, logger: logger))
        }
    )
    @Sendable func publisher(of event: Rampart_V1_AuditEvent) -> AuditPublisher {
        publishers[AuditAction(rawValue: event.action)!.publishers.sorted { $0.rawValue < $1.rawValue }.first!]!
    }
    try await jetStream.ensureSharedStreams()

    // One tenant, provisioned by the saga, on a plan that keeps everything.
    let tenant = TenantID.random()
    var created = Rampart_V1_TenantCreated()
    created.eventID = UUID().uuidString
    created.tenantID = tenant.hex
    created.plan = "enterprise"
    var audit = try startAudit()
    _ = try await jetStream.publish(try created.serializedBytes(), to: Subjects.TenantEvents.created, messageID: created.eventID)
    let head = "SELECT position FROM \(tenant.schemaName).audit_chain_head"
    for _ in 0..<600 where (try? await psql(head)) != "0" { try await Task.sleep(for: .milliseconds(100)) }
    guard try await psql(head) == "0" else { throw TestInfrastructureError("audit did not provision the bench tenant") }

    // The backlog, published while audit is down.
    stop(audit)
    progress("audit: publishing \(events) events")
    let start = 1_700_000_000_000 as Int64
    let span = Int64(30 * 86_400_000)
    let actions = AuditAction.allCases
    func event(_ index: Int) -> Rampart_V1_AuditEvent {
        var event = Rampart_V1_AuditEvent()
        event.tenantID = tenant.hex
        event.occurredAtMs = start + Int64(index) * span / Int64(events)
        event.timeZone = "Europe/Paris"
        event.action = actions[index % actions.count].rawValue
        event.actor.kind = .user
        event.actor.id = "user-\(index * 7919 % 1000)"
        event.actor.email = "user-\(index * 7919 % 1000)@example.com"
        event.target.type = "user"
        event.target.id = "user-\(index % 2000)"
        event.origin.ip = "10.\(index % 5000 / 250).\(index % 250).\(index % 7 + 1)"
        event.origin.userAgent = "Mozilla/5.0 (bench)"
        event.outcome = index % 10 == 0 ? .failure : .success
        event.requestID = UUID().uuidString
        return event
    }
    try await withThrowingTaskGroup(of: Void.self) { group in
        for worker in 0..<32 {
            group.addTask {
                for index in stride(from: worker, to: events, by: 32) {
                    let event = event(index)
                    try await publisher(of: event).publish(event)
                }
            }
        }
        try await group.waitForAll()
    }

    // Sustained ingest: from the first stored event to the last.
    progress("audit: ingesting")
    audit = try startAudit()
    var first: (at: ContinuousClock.Instant, stored: Int)?
    var stored = 0
    while stored < events {
        try await Task.sleep(for: .milliseconds(50))
        stored = Int(try await psql(head)) ?? 0
        if first == nil, stored > 0 { first = (clock.now, stored) }
    }
    let ingestSeconds = seconds(clock.now - first!.at)
    var rows = [Row(name: "audit ingest, 1 tenant, \(events / 1000)k backlog", rate: Double(events - first!.stored) / ingestSeconds, unit: "ev/s")]

    // Queries on the full log: filters a console and an investigation use, pages 1 and 2.
    progress("audit: queries")
    let rpc = RPCClient(connection: connection)
    /// A deadline is absolute: each call gets its own.
    var context: CallContext { CallContext(tenantID: tenant, timeout: .seconds(30)) }
    var latencies: [Double] = []
    for round in 0..<700 {
        var request = Rampart_V1_AuditQueryRequest()
        let pick = round * 104_729
        switch round % 6 {
        case 0: request.filter.actorID = "user-\(pick % 1000)"
        case 1: request.filter.ip = "10.\(pick % 20).\(pick % 250).\(pick % 7 + 1)"
        case 2:
            request.filter.action = actions[pick % actions.count].rawValue
            request.filter.fromMs = start + Int64(pick % 29) * 86_400_000
            request.filter.toMs = request.filter.fromMs + 86_400_000
        case 3:
            request.filter.actorID = "user-\(pick % 1000)"
            request.filter.outcome = .failure
        case 4:
            request.filter.targetType = "user"
            request.filter.targetID = "user-\(pick % 2000)"
        default: break  // the newest page
        }
        for _ in 0..<2 {
            let t0 = clock.now
            let reply = try await rpc.call(Subjects.Audit.query, request, context: context)
            let elapsed = seconds(clock.now - t0)
            if elapsed > 1 { progress("audit: a query took \(String(format: "%.1f", elapsed)) s: \(request.filter)") }
            if round >= 100 { latencies.append(elapsed * 1e6) }
            guard !reply.nextCursor.isEmpty else { break }
            request.cursor = reply.nextCursor
        }
    }
    latencies.sort()
    rows.append(
        Row(
            name: "audit query at \(events / 1000)k events (p95 \(String(format: "%.1f", percentile(latencies, 0.95) / 1000)) ms)",
            rate: Double(latencies.count) / (latencies.reduce(0, +) / 1e6),
            unit: "q/s",
            p50: percentile(latencies, 0.5),
            p99: percentile(latencies, 0.99)
        )
    )

    // Verification by the service, the whole chain from one snapshot.
    progress("audit: verification")
    var t0 = clock.now
    let verdict = try await rpc.call(
        Subjects.Audit.verify,
        Rampart_V1_AuditVerifyRequest(),
        context: CallContext(tenantID: tenant, timeout: .seconds(600))
    )
    guard verdict.valid, verdict.verifiedEvents == events else { throw TestInfrastructureError("bench chain does not verify: \(verdict)") }
    rows.append(Row(name: "audit verify (service)", rate: Double(events) / seconds(clock.now - t0), unit: "ev/s"))

    // The JSON lines export, chunk by chunk over NATS, then checked offline.
    progress("audit: export")
    // Under the bench's work folder, which its exit removes whatever happens.
    let folder = ProcessInfo.processInfo.environment["RAMPART_TEST_TMPDIR"].map { URL(fileURLWithPath: $0) } ?? FileManager.default.temporaryDirectory
    let file = folder.appendingPathComponent("rampart-bench-audit-\(tenant.hex).jsonl")
    _ = FileManager.default.createFile(atPath: file.path, contents: nil)
    let output = try FileHandle(forWritingTo: file)
    var exportRequest = Rampart_V1_AuditExportRequest()
    exportRequest.format = .jsonl
    t0 = clock.now
    repeat {
        let reply = try await rpc.call(Subjects.Audit.export, exportRequest, context: context)
        output.write(reply.chunk)
        exportRequest.cursor = reply.nextCursor
    } while !exportRequest.cursor.isEmpty
    try output.close()
    rows.append(Row(name: "audit export, JSON lines", rate: Double(events) / seconds(clock.now - t0), unit: "ev/s"))

    progress("audit: offline verification")
    t0 = clock.now
    let tool = Process()
    tool.executableURL = URL(fileURLWithPath: toolBinary)
    tool.arguments = ["verify", "--public-key", publicKey, file.path]
    tool.standardOutput = FileHandle.nullDevice
    try tool.run()
    tool.waitUntilExit()
    guard tool.terminationStatus == 0 else { throw TestInfrastructureError("rampart-audit verify rejected the bench export") }
    rows.append(Row(name: "audit verify (offline, rampart-audit)", rate: Double(events) / seconds(clock.now - t0), unit: "ev/s"))
    try? FileManager.default.removeItem(at: file)

    stop(audit)
    await connection.drain()
    try await nats.stop()
    return rows
}
