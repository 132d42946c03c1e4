import Logging
import PostgresNIO
import RampartModels
import ServiceKit

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Each tenant's `members` (TEN-10) and the global `memberships` index of the tenants each user
/// belongs to, so a person's tenants can be listed without visiting every schema; the index
/// is written in the transaction that adds or removes the member row. A tenant not provisioned
/// here (yet, or any more) has no members.
struct MemberStore: Sendable {
    let database: Database
    let logger: Logger

    static let columns = """
        user_id, email, role, status, (extract(epoch FROM joined_at) * 1000)::bigint,
        isolation_reason, isolated_by, (extract(epoch FROM isolated_at) * 1000)::bigint
        """

    typealias Row = (UUID, String, String, String, Int64, String?, String?, Int64?)

    static func member(_ row: Row) -> Rampart_V1_Member {
        var member = Rampart_V1_Member()
        member.userID = row.0.uuidString.lowercased()
        member.email = row.1
        member.role = Rampart_V1_MemberRole(name: row.2) ?? .unspecified
        member.status = row.3 == "active" ? .active : .disabled
        member.joinedAtMs = row.4
        if let reason = row.5, let by = row.6, let at = row.7 {
            member.isolation.reason = reason
            member.isolation.isolatedBy = by
            member.isolation.isolatedAtMs = at
        }
        return member
    }

    /// `user`'s member row in `tenant`; with `lock`, locked for the transaction of `connection`.
    func find(_ user: UUID, in tenant: TenantID, on connection: PostgresConnection? = nil, lock: Bool = false) async throws -> Rampart_V1_Member? {
        guard try await database.isProvisioned(tenant) else { return nil }
        let query: PostgresQuery =
            "SELECT \(unescaped: Self.columns) FROM \(schema: tenant).members WHERE user_id = \(user)\(unescaped: lock ? " FOR UPDATE" : "")"
        let rows =
            if let connection { try await connection.query(query, logger: logger) } else { try await database.query(query) }
        return try await rows.first(decoding: Row.self).map { row in Self.member(row) }
    }

    /// The tenant's status in the registry with `user`'s member row, in one query; nil when the
    /// registry has no such tenant. Throws `RampartError.noSuchTenant` when the schema is gone.
    func withTenantStatus(_ user: UUID, in tenant: TenantID) async throws -> (status: Rampart_V1_TenantStatus?, member: Rampart_V1_Member?)? {
        let rows = try await database.query(
            """
            SELECT t.status, m.* FROM tenants t
            LEFT JOIN (SELECT \(unescaped: Self.columns) FROM \(schema: tenant).members WHERE user_id = \(user)) m ON true
            WHERE t.id = \(tenant.hex)
            """
        )
        let columns = (String, UUID?, String?, String?, String?, Int64?, String?, String?, Int64?).self
        guard let (status, id, email, role, memberStatus, joined, reason, by, at) = try await rows.first(decoding: columns) else { return nil }
        let tenantStatus = Rampart_V1_TenantStatus(name: status)
        guard let id, let email, let role, let memberStatus, let joined else { return (tenantStatus, nil) }
        return (tenantStatus, Self.member((id, email, role, memberStatus, joined, reason, by, at)))
    }

    /// Every member of `tenant`, in the order they joined.
    func list(in tenant: TenantID) async throws -> [Rampart_V1_Member] {
        let rows = try await database.query("SELECT \(unescaped: Self.columns) FROM \(schema: tenant).members ORDER BY joined_at, user_id")
        var members: [Rampart_V1_Member] = []
        for try await row in rows.decode(Row.self) { members.append(Self.member(row)) }
        return members
    }

    func hasMember(_ email: EmailAddress, in tenant: TenantID) async throws -> Bool {
        let rows = try await database.query("SELECT 1 FROM \(schema: tenant).members WHERE email = \(email.description)")
        return try await rows.first(decoding: Int.self) != nil
    }

    /// A new active member (and its index row); nil when `user` is a member already.
    func insert(_ user: UUID, email: String, role: String, in tenant: TenantID, on connection: PostgresConnection) async throws -> Rampart_V1_Member?
    {
        let rows = try await connection.query(
            """
            INSERT INTO \(schema: tenant).members (user_id, email, role, status) VALUES (\(user), \(email), \(role), 'active')
            ON CONFLICT DO NOTHING RETURNING \(unescaped: Self.columns)
            """,
            logger: logger
        )
        guard let member = try await rows.first(decoding: Row.self).map({ row in Self.member(row) }) else { return nil }
        try await index(user, in: tenant, on: connection)
        return member
    }

    /// The owner named at sign-up as the first member; nothing when they are one already.
    func insertOwner(_ user: UUID, email: String, in tenant: TenantID) async throws {
        try await database.transaction { connection in
            try await connection.query(
                "INSERT INTO \(schema: tenant).members (user_id, email, role, status) VALUES (\(user), \(email), 'owner', 'active') ON CONFLICT DO NOTHING",
                logger: logger
            )
            try await index(user, in: tenant, on: connection)
        }
    }

    /// The active owners of `tenant`, locked for the transaction: the last-owner rule is judged
    /// on them while no other change can make or take one.
    func lockActiveOwners(in tenant: TenantID, on connection: PostgresConnection) async throws -> Set<UUID> {
        let rows = try await connection.query(
            "SELECT user_id FROM \(schema: tenant).members WHERE role = 'owner' AND status = 'active' FOR UPDATE",
            logger: logger
        )
        var owners: Set<UUID> = []
        for try await owner in rows.decode(UUID.self) { owners.insert(owner) }
        return owners
    }

    /// `user`'s new role and status.
    func update(_ user: UUID, role: String, status: String, in tenant: TenantID, on connection: PostgresConnection) async throws -> Rampart_V1_Member
    {
        try await returning(
            "UPDATE \(schema: tenant).members SET role = \(role), status = \(status), updated_at = now() WHERE user_id = \(user) RETURNING \(unescaped: Self.columns)",
            on: connection
        )
    }

    /// IR-1: `user` disabled, with who isolated them, when and why.
    func isolate(_ user: UUID, by: String, reason: String, in tenant: TenantID, on connection: PostgresConnection) async throws -> Rampart_V1_Member {
        try await returning(
            """
            UPDATE \(schema: tenant).members SET status = 'disabled', isolated_at = now(), isolated_by = \(by),
                isolation_reason = \(reason), updated_at = now()
            WHERE user_id = \(user) RETURNING \(unescaped: Self.columns)
            """,
            on: connection
        )
    }

    /// `user` active again, the isolation cleared.
    func liftIsolation(_ user: UUID, in tenant: TenantID, on connection: PostgresConnection) async throws -> Rampart_V1_Member {
        try await returning(
            """
            UPDATE \(schema: tenant).members SET status = 'active', isolated_at = NULL, isolated_by = NULL,
                isolation_reason = NULL, updated_at = now()
            WHERE user_id = \(user) RETURNING \(unescaped: Self.columns)
            """,
            on: connection
        )
    }

    /// `user` no longer a member of `tenant` (nor in the index).
    func remove(_ user: UUID, from tenant: TenantID, on connection: PostgresConnection) async throws {
        try await connection.query("DELETE FROM \(schema: tenant).members WHERE user_id = \(user)", logger: logger)
        try await connection.query("DELETE FROM memberships WHERE user_id = \(user) AND tenant_id = \(tenant.hex)", logger: logger)
    }

    /// The tenants `user` belongs to by the index, in the order they joined, with each one's
    /// name and status; deleted and deleting ones left out.
    func tenants(of user: UUID) async throws -> [(tenant: TenantID, name: String, status: Rampart_V1_TenantStatus)] {
        let rows = try await database.query(
            """
            SELECT t.id, t.name, t.status FROM memberships m JOIN tenants t ON t.id = m.tenant_id
            WHERE m.user_id = \(user) AND t.status NOT IN ('deleting', 'deleted') ORDER BY m.joined_at, t.id
            """
        )
        var found: [(tenant: TenantID, name: String, status: Rampart_V1_TenantStatus)] = []
        for try await (id, name, status) in rows.decode((String, String, String).self) {
            if let tenant = TenantID(id), let status = Rampart_V1_TenantStatus(name: status) { found.append((tenant, name, status)) }
        }
        return found
    }

    private func index(_ user: UUID, in tenant: TenantID, on connection: PostgresConnection) async throws {
        try await connection.query(
            "INSERT INTO memberships (user_id, tenant_id) VALUES (\(user), \(tenant.hex)) ON CONFLICT DO NOTHING",
            logger: logger
        )
    }

    /// The one member row an UPDATE … RETURNING wrote (the caller holds its lock).
    private func returning(_ query: PostgresQuery, on connection: PostgresConnection) async throws -> Rampart_V1_Member {
        let rows = try await connection.query(query, logger: logger)
        guard let row = try await rows.first(decoding: Row.self) else { throw RampartError.internalError() }
        return Self.member(row)
    }
}
