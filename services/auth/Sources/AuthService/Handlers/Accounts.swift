import Logging
import PostgresNIO
import RampartModels
import ServiceKit

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A person's own account: the password changed (AUTH-7) or reset by a mailed link, the
/// address verified (AUTH-8, AUTH-11).
struct AccountHandlers: Sendable {
    let settings: AuthSettings
    let hasher: PasswordHasher
    let users: UserStore
    let links: AccountLinks
    let resetMails: ResetMailQueue
    let factors: SecondFactors
    let sessions: Sessions
    let apiKeys: APIKeyHandlers
    let signInGuard: SignInGuard
    let rpc: RPCClient
    let audit: AuditPublisher
    let notices: SecurityNotices
    let logger: Logger

    private var database: Database { users.database }
    /// AUTH-7: the current password proves it is the user; the other sessions end everywhere.
    func change(_ request: Rampart_V1_ChangePasswordRequest, call: CallContext) async throws -> Rampart_V1_ChangePasswordReply {
        let (tenant, user) = try call.signedIn()
        let email = try await factors.provePassword(
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
            try await factors.store.liftLock(user, on: connection)
        }
        let keep = UUID(uuidString: request.currentSessionID)
        var revoked = 0
        for other in try await users.tenantsWithSessions(user) {
            revoked += try await sessions.revokeAll(user, tenant: other, except: other == tenant ? keep : nil, reason: "password_changed")
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
    func requestReset(
        _ request: Rampart_V1_RequestPasswordResetRequest,
        call: CallContext
    ) async throws -> Rampart_V1_RequestPasswordResetReply {
        guard let email = request.email.utf8.count <= 254 ? EmailAddress(request.email) : nil else {
            throw RampartError.invalidArgument("the email must be a valid address", field: "email")
        }
        if let ip = call.clientIP { try await signInGuard.limit("login", key: ip, call: call) }
        if let user = try await users.find(email), user.status == "active" {
            resetMails.enqueue(user: user.id, email: email.description, logger: logger)
        }
        return Rampart_V1_RequestPasswordResetReply()
    }

    func confirmReset(
        _ request: Rampart_V1_ConfirmPasswordResetRequest,
        call: CallContext
    ) async throws -> Rampart_V1_ConfirmPasswordResetReply {
        let invalid = RampartError(.notFound, "this reset link is not valid: it may have expired or been used", details: ["field": "token"])
        // The policy first, so a rejected password does not spend the token. The link proves
        // the mailbox (AUTH-11): a second factor enrolled before that proof is someone's who
        // may not own the address, and goes.
        let lookup = try await database.transaction { connection -> (user: UUID, email: String, mfaRemoved: Bool)? in
            guard let user = try await links.spend(request.token, .passwordReset, on: connection) else { return nil }
            guard let email = try await users.email(of: user, on: connection) else { return nil }
            let violations = settings.passwordPolicy.violations(request.newPassword, email: EmailAddress(email))
            if !violations.isEmpty {
                throw RampartError(.invalidArgument, "the password needs " + violations.joined(separator: ", "), details: ["field": "new_password"])
            }
            let mfaRemoved = try await factors.store.removeUnproved(user, on: connection)
            try await links.spendAll(.passwordReset, of: user, on: connection)
            // Whoever wore the second factor down had the old password: the owner is let back in.
            try await factors.store.liftLock(user, on: connection)
            try await proveMailbox(user, call: call, rpc: rpc, users: users, on: connection)
            return (user, email, mfaRemoved)
        }
        guard let (user, email, mfaRemoved) = lookup else { throw invalid }
        try await setPassword(request.newPassword, user: user, email: email, field: "new_password")
        // AUTH-11: every credential made before the reset ends, wherever it was made.
        var (sessionsRevoked, apiKeysRevoked) = (0, 0)
        for tenant in try await users.tenantsWithSessions(user) {
            sessionsRevoked += try await sessions.revokeAll(user, tenant: tenant, reason: "password_reset")
            apiKeysRevoked += try await apiKeys.revokeAll(createdBy: user, tenant: tenant, reason: "password_reset")
        }
        var defaultTenant: TenantID?
        if let address = EmailAddress(email) { defaultTenant = try await users.find(address)?.defaultTenant }
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
            try await proveMailbox(user, call: call, rpc: rpc, users: users, on: connection)
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
        guard let (email, verified) = try await users.activeEmail(user) else { throw RampartError(.unauthenticated, "sign in first") }
        guard !verified else { throw RampartError(.failedPrecondition, "your address is verified already") }
        try await signInGuard.limit("verification_resend", key: user.uuidString.lowercased(), call: call, refusal: "too many verification mails")
        try await links.send(.emailVerification, user: user, email: email)
        return Rampart_V1_ResendEmailVerificationReply()
    }

    /// Checks the policy, hashes, stores, and restarts the rotation clock (AUTH-9).
    func setPassword(_ password: String, user: UUID, email: String, field: String) async throws {
        let violations = settings.passwordPolicy.violations(password, email: EmailAddress(email))
        guard violations.isEmpty else {
            throw RampartError(.invalidArgument, "the password needs " + violations.joined(separator: ", "), details: ["field": field])
        }
        try await users.setPasswordHash(try await hasher.hash(password), of: user, changed: true)
    }
}

/// AUTH-11: a link that reached the address (verification, reset, invitation) proves the
/// mailbox: the address becomes verified, and tenants holds the Starter claims of the tenants
/// the user registered for good. tenants first, inside the caller's transaction: when it cannot
/// be told, nothing is written and the link still works.
func proveMailbox(_ user: UUID, call: CallContext, rpc: RPCClient, users: UserStore, on connection: PostgresConnection) async throws {
    guard try await users.lockUnverified(user, on: connection) else { return }
    var request = Rampart_V1_ConfirmOwnerEmailRequest()
    request.userID = user.uuidString.lowercased()
    var context = call
    context.tenantID = nil
    context.principal = Principal(service: .auth)
    _ = try await rpc.call(Subjects.Tenants.confirmOwnerEmail, request, context: context)
    try await users.markVerified(user, on: connection)
}
