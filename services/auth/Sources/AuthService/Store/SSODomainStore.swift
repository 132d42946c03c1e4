import Logging
import PostgresNIO
import RampartModels
import ServiceKit

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The global `sso_domains` (SSO-3): which tenant claimed and proved which email domain.
struct SSODomainStore: Sendable {
    let database: Database
    let logger: Logger

    /// A tenant's claims at most.
    static let maximumDomains = 50

    struct Claim: Sendable, Equatable {
        var domain: String
        var challenge: String
        var createdAtMs: Int64
        var verifiedAtMs: Int64?
    }

    private static let columns = """
        domain, challenge, (extract(epoch FROM created_at) * 1000)::bigint, (extract(epoch FROM verified_at) * 1000)::bigint
        """
    private typealias Row = (String, String, Int64, Int64?)
    private static func claim(_ row: Row) -> Claim { Claim(domain: row.0, challenge: row.1, createdAtMs: row.2, verifiedAtMs: row.3) }

    /// The domains `tenant` has verified.
    func verified(in tenant: TenantID) async throws -> Set<String> {
        let rows = try await database.query(
            "SELECT domain FROM sso_domains WHERE tenant_id = \(tenant.hex) AND verified_at IS NOT NULL"
        )
        var domains: Set<String> = []
        for try await domain in rows.decode(String.self) { domains.insert(domain) }
        return domains
    }

    /// The tenant that verified `domain`, if one did.
    func verifiedTenant(_ domain: String) async throws -> TenantID? {
        let rows = try await database.query("SELECT tenant_id FROM sso_domains WHERE domain = \(domain) AND verified_at IS NOT NULL")
        return try await rows.first(decoding: String.self).flatMap(TenantID.init)
    }

    func list(in tenant: TenantID) async throws -> [Claim] {
        let rows = try await database.query(
            "SELECT \(unescaped: Self.columns) FROM sso_domains WHERE tenant_id = \(tenant.hex) ORDER BY created_at, domain"
        )
        var claims: [Claim] = []
        for try await row in rows.decode(Row.self) { claims.append(Self.claim(row)) }
        return claims
    }

    func find(_ domain: String, in tenant: TenantID) async throws -> Claim? {
        let rows = try await database.query(
            "SELECT \(unescaped: Self.columns) FROM sso_domains WHERE tenant_id = \(tenant.hex) AND domain = \(domain)"
        )
        return try await rows.first(decoding: Row.self).map(Self.claim)
    }

    /// A new claim, or the tenant's existing one for the domain (its challenge unchanged).
    func claim(_ domain: String, challenge: String, in tenant: TenantID) async throws -> Claim {
        try await database.transaction { db in
            // The tenant's claims are counted under its own lock: two adds at once cannot pass it.
            try await db.query("SELECT pg_advisory_xact_lock(hashtext('sso_domains:' || \(tenant.hex)))", logger: logger)
            let taken = try await db.query(
                "SELECT tenant_id FROM sso_domains WHERE domain = \(domain) AND verified_at IS NOT NULL AND tenant_id <> \(tenant.hex)",
                logger: logger
            )
            guard try await taken.first(decoding: String.self) == nil else {
                throw RampartError(.alreadyExists, "another organization has verified \(domain)", details: ["field": "domain"])
            }
            let count = try await db.query("SELECT count(*) FROM sso_domains WHERE tenant_id = \(tenant.hex)", logger: logger)
            let existing = try await db.query(
                "SELECT \(unescaped: Self.columns) FROM sso_domains WHERE tenant_id = \(tenant.hex) AND domain = \(domain)",
                logger: logger
            )
            if let found = try await existing.first(decoding: Row.self) { return Self.claim(found) }
            guard try await count.first(decoding: Int64.self) ?? 0 < Self.maximumDomains else {
                throw RampartError(.failedPrecondition, "a tenant claims at most \(Self.maximumDomains) domains", details: ["field": "domain"])
            }
            let rows = try await db.query(
                """
                INSERT INTO sso_domains (domain, tenant_id, challenge) VALUES (\(domain), \(tenant.hex), \(challenge))
                RETURNING \(unescaped: Self.columns)
                """,
                logger: logger
            )
            return Self.claim(try await rows.first(decoding: Row.self).orThrow(RampartError(.internal, "the insert returned nothing")))
        }
    }

    /// Marks the claim verified; already_exists when another tenant verified the domain first.
    func markVerified(_ domain: String, in tenant: TenantID) async throws -> Claim? {
        do {
            let rows = try await database.query(
                """
                UPDATE sso_domains SET verified_at = coalesce(verified_at, now())
                WHERE tenant_id = \(tenant.hex) AND domain = \(domain)
                RETURNING \(unescaped: Self.columns)
                """
            )
            return try await rows.first(decoding: Row.self).map(Self.claim)
        } catch let error as PSQLError where error.sqlState == "23505" {
            throw RampartError(.alreadyExists, "another organization has verified \(domain)", details: ["field": "domain"])
        }
    }

    func remove(_ domain: String, in tenant: TenantID) async throws -> Claim? {
        let rows = try await database.query(
            "DELETE FROM sso_domains WHERE tenant_id = \(tenant.hex) AND domain = \(domain) RETURNING \(unescaped: Self.columns)"
        )
        return try await rows.first(decoding: Row.self).map(Self.claim)
    }
}
