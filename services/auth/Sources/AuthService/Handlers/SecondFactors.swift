import Logging
import PostgresNIO
import RampartModels
import RateLimitKit
import ServiceKit
import SodiumKit

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A signed-in person proving it is them again, and the second step of a sign-in: what the
/// MFA, step-up and password handlers share. A session can be stolen or left open, so what
/// would let its holder take the account over (a new password, an authenticator of their own,
/// MFA off) asks for a proof; every proof of one account, right or wrong, draws on
/// `account_proof`, so a session's holder guesses no faster than a sign-in would let them.
///
/// Issue 26, finding 2: a second factor must not be worn down. Each challenge allows five codes,
/// but someone with the password can open challenge after challenge from rotating addresses, so
/// wrong codes are counted per account across all of them (and across a session's proofs):
/// `AuthSettings.SecondFactorLock`'s threshold within its window refuses every code for a while,
/// longer each time, and mails the owner. Only someone past the password step can count a
/// failure, so knowing an address is not enough to lock its owner out; a password reset, which
/// takes the password from whoever guessed, lifts the lock.
struct SecondFactors: Sendable {
    let store: SecondFactorStore
    let users: UserStore
    let hasher: PasswordHasher
    let signInGuard: SignInGuard
    let rateLimit: RateLimitClient
    let audit: AuditPublisher
    let notices: SecurityNotices

    // MARK: Enrolment

    /// A new unconfirmed secret for `user`: what an authenticator app needs to show its codes.
    func beginEnrolment(_ user: UUID) async throws -> Rampart_V1_MfaEnrollReply {
        guard let email = try await users.activeAccount(user)?.email else { throw RampartError(.unauthenticated, "sign in first") }
        let secret = randomBytes(TOTP.secretBytes)
        guard try await store.beginEnrolment(user, secret: secret) else {
            throw RampartError(.failedPrecondition, "MFA is already on: disable it before enrolling again")
        }
        var reply = Rampart_V1_MfaEnrollReply()
        reply.secret = Base32.encode(secret)
        reply.otpauthUri = TOTP(secret: secret).uri(email: email)
        reply.qrSvg = try QRCode.svg(reply.otpauthUri)
        return reply
    }

    /// The second step a first one earns, or nil when the session may open now. MFA-4: with MFA
    /// on, a challenge for the code; MFA-7: without it, where the tenant requires it of this
    /// member, a way to enrol first.
    func nextStep(
        for user: UUID,
        role: Rampart_V1_MemberRole,
        tenant: TenantID,
        policies: Rampart_V1_TenantPolicies
    ) async throws
        -> Rampart_V1_TokenReply?
    {
        if try await store.isEnabled(for: user) { return try await challenge(.verify, user: user, tenant: tenant) }
        if policies.mfaRequirement.covers(role) { return try await challenge(.enroll, user: user, tenant: tenant) }
        return nil
    }

    /// The password step's answer when a second one is needed: a single-use token for it.
    func challenge(_ purpose: ChallengeToken.Purpose, user: UUID, tenant: TenantID) async throws -> Rampart_V1_TokenReply {
        var reply = Rampart_V1_TokenReply()
        reply.mfaRequired = true
        reply.mfaEnrollmentRequired = purpose == .enroll
        reply.mfaToken = try await store.openChallenge(purpose, user: user, tenant: tenant)
        return reply
    }

    // MARK: Proofs

    func limitProofs(of user: UUID, call: CallContext) async throws {
        try await signInGuard.limit("account_proof", key: user.uuidString.lowercased(), call: call, refusal: "too many attempts to prove it is you")
    }

    /// The account's current password, proved by its signed-in owner; their address. A wrong
    /// one is a fail2ban failure, audited, and answers 403 naming `field`.
    @discardableResult
    func provePassword(_ password: String, user: UUID, tenant: TenantID, field: String, to purpose: String, call: CallContext) async throws -> String
    {
        try await limitProofs(of: user, call: call)
        let found = try await users.activeAccount(user)
        let verdict = try await hasher.verify(String(password.prefix(1024)), against: found?.passwordHash)
        guard let email = found?.email, verdict.matches else {
            await rateLimit.reportFailure(.password, context: call)
            await audited(.passwordProofFailed, about: user, in: tenant, call: call, reason: "a wrong password to \(purpose)", failed: true)
            throw RampartError(.permissionDenied, "the password is not right", details: ["field": field])
        }
        return email
    }

    /// What a second factor presented by a signed-in person came to.
    enum Outcome: Sendable {
        case spent(method: String)
        /// Counted toward the lock; `lock` when this failure started one.
        case wrong(lock: SecondFactorLockStarted?)
        case locked(retryAfterMs: Int64)
    }

    /// A second factor outside sign-in: a current TOTP code newer than the last one accepted
    /// (its step spent, as at sign-in) or, with `backupCodes`, an unused backup code (spent).
    /// The user's TOTP row stays locked to the end of the transaction, which serialises their
    /// codes and the count of wrong ones. Throws when MFA is not on.
    func spend(_ code: String, user: UUID, backupCodes: Bool = true, on connection: PostgresConnection) async throws -> Outcome {
        guard let (totp, lastStep, confirmed) = try await store.lockSecret(user, on: connection), confirmed else {
            throw RampartError(.failedPrecondition, "MFA is not on")
        }
        if let left = try await store.lockLeft(user, on: connection) { return .locked(retryAfterMs: left) }
        if let step = totp.matchingStep(code, at: WallClock.milliseconds() / 1000), step > lastStep {
            try await store.accept(step, of: user, on: connection)
            return .spent(method: "otp")
        }
        if backupCodes, try await store.spendBackupCode(code, of: user, on: connection) != nil { return .spent(method: "backup") }
        return .wrong(lock: try await store.recordFailure(user, on: connection))
    }

    /// The method of a spent second factor; otherwise the refusal (a lock that began is
    /// audited and mailed first).
    @discardableResult
    func settle(_ outcome: Outcome, to purpose: String, tenant: TenantID, user: UUID, call: CallContext) async throws -> String {
        switch outcome {
        case .spent(let method):
            return method
        case .locked(let retryAfterMs):
            throw Self.locked(retryAfterMs: retryAfterMs)
        case .wrong(let lock):
            if let lock { await lockStarted(lock, user: user, tenant: tenant, call: call) }
            throw await wrongProof("code", to: purpose, tenant: tenant, user: user, call: call)
        }
    }

    func wrongProof(_ field: String, to purpose: String, tenant: TenantID, user: UUID, call: CallContext) async -> RampartError {
        await failed("a wrong \(field) to \(purpose)", tenant: tenant, user: user, call: call)
        return RampartError(.permissionDenied, "the \(field) is not right", details: ["field": field])
    }

    /// A wrong proof outside sign-in (whose failures are `login.failed`): a fail2ban failure,
    /// audited for the user's tenant.
    func failed(_ reason: String, tenant: TenantID, user: UUID, call: CallContext) async {
        await rateLimit.reportFailure(.mfa, context: call)
        await audited(.mfaFailed, about: user, in: tenant, call: call, reason: reason, failed: true)
    }

    // MARK: The lock

    /// A new lock, audited in `tenant` and told to the owner, who learns their password is known.
    func lockStarted(_ lock: SecondFactorLockStarted, user: UUID, tenant: TenantID, call: CallContext) async {
        let rules = store.lockRules
        var event = Rampart_V1_AuditEvent(.mfaLocked, tenant: tenant, target: ("user", user.uuidString.lowercased()), call: call, service: .auth)
        event.outcome = .failure
        event.reason = "\(rules.threshold) wrong codes within \(rules.windowSeconds / 3600) hours"
        event.details = ["locked_seconds": String(lock.seconds), "locks": String(lock.locks)]
        await audit.record(event)
        await notices.send(.mfaLocked, to: user, call: call, values: ["minutes": String(max(1, (lock.seconds + 59) / 60))])
    }

    static func locked(retryAfterMs: Int64) -> RampartError {
        RampartError(
            .rateLimited,
            "too many wrong codes for this account: codes are refused for \(max(1, (retryAfterMs + 59_999) / 60_000)) minutes; a password reset lifts this",
            details: ["retry_after_ms": String(retryAfterMs), "reason": "mfa_locked"]
        )
    }

    /// Publishes an event about `user` for `tenant`'s audit log (and its webhooks).
    func audited(
        _ action: AuditAction,
        about user: UUID,
        in tenant: TenantID,
        call: CallContext,
        reason: String = "",
        failed: Bool = false
    ) async {
        var event = Rampart_V1_AuditEvent(action, tenant: tenant, target: ("user", user.uuidString.lowercased()), call: call, service: .auth)
        if failed { event.outcome = .failure }
        event.reason = reason
        await audit.record(event)
    }
}
