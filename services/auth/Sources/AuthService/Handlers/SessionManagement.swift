import Logging
import NATSKit
import RampartModels
import ServiceKit
import ServiceLifecycle

#if canImport(FoundationEssentials)
import FoundationEssentials
import SwiftProtobuf
#else
import Foundation
#endif

/// AUTH-4: a user's sessions in a tenant, listed and revoked.
extension Sessions {
    func list(_ request: Rampart_V1_ListSessionsRequest, call: CallContext) async throws -> Rampart_V1_ListSessionsReply {
        let (tenant, user) = try call.signedIn()
        let current = request.currentSessionID.lowercased()
        var reply = Rampart_V1_ListSessionsReply()
        reply.sessions = try await store.list(of: user, in: tenant).map { session in
            var session = session
            session.current = session.sessionID == current
            return session
        }
        return reply
    }

    /// "Log out everywhere": every live session of the caller in the tenant, or all but one.
    func revoke(_ request: Rampart_V1_RevokeSessionsRequest, call: CallContext) async throws -> Rampart_V1_RevokeSessionsReply {
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
        let revoked = try await store.revokeAll(of: user, in: tenant, except: except, reason: reason)
        for session in revoked { try await revocations.record(.session, tenant: tenant, id: session, user: user, reason: reason) }
        return revoked.count
    }
}

/// Follows `member.disabled` from tenants: a member disabled or removed loses every session and
/// every API key in that tenant at once (AUTH-4, TEN-10).
struct DisabledMembers: Service {
    let sessions: Sessions
    let apiKeys: APIKeyHandlers
    let jetStream: JetStream
    let health: HealthChecks
    let logger: Logger

    func run() async throws {
        await followEvents(jetStream, "auth-member-disabled", Subjects.MemberEvents.disabled, health: health, logger: logger) { message in
            guard let event = try? Rampart_V1_MemberDisabled(serializedBytes: message.payload), let tenant = TenantID(event.tenantID),
                let user = UUID(uuidString: event.userID)
            else {
                logger.error("unreadable member.disabled dropped", metadata: ["sequence": "\(message.streamSequence)"])
                try? message.terminate()
                return
            }
            let reason = "member_\(event.reason.isEmpty ? "disabled" : event.reason)"
            let count = try await sessions.revokeAll(user, tenant: tenant, reason: reason)
            let keys = try await apiKeys.revokeAll(createdBy: user, tenant: tenant, reason: reason)
            logger.info(
                "member's sessions and API keys revoked",
                metadata: ["tenant": "\(tenant.hex)", "sessions": "\(count)", "api_keys": "\(keys)"]
            )
            try await message.ack()
        }
    }
}
