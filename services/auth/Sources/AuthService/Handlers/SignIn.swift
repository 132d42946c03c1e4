import Logging
import RampartModels
import RateLimitKit
import ServiceKit

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Sign-in (AUTH-3, AUTH-5): the password step, and with MFA on (MFA-4) or required of the
/// member (MFA-7) the second step it earns.
struct SignIn: Sendable {
    let settings: AuthSettings
    let hasher: PasswordHasher
    let users: UserStore
    let memberships: Memberships
    let rateLimit: RateLimitClient
    let signInGuard: SignInGuard
    let factors: SecondFactors
    let issuer: SessionIssuer
    let audit: AuditPublisher

    private var store: SecondFactorStore { factors.store }

    // MARK: The password step

    func login(_ request: Rampart_V1_LoginRequest, call: CallContext) async throws -> Rampart_V1_TokenReply {
        guard request.email.utf8.count <= 254, request.password.utf8.count <= 1024, let email = EmailAddress(request.email) else {
            throw SignInGuard.invalidCredentials
        }
        try await signInGuard.limit("login", key: try signInGuard.clientAddress(call), call: call)
        let user = try await users.find(email)
        // Per account, only wrong passwords count (a unit taken now, given back when it was
        // right); a device that signed in to this account before counts on its own (finding 3).
        let device = user.flatMap {
            DeviceToken.deviceID(request.deviceToken, user: $0.id, passwordChangedAtMs: $0.passwordChangedAtMs, keyRing: settings.keyEncryption)
        }
        let (policy, key) = device.map { ("login_device", $0) } ?? ("login_account", email.description)
        try await signInGuard.limit(policy, key: key, call: call)

        // The hash runs whether or not the account exists, on the same pool: same work, same time.
        let verdict = try await hasher.verify(request.password, against: user?.passwordHash)
        guard let user, verdict.matches, user.status == "active" else {
            await loginFailed(email: email, user: user, call: call)
            throw SignInGuard.invalidCredentials
        }
        let tenant = request.tenantID.isEmpty ? user.defaultTenant : TenantID(request.tenantID)
        // The unit goes back while tenants is asked: two round trips at once, both awaited.
        async let refunded: Void = rateLimit.refund(policy: policy, key: key, context: call)
        async let asked = outcome { [user] () async throws -> (member: Rampart_V1_Member, policies: Rampart_V1_TenantPolicies)? in
            guard let tenant else { return nil }
            return try await memberships.activeMemberAndPolicies(user.id, tenant: tenant)
        }
        let (_, standing) = await (refunded, asked)
        guard let tenant else { throw SignInGuard.invalidCredentials }
        guard let (member, policies) = try standing.get() else {
            await loginFailed(email: email, user: user, call: call)
            throw SignInGuard.invalidCredentials
        }
        // TEN-11, with the answer a wrong password gets: from outside the allowlist, a sign-in
        // must not tell whether the password was right (nor earn an MFA challenge).
        try await signInGuard.admitAddress(policies, tenant: tenant, user: user.id, call: call, refusal: SignInGuard.invalidCredentials)
        // SSO-2: where the tenant enforces SSO, a password opens no session but a break-glass
        // owner's, and theirs is recorded every time. The refusal is a wrong password's: the
        // password's rightness is not told to whoever tries it.
        guard await signInGuard.admitWithoutSSO(policies, role: member.role, tenant: tenant, user: user.id, email: email.description, call: call)
        else {
            await loginFailed(email: email, user: user, call: call, reason: "sso enforced: sign in with SSO")
            throw SignInGuard.invalidCredentials
        }
        try SignInGuard.checkRotation(user, policies: policies)
        if verdict.needsRehash { try await users.setPasswordHash(try await hasher.hash(request.password), of: user.id, changed: false) }

        if let step = try await factors.nextStep(for: user.id, role: member.role, tenant: tenant, policies: policies) { return step }
        return try await issuer.open(user: user.id, email: email, tenant: tenant, role: member.role, amr: ["pwd"], facts: user.tokenFacts, call: call)
    }

    private func loginFailed(email: EmailAddress, user: UserStore.User?, call: CallContext, reason: String = "invalid credentials") async {
        let target = ("user", user?.id.uuidString.lowercased() ?? "")
        await signInGuard.failed(.loginFailed, email: email.description, tenant: user?.defaultTenant, target: target, reason: reason, call: call)
    }

    // MARK: The second step (MFA-4, MFA-7)

    static let invalidChallenge = RampartError(
        .unauthenticated,
        "this sign-in has expired or was already used: sign in again",
        details: ["field": "mfa_token"]
    )

    /// MFA-7: enrolment during a sign-in the tenant's policy stopped for it. The token proves the
    /// password step, as the session would; the code step then confirms the secret.
    func enrollAtSignIn(_ request: Rampart_V1_LoginMfaEnrollRequest, call: CallContext) async throws -> Rampart_V1_MfaEnrollReply {
        try await signInGuard.limit("login", key: try signInGuard.clientAddress(call), call: call)
        guard let tokenHash = ChallengeToken.hash(request.mfaToken), let user = try await store.enrollingUser(tokenHash) else {
            throw Self.invalidChallenge
        }
        return try await factors.beginEnrolment(user)
    }

    /// The code step: a TOTP code newer than the last one accepted, or an unused backup code,
    /// opens the session the password step asked for; after an enrolment at sign-in, the first
    /// code confirms it and the backup codes come with the tokens. Every wrong code is a
    /// fail2ban failure and an audited failed sign-in; the fifth spends the challenge.
    func loginMFA(_ request: Rampart_V1_LoginMfaRequest, call: CallContext) async throws -> Rampart_V1_TokenReply {
        try await signInGuard.limit("login", key: try signInGuard.clientAddress(call), call: call)
        guard let tokenHash = ChallengeToken.hash(request.mfaToken) else { throw Self.invalidChallenge }
        let code = String(request.code.prefix(32))
        let now = WallClock.milliseconds() / 1000
        enum Outcome {
            case signedIn(user: UUID, tenant: TenantID, method: String, backupCodesLeft: Int)
            case enrolled(user: UUID, tenant: TenantID, backupCodes: [String])
            case wrongCode(user: UUID, tenant: TenantID, lock: SecondFactorLockStarted?)
            /// Finding 2: too many wrong codes for this account lately.
            case locked(retryAfterMs: Int64)
            case enrolmentNotStarted
            case invalid
        }
        let outcome: Outcome = try await store.database.transaction { [store] connection in
            guard let (user, tenant, purpose) = try await store.lockChallenge(tokenHash, on: connection) else { return .invalid }
            // Verifying needs the enrolled secret; enrolling, the one login_mfa_enroll just made.
            // MFA turned off, reset or enrolled elsewhere since the password step: sign in again.
            guard let (totp, lastStep, confirmed) = try await store.lockSecret(user, on: connection) else {
                return purpose == .enroll ? .enrolmentNotStarted : .invalid
            }
            guard confirmed == (purpose == .verify) else { return .invalid }
            if purpose == .verify, let left = try await store.lockLeft(user, on: connection) { return .locked(retryAfterMs: left) }
            // A step accepted once is never accepted again, nor any before it.
            if let step = totp.matchingStep(code, at: now), step > lastStep {
                try await store.accept(step, of: user, on: connection)
                try await store.spendChallenges(of: user, on: connection)
                if purpose == .enroll {
                    return .enrolled(user: user, tenant: tenant, backupCodes: try await store.replaceBackupCodes(user, on: connection))
                }
                return .signedIn(user: user, tenant: tenant, method: "otp", backupCodesLeft: -1)
            }
            if purpose == .verify, let left = try await store.spendBackupCode(code, of: user, on: connection) {
                try await store.spendChallenges(of: user, on: connection)
                return .signedIn(user: user, tenant: tenant, method: "backup", backupCodesLeft: left)
            }
            try await store.countWrongCode(tokenHash, on: connection)
            // A wrong code of an enrolled secret counts toward the account's lock: the password
            // step succeeded, so only someone who knows the password can run it up.
            let lock = purpose == .verify ? try await store.recordFailure(user, on: connection) : nil
            return .wrongCode(user: user, tenant: tenant, lock: lock)
        }
        switch outcome {
        case .invalid:
            throw Self.invalidChallenge
        case .enrolmentNotStarted:
            throw RampartError(
                .failedPrecondition,
                "start the enrolment first: POST /v1/auth/login/mfa/enroll with this mfa_token",
                details: ["field": "mfa_token"]
            )
        case .locked(let retryAfterMs):
            throw SecondFactors.locked(retryAfterMs: retryAfterMs)
        case .wrongCode(let user, let tenant, let lock):
            if let lock { await factors.lockStarted(lock, user: user, tenant: tenant, call: call) }
            await rateLimit.reportFailure(.mfa, context: call)
            await factors.audited(.loginFailed, about: user, in: tenant, call: call, reason: "invalid MFA code", failed: true)
            throw RampartError(.unauthenticated, "the code is not right", details: ["field": "code"])
        case .enrolled(let user, let tenant, let codes):
            await factors.audited(.mfaEnrolled, about: user, in: tenant, call: call)
            var reply = try await completeSignIn(user: user, tenant: tenant, amr: ["pwd", "otp", "mfa"], call: call)
            reply.backupCodes = codes
            return reply
        case .signedIn(let user, let tenant, let method, let left):
            if method == "backup" {
                await factors.audited(.mfaBackupCodeUsed, about: user, in: tenant, call: call, reason: "\(left) backup codes left")
            }
            return try await completeSignIn(user: user, tenant: tenant, amr: ["pwd", method, "mfa"], call: call)
        }
    }

    /// The session the password step asked for, for the member's standing now (not then).
    private func completeSignIn(user: UUID, tenant: TenantID, amr: [String], call: CallContext) async throws -> Rampart_V1_TokenReply {
        guard let (member, policies) = try await memberships.activeMemberAndPolicies(user, tenant: tenant),
            let email = try await users.activeAccount(user).flatMap({ EmailAddress($0.email) })
        else { throw Self.invalidChallenge }
        // TEN-11 again: the second step may come from another address than the first.
        try await signInGuard.admitAddress(policies, tenant: tenant, user: user, call: call)
        return try await issuer.open(user: user, email: email, tenant: tenant, role: member.role, amr: amr, call: call)
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
