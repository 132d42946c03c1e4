import Logging
import NATSKit
import RampartModels
import ServiceKit
import TokenKit

#if canImport(FoundationEssentials)
import FoundationEssentials
import SwiftProtobuf
#else
import Foundation
#endif

/// Opens sessions and signs their tokens, once a sign-in, a switch or a step-up has passed
/// every check: the one place an access token is made (AUTH-3, AUTH-6).
struct SessionIssuer: Sendable {
    let settings: AuthSettings
    let keys: SigningKeys
    let sessions: SessionStore
    let users: UserStore
    let jetStream: JetStream
    let audit: AuditPublisher
    let notices: SecurityNotices

    /// A new session in `tenant` and its first tokens.
    func open(
        user: UUID,
        email: EmailAddress,
        tenant: TenantID,
        role: Rampart_V1_MemberRole,
        amr: [String],
        authenticatedAt: Int64? = nil,
        facts: UserStore.TokenFacts? = nil,
        call: CallContext
    ) async throws -> Rampart_V1_TokenReply {
        let session = UUID()
        // When every factor was proved: now, or for a switch, when the source session proved them.
        let authTime = authenticatedAt ?? WallClock.milliseconds() / 1000
        let refresh = RefreshToken.new(in: tenant)
        let newDevice = try await sessions.open(
            session,
            user: user,
            tenant: tenant,
            amr: amr,
            authTime: authTime,
            refresh: refresh,
            client: SessionStore.Client(call)
        )
        let reply = try await tokens(
            user: user,
            tenant: tenant,
            session: session,
            role: role,
            refresh: refresh.text,
            amr: amr,
            authTime: authTime,
            facts: facts,
            deviceToken: true
        )
        await loggedIn(user: user, email: email, tenant: tenant, session: session, newDevice: newDevice, call: call)
        if newDevice { await notices.send(.newSignIn, to: user, call: call) }
        return reply
    }

    /// An access token for `session` (with `refresh` beside it); `facts` when the caller just
    /// read them, otherwise read now.
    func tokens(
        user: UUID,
        tenant: TenantID,
        session: UUID,
        role: Rampart_V1_MemberRole,
        refresh: String,
        amr: [String],
        authTime: Int64,
        facts known: UserStore.TokenFacts? = nil,
        deviceToken: Bool = false
    ) async throws -> Rampart_V1_TokenReply {
        let now = WallClock.milliseconds() / 1000
        var facts = known ?? UserStore.TokenFacts()
        if known == nil { facts = try await users.tokenFacts(user) }
        let claims = AccessToken(
            iss: settings.issuer,
            sub: user.uuidString.lowercased(),
            tenant: tenant.hex,
            sid: session.uuidString.lowercased(),
            roles: [role.name ?? "member"],
            amr: amr,
            authTime: authTime,
            iat: now,
            exp: now + Int64(settings.accessTokenSeconds),
            jti: randomHex128(),
            superAdmin: facts.superAdmin,
            emailVerified: facts.emailVerified
        )
        var reply = Rampart_V1_TokenReply()
        reply.accessToken = try await keys.signer().sign(claims)
        reply.refreshToken = refresh
        reply.tokenType = "Bearer"
        reply.expiresIn = Int64(settings.accessTokenSeconds)
        reply.sessionID = session.uuidString.lowercased()
        reply.tenantID = tenant.hex
        // A session opened: this device has now signed in to the account (finding 3).
        if deviceToken {
            reply.deviceToken = try DeviceToken.issue(to: user, passwordChangedAtMs: facts.passwordChangedAtMs, keyRing: settings.keyEncryption)
        }
        return reply
    }

    private func loggedIn(user: UUID, email: EmailAddress, tenant: TenantID, session: UUID, newDevice: Bool, call: CallContext) async {
        var activity = Rampart_V1_MemberLoggedIn()
        activity.eventID = UUID().uuidString.lowercased()
        activity.tenantID = tenant.hex
        activity.userID = user.uuidString.lowercased()
        activity.occurredAtMs = WallClock.milliseconds()
        // Both publishes at once; each is awaited, neither fails the sign-in.
        async let published = try? await jetStream.publish(
            try activity.serializedBytes(),
            to: Subjects.MemberEvents.loggedIn,
            messageID: activity.eventID
        )
        var event = Self.auditEvent(.loginSucceeded, tenant: tenant, user: user, session: session, call: call)
        event.actor.email = email.description
        if newDevice { event.details["new_device"] = "true" }
        await audit.record(event)
        _ = await published
    }

    /// An event about `session`, by its user.
    static func auditEvent(_ action: AuditAction, tenant: TenantID, user: UUID, session: UUID, call: CallContext) -> Rampart_V1_AuditEvent {
        Rampart_V1_AuditEvent(
            action,
            tenant: tenant,
            target: ("session", session.uuidString.lowercased()),
            call: call,
            actor: Rampart_V1_AuditActor(principal: Principal(user: user)),
            service: .auth
        )
    }
}
