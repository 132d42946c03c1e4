import Foundation
import RampartModels
import ServiceKit
import ServicesTestSupport
import SodiumKit
import TestSupport
import Testing

@testable import AuditService

@Suite("AUD-4 retention per plan cuts at a signed checkpoint and leaves a log that still verifies")
struct AuditRetentionTests {
    /// 20 events in checkpointed batches of 5: event 3 by a super-admin, event 4 a tenant
    /// deletion request (both kept 2 years); events 1…12 stored 40 days ago.
    func agedLog() async throws -> AuditFixture {
        let fixture = try await AuditFixture.start(checkpointEvents: 5)
        for batch in [1...5, 6...10, 11...15, 16...20] {
            try await fixture.store.append(
                fixture.events(batch) { event, index in
                    if index == 3 { event.superAdmin = true }
                    if index == 4 { event.action = AuditAction.tenantDeletionRequested.rawValue }
                },
                to: fixture.chain
            )
        }
        // stored_at is the store's own clock, outside the hash: ageing rows is not tampering.
        try await fixture.tamper("UPDATE audit_events SET stored_at = now() - interval '40 days' WHERE position <= 12")
        return fixture
    }

    func positions(_ fixture: AuditFixture) async throws -> String {
        try await TestPostgres.psql(
            "SELECT string_agg(position::text, ',' ORDER BY position) FROM \(fixture.tenant.schemaName).audit_events",
            database: fixture.database
        )
    }

    @Test("30 days: cut at the newest checkpoint that old, super-admin and deletion events kept; verifies online and offline")
    func cut() async throws {
        let fixture = try await agedLog()
        let now = WallClock.milliseconds()
        let cut = try #require(try await fixture.store.applyRetention(fixture.chain, retentionDays: 30, now: now))
        #expect(cut.position == 10)  // 11 and 12 are old too, but no checkpoint signs them alone
        #expect(cut.keptEvents == 2)
        #expect(try await positions(fixture) == "3,4,11,12,13,14,15,16,17,18,19,20")
        #expect(
            try await TestPostgres.psql(
                "SELECT position, removed_events FROM \(fixture.tenant.schemaName).audit_retention_cuts",
                database: fixture.database
            ) == "10|8"
        )
        #expect(
            try await fixture.store.verify(fixture.chain) == ChainVerdict(verifiedEvents: 12, firstBadPosition: nil, problem: nil, signedThrough: 20)
        )
        let export = try await fixture.export(.jsonl).bytes
        #expect(String(decoding: export, as: UTF8.self).contains("{\"retention_cut\":{\"position\":10,"))
        #expect(fixture.verifyOffline(export).isValid)
        #expect(try await fixture.store.applyRetention(fixture.chain, retentionDays: 30, now: now) == nil)  // nothing more is due

        // Two years on, the kept events go too, and what is left (nothing) still verifies.
        try await fixture.tamper("UPDATE audit_events SET stored_at = now() - interval '800 days'")
        let later = try #require(try await fixture.store.applyRetention(fixture.chain, retentionDays: 30, now: now))
        #expect(later.position == 20)
        #expect(later.keptEvents == 0)
        #expect(try await positions(fixture) == "")
        #expect(try await fixture.store.verify(fixture.chain).isValid)
        try await fixture.store.append(fixture.events(21...22), to: fixture.chain)
        #expect(try await fixture.store.verify(fixture.chain).verifiedEvents == 2)
    }

    @Test("a kept event removed or changed, an event removed past the cut, or a forged cut: verify fails")
    func tamperAfterCut() async throws {
        let fixture = try await agedLog()
        try await fixture.store.applyRetention(fixture.chain, retentionDays: 30, now: WallClock.milliseconds())

        try await fixture.tamper("DELETE FROM audit_events WHERE position = 3")
        var verdict = try await fixture.store.verify(fixture.chain)
        #expect(verdict.problem == "events kept before the retention cut at 10 differ from the cut's signed record")

        let other = try await agedLog()
        try await other.store.applyRetention(other.chain, retentionDays: 30, now: WallClock.milliseconds())
        try await other.tamper("DELETE FROM audit_events WHERE position = 11")
        verdict = try await other.store.verify(other.chain)
        #expect(verdict.firstBadPosition == 11)
        // Moving the cut up to hide events needs a signature nobody else has.
        try await other.tamper("UPDATE audit_retention_cuts SET position = 11")
        #expect(try await other.store.verify(other.chain).problem == "the retention cut at 11 has no valid signature")
        try await other.tamper("DELETE FROM audit_retention_cuts")
        #expect(try await other.store.verify(other.chain).firstBadPosition == 1)
    }

    @Test(
        "issue 26, finding 11: a downgrade keeps what the old plan kept; an event stored before a change stays 30 days after it; the same plan again changes nothing"
    )
    func planChanges() async throws {
        let fixture = try await AuditFixture.start(checkpointEvents: 2)
        let retention = AuditRetention(store: fixture.store, health: HealthChecks(checks: []), logger: quietLogger())
        let now = WallClock.milliseconds()
        let day: Int64 = 86_400_000
        func tenant(_ plan: String, agedDays: Int) async throws -> TenantID {
            let tenant = TenantID.random()
            try await fixture.store.database.provision(tenant, AuditMigrations.set)
            try await fixture.store.recordPlan(tenant, plan: plan, since: now - 1000 * day)
            try await fixture.store.append(fixture.events(1...4, of: tenant), to: .tenant(tenant))
            _ = try await TestPostgres.psql(
                "UPDATE \(tenant.schemaName).audit_events SET stored_at = now() - interval '\(agedDays) days'",
                database: fixture.database
            )
            return tenant
        }
        func remaining(_ tenant: TenantID) async throws -> String {
            try await TestPostgres.psql("SELECT count(*) FROM \(tenant.schemaName).audit_events", database: fixture.database)
        }
        // The attack: Enterprise (or Pro) down to Starter, to have everything older than 30 days go.
        let enterprise = try await tenant("enterprise", agedDays: 400)
        try await fixture.store.recordPlan(enterprise, plan: "starter", since: now - 60 * day)
        let pro = try await tenant("pro", agedDays: 100)
        try await fixture.store.recordPlan(pro, plan: "starter", since: now - 60 * day)
        // An upgrade never shortens anything, and the grace holds what the old plan let go:
        // Starter events 40 days old, moved to Pro 10 days ago, stay 20 days more.
        let upgraded = try await tenant("starter", agedDays: 40)
        try await fixture.store.recordPlan(upgraded, plan: "pro", since: now - 10 * day)
        // A redelivered plan event, and the plan it already has: no new period.
        try await fixture.store.recordPlan(upgraded, plan: "pro", since: now - day)
        #expect(
            try await TestPostgres.psql("SELECT count(*) FROM audit_plan_periods WHERE tenant_id = '\(upgraded.hex)'", database: fixture.database)
                == "2"
        )

        try await retention.applyAll(now: now)
        #expect(try await remaining(enterprise) == "4")
        #expect(try await remaining(pro) == "4")
        #expect(try await remaining(upgraded) == "4")

        // 21 days on the grace is over: the Starter events go, the others stay.
        try await retention.applyAll(now: now + 21 * day)
        #expect(try await remaining(upgraded) == "0")
        #expect(try await remaining(enterprise) == "4")
        // The Pro events go after Pro's 12 months, not Starter's 30 days.
        try await retention.applyAll(now: now + 200 * day)
        #expect(try await remaining(pro) == "4")
        try await retention.applyAll(now: now + 266 * day)
        #expect(try await remaining(pro) == "0")
        try await retention.applyAll(now: now + 5000 * day)
        #expect(try await remaining(enterprise) == "4")
        for tenant in [enterprise, pro, upgraded] { #expect(try await fixture.store.verify(.tenant(tenant)).isValid) }
    }

    @Test("plans from tenant.created: Starter after 30 days, Pro after 12 months, Enterprise never")
    func plans() async throws {
        let fixture = try await AuditFixture.start(checkpointEvents: 2)
        let retention = AuditRetention(store: fixture.store, health: HealthChecks(checks: []), logger: quietLogger())
        var tenants: [String: TenantID] = ["starter": fixture.tenant]
        for plan in ["pro", "enterprise"] {
            let tenant = TenantID.random()
            try await fixture.store.database.provision(tenant, AuditMigrations.set)
            tenants[plan] = tenant
        }
        for (plan, tenant) in tenants {
            try await fixture.store.recordPlan(tenant, plan: plan)
            try await fixture.store.append(fixture.events(1...4, of: tenant), to: .tenant(tenant))
        }
        func age(_ days: Int) async throws {
            for tenant in tenants.values {
                _ = try await TestPostgres.psql(
                    "UPDATE \(tenant.schemaName).audit_events SET stored_at = now() - interval '\(days) days'",
                    database: fixture.database
                )
            }
        }
        func remaining() async throws -> [String: String] {
            var counts: [String: String] = [:]
            for (plan, tenant) in tenants {
                counts[plan] = try await TestPostgres.psql("SELECT count(*) FROM \(tenant.schemaName).audit_events", database: fixture.database)
            }
            return counts
        }
        try await age(29)
        try await retention.applyAll(now: WallClock.milliseconds())
        #expect(try await remaining() == ["starter": "4", "pro": "4", "enterprise": "4"])
        try await age(31)
        try await retention.applyAll(now: WallClock.milliseconds())
        #expect(try await remaining() == ["starter": "0", "pro": "4", "enterprise": "4"])
        try await age(366)
        try await retention.applyAll(now: WallClock.milliseconds())
        #expect(try await remaining() == ["starter": "0", "pro": "0", "enterprise": "4"])
        try await age(5000)
        try await retention.applyAll(now: WallClock.milliseconds())
        #expect(try await remaining()["enterprise"] == "4")
        for tenant in tenants.values { #expect(try await fixture.store.verify(.tenant(tenant)).isValid) }
    }
}
