import Logging
import PostgresNIO
import RampartModels
import ServiceKit

/// The global `sso_domains` (SSO-3): which tenant claimed and proved which email domain.
struct SSODomainStore: Sendable {
    let database: Database
    let logger: Logger

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
}
