import Logging
import NATSKit
import PostgresNIO
import RampartModels
import ServiceKit
import ServiceLifecycle

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// AUTH-4: a user's sessions in a tenant, listed and revoked; every revocation is recorded where
/// the gateway watches, so it refuses the sessions' access tokens at once rather than when they
/// expire.
extension Sessions {
    func listSessions(_ request: Rampart_V1_ListSessionsRequest, call: CallContext) async throws -> Rampart_V1_ListSessionsReply {
        let (tenant, user) = try call.signedIn()
        var reply = Rampart_V1_ListSessionsReply()
        guard try await database.isProvisioned(tenant) else { return reply }
        let rows = try await database.query(
            """
            SELECT id, ip, user_agent, (extract(epoch FROM created_at) * 1000)::bigint, (extract(epoch FROM last_seen_at) * 1000)::bigint
            FROM \(schema: tenant).sessions
            WHERE user_id = \(user) AND revoked_at IS NULL AND expires_at > now() ORDER BY created_at DESC LIMIT 200
            """
        )
        let current = request.currentSessionID.lowercased()
        for try await (id, ip, agent, created, seen) in rows.decode((UUID, String, String, Int64, Int64).self) {
            var session = Rampart_V1_Session()
            session.sessionID = id.uuidString.lowercased()
            session.ip = ip
            session.userAgent = agent
            session.createdAtMs = created
            session.lastSeenAtMs = seen
            session.current = session.sessionID == current
            reply.sessions.append(session)
        }
        return reply
    }

    /// "Log out everywhere": every live session of the caller in the tenant, or all but one.
    func revokeSessions(_ request: Rampart_V1_RevokeSessionsRequest, call: CallContext) async throws -> Rampart_V1_RevokeSessionsReply {
        let (tenant, user) = try call.signedIn()
        let except = request.exceptSessionID.isEmpty ? nil : UUID(uuidString: request.exceptSessionID)
        if !request.exceptSessionID.isEmpty, except == nil {
            throw RampartError.invalidArgument("except_session_id must be a UUID", field: "except_session_id")
        }
        var reply = Rampart_V1_RevokeSessionsReply()
        reply.revoked = Int32(try await revokeAll(user, tenant: tenant, except: except, reason: "logout_everywhere"))
        await audit.record(
            Rampart_V1_AuditEvent(.logout, tenant: tenant, target: ("user", user.uuidString.lowercased()), call: call, service: .auth)
        )
        return reply
    }

    /// Ends the user's live sessions in the tenant (but `except`) and tells the gateway.
    @discardableResult
    func revokeAll(_ user: UUID, tenant: TenantID, except: UUID? = nil, reason: String) async throws -> Int {
        guard try await database.isProvisioned(tenant) else { return 0 }
        let rows = try await database.query(
            """
            UPDATE \(schema: tenant).sessions SET revoked_at = now(), revoked_reason = \(reason)
            WHERE user_id = \(user) AND revoked_at IS NULL AND (\(except)::uuid IS NULL OR id <> \(except)::uuid) RETURNING id
            """
        )
        var revoked: [UUID] = []
        for try await id in rows.decode(UUID.self) { revoked.append(id) }
        for session in revoked { try await revocations.record(.session, tenant: tenant, id: session, user: user, reason: reason) }
        return revoked.count
    }
}

/// Follows `member.disabled` from tenants: a member disabled or removed loses every session and
/// every API key in that tenant at once (AUTH-4, TEN-10).
struct DisabledMembers: Service {
    let sessions: Sessions
    let health: HealthChecks

    func run() async throws {
        let logger = sessions.logger
        await followEvents(sessions.jetStream, "auth-member-disabled", Subjects.MemberEvents.disabled, health: health, logger: logger) { message in
            guard let event = try? Rampart_V1_MemberDisabled(serializedBytes: message.payload), let tenant = TenantID(event.tenantID),
                let user = UUID(uuidString: event.userID)
            else {
                logger.error("unreadable member.disabled dropped", metadata: ["sequence": "\(message.streamSequence)"])
                try? message.terminate()
                return
            }
            let reason = "member_\(event.reason.isEmpty ? "disabled" : event.reason)"
            let count = try await sessions.revokeAll(user, tenant: tenant, reason: reason)
            let keys = try await sessions.apiKeys.revokeAll(createdBy: user, tenant: tenant, reason: reason)
            logger.info(
                "member's sessions and API keys revoked",
                metadata: ["tenant": "\(tenant.hex)", "sessions": "\(count)", "api_keys": "\(keys)"]
            )
            try await message.ack()
        }
    }
}
