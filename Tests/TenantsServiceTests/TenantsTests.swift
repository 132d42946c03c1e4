import Foundation
import NATSKit
import RampartModels
import ServiceKit
import ServicesTestSupport
import TestSupport
import Testing

@testable import TenantsService

@Suite("TEN-1 TEN-2 the tenant sagas across every data-owning service")
struct TenantSagaTests {
    @Test("a new tenant gets t_<id> in each service's database and becomes active; deletion drops every schema")
    func provisionAndDelete() async throws {
        let cluster = try await TenantsCluster.start()
        let (registered, owner) = try await cluster.register()
        #expect(registered.status == .provisioning)
        #expect(Set(registered.waitingFor) == Set(TenantsCluster.dataOwners.map(\.rawValue)))
        #expect(try await cluster.waitFor(.active, registered.tenantID))
        for service in TenantsCluster.dataOwners {
            #expect(try await cluster.schemaExists(registered.tenantID, in: service), "\(service)")
        }
        let tenant = try await cluster.tenant(registered.tenantID, as: owner)
        #expect(tenant.status == .active)
        #expect(tenant.waitingFor.isEmpty)
        #expect(tenant.policies.auditRetentionDays == 30)

        // The owner is the first member.
        let members: Rampart_V1_ListMembersReply = try await cluster.call(
            Subjects.Tenants.listMembers,
            Rampart_V1_ListMembersRequest(),
            tenant: TenantID(registered.tenantID),
            principal: owner
        )
        #expect(members.members.map(\.role) == [.owner])
        // The tenant's life is in its own audit log.
        #expect(
            try await eventually(within: .seconds(15)) {
                var query = Rampart_V1_AuditQueryRequest()
                query.filter.targetType = "tenant"
                let page: Rampart_V1_AuditQueryReply = try await cluster.call(
                    Subjects.Audit.query,
                    query,
                    tenant: TenantID(registered.tenantID),
                    principal: owner
                )
                return Set(page.records.map(\.event.action)) == [AuditAction.tenantCreated.rawValue, AuditAction.tenantActivated.rawValue]
            }
        )

        // Deletion: the reverse saga, then only the receipt is left.
        let deleting: Rampart_V1_Tenant = try await cluster.call(
            Subjects.Tenants.delete,
            Rampart_V1_DeleteTenantRequest(),
            tenant: TenantID(registered.tenantID),
            principal: owner
        )
        #expect(deleting.status == .deleting)
        #expect(try await cluster.waitFor(.deleted, registered.tenantID))
        for service in TenantsCluster.dataOwners {
            #expect(try await !cluster.schemaExists(registered.tenantID, in: service), "\(service)")
        }
        await expectError(.notFound) { _ = try await cluster.tenant(registered.tenantID, as: owner) }
        // The request and the receipt outlive the tenant's log, in the platform's.
        #expect(
            try await eventually(within: .seconds(15)) {
                try await TestPostgres.psql(
                    "SELECT string_agg(action, ',' ORDER BY position) FROM public.audit_events WHERE target_id = '\(registered.tenantID)'",
                    database: cluster.databases[.audit]!
                ) == "tenant.deletion_requested,tenant.deleted"
            }
        )
        // The receipt keeps no personal data, and the Starter claim is free again.
        let receipt = try await TestPostgres.psql(
            "SELECT owner_email = '' AND starter_claim IS NULL AND deleted_at IS NOT NULL FROM tenants WHERE id = '\(registered.tenantID)'",
            database: cluster.databases[.tenants]!
        )
        #expect(receipt == "t")
        await cluster.stop()
    }

    @Test("a tenant whose schema went (a deletion racing a read) answers from its registry row, never with an internal error")
    func schemaGone() async throws {
        let cluster = try await TenantsCluster.start()
        let (registered, owner) = try await cluster.register()
        #expect(try await cluster.waitFor(.active, registered.tenantID))
        try await TestPostgres.psql(
            "DROP SCHEMA \"\(TenantID(registered.tenantID)!.schemaName)\" CASCADE",
            database: cluster.databases[.tenants]!
        )
        let tenant = try await cluster.tenant(registered.tenantID)
        #expect(tenant.status == .active)
        #expect(tenant.policies.ipAllowlist.isEmpty)
        // Its members went with the schema.
        await expectError(.permissionDenied) { _ = try await cluster.tenant(registered.tenantID, as: owner) }
        await cluster.stop()
    }

    @Test("a service down during provisioning provisions when it returns; a stuck tenant says who it waits for")
    func serviceDownDuringProvisioning() async throws {
        let cluster = try await TenantsCluster.start(without: [.permissions])
        let (registered, _) = try await cluster.register()
        #expect(
            try await eventually(within: .seconds(20)) {
                try await cluster.tenant(registered.tenantID).waitingFor == ["permissions"]
            }
        )
        #expect(try await cluster.tenant(registered.tenantID).status == .provisioning)

        // Killed mid-saga: audit stops too, before it may have answered; both come back.
        await cluster.stop(.audit)
        try await cluster.start(.permissions)
        try await cluster.start(.audit)
        #expect(try await cluster.waitFor(.active, registered.tenantID))
        #expect(try await cluster.schemaExists(registered.tenantID, in: .permissions))
        await cluster.stop()
    }

    @Test("redelivered saga events change nothing; a late tenant.created cannot revive a deleted tenant")
    func redeliveries() async throws {
        let cluster = try await TenantsCluster.start()
        let (registered, owner) = try await cluster.register()
        #expect(try await cluster.waitFor(.active, registered.tenantID))
        let jetStream = try cluster.client.jetStream()

        // tenant.created again (a new event ID, past JetStream's duplicate window) and a receipt again.
        var created = Rampart_V1_TenantCreated()
        created.eventID = UUID().uuidString
        created.tenantID = registered.tenantID
        created.plan = "starter"
        _ = try await jetStream.publish(try created.serializedBytes(), to: Subjects.TenantEvents.created, messageID: created.eventID)
        var receipt = Rampart_V1_TenantProvisioned()
        receipt.eventID = UUID().uuidString
        receipt.tenantID = registered.tenantID
        receipt.service = "audit"
        _ = try await jetStream.publish(try receipt.serializedBytes(), to: Subjects.TenantEvents.provisioned(by: .audit), messageID: receipt.eventID)
        try await Task.sleep(for: .seconds(2))
        let members: Rampart_V1_ListMembersReply = try await cluster.call(
            Subjects.Tenants.listMembers,
            Rampart_V1_ListMembersRequest(),
            tenant: TenantID(registered.tenantID),
            principal: owner
        )
        #expect(members.members.count == 1)
        #expect(try await cluster.tenant(registered.tenantID).status == .active)
        let receipts = try await TestPostgres.psql(
            "SELECT count(*) FROM tenant_saga_receipts WHERE tenant_id = '\(registered.tenantID)'",
            database: cluster.databases[.tenants]!
        )
        #expect(receipts == "5")

        // Delete, then a stray tenant.created: the schemas stay gone.
        let _: Rampart_V1_Tenant = try await cluster.call(
            Subjects.Tenants.delete,
            Rampart_V1_DeleteTenantRequest(),
            tenant: TenantID(registered.tenantID),
            principal: owner
        )
        #expect(try await cluster.waitFor(.deleted, registered.tenantID))
        created.eventID = UUID().uuidString
        _ = try await jetStream.publish(try created.serializedBytes(), to: Subjects.TenantEvents.created, messageID: created.eventID)
        try await Task.sleep(for: .seconds(2))
        for service in TenantsCluster.dataOwners {
            #expect(try await !cluster.schemaExists(registered.tenantID, in: service), "\(service)")
        }
        await cluster.stop()
    }
}

@Suite("TEN-7 inactive Starter tenants")
struct InactiveStarterTests {
    @Test("a Starter tenant with no login for 3 days is deleted through the saga; a login keeps another; paid plans stay")
    func inactiveStarters() async throws {
        var settings = TenantsSettings(sagaServices: [.tenants])
        settings.sweepIntervalSeconds = 1
        let cluster = try await TenantsCluster.start(settings: settings, without: [.auth, .permissions, .audit, .webhooks])
        let (idle, _) = try await cluster.register(ip: "198.51.100.20")
        let (active, _) = try await cluster.register(ip: "198.51.100.21")
        let (paid, _) = try await cluster.register(plan: "pro", ip: "198.51.100.22")
        for tenant in [idle, active, paid] { #expect(try await cluster.waitFor(.active, tenant.tenantID)) }
        // auth reports a login to the second tenant…
        var login = Rampart_V1_MemberLoggedIn()
        login.eventID = UUID().uuidString
        login.tenantID = active.tenantID
        login.userID = UUID().uuidString
        login.occurredAtMs = WallClock.milliseconds()
        _ = try await cluster.client.jetStream().publish(try login.serializedBytes(), to: Subjects.MemberEvents.loggedIn, messageID: login.eventID)
        #expect(
            try await eventually(within: .seconds(10)) {
                try await TestPostgres.psql(
                    "SELECT last_activity_at IS NOT NULL FROM tenants WHERE id = '\(active.tenantID)'",
                    database: cluster.databases[.tenants]!
                ) == "t"
            }
        )
        // …then all three are four days old: the login keeps the second, its plan the third.
        _ = try await TestPostgres.psql("UPDATE tenants SET created_at = now() - interval '4 days'", database: cluster.databases[.tenants]!)
        #expect(try await cluster.waitFor(.deleted, idle.tenantID))
        let reason = try await TestPostgres.psql(
            "SELECT deletion_reason FROM tenants WHERE id = '\(idle.tenantID)'",
            database: cluster.databases[.tenants]!
        )
        #expect(reason == "inactive_starter")
        #expect(try await !cluster.schemaExists(idle.tenantID, in: .tenants))
        #expect(try await cluster.tenant(active.tenantID).status == .active)
        #expect(try await cluster.tenant(paid.tenantID).status == .active)
        await cluster.stop()
    }
}

@Suite("TEN-2 isolation: one tenant's calls never reach another's data")
struct TenantIsolationTests {
    @Test("tenant B's members cannot read or change tenant A, and crafted tenant IDs are refused before SQL")
    func isolation() async throws {
        let cluster = try await TenantsCluster.start()
        let (a, ownerA) = try await cluster.register()
        let (b, ownerB) = try await cluster.register()
        #expect(try await cluster.waitFor(.active, a.tenantID))
        #expect(try await cluster.waitFor(.active, b.tenantID))
        let tenantA = TenantID(a.tenantID)!
        var allowlist = Rampart_V1_IpAllowlist()
        allowlist.cidrs = ["203.0.113.0/24"]
        _ = try await cluster.call(Subjects.Tenants.setIPAllowlist, allowlist, tenant: tenantA, principal: ownerA)

        // B's owner, calling with A's tenant ID: not a member there.
        await expectError(.permissionDenied) {
            let _: Rampart_V1_ListMembersReply = try await cluster.call(
                Subjects.Tenants.listMembers,
                Rampart_V1_ListMembersRequest(),
                tenant: tenantA,
                principal: ownerB
            )
        }
        await expectError(.permissionDenied) {
            let _: Rampart_V1_IpAllowlist = try await cluster.call(
                Subjects.Tenants.getIPAllowlist,
                Rampart_V1_GetIpAllowlistRequest(),
                tenant: tenantA,
                principal: ownerB
            )
        }
        await expectError(.permissionDenied) {
            var invite = Rampart_V1_InviteMemberRequest()
            invite.email = "mole@evil.example"
            invite.role = .owner
            _ = try await cluster.call(Subjects.Tenants.inviteMember, invite, tenant: tenantA, principal: ownerB)
        }
        // B's own view shows none of A's data.
        let bList: Rampart_V1_IpAllowlist = try await cluster.call(
            Subjects.Tenants.getIPAllowlist,
            Rampart_V1_GetIpAllowlistRequest(),
            tenant: TenantID(b.tenantID),
            principal: ownerB
        )
        #expect(bList.cidrs.isEmpty)

        // Crafted tenant IDs never become a TenantID, and a raw header with one is refused.
        for crafted in [
            "'; DROP SCHEMA public CASCADE; --", "../../etc/passwd", a.tenantID.uppercased(), String(a.tenantID.dropLast()), a.tenantID + "0",
            "t_" + a.tenantID, "g" + a.tenantID.dropFirst(),
        ] {
            #expect(TenantID(crafted) == nil, "\(crafted)")
            var headers = NATSHeaders()
            headers.add(CallHeader.requestID, "req-1")
            headers.add(CallHeader.deadline, String(WallClock.milliseconds() + 5000))
            headers.add(CallHeader.tenantID, crafted)
            headers.add(CallHeader.principal, ownerA)
            let reply = try await cluster.client.request(
                try Rampart_V1_ListMembersRequest().serializedBytes(),
                to: Subjects.Tenants.listMembers.subject,
                headers: headers,
                timeout: .seconds(5)
            )
            #expect(reply.headers[CallHeader.error] == RampartError.Code.missingHeader.name, "\(crafted)")
        }
        // Nothing was created or dropped by any of it.
        #expect(
            try await TestPostgres.psql("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 't\\_%'", database: cluster.databases[.tenants]!) == "2"
        )
        await cluster.stop()
    }
}

@Suite("TEN-3..6 sign-up checks through the running service")
struct SignupTests {
    @Test("an organization's name shows as it reads: no control character, no bidirectional override, at sign-up and at rename")
    func organizationNames() async throws {
        let cluster = try await TenantsCluster.start()
        try await stopping(cluster) {
            let hostile = ["", "   ", "Acme\u{7}", "Acme\u{202E}exe.cod", "\u{2066}Acme", String(repeating: "a", count: 201)]
            for (index, name) in hostile.enumerated() {
                let error = await expectError(.invalidArgument) { _ = try await cluster.register(name: name, ip: "198.51.100.\(20 + index)") }
                #expect(error?.details["organization.name"] != nil, "\(name.debugDescription)")
            }
            let (registered, owner) = try await cluster.register(name: "  Acme Trading  ", ip: "198.51.100.40")
            #expect(registered.name == "Acme Trading")
            #expect(try await cluster.waitFor(.active, registered.tenantID))
            for name in hostile {
                var rename = Rampart_V1_UpdateTenantRequest()
                rename.name = name
                let error = await expectError(.invalidArgument) {
                    _ = try await cluster.call(Subjects.Tenants.update, rename, tenant: TenantID(registered.tenantID), principal: owner)
                }
                #expect(error?.details["field"] == "name", "\(name.debugDescription)")
            }
            #expect(try await cluster.tenant(registered.tenantID).name == "Acme Trading")
        }
    }

    @Test("every failed rule is named at once; disposable domains and unsupported countries are refused")
    func validation() async throws {
        let cluster = try await TenantsCluster.start(without: [.auth, .permissions, .audit, .webhooks])
        let error = await expectError(.invalidArgument) {
            _ = try await cluster.register(email: "x@mailinator.com", country: "FR", number: "73282932000075", ip: "198.51.100.1")
        }
        #expect(error?.message.contains("check digits") == true)
        #expect(error?.message.contains("disposable") == true)
        #expect(error?.details["organization.registration_number"] != nil)
        #expect(error?.details["owner_email"] != nil)
        await expectError(.invalidArgument) { _ = try await cluster.register(email: "a@sub.guerrillamail.com", ip: "198.51.100.1") }
        await expectError(.invalidArgument) { _ = try await cluster.register(country: "ZZ", number: "1", ip: "198.51.100.1") }
        await expectError(.invalidArgument) { _ = try await cluster.register(plan: "platinum", ip: "198.51.100.1") }
        // Nothing was written for any of them.
        #expect(try await TestPostgres.psql("SELECT count(*) FROM tenants", database: cluster.databases[.tenants]!) == "0")
        await cluster.stop()
    }

    @Test("one Starter tenant per company domain, and per mailbox at a free mail provider")
    func oneStarterPerDomain() async throws {
        let cluster = try await TenantsCluster.start(without: [.auth, .permissions, .audit, .webhooks])
        _ = try await cluster.register(email: "alice@globex.example", ip: "198.51.100.2")
        let conflict = await expectError(.conflict) { _ = try await cluster.register(email: "bob@GLOBEX.example", ip: "198.51.100.3") }
        #expect(conflict?.message.contains("globex.example") == true)
        // A subdomain is the same company (issue 26, finding 13).
        await expectError(.conflict) { _ = try await cluster.register(email: "dave@eu.globex.example", ip: "198.51.100.6") }
        // A paid plan on the same domain is fine.
        _ = try await cluster.register(email: "carol@globex.example", plan: "pro", ip: "198.51.100.3")
        // Free mail: per mailbox, with gmail's dots and +tags folded.
        _ = try await cluster.register(email: "jane.doe@gmail.com", ip: "198.51.100.4")
        _ = try await cluster.register(email: "john@gmail.com", ip: "198.51.100.4")
        await expectError(.conflict) { _ = try await cluster.register(email: "janedoe+2@gmail.com", ip: "198.51.100.5") }
        await cluster.stop()
    }

    @Test("at most 3 registrations per IP per hour, counted by rate-limit")
    func perIPLimit() async throws {
        let cluster = try await TenantsCluster.start(without: [.auth, .permissions, .audit, .webhooks])
        for _ in 0..<3 { _ = try await cluster.register(ip: "192.0.2.77") }
        let limited = await expectError(.rateLimited) { _ = try await cluster.register(ip: "192.0.2.77") }
        #expect(Int(limited?.details["retry_after_ms"] ?? "") ?? 0 > 0)
        _ = try await cluster.register(ip: "192.0.2.78")  // another address is not affected
        // Without the limiter, registration fails closed.
        await cluster.stop(.rateLimit)
        await expectError(.unavailable) { _ = try await cluster.register(ip: "192.0.2.79") }
        // The client's address is what is counted: a sign-up without one is refused.
        try await cluster.start(.rateLimit)
        var admission = Rampart_V1_AdmitRegistrationRequest()
        admission.organization.name = "No address"
        admission.organization.country = "US"
        admission.organization.registrationNumber = "94-2404110"
        admission.ownerEmail = "no-address@initech.example"
        await expectError(.invalidArgument) {
            let _: Rampart_V1_AdmitRegistrationReply = try await cluster.call(
                Subjects.Tenants.admitRegistration,
                admission,
                principal: "system:auth",
                ip: nil
            )
        }
        // Only auth admits and registers: another service's credential cannot skip the limits.
        admission.organization.name = "Elsewhere"
        for principal in ["system:gateway", "user:\(UUID().uuidString.lowercased())"] {
            await expectError(.permissionDenied) {
                let _: Rampart_V1_AdmitRegistrationReply = try await cluster.call(
                    Subjects.Tenants.admitRegistration,
                    admission,
                    principal: principal,
                    ip: "192.0.2.80"
                )
            }
            var request = Rampart_V1_RegisterTenantRequest()
            request.organization = admission.organization
            request.ownerUserID = UUID().uuidString
            request.ownerEmail = admission.ownerEmail
            await expectError(.permissionDenied) {
                let _: Rampart_V1_RegisterTenantReply = try await cluster.call(
                    Subjects.Tenants.register,
                    request,
                    principal: principal,
                    ip: "192.0.2.80"
                )
            }
        }
        await cluster.stop()
    }
}
