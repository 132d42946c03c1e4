import Logging
import PostgresNIO
import RampartModels
import ServiceKit
import SodiumKit

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Each tenant's `sso_connections` (SSO-1): the connection's fields, and its client secret sealed
/// with the key ring, bound to its tenant and connection so a row copied elsewhere does not open.
struct SSOConnectionStore: Sendable {
    let database: Database
    let keyRing: KeyRing
    let logger: Logger

    static let sealPurpose = "rampart sso client secret"
    /// A tenant's connections at most: a handful is what anyone uses.
    static let maximumConnections = 20

    static func binding(_ tenant: TenantID, _ id: UUID) -> [UInt8] {
        Array("\(sealPurpose):\(tenant.hex):\(id.uuidString.lowercased())".utf8)
    }

    private static let columns = """
        id, preset, issuer, client_id, domains, test_users, state, email_claim, name_claim, trust_provider_mfa,
        id_token_algorithms, (extract(epoch FROM created_at) * 1000)::bigint, (extract(epoch FROM updated_at) * 1000)::bigint
        """
    private typealias Row = (UUID, String, String, String, [String], [String], String, String?, String?, Bool, [String], Int64, Int64)

    private static func connection(_ row: Row) throws -> SSOConnection {
        var mapping: [String: String] = [:]
        if let email = row.7 { mapping["email"] = email }
        if let name = row.8 { mapping["name"] = name }
        return SSOConnection(
            id: row.0,
            preset: try SSOConnection.Preset(rawValue: row.1).orThrow(RampartError(.internal, "a stored SSO preset is unknown")),
            issuer: row.2,
            clientID: row.3,
            domains: row.4,
            testUsers: row.5,
            state: try SSOConnection.State(rawValue: row.6).orThrow(RampartError(.internal, "a stored SSO state is unknown")),
            claimMapping: mapping,
            trustProviderMFA: row.9,
            idTokenAlgorithms: row.10,
            createdAtMs: row.11,
            updatedAtMs: row.12
        )
    }

    func insert(_ connection: SSOConnection, secret: String, in tenant: TenantID) async throws -> SSOConnection {
        let sealed = keyRing.seal(Array(secret.utf8), associatedData: Self.binding(tenant, connection.id)).text
        return try await database.transaction { db in
            // The count and the insert in one transaction, serialised per tenant by the lock.
            try await db.query("LOCK TABLE \(schema: tenant).sso_connections IN SHARE ROW EXCLUSIVE MODE", logger: logger)
            let count = try await db.query("SELECT count(*) FROM \(schema: tenant).sso_connections", logger: logger)
            guard try await count.first(decoding: Int64.self) ?? 0 < Self.maximumConnections else {
                throw RampartError(.failedPrecondition, "a tenant has at most \(Self.maximumConnections) SSO connections")
            }
            try await db.query(
                "INSERT INTO sso_connection_directory (connection_id, tenant_id) VALUES (\(connection.id), \(tenant.hex))",
                logger: logger
            )
            let rows = try await db.query(
                """
                INSERT INTO \(schema: tenant).sso_connections
                    (id, preset, issuer, client_id, client_secret_sealed, domains, test_users, state, email_claim, name_claim,
                     trust_provider_mfa, id_token_algorithms)
                VALUES (\(connection.id), \(connection.preset.rawValue), \(connection.issuer), \(connection.clientID), \(sealed),
                        \(connection.domains), \(connection.testUsers), \(connection.state.rawValue), \(connection.claimMapping["email"]),
                        \(connection.claimMapping["name"]), \(connection.trustProviderMFA), \(connection.idTokenAlgorithms))
                RETURNING \(unescaped: Self.columns)
                """,
                logger: logger
            )
            return try Self.connection(try await rows.first(decoding: Row.self).orThrow(RampartError(.internal, "the insert returned nothing")))
        }
    }

    func list(in tenant: TenantID) async throws -> [SSOConnection] {
        let rows = try await database.query(
            "SELECT \(unescaped: Self.columns) FROM \(schema: tenant).sso_connections ORDER BY created_at, id"
        )
        var connections: [SSOConnection] = []
        for try await row in rows.decode(Row.self) { connections.append(try Self.connection(row)) }
        return connections
    }

    func find(_ id: UUID, in tenant: TenantID) async throws -> SSOConnection? {
        let rows = try await database.query("SELECT \(unescaped: Self.columns) FROM \(schema: tenant).sso_connections WHERE id = \(id)")
        return try await rows.first(decoding: Row.self).map(Self.connection)
    }

    /// The client secret, opened; only for the token request of a sign-in (and HS256).
    func clientSecret(_ id: UUID, in tenant: TenantID) async throws -> String? {
        let rows = try await database.query("SELECT client_secret_sealed FROM \(schema: tenant).sso_connections WHERE id = \(id)")
        guard let text = try await rows.first(decoding: String.self) else { return nil }
        let secret = try keyRing.open(try SealedSecret(text: text), associatedData: Self.binding(tenant, id))
        return String(decoding: secret, as: UTF8.self)
    }

    /// Applies `change` to the connection under a row lock and stores the result (and a new
    /// secret, when given); answers the connection before and after, nil when there is none.
    func update(
        _ id: UUID,
        in tenant: TenantID,
        secret: String?,
        change: @escaping @Sendable (SSOConnection) async throws -> SSOConnection
    ) async throws -> (before: SSOConnection, after: SSOConnection)? {
        try await database.transaction { db in
            let current = try await db.query(
                "SELECT \(unescaped: Self.columns) FROM \(schema: tenant).sso_connections WHERE id = \(id) FOR UPDATE",
                logger: logger
            )
            guard let before = try await current.first(decoding: Row.self).map(Self.connection) else { return nil }
            let after = try await change(before)
            let sealed = secret.map { keyRing.seal(Array($0.utf8), associatedData: Self.binding(tenant, id)).text }
            let rows = try await db.query(
                """
                UPDATE \(schema: tenant).sso_connections SET
                    issuer = \(after.issuer), client_id = \(after.clientID), domains = \(after.domains), test_users = \(after.testUsers),
                    state = \(after.state.rawValue), email_claim = \(after.claimMapping["email"]), name_claim = \(after.claimMapping["name"]),
                    trust_provider_mfa = \(after.trustProviderMFA), id_token_algorithms = \(after.idTokenAlgorithms),
                    client_secret_sealed = coalesce(\(sealed), client_secret_sealed), updated_at = now()
                WHERE id = \(id)
                RETURNING \(unescaped: Self.columns)
                """,
                logger: logger
            )
            let stored = try Self.connection(try await rows.first(decoding: Row.self).orThrow(RampartError(.internal, "the update returned nothing")))
            return (before, stored)
        }
    }

    func delete(_ id: UUID, in tenant: TenantID) async throws -> SSOConnection? {
        try await database.transaction { db in
            let rows = try await db.query(
                "DELETE FROM \(schema: tenant).sso_connections WHERE id = \(id) RETURNING \(unescaped: Self.columns)",
                logger: logger
            )
            guard let removed = try await rows.first(decoding: Row.self).map(Self.connection) else { return nil }
            try await db.query("DELETE FROM sso_connection_directory WHERE connection_id = \(id)", logger: logger)
            return removed
        }
    }

    /// The connection with this ID, wherever its tenant is: a sign-in names it alone.
    func find(_ id: UUID) async throws -> (tenant: TenantID, connection: SSOConnection)? {
        let rows = try await database.query("SELECT tenant_id FROM sso_connection_directory WHERE connection_id = \(id)")
        guard let tenant = try await rows.first(decoding: String.self).flatMap(TenantID.init), try await database.isProvisioned(tenant),
            let connection = try await find(id, in: tenant)
        else { return nil }
        return (tenant, connection)
    }

    /// The connection that serves people of `domain` in `tenant`: an active one before one in
    /// testing, the oldest first; drafts serve nobody.
    func serving(_ domain: String, in tenant: TenantID) async throws -> SSOConnection? {
        let rows = try await database.query(
            """
            SELECT \(unescaped: Self.columns) FROM \(schema: tenant).sso_connections
            WHERE \(domain) = ANY (domains) AND state IN ('testing', 'active')
            ORDER BY state = 'active' DESC, created_at, id LIMIT 1
            """
        )
        return try await rows.first(decoding: Row.self).map(Self.connection)
    }

    /// The user the provider's `subject` signed in as through this connection before.
    func linkedUser(_ subject: String, connection: UUID, in tenant: TenantID) async throws -> UUID? {
        let rows = try await database.query(
            "SELECT user_id FROM \(schema: tenant).sso_identities WHERE connection_id = \(connection) AND subject = \(subject)"
        )
        return try await rows.first(decoding: UUID.self)
    }

    /// Whether `user` has signed in through one of the tenant's active connections: a way in
    /// that stays when they unlink Google.
    func signsIn(_ user: UUID, in tenant: TenantID) async throws -> Bool {
        let rows = try await database.query(
            """
            SELECT 1 FROM \(schema: tenant).sso_identities i JOIN \(schema: tenant).sso_connections c ON c.id = i.connection_id
            WHERE i.user_id = \(user) AND c.state = 'active' LIMIT 1
            """
        )
        return try await rows.first(decoding: Int32.self) != nil
    }

    /// Links `subject` to `user` for this connection, or notes its use. False when the user is
    /// linked to another subject already: the provider says this is someone else.
    func link(_ subject: String, to user: UUID, connection: UUID, in tenant: TenantID) async throws -> Bool {
        do {
            let rows = try await database.query(
                """
                INSERT INTO \(schema: tenant).sso_identities (connection_id, subject, user_id) VALUES (\(connection), \(subject), \(user))
                ON CONFLICT (connection_id, subject) DO UPDATE SET last_used_at = now()
                    WHERE sso_identities.user_id = excluded.user_id
                RETURNING 1
                """
            )
            return try await rows.first(decoding: Int.self) != nil
        } catch let error as PSQLError where error.sqlState == "23505" {
            return false
        }
    }
}
