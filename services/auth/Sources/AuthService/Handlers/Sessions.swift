import Logging
import NATSKit
import NIOCore
import PostgresNIO
import RampartModels
import RateLimitKit
import ServiceKit
import SodiumKit
import TokenKit

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Sign-in, refresh and sign-out (AUTH-3, AUTH-5, AUTH-6). Sessions and their refresh tokens
/// live in the tenant's schema; a refresh token is `<tenant ID>.<32 random bytes, base64url>`,
/// stored as the SHA-256 of the random part.
struct Sessions: Sendable {
    let settings: AuthSettings
    let hasher: PasswordHasher
    let keys: SigningKeys
    let database: Database
    let rpc: RPCClient
    let rateLimit: RateLimitClient
    let jetStream: JetStream
    let audit: AuditPublisher
    let memberships: Memberships
    let revocations: Revocations
    let users: UserStore
    let apiKeys: APIKeyHandlers
    let links: AccountLinks
    let resetMails: ResetMailQueue
    let notices: SecurityNotices
    let logger: Logger

    /// One answer for every way a sign-in can fail on the credentials (AUTH-5).
    static let invalidCredentials = RampartError(.unauthenticated, "invalid email or password")
    static let invalidRefresh = RampartError(.unauthenticated, "the refresh token is not valid: sign in again")

    // MARK: Sign-in

    func login(_ request: Rampart_V1_LoginRequest, call: CallContext) async throws -> Rampart_V1_TokenReply {
        guard request.email.utf8.count <= 254, request.password.utf8.count <= 1024, let email = EmailAddress(request.email) else {
            throw Self.invalidCredentials
        }
        try await limit("login", key: try signInAddress(call), call: call)
        let user = try await findUser(email)
        // Per account, only wrong passwords count (a unit taken now, given back when it was
        // right); a device that signed in to this account before counts on its own (finding 3).
        let (policy, key) =
            user.flatMap { deviceID(request.deviceToken, user: $0) }.map { ("login_device", $0) } ?? ("login_account", email.description)
        try await limit(policy, key: key, call: call)

        // The hash runs whether or not the account exists, on the same pool: same work, same time.
        let verdict = try await hasher.verify(request.password, against: user?.passwordHash)
        guard let user, verdict.matches, user.status == "active" else {
            await loginFailed(email: email, user: user, call: call)
            throw Self.invalidCredentials
        }
        let tenant = request.tenantID.isEmpty ? user.defaultTenant : TenantID(request.tenantID)
        // The unit goes back while tenants is asked: two round trips at once, both awaited.
        async let refunded: Void = rateLimit.refund(policy: policy, key: key, context: call)
        async let asked = outcome { [user] () async throws -> (member: Rampart_V1_Member, policies: Rampart_V1_TenantPolicies)? in
            guard let tenant else { return nil }
            return try await memberships.activeMemberAndPolicies(user.id, tenant: tenant)
        }
        let (_, standing) = await (refunded, asked)
        guard let tenant else { throw Self.invalidCredentials }
        guard let (member, policies) = try standing.get() else {
            await loginFailed(email: email, user: user, call: call)
            throw Self.invalidCredentials
        }
        // TEN-11, with the answer a wrong password gets: from outside the allowlist, a sign-in
        // must not tell whether the password was right (nor earn an MFA challenge).
        try await admitAddress(policies, tenant: tenant, user: user.id, call: call, refusal: Self.invalidCredentials)
        try checkRotation(user, policies: policies)
        if verdict.needsRehash {
            let hash = try await hasher.hash(request.password)
            try await database.query("UPDATE users SET password_hash = \(hash), updated_at = now() WHERE id = \(user.id)")
        }

        // MFA-4: with MFA on, the password step only earns a challenge for the second step;
        // MFA-7: without it, where the tenant requires it of this member, a way to enrol first.
        if try await mfaEnabled(user.id) { return try await mfaChallenge(.verify, user: user.id, tenant: tenant) }
        if policies.mfaRequirement.covers(member.role) { return try await mfaChallenge(.enroll, user: user.id, tenant: tenant) }
        return try await openSession(
            user: user.id,
            email: email,
            tenant: tenant,
            role: member.role,
            amr: ["pwd"],
            facts: user.tokenFacts,
            call: call
        )
    }

    /// A new session in `tenant` and its first tokens, once every step of the sign-in passed.
    func openSession(
        user: UUID,
        email: EmailAddress,
        tenant: TenantID,
        role: Rampart_V1_MemberRole,
        amr: [String],
        authenticatedAt: Int64? = nil,
        facts: TokenFacts? = nil,
        call: CallContext
    ) async throws -> Rampart_V1_TokenReply {
        let session = UUID()
        // When every factor was proved: now, or for a switch, when the source session proved them.
        let authTime = authenticatedAt ?? WallClock.milliseconds() / 1000
        let refresh = Self.newRefreshToken(tenant)
        let userAgent = String((call.userAgent ?? "").prefix(512))
        let newDevice: Bool = try await database.transaction { connection in
            // A device and address this account never signed in from here, when it has before.
            let history = try await connection.query(
                "SELECT count(*), count(*) FILTER (WHERE user_agent = \(userAgent) AND ip = \(call.clientIP ?? "")) FROM \(schema: tenant).sessions WHERE user_id = \(user)",
                logger: logger
            )
            var newDevice = false
            for try await (all, same) in history.decode((Int64, Int64).self) { newDevice = all > 0 && same == 0 }
            try await connection.query(
                """
                INSERT INTO \(schema: tenant).sessions (id, user_id, ip, user_agent, amr, expires_at, authenticated_at)
                VALUES (\(session), \(user), \(call.clientIP ?? ""), \(userAgent), \(amr.joined(separator: " ")), now() + make_interval(secs => \(Double(settings.sessionSeconds))), to_timestamp(\(Double(authTime))))
                """,
                logger: logger
            )
            try await insertRefresh(refresh.hash, session: session, in: tenant, on: connection)
            // Where the user has sessions: a password change ends them in every such tenant.
            try await connection.query(
                "INSERT INTO user_tenants (user_id, tenant_id) VALUES (\(user), \(tenant.hex)) ON CONFLICT DO NOTHING",
                logger: logger
            )
            return newDevice
        }
        let reply = try await tokens(
            user: user,
            tenant: tenant,
            session: session,
            role: role,
            refresh: refresh.token,
            amr: amr,
            authTime: authTime,
            facts: facts,
            deviceToken: true
        )
        await loggedIn(user: user, email: email, tenant: tenant, session: session, newDevice: newDevice, call: call)
        if newDevice { await notices.send(.newSignIn, to: user, call: call) }
        return reply
    }

    // MARK: Refresh

    /// Rotates: the presented token is spent, a new one comes back. A token presented a second
    /// time means two parties hold it: the session ends for both, and that is audited.
    func refresh(_ request: Rampart_V1_RefreshRequest, call: CallContext) async throws -> Rampart_V1_TokenReply {
        guard let (tenant, secret) = Self.parseRefreshToken(request.refreshToken), try await database.isProvisioned(tenant) else {
            throw Self.invalidRefresh
        }
        enum Outcome {
            case rotated(session: UUID, user: UUID, token: String, amr: String, authTime: Int64)
            case reused(session: UUID, user: UUID)
            /// TEN-11: from outside the allowlist, nothing spent.
            case outsideAllowlist(user: UUID)
            case invalid
        }
        // TEN-11 is decided before the token is spent, so that a refresh refused from outside the
        // allowlist leaves the token for one from inside.
        let policies: Rampart_V1_TenantPolicies
        do {
            policies = try await memberships.tenantPolicies(tenant)
        } catch let error as RampartError where error.code == .notFound {
            throw Self.invalidRefresh
        }
        let admitted = Self.allowlistAdmits(policies, call: call)
        // The successor follows from the token (a keyed hash of it), so a retry within the reuse
        // interval gets the very token the lost answer carried without any token being stored.
        let next = try successor(of: secret, tenant: tenant)
        let outcome: Outcome = try await database.transaction { connection in
            let rows = try await connection.query(
                """
                SELECT r.session_id, s.user_id, s.amr, extract(epoch FROM s.authenticated_at)::bigint, r.used_at IS NOT NULL, s.revoked_at IS NULL AND s.expires_at > now(),
                    r.used_at > now() - make_interval(secs => \(Double(settings.refreshReuseSeconds)))
                    AND EXISTS (SELECT 1 FROM \(schema: tenant).refresh_tokens n WHERE n.token_hash = \(ByteBuffer(bytes: next.hash)) AND n.used_at IS NULL)
                FROM \(schema: tenant).refresh_tokens r JOIN \(schema: tenant).sessions s ON s.id = r.session_id
                WHERE r.token_hash = \(ByteBuffer(bytes: sha256(secret))) FOR UPDATE OF r, s
                """,
                logger: logger
            )
            var found: (UUID, UUID, String, Int64, Bool, Bool, Bool?)?
            for try await row in rows.decode((UUID, UUID, String, Int64, Bool, Bool, Bool?).self) { found = row }
            guard let (session, user, amr, authTime, used, live, retried) = found, live else { return .invalid }
            guard admitted else { return .outsideAllowlist(user: user) }
            if used {
                // Within the reuse interval, and the successor still unused: the same successor.
                if retried == true { return .rotated(session: session, user: user, token: next.token, amr: amr, authTime: authTime) }
                try await revoke(session, reason: "refresh_token_reused", in: tenant, on: connection)
                return .reused(session: session, user: user)
            }
            try await connection.query(
                "UPDATE \(schema: tenant).refresh_tokens SET used_at = now() WHERE token_hash = \(ByteBuffer(bytes: sha256(secret)))",
                logger: logger
            )
            try await insertRefresh(next.hash, session: session, in: tenant, on: connection)
            try await connection.query(
                "UPDATE \(schema: tenant).sessions SET last_seen_at = now() WHERE id = \(session)",
                logger: logger
            )
            return .rotated(session: session, user: user, token: next.token, amr: amr, authTime: authTime)
        }
        switch outcome {
        case .invalid:
            throw Self.invalidRefresh
        case .outsideAllowlist(let user):
            try await admitAddress(policies, tenant: tenant, user: user, call: call)
            throw Self.invalidRefresh
        case .reused(let session, let user):
            logger.warning("refresh token reused: session revoked", metadata: ["tenant": "\(tenant.hex)", "session": "\(session)"])
            try? await revocations.record(.session, tenant: tenant, id: session, user: user, reason: "refresh_token_reused")
            var event = auditEvent(.logout, tenant: tenant, user: user, session: session, call: call)
            event.outcome = .failure
            event.reason = "refresh token reused: the session is revoked"
            await audit.record(event)
            throw Self.invalidRefresh
        case .rotated(let session, let user, let token, let amr, let authTime):
            // The member's current standing, not the one at sign-in: a disabled member stops here.
            guard let member = try await memberships.activeMember(user, tenant: tenant) else {
                try await database.transaction { try await revoke(session, reason: "member_disabled", in: tenant, on: $0) }
                try? await revocations.record(.session, tenant: tenant, id: session, user: user, reason: "member_disabled")
                throw Self.invalidRefresh
            }
            // How the session was established (pwd, or pwd otp mfa) stays true of its later tokens.
            let methods = amr.split(separator: " ").map(String.init)
            // MFA-7: a session opened without MFA ends once the tenant requires it of this member.
            if !methods.contains("mfa"), policies.mfaRequirement.covers(member.role) {
                try await database.transaction { try await revoke(session, reason: "mfa_required", in: tenant, on: $0) }
                try? await revocations.record(.session, tenant: tenant, id: session, user: user, reason: "mfa_required")
                throw RampartError(
                    .unauthenticated,
                    "this organization requires MFA: sign in again to set it up",
                    details: ["reason": "mfa_required"]
                )
            }
            return try await tokens(
                user: user,
                tenant: tenant,
                session: session,
                role: member.role,
                refresh: token,
                amr: methods,
                authTime: authTime
            )
        }
    }

    // MARK: Sign-out

    func logout(_ request: Rampart_V1_LogoutRequest, call: CallContext) async throws -> Rampart_V1_LogoutReply {
        let (tenant, user) = try call.signedIn()
        guard let session = UUID(uuidString: request.sessionID) else {
            throw RampartError.invalidArgument("session_id must be a UUID", field: "session_id")
        }
        guard try await database.isProvisioned(tenant) else { throw RampartError(.notFound, "no such session") }
        let ended: Bool = try await database.transaction { connection in
            let rows = try await connection.query(
                "SELECT 1 FROM \(schema: tenant).sessions WHERE id = \(session) AND user_id = \(user) AND revoked_at IS NULL FOR UPDATE",
                logger: logger
            )
            var mine = false
            for try await _ in rows { mine = true }
            if mine { try await revoke(session, reason: "logout", in: tenant, on: connection) }
            return mine
        }
        // Another user's session, or one already ended: the same answer.
        guard ended else { throw RampartError(.notFound, "no such session") }
        try await revocations.record(.session, tenant: tenant, id: session, user: user, reason: "logout")
        await audit.record(auditEvent(.logout, tenant: tenant, user: user, session: session, call: call))
        return Rampart_V1_LogoutReply()
    }

    // MARK: Pieces

    struct User {
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
    struct TokenFacts {
        var superAdmin = false
        var emailVerified = false
        var passwordChangedAtMs: Int64 = 0
    }

    func findUser(_ email: EmailAddress) async throws -> User? {
        let rows = try await database.query(
            """
            SELECT id, password_hash, status, default_tenant_id, (extract(epoch FROM password_changed_at) * 1000)::bigint,
                   super_admin, email_verified_at IS NOT NULL
            FROM users WHERE email = \(email.description)
            """
        )
        for try await (id, hash, status, tenant, changed, superAdmin, verified) in rows.decode(
            (UUID, String, String, String?, Int64, Bool, Bool).self
        ) {
            return User(
                id: id,
                passwordHash: hash,
                status: status,
                defaultTenant: tenant.flatMap { TenantID($0) },
                passwordChangedAtMs: changed,
                superAdmin: superAdmin,
                emailVerified: verified
            )
        }
        return nil
    }

    /// AUTH-9: a tenant that rotates passwords every N days refuses a password older than that,
    /// after it was verified (so the answer says nothing to someone without it).
    func checkRotation(_ user: User, policies: Rampart_V1_TenantPolicies) throws {
        let days = Int64(policies.passwordRotationDays)
        guard days > 0, WallClock.milliseconds() - user.passwordChangedAtMs > days * 86_400_000 else { return }
        throw RampartError(
            .failedPrecondition,
            "your password is older than this organization allows (\(days) days): reset it to sign in",
            details: ["reason": "password_expired"]
        )
    }

    /// The tenant's policies as tenants knows them now.
    /// The client's address, which every sign-in step is limited by.
    func signInAddress(_ call: CallContext) throws -> String {
        guard let ip = call.clientIP else {
            throw RampartError(.invalidArgument, "the client's IP address is required to sign in", details: ["field": "client_ip"])
        }
        return ip
    }

    /// One call under `policy`, refused past its limit with `refusal` and when to try again.
    func limit(_ policy: String, key: String, call: CallContext, refusal: String = "too many sign-in attempts") async throws {
        switch await rateLimit.check(policy: policy, key: key, context: call) {
        case .allowed, .allowedUnchecked: return
        case .refused(let decision):
            throw RampartError(
                .rateLimited,
                "\(refusal): try again in \(max(1, (decision.retryAfterMs + 999) / 1000)) s",
                details: ["retry_after_ms": String(decision.retryAfterMs), "policy": decision.policy]
            )
        case .unavailable:
            throw RampartError(.unavailable, "sign-in is unavailable right now: try again shortly")
        }
    }

    static func newRefreshToken(_ tenant: TenantID) -> (token: String, hash: [UInt8]) {
        refreshToken(tenant, secret: randomBytes(32))
    }

    static func refreshToken(_ tenant: TenantID, secret: [UInt8]) -> (token: String, hash: [UInt8]) {
        ("\(tenant.hex).\(Base64.encode(secret, variant: Base64.urlSafeNoPadding))", sha256(secret))
    }

    /// The token that replaces the one whose random part is `secret`.
    func successor(of secret: [UInt8], tenant: TenantID) throws -> (token: String, hash: [UInt8]) {
        Self.refreshToken(tenant, secret: try settings.keyEncryption.keyedHash(secret, purpose: "rampart refresh successor"))
    }

    /// The tenant and the random part of a refresh token.
    static func parseRefreshToken(_ token: String) -> (TenantID, [UInt8])? {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard token.utf8.count <= 128, parts.count == 2, let tenant = TenantID(parts[0]), tenant.hex == parts[0],
            let secret = Base64.decode(String(parts[1]), variant: Base64.urlSafeNoPadding), secret.count == 32
        else { return nil }
        return (tenant, secret)
    }

    func insertRefresh(_ hash: [UInt8], session: UUID, in tenant: TenantID, on connection: PostgresConnection) async throws {
        try await connection.query(
            "INSERT INTO \(schema: tenant).refresh_tokens (token_hash, session_id) VALUES (\(ByteBuffer(bytes: hash)), \(session))",
            logger: logger
        )
    }

    func revoke(_ session: UUID, reason: String, in tenant: TenantID, on connection: PostgresConnection) async throws {
        try await connection.query(
            "UPDATE \(schema: tenant).sessions SET revoked_at = now(), revoked_reason = \(reason) WHERE id = \(session) AND revoked_at IS NULL",
            logger: logger
        )
    }

    func tokens(
        user: UUID,
        tenant: TenantID,
        session: UUID,
        role: Rampart_V1_MemberRole,
        refresh: String,
        amr: [String],
        authTime: Int64,
        facts known: TokenFacts? = nil,
        deviceToken: Bool = false
    ) async throws -> Rampart_V1_TokenReply {
        let now = WallClock.milliseconds() / 1000
        var facts = TokenFacts()
        if let known {
            facts = known
        } else {
            let rows = try await database.query(
                """
                SELECT super_admin, email_verified_at IS NOT NULL, (extract(epoch FROM password_changed_at) * 1000)::bigint
                FROM users WHERE id = \(user)
                """
            )
            for try await (superAdmin, verified, changed) in rows.decode((Bool, Bool, Int64).self) {
                facts = TokenFacts(superAdmin: superAdmin, emailVerified: verified, passwordChangedAtMs: changed)
            }
        }
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
        if deviceToken { reply.deviceToken = try self.deviceToken(for: user, passwordChangedAtMs: facts.passwordChangedAtMs) }
        return reply
    }

    // MARK: What others hear

    func loginFailed(email: EmailAddress, user: User?, call: CallContext) async {
        await rateLimit.reportFailure(.login, context: call)
        var anonymous = Rampart_V1_AuditActor()
        anonymous.kind = .anonymous
        anonymous.email = email.description
        let target = ("user", user?.id.uuidString.lowercased() ?? "")
        var event = Rampart_V1_AuditEvent(.loginFailed, tenant: user?.defaultTenant, target: target, call: call, actor: anonymous, service: .auth)
        event.outcome = .failure
        event.reason = "invalid credentials"
        await audit.record(event)
    }

    func loggedIn(user: UUID, email: EmailAddress, tenant: TenantID, session: UUID, newDevice: Bool, call: CallContext) async {
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
        var event = auditEvent(.loginSucceeded, tenant: tenant, user: user, session: session, call: call)
        event.actor.email = email.description
        if newDevice { event.details["new_device"] = "true" }
        await audit.record(event)
        _ = await published
    }

    func auditEvent(_ action: AuditAction, tenant: TenantID, user: UUID, session: UUID, call: CallContext) -> Rampart_V1_AuditEvent {
        let actor = Rampart_V1_AuditActor(principal: Principal(user: user))
        return Rampart_V1_AuditEvent(
            action,
            tenant: tenant,
            target: ("session", session.uuidString.lowercased()),
            call: call,
            actor: actor,
            service: .auth
        )
    }
}

/// `body`'s value or error: what an `async let` holds when it must be awaited on every path.
func outcome<Value>(_ body: () async throws -> Value) async -> Result<Value, any Error> {
    do {
        return .success(try await body())
    } catch {
        return .failure(error)
    }
}
