import Logging
import PostgresNIO
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
    let logger: Logger

    /// An account as a sign-in needs it.
    struct User: Sendable {
        var id: UUID
        var passwordHash: String
        var status: String
        var defaultTenant: TenantID?
        var passwordChangedAtMs: Int64
        var superAdmin: Bool
        var emailVerified: Bool

        /// What an access token says of the account, as this read found it.
        var tokenFacts: TokenFacts {
            TokenFacts(superAdmin: superAdmin, emailVerified: emailVerified, passwordChangedAtMs: passwordChangedAtMs)
        }
    }

    /// What an access token (and the device token) say of the account.
    struct TokenFacts: Sendable {
        var superAdmin = false
        var emailVerified = false
        var passwordChangedAtMs: Int64 = 0
    }

    func find(_ email: EmailAddress) async throws -> User? {
        let rows = try await database.query(
            """
            SELECT id, password_hash, status, default_tenant_id, (extract(epoch FROM password_changed_at) * 1000)::bigint,
                   super_admin, email_verified_at IS NOT NULL
            FROM users WHERE email = \(email.description)
            """
        )
        return try await rows.first(decoding: (UUID, String, String, String?, Int64, Bool, Bool).self).map {
            (id, hash, status, tenant, changed, superAdmin, verified) in
            User(
                id: id,
                passwordHash: hash,
                status: status,
                defaultTenant: tenant.flatMap { TenantID($0) },
                passwordChangedAtMs: changed,
                superAdmin: superAdmin,
                emailVerified: verified
            )
        }
    }

    /// What an access token says of `user` now (all false for a user not found).
    func tokenFacts(_ user: UUID) async throws -> TokenFacts {
        let rows = try await database.query(
            """
            SELECT super_admin, email_verified_at IS NOT NULL, (extract(epoch FROM password_changed_at) * 1000)::bigint
            FROM users WHERE id = \(user)
            """
        )
        guard let (superAdmin, verified, changed) = try await rows.first(decoding: (Bool, Bool, Int64).self) else { return TokenFacts() }
        return TokenFacts(superAdmin: superAdmin, emailVerified: verified, passwordChangedAtMs: changed)
    }

    // MARK: Registration

    /// The active account with `email`, if there is one.
    func activeAccount(_ email: EmailAddress) async throws -> UUID? {
        let rows = try await database.query("SELECT id FROM users WHERE email = \(email.description) AND status = 'active'")
        return try await rows.first(decoding: UUID.self)
    }

    /// Writes the user `pending`: the address's uniqueness decides here, before anything else is
    /// made; `taken` is the answer when it has an account already.
    func insertPending(_ user: UUID, email: EmailAddress, name: String, passwordHash hash: String, verified: Bool, taken: RampartError) async throws {
        do {
            try await database.query(
                """
                INSERT INTO users (id, email, name, password_hash, status, email_verified_at)
                VALUES (\(user), \(email.description), \(name), \(hash), 'pending', CASE WHEN \(verified) THEN now() END)
                """
            )
        } catch let error as PSQLError where error.sqlState == "23505" {
            throw taken
        }
    }

    /// A pending user active, at home in `tenant` (the one they registered or joined first).
    func activate(_ user: UUID, homeTenant tenant: String) async throws {
        try await database.query("UPDATE users SET status = 'active', default_tenant_id = \(tenant), updated_at = now() WHERE id = \(user)")
    }

    /// A pending user gone: the registration stopped half-way. Best effort; the sweep of
    /// abandoned registrations takes what this misses.
    func removePending(_ user: UUID) async {
        _ = try? await database.query("DELETE FROM users WHERE id = \(user) AND status = 'pending'")
    }

    /// Users left pending longer than `seconds` by a registration that stopped half-way
    /// (auth killed mid-call).
    func removeAbandoned(olderThan seconds: Int) async throws {
        try await database.query(
            """
            DELETE FROM users WHERE status = 'pending'
              AND created_at < now() - make_interval(secs => \(Double(seconds)))
            """
        )
    }

    // MARK: Accounts

    /// An active user's email and password hash; nil for anyone else.
    func activeAccount(_ user: UUID) async throws -> (email: String, passwordHash: String)? {
        let rows = try await database.query("SELECT email, password_hash FROM users WHERE id = \(user) AND status = 'active'")
        return try await rows.first(decoding: (String, String).self)
    }

    /// An active user's email and whether it is verified; nil for anyone else.
    func activeEmail(_ user: UUID) async throws -> (email: String, verified: Bool)? {
        let rows = try await database.query("SELECT email, email_verified_at IS NOT NULL FROM users WHERE id = \(user) AND status = 'active'")
        return try await rows.first(decoding: (String, Bool).self)
    }

    func email(of user: UUID, on connection: PostgresConnection) async throws -> String? {
        let rows = try await connection.query("SELECT email FROM users WHERE id = \(user)", logger: logger)
        return try await rows.first(decoding: String.self)
    }

    /// The tenant `user` registered with (their MFA is reset only there).
    func homeTenant(of user: UUID) async throws -> String? {
        let rows = try await database.query("SELECT default_tenant_id FROM users WHERE id = \(user)")
        return try await rows.first(decoding: String?.self) ?? nil
    }

    /// A new password hash; with `changed`, the rotation clock (AUTH-9) restarts too (not
    /// for a rehash of the same password).
    func setPasswordHash(_ hash: String, of user: UUID, changed: Bool) async throws {
        if changed {
            try await database.query(
                "UPDATE users SET password_hash = \(hash), password_changed_at = now(), updated_at = now() WHERE id = \(user)"
            )
        } else {
            try await database.query("UPDATE users SET password_hash = \(hash), updated_at = now() WHERE id = \(user)")
        }
    }

    /// Locks `user`'s row for the transaction; whether their address is still unverified.
    func lockUnverified(_ user: UUID, on connection: PostgresConnection) async throws -> Bool {
        let rows = try await connection.query("SELECT email_verified_at IS NULL FROM users WHERE id = \(user) FOR UPDATE", logger: logger)
        return try await rows.first(decoding: Bool.self) ?? false
    }

    /// AUTH-11: the address proved (a link reached it).
    func markVerified(_ user: UUID, on connection: PostgresConnection) async throws {
        try await connection.query("UPDATE users SET email_verified_at = now(), updated_at = now() WHERE id = \(user)", logger: logger)
    }

    /// AUTH-11: what gives an account power beyond its own sign-in waits for proof of its
    /// mailbox. Read from the table, not the token, so a proof counts at once.
    func requireVerifiedEmail(_ user: UUID, for action: String) async throws {
        let rows = try await database.query("SELECT email_verified_at IS NOT NULL FROM users WHERE id = \(user)")
        guard try await rows.first(decoding: Bool.self) == true else { throw RampartError.emailUnverified(action) }
    }

    /// PERM-3: the flag on exactly the verified owners of `emails`, off for everyone else; the
    /// users whose flag changed, and how.
    func setSuperAdmins(_ emails: Set<String>) async throws -> [(user: UUID, email: String, granted: Bool)] {
        let listed = Array(emails).sorted()
        let rows = try await database.query(
            """
            UPDATE users SET super_admin = (email = ANY(\(listed)) AND email_verified_at IS NOT NULL), updated_at = now()
            WHERE super_admin IS DISTINCT FROM (email = ANY(\(listed)) AND email_verified_at IS NOT NULL)
            RETURNING id, email, super_admin
            """
        )
        var changed: [(user: UUID, email: String, granted: Bool)] = []
        for try await row in rows.decode((UUID, String, Bool).self) { changed.append(row) }
        return changed
    }

    /// Whether `user` is active and a platform super-admin, as this table says (PERM-3).
    func isActiveSuperAdmin(_ user: UUID) async throws -> Bool {
        let rows = try await database.query("SELECT super_admin FROM users WHERE id = \(user) AND status = 'active'")
        return try await rows.first(decoding: Bool.self) == true
    }

    /// IR-1: `user` disabled everywhere, by whom and why; when, or nil for no such user.
    func isolate(_ user: UUID, by: String, reason: String) async throws -> Int64? {
        let rows = try await database.query(
            """
            UPDATE users SET status = 'disabled', isolated_at = now(), isolated_by = \(by), isolation_reason = \(reason), updated_at = now()
            WHERE id = \(user) AND status IN ('active', 'disabled') RETURNING (extract(epoch FROM isolated_at) * 1000)::bigint
            """
        )
        return try await rows.first(decoding: Int64.self)
    }

    /// `user` active again after an isolation; false when they were not isolated.
    func liftIsolation(_ user: UUID) async throws -> Bool {
        let rows = try await database.query(
            """
            UPDATE users SET status = 'active', isolated_at = NULL, isolated_by = NULL, isolation_reason = NULL, updated_at = now()
            WHERE id = \(user) AND isolated_at IS NOT NULL RETURNING id
            """
        )
        return try await rows.first(decoding: UUID.self) != nil
    }

    func tenantsWithSessions(_ user: UUID) async throws -> [TenantID] {
        let rows = try await database.query("SELECT tenant_id FROM user_tenants WHERE user_id = \(user)")
        var tenants: [TenantID] = []
        for try await id in rows.decode(String.self) { if let tenant = TenantID(id) { tenants.append(tenant) } }
        return tenants
    }
}
