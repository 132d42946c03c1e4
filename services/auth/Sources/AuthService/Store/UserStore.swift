import RampartModels
import ServiceKit

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The `users` table and the index of the tenants each user has sessions in.
struct UserStore: Sendable {
    let database: Database

    /// AUTH-11: what gives an account power beyond its own sign-in waits for proof of its
    /// mailbox. Read from the table, not the token, so a proof counts at once.
    func requireVerifiedEmail(_ user: UUID, for action: String) async throws {
        let rows = try await database.query("SELECT email_verified_at IS NOT NULL FROM users WHERE id = \(user)")
        for try await verified in rows.decode(Bool.self) where verified { return }
        throw RampartError.emailUnverified(action)
    }

    func tenantsWithSessions(_ user: UUID) async throws -> [TenantID] {
        let rows = try await database.query("SELECT tenant_id FROM user_tenants WHERE user_id = \(user)")
        var tenants: [TenantID] = []
        for try await id in rows.decode(String.self) { if let tenant = TenantID(id) { tenants.append(tenant) } }
        return tenants
    }
}
