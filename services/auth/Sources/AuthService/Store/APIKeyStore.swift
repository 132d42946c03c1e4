import Logging
import NIOCore
import PostgresNIO
import RampartModels
import ServiceKit
import SodiumKit

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The API keys: each tenant's `api_keys`, the global `api_key_directory` (prefix → tenant, for
/// the lookup of a presented key) and `api_key_scopes` (the scope list).
struct APIKeyStore: Sendable {
    let database: Database
    let keyRing: KeyRing
    let logger: Logger

    /// KEY-4's reminder: a key older than this is due for rotation.
    static let rotationReminderDays = 90

    /// A presented key as stored, with what its verification needs.
    struct Stored {
        var id: UUID
        var tenant: TenantID
        var secretHash: [UInt8]
        var hashKeyID: String
        var creator: UUID
        var scopes: [String]
        var ratePerMinute: Int
        var expiresAtMs: Int64
        var live: Bool
    }

    /// What a new key is: its name, scopes, rate, creator and lifetime in seconds (nil: none).
    typealias Fields = (name: String, scopes: [String], ratePerMinute: Int, creator: UUID, lifetime: Double?)

    /// The live keys of `tenant`: every one, or `creator`'s only; with `unusedForDays`, those
    /// not used (nor made) for that long.
    func live(in tenant: TenantID, createdBy creator: UUID?, unusedForDays: Int) async throws -> [Rampart_V1_ApiKey] {
        let rows = try await database.query(
            """
            SELECT \(unescaped: Self.columns) FROM \(schema: tenant).api_keys
            WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
              AND (\(creator)::uuid IS NULL OR created_by = \(creator)::uuid)
              AND (\(unusedForDays)::int = 0 OR coalesce(last_used_at, created_at) < now() - make_interval(days => \(unusedForDays)::int))
            ORDER BY created_at DESC LIMIT 500
            """
        )
        var keys: [Rampart_V1_ApiKey] = []
        for try await row in rows.decode(Row.self) { keys.append(Self.apiKey(row)) }
        return keys
    }

    func liveCount(createdBy user: UUID, in tenant: TenantID, on connection: PostgresConnection) async throws -> Int64 {
        let rows = try await connection.query(
            "SELECT count(*) FROM \(schema: tenant).api_keys WHERE created_by = \(user) AND revoked_at IS NULL",
            logger: logger
        )
        return try await rows.first(decoding: Int64.self) ?? 0
    }

    /// Locks a live key that `user` may manage (their own; any, with `anyCreator`) and returns
    /// its creator. Someone else's key, or another tenant's, is not found.
    func lockManageable(_ id: UUID, by user: UUID, anyCreator: Bool, in tenant: TenantID, on connection: PostgresConnection) async throws -> UUID {
        let creator: UUID? = anyCreator ? nil : user
        let rows = try await connection.query(
            """
            SELECT created_by FROM \(schema: tenant).api_keys
            WHERE id = \(id) AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
              AND (\(creator)::uuid IS NULL OR created_by = \(creator)::uuid)
            FOR UPDATE
            """,
            logger: logger
        )
        guard let found = try await rows.first(decoding: UUID.self) else { throw RampartError(.notFound, "no such API key") }
        return found
    }

    func revoke(_ id: UUID, in tenant: TenantID, on connection: PostgresConnection) async throws {
        try await connection.query(
            "UPDATE \(schema: tenant).api_keys SET revoked_at = now(), revoked_reason = 'revoked' WHERE id = \(id)",
            logger: logger
        )
    }

    /// Revokes every live key `user` created in `tenant`; returns their IDs.
    func revokeAll(createdBy user: UUID, in tenant: TenantID, reason: String) async throws -> [UUID] {
        guard try await database.isProvisioned(tenant) else { return [] }
        let rows = try await database.query(
            """
            UPDATE \(schema: tenant).api_keys SET revoked_at = now(), revoked_reason = \(reason)
            WHERE created_by = \(user) AND revoked_at IS NULL RETURNING id
            """
        )
        var revoked: [UUID] = []
        for try await id in rows.decode(UUID.self) { revoked.append(id) }
        return revoked
    }

    /// Revokes every live key in `tenant`, whoever made it; the keys and their creators.
    func revokeEveryone(in tenant: TenantID, reason: String) async throws -> [(id: UUID, creator: UUID)] {
        guard try await database.isProvisioned(tenant) else { return [] }
        let rows = try await database.query(
            "UPDATE \(schema: tenant).api_keys SET revoked_at = now(), revoked_reason = \(reason) WHERE revoked_at IS NULL RETURNING id, created_by"
        )
        var revoked: [(id: UUID, creator: UUID)] = []
        for try await row in rows.decode((UUID, UUID).self) { revoked.append(row) }
        return revoked
    }

    /// The fields a rotation copies from key `id`; refused when it was rotated already.
    func rotationTemplate(_ id: UUID, in tenant: TenantID, on connection: PostgresConnection) async throws -> (String, [String], Int, Double?) {
        let rows = try await connection.query(
            """
            SELECT name, scopes, rate_limit_per_minute, extract(epoch FROM expires_at - created_at)::float8, replaced_by IS NOT NULL
            FROM \(schema: tenant).api_keys WHERE id = \(id)
            """,
            logger: logger
        )
        guard let (name, scopes, rate, lifetime, replaced) = try await rows.first(decoding: (String, [String], Int, Double?, Bool).self) else {
            throw RampartError(.notFound, "no such API key")
        }
        guard !replaced else { throw RampartError(.failedPrecondition, "this key was rotated already: rotate its successor") }
        return (name, scopes, rate, lifetime)
    }

    /// Key `id` is replaced by `successor` and ends with the grace period (or sooner, if it
    /// expired sooner anyway).
    func replace(_ id: UUID, by successor: UUID, graceSeconds: UInt32, in tenant: TenantID, on connection: PostgresConnection) async throws {
        try await connection.query(
            """
            UPDATE \(schema: tenant).api_keys SET replaced_by = \(successor),
                expires_at = least(coalesce(expires_at, 'infinity'), now() + make_interval(secs => \(Double(graceSeconds))))
            WHERE id = \(id)
            """,
            logger: logger
        )
    }

    /// Makes a key in one transaction: `fields` (inside it) says what the key is; `after` runs
    /// once the row exists. A prefix already taken (about one chance in 10^12) draws again.
    func insert(
        in tenant: TenantID,
        fields: @escaping (PostgresConnection, UUID) async throws -> Fields,
        after: @escaping (PostgresConnection, UUID) async throws -> Void = { _, _ in }
    ) async throws -> Rampart_V1_CreateApiKeyReply {
        for attempt in 1...3 {
            let id = UUID()
            let (key, prefix, secret) = APIKeyFormat.new()
            let hash = try keyRing.keyedHash(Array(prefix.utf8) + secret, purpose: APIKeyFormat.hashPurpose)
            do {
                return try await database.transaction { connection in
                    let made = try await fields(connection, id)
                    try await connection.query(
                        "INSERT INTO api_key_directory (prefix, tenant_id, api_key_id) VALUES (\(prefix), \(tenant.hex), \(id))",
                        logger: logger
                    )
                    let rows = try await connection.query(
                        """
                        INSERT INTO \(schema: tenant).api_keys
                            (id, prefix, secret_hash, hash_key_id, name, created_by, scopes, rate_limit_per_minute, expires_at)
                        VALUES (\(id), \(prefix), \(ByteBuffer(bytes: hash)), \(keyRing.currentKeyID), \(made.name), \(made.creator), \(made.scopes), \(made.ratePerMinute), now() + make_interval(secs => \(made.lifetime)))
                        RETURNING \(unescaped: Self.columns)
                        """,
                        logger: logger
                    )
                    var reply = Rampart_V1_CreateApiKeyReply()
                    for try await row in rows.decode(Row.self) { reply.apiKey = Self.apiKey(row) }
                    reply.key = key
                    try await after(connection, id)
                    return reply
                }
            } catch let error as PSQLError where error.sqlState == "23505" && attempt < 3 {
                continue
            }
        }
        throw RampartError(.internal, "no free API key prefix")
    }

    /// The key a presented prefix names, wherever its tenant is; nil when none is.
    func find(prefix: String) async throws -> Stored? {
        let directory = try await database.query("SELECT tenant_id FROM api_key_directory WHERE prefix = \(prefix)")
        guard let tenant = try await directory.first(decoding: String.self).flatMap(TenantID.init), try await database.isProvisioned(tenant) else {
            return nil
        }
        let rows = try await database.query(
            """
            SELECT id, secret_hash, hash_key_id, created_by, scopes, rate_limit_per_minute,
                coalesce((extract(epoch FROM expires_at) * 1000)::bigint, 0),
                revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
            FROM \(schema: tenant).api_keys WHERE prefix = \(prefix)
            """
        )
        guard
            let (id, hash, hashKeyID, creator, scopes, rate, expiresAtMs, live) = try await rows.first(
                decoding: (UUID, ByteBuffer, String, UUID, [String], Int, Int64, Bool).self
            )
        else { return nil }
        return Stored(
            id: id,
            tenant: tenant,
            secretHash: Array(buffer: hash),
            hashKeyID: hashKeyID,
            creator: creator,
            scopes: scopes,
            ratePerMinute: rate,
            expiresAtMs: expiresAtMs,
            live: live
        )
    }

    func markUsed(_ id: UUID, in tenant: TenantID, from ip: String?) async throws {
        try await database.query("UPDATE \(schema: tenant).api_keys SET last_used_at = now(), last_used_ip = \(ip) WHERE id = \(id)")
    }

    /// The scope list, by name.
    func scopeList() async throws -> [Rampart_V1_ApiKeyScope] {
        var list: [Rampart_V1_ApiKeyScope] = []
        for try await (name, description) in try await database.query("SELECT name, description FROM api_key_scopes ORDER BY name").decode(
            (String, String).self
        ) {
            var scope = Rampart_V1_ApiKeyScope()
            scope.name = name
            scope.description_p = description
            list.append(scope)
        }
        return list
    }

    /// Which of `scopes` are in the scope list.
    func knownScopes(_ scopes: [String]) async throws -> Set<String> {
        var known = Set<String>()
        let rows = try await database.query("SELECT name FROM api_key_scopes WHERE name = ANY(\(scopes))")
        for try await name in rows.decode(String.self) { known.insert(name) }
        return known
    }

    private typealias Row = (UUID, String, String, [String], UUID, Int64, Int64, Int64, String?, Int, UUID?)
    private static let columns = """
        id, name, prefix, scopes, created_by, (extract(epoch FROM created_at) * 1000)::bigint,
        coalesce((extract(epoch FROM expires_at) * 1000)::bigint, 0), coalesce((extract(epoch FROM last_used_at) * 1000)::bigint, 0),
        last_used_ip, rate_limit_per_minute, replaced_by
        """

    private static func apiKey(_ row: Row) -> Rampart_V1_ApiKey {
        var key = Rampart_V1_ApiKey()
        key.apiKeyID = row.0.uuidString.lowercased()
        key.name = row.1
        key.prefix = row.2
        key.scopes = row.3
        key.createdBy = row.4.uuidString.lowercased()
        key.createdAtMs = row.5
        key.expiresAtMs = row.6
        key.lastUsedAtMs = row.7
        key.lastUsedIp = row.8 ?? ""
        key.rateLimitPerMinute = UInt32(row.9)
        key.replacedBy = row.10?.uuidString.lowercased() ?? ""
        key.rotationDue = WallClock.milliseconds() - row.5 > Int64(rotationReminderDays) * 86_400_000
        return key
    }
}
