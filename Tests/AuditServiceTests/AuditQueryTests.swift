import AuditService
import Foundation
import NATSKit
import RampartModels
import ServiceKit
import ServicesTestSupport
import TestSupport
import Testing

@Suite("AUD-3 / IR-2 audit queries and exports, over NATS, each tenant its own log only")
struct AuditQueryTests {
    @Test("filters, newest first, cursor pages that stay put while events arrive; another tenant sees none of it")
    func query() async throws {
        let harness = try await AuditHarness.start()
        let audit = try await harness.startAudit()
        let alpha = TenantID.random()
        let beta = TenantID.random()
        try await harness.provision(alpha, plan: "pro")
        try await harness.provision(beta)
        #expect(
            try await eventually(within: .seconds(30)) {
                (try? await TestPostgres.psql("SELECT count(*) FROM public.rampart_tenant_schemas", database: harness.database)) == "2"
            }
        )
        // The saga recorded each plan, which retention follows.
        #expect(
            try await TestPostgres.psql("SELECT plan FROM audit_tenant_plans WHERE tenant_id = '\(alpha.hex)'", database: harness.database) == "pro"
        )
        func event(_ tenant: TenantID, _ index: Int) -> Rampart_V1_AuditEvent {
            var event = harness.event(tenant, index)
            event.occurredAtMs = 1_700_000_000_000 + Int64(index) * 1000
            event.actor.id = "user-\(index % 3)"
            event.action = index % 2 == 0 ? AuditAction.loginSucceeded.rawValue : AuditAction.loginFailed.rawValue
            event.outcome = index % 2 == 0 ? .success : .failure
            event.origin.ip = index % 5 == 0 ? "2001:db8::5" : "198.51.100.7"
            event.target.type = "user"
            event.target.id = "user-\(index % 3)"
            return event
        }
        for index in 0..<30 { try await harness.publisher.publish(event(alpha, index)) }
        for index in 0..<5 { try await harness.publisher.publish(event(beta, index)) }
        #expect(try await eventually(within: .seconds(20)) { try await harness.count(alpha.schemaName) == 30 })
        #expect(try await eventually(within: .seconds(10)) { try await harness.count(beta.schemaName) == 5 })

        let rpc = RPCClient(connection: harness.connection)
        func query(
            _ tenant: TenantID?,
            _ filter: Rampart_V1_AuditFilter = .init(),
            cursor: String = "",
            pageSize: Int32 = 0
        )
            async throws -> Rampart_V1_AuditQueryReply
        {
            var request = Rampart_V1_AuditQueryRequest()
            request.filter = filter
            request.cursor = cursor
            request.pageSize = pageSize
            return try await rpc.call(Subjects.Audit.query, request, context: CallContext(tenantID: tenant))
        }
        func indices(_ reply: Rampart_V1_AuditQueryReply) -> [Int] { reply.records.map { Int($0.event.details["index"]!)! } }

        // Newest first, every filter alone and together.
        #expect(indices(try await query(alpha)) == Array((0..<30).reversed()))
        var filter = Rampart_V1_AuditFilter()
        filter.actorID = "user-1"
        #expect(indices(try await query(alpha, filter)) == [28, 25, 22, 19, 16, 13, 10, 7, 4, 1])
        filter.outcome = .failure
        #expect(indices(try await query(alpha, filter)) == [25, 19, 13, 7, 1])
        filter = .init()
        filter.ip = "2001:DB8::5"
        #expect(indices(try await query(alpha, filter)) == [25, 20, 15, 10, 5, 0])
        filter = .init()
        filter.action = AuditAction.loginFailed.rawValue
        filter.fromMs = 1_700_000_000_000 + 10_000
        filter.toMs = 1_700_000_000_000 + 20_000
        #expect(indices(try await query(alpha, filter)) == [19, 17, 15, 13, 11])
        filter = .init()
        filter.targetType = "user"
        filter.targetID = "user-2"
        #expect(indices(try await query(alpha, filter)).count == 10)

        // Pages of 7; between pages, newer events arrive: no page repeats or skips one.
        var seen: [Int] = []
        var cursor = ""
        var pages = 0
        repeat {
            let page = try await query(alpha, cursor: cursor, pageSize: 7)
            seen += indices(page)
            cursor = page.nextCursor
            pages += 1
            try await harness.publisher.publish(event(alpha, 100 + pages))
        } while !cursor.isEmpty
        #expect(seen == Array((0..<30).reversed()))
        #expect(pages == 5)

        // Beta's calls see beta's log only, whatever the filter names.
        #expect(indices(try await query(beta)) == [4, 3, 2, 1, 0])
        filter = .init()
        filter.actorID = "user-1"
        #expect(indices(try await query(beta, filter)) == [4, 1])
        // A cursor from alpha's log only narrows beta's own.
        let alphaCursor = try await query(alpha, pageSize: 2).nextCursor
        #expect(try await query(beta, cursor: alphaCursor).records.allSatisfy { $0.event.tenantID == beta.hex })
        await expectError(.notFound) { _ = try await query(TenantID.random()) }
        await expectError(.missingHeader) { _ = try await query(nil) }

        // Hostile input: a precise error, or (bound, not spliced) no match.
        filter = .init()
        filter.actorID = "' OR 1=1 --"
        #expect(try await query(alpha, filter).records.isEmpty)
        for (bad, field) in [
            ({ (f: inout Rampart_V1_AuditFilter) in f.action = "drop.table" }, "filter.action"),
            ({ (f: inout Rampart_V1_AuditFilter) in f.ip = "1.2.3.4; DROP" }, "filter.ip"),
            ({ (f: inout Rampart_V1_AuditFilter) in f.actorID = String(repeating: "x", count: 300) }, "filter.actor_id"),
            ({ (f: inout Rampart_V1_AuditFilter) in f.targetID = "a\u{0}b" }, "filter.target_id"),
            ({ (f: inout Rampart_V1_AuditFilter) in f.fromMs = -1 }, "filter.from_ms"),
            ({ (f: inout Rampart_V1_AuditFilter) in (f.fromMs, f.toMs) = (10, 5) }, "filter.to_ms"),
            ({ (f: inout Rampart_V1_AuditFilter) in f.outcome = .UNRECOGNIZED(9) }, "filter.outcome"),
        ] {
            var filter = Rampart_V1_AuditFilter()
            bad(&filter)
            let error = await expectError(.invalidArgument) { _ = try await query(alpha, filter) }
            #expect(error?.details["field"] == field)
        }
        await expectError(.invalidArgument) { _ = try await query(alpha, pageSize: 501) }
        await expectError(.invalidArgument) { _ = try await query(alpha, pageSize: -1) }
        await expectError(.invalidArgument) { _ = try await query(alpha, cursor: "not-a-cursor") }
        await expectError(.invalidArgument) { _ = try await query(alpha, cursor: AuditCursorForTests.forged) }

        // Export over NATS: the caller's tenant, every event once, verifiable.
        func export(_ tenant: TenantID, _ format: Rampart_V1_AuditExportFormat) async throws -> String {
            var request = Rampart_V1_AuditExportRequest()
            request.format = format
            var text = ""
            repeat {
                let reply = try await rpc.call(Subjects.Audit.export, request, context: CallContext(tenantID: tenant))
                text += String(decoding: reply.chunk, as: UTF8.self)
                request.cursor = reply.nextCursor
            } while !request.cursor.isEmpty
            return text
        }
        let betaCSV = try await export(beta, .csv)
        #expect(betaCSV.split(separator: "\r\n").count == 6)
        #expect(!betaCSV.contains(alpha.hex))
        let betaJSON = try await export(beta, .jsonl)
        // The header and 5 events, and a signed checkpoint if the checkpointer got there first.
        #expect(betaJSON.split(separator: "\n").filter { !$0.hasPrefix("{\"checkpoint\":") }.count == 6)
        #expect(betaJSON.hasPrefix("{\"format\":\"rampart-audit-export/v1\",\"chain\":\"\(beta.hex)\""))
        var request = Rampart_V1_AuditExportRequest()
        await expectError(.invalidArgument) {
            _ = try await rpc.call(Subjects.Audit.export, request, context: CallContext(tenantID: beta)) as Rampart_V1_AuditExportReply
        }
        request.format = .csv
        request.cursor = "eDox"  // "x:1": an export cursor of the wrong shape
        await expectError(.invalidArgument) {
            _ = try await rpc.call(Subjects.Audit.export, request, context: CallContext(tenantID: beta)) as Rampart_V1_AuditExportReply
        }

        // No log here, or a schema that a deletion dropped since: not found on every route.
        try await TestPostgres.psql("DROP SCHEMA \"\(beta.schemaName)\" CASCADE", database: harness.database)
        for tenant in [TenantID.random(), beta] {
            await expectError(.notFound) { _ = try await query(tenant) }
            await expectError(.notFound) { _ = try await export(tenant, .csv) }
            await expectError(.notFound) {
                _ =
                    try await rpc.call(Subjects.Audit.verify, Rampart_V1_AuditVerifyRequest(), context: CallContext(tenantID: tenant))
                    as Rampart_V1_AuditVerifyReply
            }
        }

        await audit.stop()
        await harness.connection.drain()
    }
}

/// A well-formed cursor that no page ever returned (a negative position).
enum AuditCursorForTests {
    static let forged = "cTotMTotMQ"  // base64url of "q:-1:-1"
}
