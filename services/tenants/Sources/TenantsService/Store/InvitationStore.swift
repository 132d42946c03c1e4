import Logging
import NIOCore
import PostgresNIO
import RampartModels
import ServiceKit

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Each tenant's `invitations` (TEN-10): a token is stored only as its hash.
struct InvitationStore: Sendable {
    let database: Database
    let logger: Logger

    /// The condition on an invitation row that can still be accepted.
    private static let usable = "accepted_at IS NULL AND cancelled_at IS NULL AND expires_at > now()"

    func insert(
        _ invitation: Rampart_V1_Invitation,
        role: String,
        tokenHash: [UInt8],
        in tenant: TenantID,
        on connection: PostgresConnection
    ) async throws {
        try await connection.query(
            """
            INSERT INTO \(schema: tenant).invitations (id, email, role, token_hash, invited_by, expires_at)
            VALUES (\(invitation.invitationID)::uuid, \(invitation.email), \(role), \(ByteBuffer(bytes: tokenHash)), \(invitation.invitedBy),
                to_timestamp(\(Double(invitation.expiresAtMs) / 1000)))
            """,
            logger: logger
        )
    }

    /// The open invitations of `tenant`, oldest first.
    func open(in tenant: TenantID) async throws -> [Rampart_V1_Invitation] {
        let rows = try await database.query(
            """
            SELECT id, email, role, (extract(epoch FROM expires_at) * 1000)::bigint, invited_by FROM \(schema: tenant).invitations
            WHERE \(unescaped: Self.usable) ORDER BY created_at
            """
        )
        var invitations: [Rampart_V1_Invitation] = []
        for try await (id, email, role, expires, by) in rows.decode((UUID, String, String, Int64, String).self) {
            invitations.append(Self.invitation(id, email, role, expires, by))
        }
        return invitations
    }

    /// Whom a usable token with this hash invites, as what, until when.
    func usable(_ tokenHash: [UInt8], in tenant: TenantID) async throws -> (email: String, role: String, expiresAtMs: Int64)? {
        let rows = try await database.query(
            """
            SELECT email, role, (extract(epoch FROM expires_at) * 1000)::bigint FROM \(schema: tenant).invitations
            WHERE token_hash = \(ByteBuffer(bytes: tokenHash)) AND \(unescaped: Self.usable)
            """
        )
        return try await rows.first(decoding: (String, String, Int64).self)
    }

    /// The usable invitation with this token hash, locked for the transaction.
    func lockUsable(
        _ tokenHash: [UInt8],
        in tenant: TenantID,
        on connection: PostgresConnection
    ) async throws -> (id: UUID, email: String, role: String)? {
        let rows = try await connection.query(
            """
            SELECT id, email, role FROM \(schema: tenant).invitations
            WHERE token_hash = \(ByteBuffer(bytes: tokenHash)) AND \(unescaped: Self.usable) FOR UPDATE
            """,
            logger: logger
        )
        return try await rows.first(decoding: (UUID, String, String).self)
    }

    /// Open invitation `id`, locked for the transaction; nil when accepted, cancelled or expired.
    func lockOpen(_ id: UUID, in tenant: TenantID, on connection: PostgresConnection) async throws -> Rampart_V1_Invitation? {
        let rows = try await connection.query(
            """
            SELECT email, role, (extract(epoch FROM expires_at) * 1000)::bigint, invited_by FROM \(schema: tenant).invitations
            WHERE id = \(id) AND \(unescaped: Self.usable) FOR UPDATE
            """,
            logger: logger
        )
        return try await rows.first(decoding: (String, String, Int64, String).self).map { (email, role, expires, by) in
            Self.invitation(id, email, role, expires, by)
        }
    }

    func markAccepted(_ id: UUID, by user: UUID, in tenant: TenantID, on connection: PostgresConnection) async throws {
        try await connection.query(
            "UPDATE \(schema: tenant).invitations SET accepted_at = now(), accepted_by = \(user) WHERE id = \(id)",
            logger: logger
        )
    }

    func cancel(_ id: UUID, in tenant: TenantID, on connection: PostgresConnection) async throws {
        try await connection.query("UPDATE \(schema: tenant).invitations SET cancelled_at = now() WHERE id = \(id)", logger: logger)
    }

    /// A new token and expiry for `id`: the old token dies in the same statement.
    func replaceToken(_ id: UUID, tokenHash: [UInt8], expiresAtMs: Int64, in tenant: TenantID, on connection: PostgresConnection) async throws {
        try await connection.query(
            """
            UPDATE \(schema: tenant).invitations SET token_hash = \(ByteBuffer(bytes: tokenHash)), expires_at = to_timestamp(\(Double(expiresAtMs) / 1000))
            WHERE id = \(id)
            """,
            logger: logger
        )
    }

    private static func invitation(_ id: UUID, _ email: String, _ role: String, _ expires: Int64, _ by: String) -> Rampart_V1_Invitation {
        var invitation = Rampart_V1_Invitation()
        invitation.invitationID = id.uuidString.lowercased()
        invitation.email = email
        invitation.role = Rampart_V1_MemberRole(name: role) ?? .unspecified
        invitation.expiresAtMs = expires
        invitation.invitedBy = by
        return invitation
    }
}
