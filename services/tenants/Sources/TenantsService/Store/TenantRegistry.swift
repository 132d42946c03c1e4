import Logging
import PostgresNIO
import RampartModels
import ServiceKit

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The tenant registry in `public`: one row per tenant ever created (a deleted tenant's row is
/// its deletion receipt), and the saga's receipts.
struct TenantRegistry: Sendable {
    let database: Database
    /// The services whose receipts complete a saga step.
    let sagaServices: [ServiceName]
    let logger: Logger

    static let columns = """
        id, name, slug, status, plan, country, registration_number, email_domain, data_region,
        (extract(epoch FROM created_at) * 1000)::bigint, coalesce((extract(epoch FROM last_activity_at) * 1000)::bigint, 0),
        CASE WHEN starter_claim IS NOT NULL THEN coalesce((extract(epoch FROM starter_claim_until) * 1000)::bigint, 0) ELSE 0 END,
        isolation_reason, isolated_by, (extract(epoch FROM isolated_at) * 1000)::bigint
        """

    typealias Row = (String, String, String, String, String, String, String, String, String, Int64, Int64, Int64, String?, String?, Int64?)

    static func tenant(_ row: Row) -> Rampart_V1_Tenant {
        var tenant = Rampart_V1_Tenant()
        tenant.tenantID = row.0
        tenant.name = row.1
        tenant.slug = row.2
        tenant.status = Rampart_V1_TenantStatus(name: row.3) ?? .unspecified
        tenant.plan = row.4
        tenant.country = row.5
        tenant.registrationNumber = row.6
        tenant.emailDomain = row.7
        tenant.dataRegion = row.8
        tenant.createdAtMs = row.9
        tenant.lastActivityAtMs = row.10
        tenant.starterClaimUntilMs = row.11
        if let reason = row.12, let by = row.13, let at = row.14 {
            tenant.isolation.reason = reason
            tenant.isolation.isolatedBy = by
            tenant.isolation.isolatedAtMs = at
        }
        return tenant
    }

    struct NewTenant {
        var id: TenantID
        var name: String
        var slug: String
        var plan: Plan
        var country: String
        var registrationNumber: String
        var emailDomain: String
        var starterClaim: String?
        var dataRegion: String
        var ownerUserID: UUID
        var ownerEmail: String
    }

    /// Inserts the tenant in `provisioning`, its Starter claim provisional for `claimGraceSeconds`
    /// (the owner's address is not verified yet, AUTH-11). A provisional claim of another tenant
    /// that is past its time lapses first; the lapsed tenant is returned beside the new one.
    /// Throws `conflict` when the claim is held.
    func insert(_ new: NewTenant, claimGraceSeconds: Int) async throws -> (tenant: Rampart_V1_Tenant, lapsed: TenantID?) {
        do {
            return try await database.transaction { connection in
                let lapsed = try await lapse(new.starterClaim, for: new.id, on: connection)
                let rows = try await connection.query(
                    """
                    INSERT INTO tenants (id, name, slug, status, plan, country, registration_number, email_domain, starter_claim,
                                         starter_claim_until, data_region, owner_user_id, owner_email)
                    VALUES (\(new.id.hex), \(new.name), \(new.slug), 'provisioning', \(new.plan.rawValue), \(new.country),
                            \(new.registrationNumber), \(new.emailDomain), \(new.starterClaim),
                            CASE WHEN \(new.starterClaim)::text IS NOT NULL THEN now() + make_interval(secs => \(claimGraceSeconds)) END,
                            \(new.dataRegion), \(new.ownerUserID), \(new.ownerEmail))
                    RETURNING \(unescaped: Self.columns)
                    """,
                    logger: logger
                )
                for try await row in rows.decode(Row.self) { return (Self.tenant(row), lapsed) }
                throw RampartError.internalError()
            }
        } catch let error as PSQLError where error.sqlState == "23505" {
            if error.serverInfo?[.constraintName] == "tenants_starter_claim" {
                throw RampartError(
                    .conflict,
                    "\(new.emailDomain) already has a Starter tenant: ask its owner for an invitation, or choose a paid plan",
                    details: ["field": "owner_email"]
                )
            }
            throw RampartError(.conflict, "a tenant with this identifier already exists")
        }
    }

    /// The tenant (another than `claimant`) whose provisional hold on `claim` is past its time,
    /// which it loses now.
    private func lapse(_ claim: String?, for claimant: TenantID, on connection: PostgresConnection) async throws -> TenantID? {
        guard let claim else { return nil }
        let rows = try await connection.query(
            """
            UPDATE tenants SET starter_claim = NULL, starter_claim_until = NULL
            WHERE starter_claim = \(claim) AND starter_claim_until <= now() AND id <> \(claimant.hex) RETURNING id
            """,
            logger: logger
        )
        return try await rows.first(decoding: String.self).flatMap { id in TenantID(id) }
    }

    /// AUTH-11: the owner proved their mailbox; the claims of the tenants they registered are
    /// held for good (a lapsed one still unclaimed too). Returns how many were provisional.
    func confirmOwnerEmail(_ user: UUID) async throws -> Int {
        let rows = try await database.query(
            """
            WITH confirmed AS (
                UPDATE tenants SET owner_email_verified_at = coalesce(owner_email_verified_at, now()), starter_claim_until = NULL
                WHERE owner_user_id = \(user) RETURNING starter_claim IS NOT NULL AND starter_claim_until IS NOT NULL AS provisional
            )
            SELECT count(*) FILTER (WHERE provisional) FROM confirmed
            """
        )
        for try await count in rows.decode(Int64.self) { return Int(count) }
        return 0
    }

    func find(_ tenant: TenantID) async throws -> Rampart_V1_Tenant? {
        let rows = try await database.query("SELECT \(unescaped: Self.columns) FROM tenants WHERE id = \(tenant.hex)")
        for try await row in rows.decode(Row.self) {
            var found = Self.tenant(row)
            if [.provisioning, .deleting].contains(found.status) {
                found.waitingFor = try await waitingFor(tenant, step: found.status == .provisioning ? "provisioned" : "deprovisioned")
            }
            return found
        }
        return nil
    }

    /// Just the status: what every authorization asks, without the rest of the row.
    func status(_ tenant: TenantID) async throws -> Rampart_V1_TenantStatus? {
        let rows = try await database.query("SELECT status FROM tenants WHERE id = \(tenant.hex)")
        return try await rows.first(decoding: String.self).flatMap { status in Rampart_V1_TenantStatus(name: status) }
    }

    /// The owner named at sign-up: the first member, added when tenants provisions its schema.
    func owner(_ tenant: TenantID) async throws -> (userID: UUID, email: String)? {
        let rows = try await database.query("SELECT owner_user_id, owner_email FROM tenants WHERE id = \(tenant.hex)")
        return try await rows.first(decoding: (UUID, String).self)
    }

    /// Services of the saga that have not answered `step` for the tenant yet.
    func waitingFor(_ tenant: TenantID, step: String) async throws -> [String] {
        let rows = try await database.query(
            "SELECT service FROM tenant_saga_receipts WHERE tenant_id = \(tenant.hex) AND step = \(step)"
        )
        var answered: Set<String> = []
        for try await service in rows.decode(String.self) { answered.insert(service) }
        return sagaServices.map(\.rawValue).filter { !answered.contains($0) }
    }

    /// Records `service`'s answer to `step`; returns the tenant's new status when that answer
    /// completed the step (provisioning → active, deleting → deleted), else nil.
    func recordReceipt(_ tenant: TenantID, step: String, service: String) async throws -> Rampart_V1_TenantStatus? {
        try await database.transaction { connection in
            // Locks the tenant's row: two replicas recording the last two receipts at once
            // must not both miss (or both announce) the completion.
            let current = try await connection.query("SELECT status FROM tenants WHERE id = \(tenant.hex) FOR UPDATE", logger: logger)
            var status: String?
            for try await value in current.decode(String.self) { status = value }
            guard let status else { return nil }  // not a tenant this registry knows: ignored
            try await connection.query(
                """
                INSERT INTO tenant_saga_receipts (tenant_id, step, service) VALUES (\(tenant.hex), \(step), \(service))
                ON CONFLICT DO NOTHING
                """,
                logger: logger
            )
            let expected = step == "provisioned" ? "provisioning" : "deleting"
            guard status == expected else { return nil }
            let rows = try await connection.query(
                "SELECT service FROM tenant_saga_receipts WHERE tenant_id = \(tenant.hex) AND step = \(step)",
                logger: logger
            )
            var answered: Set<String> = []
            for try await service in rows.decode(String.self) { answered.insert(service) }
            guard sagaServices.allSatisfy({ answered.contains($0.rawValue) }) else { return nil }
            if step == "provisioned" {
                try await connection.query("UPDATE tenants SET status = 'active', activated_at = now() WHERE id = \(tenant.hex)", logger: logger)
                return .active
            }
            // The receipt stays; the owner's address and who belonged go (GDPR): nothing personal
            // outlives the tenant.
            try await connection.query(
                "UPDATE tenants SET status = 'deleted', deleted_at = now(), owner_email = '', starter_claim = NULL WHERE id = \(tenant.hex)",
                logger: logger
            )
            try await connection.query("DELETE FROM memberships WHERE tenant_id = \(tenant.hex)", logger: logger)
            return .deleted
        }
    }

    /// Moves an active (or suspended, or stuck provisioning) tenant to `deleting`; false when it
    /// already is deleting or deleted.
    func markDeleting(_ tenant: TenantID, reason: String) async throws -> Bool {
        let rows = try await database.query(
            """
            UPDATE tenants SET status = 'deleting', deletion_reason = \(reason), deletion_requested_at = now(),
                               starter_claim = NULL, saga_published_at = NULL
            WHERE id = \(tenant.hex) AND status IN ('provisioning', 'active', 'suspended')
            RETURNING id
            """
        )
        for try await _ in rows.decode(String.self) { return true }
        return false
    }

    func markPublished(_ tenant: TenantID) async throws {
        try await database.query("UPDATE tenants SET saga_published_at = now() WHERE id = \(tenant.hex)")
    }

    /// Tenants whose current saga step was published longer ago than `seconds` (or never).
    func stalledInSaga(olderThan seconds: Int) async throws -> [(TenantID, Rampart_V1_TenantStatus, String)] {
        let rows = try await database.query(
            """
            SELECT id, status, plan FROM tenants
            WHERE status IN ('provisioning', 'deleting')
              AND (saga_published_at IS NULL OR saga_published_at < now() - make_interval(secs => \(Double(seconds))))
            ORDER BY created_at LIMIT 500
            """
        )
        var stalled: [(TenantID, Rampart_V1_TenantStatus, String)] = []
        for try await (id, status, plan) in rows.decode((String, String, String).self) {
            if let tenant = TenantID(id), let status = Rampart_V1_TenantStatus(name: status) { stalled.append((tenant, status, plan)) }
        }
        return stalled
    }

    /// Active Starter tenants with no member login (nor creation) in `days` days.
    func inactiveStarters(days: Int) async throws -> [TenantID] {
        let rows = try await database.query(
            """
            SELECT id FROM tenants
            WHERE plan = 'starter' AND status = 'active'
              AND coalesce(last_activity_at, created_at) < now() - make_interval(days => \(Int32(clamping: days)))
            ORDER BY created_at LIMIT 500
            """
        )
        var tenants: [TenantID] = []
        for try await id in rows.decode(String.self) { if let tenant = TenantID(id) { tenants.append(tenant) } }
        return tenants
    }

    /// A member signed in: the tenant is in use. Written at most once a minute per tenant.
    func recordActivity(_ tenant: TenantID, at milliseconds: Int64) async throws {
        try await database.query(
            """
            UPDATE tenants SET last_activity_at = to_timestamp(\(Double(milliseconds) / 1000))
            WHERE id = \(tenant.hex)
              AND (last_activity_at IS NULL OR last_activity_at < to_timestamp(\(Double(milliseconds) / 1000)) - interval '1 minute')
            """
        )
    }

    /// Changes name and plan (moving the Starter claim with it: provisional for
    /// `claimGraceSeconds` while the owner's address is unverified). Throws `conflict` when
    /// moving to Starter and the domain's claim is held by another tenant.
    /// A provisional claim of another tenant past its time lapses first, and is returned.
    func update(_ tenant: TenantID, name: String?, plan: Plan?, starterClaim: String?, claimGraceSeconds: Int) async throws -> TenantID? {
        do {
            return try await database.transaction { connection in
                let lapsed = try await lapse(plan == .starter ? starterClaim : nil, for: tenant, on: connection)
                try await connection.query(
                    """
                    UPDATE tenants SET name = coalesce(\(name)::text, name), plan = coalesce(\(plan?.rawValue)::text, plan),
                           starter_claim = CASE WHEN \(plan?.rawValue)::text IS NULL THEN starter_claim
                                                WHEN \(plan?.rawValue)::text = 'starter' THEN coalesce(starter_claim, \(starterClaim)::text)
                                                ELSE NULL END,
                           starter_claim_until = CASE WHEN \(plan?.rawValue)::text IS NULL THEN starter_claim_until
                                                      WHEN \(plan?.rawValue)::text <> 'starter' THEN NULL
                                                      WHEN starter_claim IS NOT NULL THEN starter_claim_until
                                                      WHEN owner_email_verified_at IS NULL THEN now() + make_interval(secs => \(claimGraceSeconds))
                                                      END
                    WHERE id = \(tenant.hex)
                    """,
                    logger: logger
                )
                return lapsed
            }
        } catch let error as PSQLError where error.sqlState == "23505" {
            throw RampartError(.conflict, "this email domain already has a Starter tenant", details: ["field": "plan"])
        }
    }
    /// IR-1: an active tenant suspended, with who isolated it and why; false for any other.
    func isolate(_ tenant: TenantID, by: String, reason: String) async throws -> Bool {
        let rows = try await database.query(
            """
            UPDATE tenants SET status = 'suspended', isolated_at = now(), isolated_by = \(by), isolation_reason = \(reason)
            WHERE id = \(tenant.hex) AND status IN ('active', 'suspended') RETURNING id
            """
        )
        return try await rows.first(decoding: String.self) != nil
    }

    /// An isolated tenant active again; false when it was not isolated.
    func liftIsolation(_ tenant: TenantID) async throws -> Bool {
        let rows = try await database.query(
            """
            UPDATE tenants SET status = 'active', isolated_at = NULL, isolated_by = NULL, isolation_reason = NULL
            WHERE id = \(tenant.hex) AND status = 'suspended' AND isolated_at IS NOT NULL RETURNING id
            """
        )
        return try await rows.first(decoding: String.self) != nil
    }
}

/// Plans (TEN-8): audit retention follows them.
enum Plan: String, Sendable, CaseIterable {
    case starter, pro, enterprise

    var auditRetentionDays: UInt32 {
        switch self {
        case .starter: 30
        case .pro: 365
        case .enterprise: 0
        }
    }

}
