import Logging
import NATSKit
import NIOCore
import PostgresNIO
import RampartModels
import ServiceKit
import ServiceLifecycle
import SodiumKit
import Synchronization

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Single-use account tokens (AUTH-7 password reset, AUTH-8 email verification): 32 random
/// bytes, base64url, stored as their SHA-256; the token goes to the address alone, queued for
/// the mail sender (AUTH-10) on `rampart.events.mail.auth`, sealed to its key.
struct AccountLinks: Sendable {
    let database: Database
    let jetStream: JetStream
    let mailTokenKey: SealedBox.PublicKey
    let logger: Logger

    enum Purpose: String {
        case passwordReset = "password_reset"
        case emailVerification = "email_verification"

        var seconds: Int { self == .passwordReset ? AuthSettings.passwordResetSeconds : AuthSettings.emailVerificationSeconds }
    }

    func send(_ purpose: Purpose, user: UUID, email: String) async throws {
        let secret = randomBytes(32)
        let expires = WallClock.milliseconds() + Int64(purpose.seconds) * 1000
        let rows = try await database.query(
            """
            WITH token AS (
                INSERT INTO account_tokens (token_hash, purpose, user_id, expires_at)
                VALUES (\(ByteBuffer(bytes: sha256(secret))), \(purpose.rawValue), \(user), to_timestamp(\(Double(expires) / 1000)))
            )
            SELECT name FROM users WHERE id = \(user)
            """
        )
        var mail = Rampart_V1_MailRequest()
        for try await name in rows.decode(String.self) { mail.recipientName = name }
        mail.eventID = UUID().uuidString.lowercased()
        // The purpose's name is the template's.
        mail.template = purpose.rawValue
        mail.to = email
        MailTokens.seal(Base64.encode(secret, variant: Base64.urlSafeNoPadding), into: &mail, by: .auth, to: mailTokenKey)
        mail.expiresAtMs = expires
        mail.occurredAtMs = WallClock.milliseconds()
        _ = try await jetStream.publish(try mail.serializedBytes(), to: Subjects.MailEvents.requested(by: .auth), messageID: mail.eventID)
    }

    /// Spends every open token of `purpose` for `user`: a reset, used or superseded, leaves no
    /// other reset link that works.
    func spendAll(_ purpose: Purpose, of user: UUID, on connection: PostgresConnection) async throws {
        try await connection.query(
            "UPDATE account_tokens SET used_at = now() WHERE user_id = \(user) AND purpose = \(purpose.rawValue) AND used_at IS NULL",
            logger: logger
        )
    }

    /// Spends a token: the user it was for, once, before it expires; nil otherwise.
    func spend(_ token: String, _ purpose: Purpose, on connection: PostgresConnection) async throws -> UUID? {
        guard token.utf8.count <= 64, let secret = Base64.decode(token, variant: Base64.urlSafeNoPadding), secret.count == 32 else { return nil }
        let rows = try await connection.query(
            """
            UPDATE account_tokens SET used_at = now()
            WHERE token_hash = \(ByteBuffer(bytes: sha256(secret))) AND purpose = \(purpose.rawValue) AND used_at IS NULL AND expires_at > now()
            RETURNING user_id
            """,
            logger: logger
        )
        return try await rows.first(decoding: UUID.self)
    }
}

/// Reset links leave after the answer (issue 26, finding 13): a reset request does the same
/// work for a known and an unknown address (its checks, the per-address limit, one lookup), so
/// the time it takes tells nobody which addresses have accounts; the token's write and the
/// mail's publish happen here, in `ResetMailSender`. Bounded: past `capacity` waiting, a request
/// is dropped and logged (the per-address limit makes that a flood, not a person).
final class ResetMailQueue: Sendable {
    static let capacity = 1024
    /// A link that fails this many times (its user gone, say) is given up, logged.
    static let attempts = 5
    private let waiting = Mutex<[(user: UUID, email: String, failures: Int)]>([])
    fileprivate let wake = WakeSignal()

    init() {}

    func enqueue(user: UUID, email: String, failures: Int = 0, logger: Logger) {
        guard failures < Self.attempts else {
            logger.error("reset mail given up after \(failures) failures", metadata: ["user": "\(user)"])
            return
        }
        let queued = waiting.withLock { waiting in
            guard waiting.count < Self.capacity else { return false }
            waiting.append((user, email, failures))
            return true
        }
        if queued { wake.signal() } else { logger.warning("reset mail dropped: the queue is full", metadata: ["user": "\(user)"]) }
    }

    fileprivate func takeAll() -> [(user: UUID, email: String, failures: Int)] {
        waiting.withLock { waiting in
            defer { waiting.removeAll() }
            return waiting
        }
    }
}

/// Sends what `ResetMailQueue` holds, until shutdown; a link that cannot be sent now (NATS or
/// the database away) is tried again.
struct ResetMailSender: Service {
    let queue: ResetMailQueue
    let links: AccountLinks
    let health: HealthChecks
    let logger: Logger

    func run() async throws {
        await repeatUntilShutdown("reset mails", logger: logger) {
            await health.waitUntilStarted()
            while !Task.isCancelled {
                await queue.wake.wait(upTo: .seconds(5))
                let batch = queue.takeAll()
                for (index, mail) in batch.enumerated() {
                    do {
                        try await links.send(.passwordReset, user: mail.user, email: mail.email)
                    } catch {
                        // Back in line, this one and the rest of the batch, before the retry's pause.
                        queue.enqueue(user: mail.user, email: mail.email, failures: mail.failures + 1, logger: logger)
                        for later in batch[(index + 1)...] {
                            queue.enqueue(user: later.user, email: later.email, failures: later.failures, logger: logger)
                        }
                        throw error
                    }
                }
            }
        }
    }
}

/// AUTH-11: a link that reached the address (verification, reset, invitation) proves the
/// mailbox: the address becomes verified, and tenants holds the Starter claims of the tenants
/// the user registered for good. tenants first, inside the caller's transaction: when it cannot
/// be told, nothing is written and the link still works.
func proveMailbox(_ user: UUID, call: CallContext, rpc: RPCClient, on connection: PostgresConnection, logger: Logger) async throws {
    let rows = try await connection.query("SELECT email_verified_at IS NULL FROM users WHERE id = \(user) FOR UPDATE", logger: logger)
    var unverified = false
    for try await value in rows.decode(Bool.self) { unverified = value }
    guard unverified else { return }
    var request = Rampart_V1_ConfirmOwnerEmailRequest()
    request.userID = user.uuidString.lowercased()
    var context = call
    context.tenantID = nil
    context.principal = Principal(service: .auth)
    _ = try await rpc.call(Subjects.Tenants.confirmOwnerEmail, request, context: context)
    try await connection.query("UPDATE users SET email_verified_at = now(), updated_at = now() WHERE id = \(user)", logger: logger)
}

extension Sessions {
    /// An active user's email and password hash; nil for anyone else.
    func activeAccount(_ user: UUID) async throws -> (email: String, passwordHash: String)? {
        let rows = try await database.query("SELECT email, password_hash FROM users WHERE id = \(user) AND status = 'active'")
        return try await rows.first(decoding: (String, String).self)
    }

    /// AUTH-7: the current password proves it is the user; the other sessions end everywhere.
    func changePassword(_ request: Rampart_V1_ChangePasswordRequest, call: CallContext) async throws -> Rampart_V1_ChangePasswordReply {
        let (tenant, user) = try call.signedIn()
        let email = try await provePassword(
            request.currentPassword,
            user: user,
            tenant: tenant,
            field: "current_password",
            to: "change it",
            call: call
        )
        try await setPassword(request.newPassword, user: user, email: email, field: "new_password")
        // A reset link mailed before the change must not undo it; whoever guessed codes with the
        // old password no longer has it (finding 2).
        try await database.transaction { connection in
            try await links.spendAll(.passwordReset, of: user, on: connection)
            try await liftSecondFactorLock(user, on: connection)
        }
        let keep = UUID(uuidString: request.currentSessionID)
        var revoked = 0
        for other in try await users.tenantsWithSessions(user) {
            revoked += try await revokeAll(user, tenant: other, except: other == tenant ? keep : nil, reason: "password_changed")
        }
        await audit.record(
            Rampart_V1_AuditEvent(.passwordChanged, tenant: tenant, target: ("user", user.uuidString.lowercased()), call: call, service: .auth)
        )
        await notices.send(.passwordChanged, to: user, call: call)
        var reply = Rampart_V1_ChangePasswordReply()
        reply.otherSessionsRevoked = Int32(revoked)
        return reply
    }

    /// Always the same empty answer, so the form tells nobody which addresses have accounts.
    func requestPasswordReset(
        _ request: Rampart_V1_RequestPasswordResetRequest,
        call: CallContext
    ) async throws -> Rampart_V1_RequestPasswordResetReply {
        guard let email = request.email.utf8.count <= 254 ? EmailAddress(request.email) : nil else {
            throw RampartError.invalidArgument("the email must be a valid address", field: "email")
        }
        if let ip = call.clientIP { try await limit("login", key: ip, call: call) }
        if let user = try await findUser(email), user.status == "active" {
            resetMails.enqueue(user: user.id, email: email.description, logger: logger)
        }
        return Rampart_V1_RequestPasswordResetReply()
    }

    func confirmPasswordReset(
        _ request: Rampart_V1_ConfirmPasswordResetRequest,
        call: CallContext
    ) async throws -> Rampart_V1_ConfirmPasswordResetReply {
        let invalid = RampartError(.notFound, "this reset link is not valid: it may have expired or been used", details: ["field": "token"])
        // The policy first, so a rejected password does not spend the token. The link proves
        // the mailbox (AUTH-11): a second factor enrolled before that proof is someone's who
        // may not own the address, and goes.
        let lookup = try await database.transaction { connection -> (user: UUID, email: String, mfaRemoved: Bool)? in
            guard let user = try await links.spend(request.token, .passwordReset, on: connection) else { return nil }
            let rows = try await connection.query("SELECT email FROM users WHERE id = \(user)", logger: logger)
            var found: String?
            for try await email in rows.decode(String.self) { found = email }
            guard let email = found else { return nil }
            let violations = settings.passwordPolicy.violations(request.newPassword, email: EmailAddress(email))
            if !violations.isEmpty {
                throw RampartError(.invalidArgument, "the password needs " + violations.joined(separator: ", "), details: ["field": "new_password"])
            }
            let removed = try await connection.query(
                """
                DELETE FROM mfa_totp t USING users u
                WHERE t.user_id = \(user) AND u.id = t.user_id
                  AND (u.email_verified_at IS NULL OR t.confirmed_at IS NULL OR t.confirmed_at < u.email_verified_at)
                RETURNING t.confirmed_at IS NOT NULL
                """,
                logger: logger
            )
            var mfaRemoved = false
            for try await confirmed in removed.decode(Bool.self) { mfaRemoved = confirmed }
            if mfaRemoved { try await connection.query("DELETE FROM mfa_backup_codes WHERE user_id = \(user)", logger: logger) }
            try await links.spendAll(.passwordReset, of: user, on: connection)
            // Whoever wore the second factor down had the old password: the owner is let back in.
            try await liftSecondFactorLock(user, on: connection)
            try await proveMailbox(user, call: call, rpc: rpc, on: connection, logger: logger)
            return (user, email, mfaRemoved)
        }
        guard let (user, email, mfaRemoved) = lookup else { throw invalid }
        try await setPassword(request.newPassword, user: user, email: email, field: "new_password")
        // AUTH-11: every credential made before the reset ends, wherever it was made.
        var (sessionsRevoked, apiKeysRevoked) = (0, 0)
        for tenant in try await users.tenantsWithSessions(user) {
            sessionsRevoked += try await revokeAll(user, tenant: tenant, reason: "password_reset")
            apiKeysRevoked += try await apiKeys.revokeAll(createdBy: user, tenant: tenant, reason: "password_reset")
        }
        let defaultTenant = try await findUser(EmailAddress(email)!)?.defaultTenant
        var event = Rampart_V1_AuditEvent(
            .passwordReset,
            tenant: defaultTenant,
            target: ("user", user.uuidString.lowercased()),
            call: call,
            service: .auth
        )
        event.details = ["sessions_revoked": String(sessionsRevoked), "api_keys_revoked": String(apiKeysRevoked), "mfa_removed": String(mfaRemoved)]
        await audit.record(event)
        var values = ["by_reset": "true"]
        if mfaRemoved { values["mfa_removed"] = "true" }
        await notices.send(.passwordChanged, to: user, call: call, values: values)
        return Rampart_V1_ConfirmPasswordResetReply()
    }

    func verifyEmail(_ request: Rampart_V1_VerifyEmailRequest, call: CallContext) async throws -> Rampart_V1_VerifyEmailReply {
        let user = try await database.transaction { connection -> UUID? in
            guard let user = try await links.spend(request.token, .emailVerification, on: connection) else { return nil }
            try await proveMailbox(user, call: call, rpc: rpc, on: connection, logger: logger)
            return user
        }
        guard let user else {
            throw RampartError(.notFound, "this verification link is not valid: it may have expired or been used", details: ["field": "token"])
        }
        var reply = Rampart_V1_VerifyEmailReply()
        reply.userID = user.uuidString.lowercased()
        return reply
    }

    /// AUTH-8: another verification mail for a signed-in user whose address is not verified yet,
    /// at most 3 an hour per account (each mail's link works; the newest need not be used).
    func resendEmailVerification(
        _ request: Rampart_V1_ResendEmailVerificationRequest,
        call: CallContext
    ) async throws -> Rampart_V1_ResendEmailVerificationReply {
        let (_, user) = try call.signedIn()
        let rows = try await database.query(
            "SELECT email, email_verified_at IS NOT NULL FROM users WHERE id = \(user) AND status = 'active'"
        )
        var found: (String, Bool)?
        for try await row in rows.decode((String, Bool).self) { found = row }
        guard let (email, verified) = found else { throw RampartError(.unauthenticated, "sign in first") }
        guard !verified else { throw RampartError(.failedPrecondition, "your address is verified already") }
        try await limit("verification_resend", key: user.uuidString.lowercased(), call: call, refusal: "too many verification mails")
        try await links.send(.emailVerification, user: user, email: email)
        return Rampart_V1_ResendEmailVerificationReply()
    }

    /// Checks the policy, hashes, stores, and restarts the rotation clock (AUTH-9).
    func setPassword(_ password: String, user: UUID, email: String, field: String) async throws {
        let violations = settings.passwordPolicy.violations(password, email: EmailAddress(email))
        guard violations.isEmpty else {
            throw RampartError(.invalidArgument, "the password needs " + violations.joined(separator: ", "), details: ["field": field])
        }
        let hash = try await hasher.hash(password)
        try await database.query(
            "UPDATE users SET password_hash = \(hash), password_changed_at = now(), updated_at = now() WHERE id = \(user)"
        )
    }
}
