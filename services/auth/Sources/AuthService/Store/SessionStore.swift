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

/// Each tenant's `sessions` and `refresh_tokens`, and the global `user_tenants` index of the
/// tenants a user has sessions in. A tenant not provisioned (yet, or any more) has no sessions.
struct SessionStore: Sendable {
    let database: Database
    let sessionSeconds: Int
    /// How long a spent refresh token still gets its successor (a retry after a lost answer).
    let refreshReuseSeconds: Int
    let logger: Logger

    /// What the client that opens or uses a session is.
    struct Client: Sendable {
        var ip: String
        var userAgent: String

        init(_ call: CallContext) {
            ip = call.clientIP ?? ""
            userAgent = String((call.userAgent ?? "").prefix(512))
        }
    }

    /// Opens `session` with its first refresh token; whether it comes from a device and
    /// address this account never signed in from here, when it has before.
    func open(
        _ session: UUID,
        user: UUID,
        tenant: TenantID,
        amr: [String],
        authTime: Int64,
        refresh: RefreshToken,
        client: Client
    ) async throws -> Bool {
        try await database.transaction { connection in
            let history = try await connection.query(
                """
                SELECT count(*) > 0 AND count(*) FILTER (WHERE user_agent = \(client.userAgent) AND ip = \(client.ip)) = 0
                FROM \(schema: tenant).sessions WHERE user_id = \(user)
                """,
                logger: logger
            )
            let newDevice = try await history.first(decoding: Bool.self) ?? false
            try await connection.query(
                """
                INSERT INTO \(schema: tenant).sessions (id, user_id, ip, user_agent, amr, expires_at, authenticated_at)
                VALUES (\(session), \(user), \(client.ip), \(client.userAgent), \(amr.joined(separator: " ")), now() + make_interval(secs => \(Double(sessionSeconds))), to_timestamp(\(Double(authTime))))
                """,
                logger: logger
            )
            try await insert(refresh, session: session, on: connection)
            // Where the user has sessions: a password change ends them in every such tenant.
            try await connection.query(
                "INSERT INTO user_tenants (user_id, tenant_id) VALUES (\(user), \(tenant.hex)) ON CONFLICT DO NOTHING",
                logger: logger
            )
            return newDevice
        }
    }

    /// What presenting a refresh token came to.
    enum Rotation: Sendable {
        /// The token was spent for `successor` (or, retried within the reuse interval, the
        /// successor it was spent for before).
        case rotated(session: UUID, user: UUID, amr: [String], authTime: Int64)
        /// Spent before and presented again: the session is revoked.
        case reused(session: UUID, user: UUID)
        /// TEN-11: from outside the allowlist, nothing spent.
        case outsideAllowlist(user: UUID)
        case invalid
    }

    /// Rotates `presented` to `successor` in one transaction; with `admitted` false, only finds
    /// whose the token is. A token presented a second time means two parties hold it: the
    /// session ends for both.
    func rotate(_ presented: RefreshToken, to successor: RefreshToken, admitted: Bool) async throws -> Rotation {
        let tenant = presented.tenant
        guard try await database.isProvisioned(tenant) else { return .invalid }
        return try await database.transaction { connection in
            let rows = try await connection.query(
                """
                SELECT r.session_id, s.user_id, s.amr, extract(epoch FROM s.authenticated_at)::bigint, r.used_at IS NOT NULL, s.revoked_at IS NULL AND s.expires_at > now(),
                    r.used_at > now() - make_interval(secs => \(Double(refreshReuseSeconds)))
                    AND EXISTS (SELECT 1 FROM \(schema: tenant).refresh_tokens n WHERE n.token_hash = \(ByteBuffer(bytes: successor.hash)) AND n.used_at IS NULL)
                FROM \(schema: tenant).refresh_tokens r JOIN \(schema: tenant).sessions s ON s.id = r.session_id
                WHERE r.token_hash = \(ByteBuffer(bytes: presented.hash)) FOR UPDATE OF r, s
                """,
                logger: logger
            )
            guard
                let (session, user, amr, authTime, used, live, retried) = try await rows.first(
                    decoding: (UUID, UUID, String, Int64, Bool, Bool, Bool?).self
                ),
                live
            else { return .invalid }
            guard admitted else { return .outsideAllowlist(user: user) }
            let methods = amr.split(separator: " ").map(String.init)
            if used {
                // Within the reuse interval, and the successor still unused: the same successor.
                if retried == true { return .rotated(session: session, user: user, amr: methods, authTime: authTime) }
                try await revoke(session, reason: "refresh_token_reused", in: tenant, on: connection)
                return .reused(session: session, user: user)
            }
            try await connection.query(
                "UPDATE \(schema: tenant).refresh_tokens SET used_at = now() WHERE token_hash = \(ByteBuffer(bytes: presented.hash))",
                logger: logger
            )
            try await insert(successor, session: session, on: connection)
            try await connection.query("UPDATE \(schema: tenant).sessions SET last_seen_at = now() WHERE id = \(session)", logger: logger)
            return .rotated(session: session, user: user, amr: methods, authTime: authTime)
        }
    }

    /// How a live session of `user` in `tenant` was established and when its factors were last
    /// proved (Unix seconds), or nil when it has ended.
    func live(_ session: UUID, user: UUID, in tenant: TenantID) async throws -> (amr: [String], authTime: Int64)? {
        guard try await database.isProvisioned(tenant) else { return nil }
        let rows = try await database.query(
            """
            SELECT amr, extract(epoch FROM authenticated_at)::bigint FROM \(schema: tenant).sessions
            WHERE id = \(session) AND user_id = \(user) AND revoked_at IS NULL AND expires_at > now()
            """
        )
        return try await rows.first(decoding: (String, Int64).self).map { (amr, authTime) in (amr.split(separator: " ").map(String.init), authTime) }
    }

    /// The live sessions of `user` in `tenant`, newest first (at most 200).
    func list(of user: UUID, in tenant: TenantID) async throws -> [Rampart_V1_Session] {
        guard try await database.isProvisioned(tenant) else { return [] }
        let rows = try await database.query(
            """
            SELECT id, ip, user_agent, (extract(epoch FROM created_at) * 1000)::bigint, (extract(epoch FROM last_seen_at) * 1000)::bigint
            FROM \(schema: tenant).sessions
            WHERE user_id = \(user) AND revoked_at IS NULL AND expires_at > now() ORDER BY created_at DESC LIMIT 200
            """
        )
        var sessions: [Rampart_V1_Session] = []
        for try await (id, ip, agent, created, seen) in rows.decode((UUID, String, String, Int64, Int64).self) {
            var session = Rampart_V1_Session()
            session.sessionID = id.uuidString.lowercased()
            session.ip = ip
            session.userAgent = agent
            session.createdAtMs = created
            session.lastSeenAtMs = seen
            sessions.append(session)
        }
        return sessions
    }

    /// A step-up: the live session's factors proved again at `authTime` by `amr`; the session's
    /// methods now, or nil when it was not live.
    func stepUp(_ session: UUID, user: UUID, in tenant: TenantID, amr: [String], authTime: Int64) async throws -> [String]? {
        // A session that came through SSO stays one (`sso` first): the step-up proves the
        // factors again, not a different way in.
        let rows = try await database.query(
            """
            UPDATE \(schema: tenant).sessions SET authenticated_at = to_timestamp(\(Double(authTime))), last_seen_at = now(),
                amr = CASE WHEN 'sso' = ANY(string_to_array(amr, ' ')) THEN 'sso ' ELSE '' END || \(amr.joined(separator: " "))
            WHERE id = \(session) AND user_id = \(user) AND revoked_at IS NULL AND expires_at > now() RETURNING amr
            """
        )
        return try await rows.first(decoding: String.self).map { $0.split(separator: " ").map(String.init) }
    }

    /// Ends `session` when it is `user`'s and live; whether it was.
    func end(_ session: UUID, of user: UUID, in tenant: TenantID, reason: String) async throws -> Bool {
        guard try await database.isProvisioned(tenant) else { return false }
        return try await database.transaction { connection in
            let rows = try await connection.query(
                "SELECT 1 FROM \(schema: tenant).sessions WHERE id = \(session) AND user_id = \(user) AND revoked_at IS NULL FOR UPDATE",
                logger: logger
            )
            guard try await rows.first(decoding: Int.self) != nil else { return false }
            try await revoke(session, reason: reason, in: tenant, on: connection)
            return true
        }
    }

    /// Ends `session`; on `connection`, inside its transaction.
    func revoke(_ session: UUID, reason: String, in tenant: TenantID, on connection: PostgresConnection? = nil) async throws {
        let query: PostgresQuery =
            "UPDATE \(schema: tenant).sessions SET revoked_at = now(), revoked_reason = \(reason) WHERE id = \(session) AND revoked_at IS NULL"
        if let connection { try await connection.query(query, logger: logger) } else { try await database.query(query) }
    }

    /// Ends the live sessions of `user` in `tenant` but `except`; the sessions ended.
    func revokeAll(of user: UUID, in tenant: TenantID, except: UUID?, reason: String) async throws -> [UUID] {
        guard try await database.isProvisioned(tenant) else { return [] }
        let rows = try await database.query(
            """
            UPDATE \(schema: tenant).sessions SET revoked_at = now(), revoked_reason = \(reason)
            WHERE user_id = \(user) AND revoked_at IS NULL AND (\(except)::uuid IS NULL OR id <> \(except)::uuid) RETURNING id
            """
        )
        var revoked: [UUID] = []
        for try await id in rows.decode(UUID.self) { revoked.append(id) }
        return revoked
    }

    /// Ends every live session in `tenant`, whoever's; the sessions ended and their users.
    func revokeEveryone(in tenant: TenantID, reason: String) async throws -> [(session: UUID, user: UUID)] {
        guard try await database.isProvisioned(tenant) else { return [] }
        let rows = try await database.query(
            "UPDATE \(schema: tenant).sessions SET revoked_at = now(), revoked_reason = \(reason) WHERE revoked_at IS NULL RETURNING id, user_id"
        )
        var ended: [(session: UUID, user: UUID)] = []
        for try await row in rows.decode((UUID, UUID).self) { ended.append(row) }
        return ended
    }

    private func insert(_ refresh: RefreshToken, session: UUID, on connection: PostgresConnection) async throws {
        try await connection.query(
            "INSERT INTO \(schema: refresh.tenant).refresh_tokens (token_hash, session_id) VALUES (\(ByteBuffer(bytes: refresh.hash)), \(session))",
            logger: logger
        )
    }
}
