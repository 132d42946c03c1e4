import Logging
import NIOCore
import PostgresNIO
import RampartModels
import ServiceKit
import SodiumKit

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// TOTP MFA (MFA-1..6): enrolment, the sign-in step, backup codes, turning it off and an
/// admin's reset. A user's MFA is theirs across every tenant they belong to, so it lives with
/// the user in auth's global tables: the secret sealed with the key-encryption key ring (its key
/// ID inside the sealed value, for rotation) and bound to the user, and the backup codes as
/// keyed hashes.
extension Sessions {
    static let totpSealPurpose = "rampart totp secret"
    static let backupCodePurpose = "rampart mfa backup code"
    static let backupCodeCount = 10

    /// The password again first: a stolen session without MFA must not enrol the thief's
    /// authenticator (and lock the owner out behind it).
    func enrollTOTP(_ request: Rampart_V1_MfaEnrollRequest, call: CallContext) async throws -> Rampart_V1_MfaEnrollReply {
        let (tenant, user) = try call.signedIn()
        try await provePassword(request.password, user: user, tenant: tenant, field: "password", to: "enrol an authenticator", call: call)
        return try await beginEnrolment(user)
    }

    /// A new unconfirmed secret for `user`: what an authenticator app needs to show its codes.
    func beginEnrolment(_ user: UUID) async throws -> Rampart_V1_MfaEnrollReply {
        guard let email = try await activeAccount(user)?.email else { throw RampartError(.unauthenticated, "sign in first") }
        let secret = randomBytes(TOTP.secretBytes)
        let sealed = settings.keyEncryption.seal(secret, associatedData: Self.totpBinding(user))
        // A new secret replaces an unconfirmed one; a confirmed one stays until MFA is disabled.
        let rows = try await database.query(
            """
            INSERT INTO mfa_totp (user_id, secret_sealed) VALUES (\(user), \(ByteBuffer(bytes: sealed.bytes)))
            ON CONFLICT (user_id) DO UPDATE SET secret_sealed = excluded.secret_sealed, created_at = now(), last_step = -1
                WHERE mfa_totp.confirmed_at IS NULL
            RETURNING user_id
            """
        )
        var written = false
        for try await _ in rows.decode(UUID.self) { written = true }
        guard written else { throw RampartError(.failedPrecondition, "MFA is already on: disable it before enrolling again") }
        let totp = TOTP(secret: secret)
        var reply = Rampart_V1_MfaEnrollReply()
        reply.secret = Base32.encode(secret)
        reply.otpauthUri = totp.uri(email: email)
        reply.qrSvg = try QRCode.svg(reply.otpauthUri)
        return reply
    }

    /// A current code turns MFA on, and its time step is spent (never accepted again); the
    /// answer is ten new backup codes. A wrong code counts as a failure for fail2ban (RL-3).
    func confirmTOTP(_ request: Rampart_V1_MfaConfirmRequest, call: CallContext) async throws -> Rampart_V1_MfaConfirmReply {
        let (tenant, user) = try call.signedIn()
        let now = WallClock.milliseconds() / 1000
        let confirmed = try await database.transaction { connection -> [String]? in
            let rows = try await connection.query(
                "SELECT secret_sealed FROM mfa_totp WHERE user_id = \(user) AND confirmed_at IS NULL FOR UPDATE",
                logger: logger
            )
            var sealedBytes: [UInt8]?
            for try await bytes in rows.decode(ByteBuffer.self) { sealedBytes = Array(buffer: bytes) }
            guard let sealedBytes else {
                throw RampartError(.failedPrecondition, "no enrolment to confirm: start one with enroll (or MFA is already on)")
            }
            let secret = try settings.keyEncryption.open(try SealedSecret(bytes: sealedBytes), associatedData: Self.totpBinding(user))
            guard let step = TOTP(secret: secret).matchingStep(request.code, at: now) else { return nil }
            try await connection.query(
                "UPDATE mfa_totp SET confirmed_at = now(), last_step = \(step) WHERE user_id = \(user)",
                logger: logger
            )
            return try await replaceBackupCodes(user, on: connection)
        }
        guard let codes = confirmed else {
            await mfaFailed("a wrong code to confirm the enrolment", tenant: tenant, user: user, call: call)
            throw RampartError(.invalidArgument, "the code is not the one your app shows now", details: ["field": "code"])
        }
        await audited(.mfaEnrolled, about: user, in: tenant, call: call)
        var reply = Rampart_V1_MfaConfirmReply()
        reply.backupCodes = codes
        return reply
    }

    /// Ten new backup codes for `user`, the old ones gone; the codes, to show once.
    func replaceBackupCodes(_ user: UUID, on connection: PostgresConnection) async throws -> [String] {
        let codes = (0..<Self.backupCodeCount).map { _ in Self.newBackupCode() }
        try await connection.query("DELETE FROM mfa_backup_codes WHERE user_id = \(user)", logger: logger)
        for code in codes {
            let hash = try backupCodeHash(code)
            try await connection.query(
                "INSERT INTO mfa_backup_codes (user_id, code_hash, key_id) VALUES (\(user), \(ByteBuffer(bytes: hash)), \(settings.keyEncryption.currentKeyID))",
                logger: logger
            )
        }
        return codes
    }

    // MARK: Managing it (MFA-3, disabling)

    func mfaStatus(_ request: Rampart_V1_MfaStatusRequest, call: CallContext) async throws -> Rampart_V1_MfaStatusReply {
        let (_, user) = try call.signedIn()
        let rows = try await database.query(
            """
            SELECT (extract(epoch FROM confirmed_at) * 1000)::bigint,
                (SELECT count(*) FROM mfa_backup_codes b WHERE b.user_id = t.user_id AND b.used_at IS NULL)::integer
            FROM mfa_totp t WHERE user_id = \(user) AND confirmed_at IS NOT NULL
            """
        )
        var reply = Rampart_V1_MfaStatusReply()
        for try await (enabledAt, remaining) in rows.decode((Int64, Int32).self) {
            reply.enabled = true
            reply.enabledAtMs = enabledAt
            reply.backupCodesRemaining = remaining
        }
        return reply
    }

    /// Ten new backup codes for a current TOTP code (not a backup code, nor a session alone:
    /// someone holding a stolen session must not mint a second factor of their own).
    func regenerateBackupCodes(_ request: Rampart_V1_MfaProofRequest, call: CallContext) async throws -> Rampart_V1_MfaConfirmReply {
        let (tenant, user) = try call.signedIn()
        try await limitProofs(of: user, call: call)
        let (outcome, codes) = try await database.transaction { connection -> (SecondFactor, [String]) in
            let outcome = try await spendSecondFactor(request.code, user: user, backupCodes: false, on: connection)
            guard case .spent = outcome else { return (outcome, []) }
            return (outcome, try await replaceBackupCodes(user, on: connection))
        }
        try await settle(outcome, to: "regenerate the backup codes", tenant: tenant, user: user, call: call)
        await audited(.mfaBackupCodesRegenerated, about: user, in: tenant, call: call)
        var reply = Rampart_V1_MfaConfirmReply()
        reply.backupCodes = codes
        return reply
    }

    /// MFA off, for a second factor now (a current TOTP code or an unused backup code; the
    /// password alone is not one, and a stolen session with a phished password must not shed
    /// the factor): the secret, the backup codes and any open sign-in challenge go.
    func disableMFA(_ request: Rampart_V1_MfaProofRequest, call: CallContext) async throws -> Rampart_V1_MfaDisableReply {
        let (tenant, user) = try call.signedIn()
        guard request.password.isEmpty else {
            throw RampartError.invalidArgument(
                "turning MFA off needs a code from your app or a backup code; without either, an owner or admin of your home organization resets it",
                field: "password"
            )
        }
        try await limitProofs(of: user, call: call)
        let outcome = try await database.transaction { connection -> SecondFactor in
            let outcome = try await spendSecondFactor(request.code, user: user, on: connection)
            guard case .spent = outcome else { return outcome }
            try await removeSecondFactor(user, on: connection)
            return outcome
        }
        try await settle(outcome, to: "turn MFA off", tenant: tenant, user: user, call: call)
        await audited(.mfaDisabled, about: user, in: tenant, call: call)
        await notices.send(.mfaDisabled, to: user, call: call)
        return Rampart_V1_MfaDisableReply()
    }

    /// MFA-6: an owner or admin of the calling tenant turns another member's MFA off (an owner's
    /// only by an owner; only in the member's home tenant), for a member who lost both phone and
    /// backup codes; audited in the tenant.
    func resetMFA(_ request: Rampart_V1_MfaResetRequest, call: CallContext) async throws -> Rampart_V1_MfaResetReply {
        let (tenant, admin) = try call.signedIn()
        guard request.userID.utf8.count == 36, let target = UUID(uuidString: request.userID) else {
            throw RampartError(.invalidArgument, "user_id must be a member's user ID", details: ["field": "user_id"])
        }
        // A stolen session must not shed its second factor: one's own MFA goes off only with
        // the proof DELETE /v1/auth/mfa asks for.
        guard target != admin else {
            throw RampartError(
                .permissionDenied,
                "your own MFA is turned off with DELETE /v1/auth/mfa and a current code or your password, not by an admin reset",
                details: ["reason": "own_account"]
            )
        }
        guard let adminMember = try await memberships.activeMember(admin, tenant: tenant), [.owner, .admin].contains(adminMember.role) else {
            throw RampartError(.permissionDenied, "only an owner or admin resets a member's MFA")
        }
        guard let member = try await memberships.activeMember(target, tenant: tenant) else {
            throw RampartError(.notFound, "no such member", details: ["field": "user_id"])
        }
        guard member.role != .owner || adminMember.role == .owner else {
            throw RampartError(.permissionDenied, "only an owner resets an owner's MFA")
        }
        // MFA belongs to the person (one authenticator for all their tenants), so an admin of a
        // tenant they only joined must not turn it off everywhere: only their home tenant's can.
        let home = try await database.query("SELECT default_tenant_id FROM users WHERE id = \(target)")
        var homeTenant: String?
        for try await id in home.decode(String?.self) { homeTenant = id }
        guard homeTenant == tenant.hex else {
            throw RampartError(
                .permissionDenied,
                "this member's MFA is theirs in every organization they belong to: only their home organization's owners and admins reset it",
                details: ["reason": "not_home_tenant"]
            )
        }
        let removed = try await database.transaction { try await removeSecondFactor(target, on: $0) }
        if removed {
            await audited(.mfaReset, about: target, in: tenant, call: call)
            await notices.send(.mfaReset, to: target, call: call, values: ["tenant": tenant.hex])
        }
        var reply = Rampart_V1_MfaResetReply()
        reply.reset = removed
        return reply
    }

    /// The confirmed TOTP of `user`, locked for this transaction, and the last step accepted;
    /// throws when MFA is not on.
    private func lockedSecret(_ user: UUID, on connection: PostgresConnection) async throws -> (totp: TOTP, lastStep: Int64) {
        let rows = try await connection.query(
            "SELECT secret_sealed, last_step FROM mfa_totp WHERE user_id = \(user) AND confirmed_at IS NOT NULL FOR UPDATE",
            logger: logger
        )
        for try await (sealed, lastStep) in rows.decode((ByteBuffer, Int64).self) {
            let secret = try settings.keyEncryption.open(try SealedSecret(bytes: Array(buffer: sealed)), associatedData: Self.totpBinding(user))
            return (TOTP(secret: secret), lastStep)
        }
        throw RampartError(.failedPrecondition, "MFA is not on")
    }

    /// What a second factor presented by a signed-in person came to.
    enum SecondFactor: Sendable {
        case spent(method: String)
        /// Counted toward the lock; `lock` when this failure started one.
        case wrong(lock: SecondFactorLockStarted?)
        case locked(retryAfterMs: Int64)
    }

    /// A second factor outside sign-in: a current TOTP code newer than the last one accepted
    /// (its step spent, as at sign-in) or, with `backupCodes`, an unused backup code (spent).
    /// The user's TOTP row stays locked to the end of the transaction, which serialises their
    /// codes and the count of wrong ones. Throws when MFA is not on.
    func spendSecondFactor(_ code: String, user: UUID, backupCodes: Bool = true, on connection: PostgresConnection) async throws -> SecondFactor {
        let (totp, lastStep) = try await lockedSecret(user, on: connection)
        if let left = try await secondFactorLockLeft(user, on: connection) { return .locked(retryAfterMs: left) }
        if let step = totp.matchingStep(code, at: WallClock.milliseconds() / 1000), step > lastStep {
            try await connection.query("UPDATE mfa_totp SET last_step = \(step) WHERE user_id = \(user)", logger: logger)
            return .spent(method: "otp")
        }
        if backupCodes {
            let hash = try backupCodeHash(String(code.prefix(32)))
            if try await spendBackupCode(hash, user: user, on: connection) != nil { return .spent(method: "backup") }
        }
        return .wrong(lock: try await recordSecondFactorFailure(user, on: connection))
    }

    /// The method of a spent second factor; otherwise the refusal (a lock that began is
    /// audited and mailed first).
    @discardableResult
    func settle(_ outcome: SecondFactor, to purpose: String, tenant: TenantID, user: UUID, call: CallContext) async throws -> String {
        switch outcome {
        case .spent(let method):
            return method
        case .locked(let retryAfterMs):
            throw Self.secondFactorLocked(retryAfterMs: retryAfterMs)
        case .wrong(let lock):
            if let lock { await secondFactorLockStarted(lock, user: user, tenant: tenant, call: call) }
            throw await wrongProof("code", to: purpose, tenant: tenant, user: user, call: call)
        }
    }

    /// MFA off for `user`: the secret, the backup codes, open challenges and the count of wrong
    /// codes go; whether there was a secret.
    @discardableResult
    func removeSecondFactor(_ user: UUID, on connection: PostgresConnection) async throws -> Bool {
        try await connection.query("DELETE FROM mfa_backup_codes WHERE user_id = \(user)", logger: logger)
        try await connection.query("DELETE FROM mfa_challenges WHERE user_id = \(user)", logger: logger)
        try await liftSecondFactorLock(user, on: connection)
        let rows = try await connection.query("DELETE FROM mfa_totp WHERE user_id = \(user) RETURNING user_id", logger: logger)
        var removed = false
        for try await _ in rows.decode(UUID.self) { removed = true }
        return removed
    }

    func wrongProof(_ field: String, to purpose: String, tenant: TenantID, user: UUID, call: CallContext) async -> RampartError {
        await mfaFailed("a wrong \(field) to \(purpose)", tenant: tenant, user: user, call: call)
        return RampartError(.permissionDenied, "the \(field) is not right", details: ["field": field])
    }

    /// A wrong proof outside sign-in (whose failures are `login.failed`): a fail2ban failure,
    /// audited for the user's tenant.
    private func mfaFailed(_ reason: String, tenant: TenantID, user: UUID, call: CallContext) async {
        await rateLimit.reportFailure(.mfa, context: call)
        await audited(.mfaFailed, about: user, in: tenant, call: call, reason: reason, failed: true)
    }

    /// Publishes an MFA event about `user` for `tenant`'s audit log (and its webhooks).
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

    // MARK: The sign-in step (MFA-4)

    static let challengeSeconds = 300
    static let challengeAttempts = 5

    func mfaEnabled(_ user: UUID) async throws -> Bool {
        let rows = try await database.query("SELECT 1 FROM mfa_totp WHERE user_id = \(user) AND confirmed_at IS NOT NULL")
        for try await _ in rows.decode(Int.self) { return true }
        return false
    }

    /// The password step's answer for a user with MFA on: a single-use token for the code step.
    /// What the second step of a sign-in is for.
    enum ChallengePurpose: String {
        /// A code of the user's enrolled TOTP, or a backup code.
        case verify
        /// MFA-7: enrolment first (login_mfa_enroll), then its first code.
        case enroll
    }

    /// The password step's answer when a second one is needed: a single-use token for it.
    func mfaChallenge(_ purpose: ChallengePurpose, user: UUID, tenant: TenantID) async throws -> Rampart_V1_TokenReply {
        let secret = randomBytes(32)
        try await database.query(
            """
            INSERT INTO mfa_challenges (token_hash, user_id, tenant_id, purpose, expires_at)
            VALUES (\(ByteBuffer(bytes: sha256(secret))), \(user), \(tenant.hex), \(purpose.rawValue),
                now() + make_interval(secs => \(Double(Self.challengeSeconds))))
            """
        )
        var reply = Rampart_V1_TokenReply()
        reply.mfaRequired = true
        reply.mfaEnrollmentRequired = purpose == .enroll
        reply.mfaToken = "mfa_" + Base64.encode(secret, variant: Base64.urlSafeNoPadding)
        return reply
    }

    static let invalidChallenge = RampartError(
        .unauthenticated,
        "this sign-in has expired or was already used: sign in again",
        details: ["field": "mfa_token"]
    )

    /// The random part of a well-formed mfa_token.
    static func challengeSecret(_ token: String) -> [UInt8]? {
        guard token.hasPrefix("mfa_"), token.utf8.count < 64,
            let secret = Base64.decode(String(token.dropFirst(4)), variant: Base64.urlSafeNoPadding), secret.count == 32
        else { return nil }
        return secret
    }

    /// MFA-7: enrolment during a sign-in the tenant's policy stopped for it. The token proves the
    /// password step, as the session would; the code step then confirms the secret.
    func enrollAtSignIn(_ request: Rampart_V1_LoginMfaEnrollRequest, call: CallContext) async throws -> Rampart_V1_MfaEnrollReply {
        try await limit("login", key: try signInAddress(call), call: call)
        guard let secret = Self.challengeSecret(request.mfaToken) else { throw Self.invalidChallenge }
        let rows = try await database.query(
            """
            SELECT user_id FROM mfa_challenges WHERE token_hash = \(ByteBuffer(bytes: sha256(secret)))
                AND purpose = \(ChallengePurpose.enroll.rawValue) AND used_at IS NULL AND expires_at > now()
            """
        )
        var user: UUID?
        for try await found in rows.decode(UUID.self) { user = found }
        guard let user else { throw Self.invalidChallenge }
        return try await beginEnrolment(user)
    }

    /// The code step: a TOTP code newer than the last one accepted, or an unused backup code,
    /// opens the session the password step asked for; after an enrolment at sign-in, the first
    /// code confirms it and the backup codes come with the tokens. Every wrong code is a
    /// fail2ban failure and an audited failed sign-in; the fifth spends the challenge.
    func loginMFA(_ request: Rampart_V1_LoginMfaRequest, call: CallContext) async throws -> Rampart_V1_TokenReply {
        try await limit("login", key: try signInAddress(call), call: call)
        guard let secret = Self.challengeSecret(request.mfaToken) else { throw Self.invalidChallenge }
        let tokenHash = ByteBuffer(bytes: sha256(secret))
        let code = String(request.code.prefix(32))
        let backupHash = try backupCodeHash(code)
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
        let outcome: Outcome = try await database.transaction { connection in
            let challenges = try await connection.query(
                """
                SELECT user_id, tenant_id, purpose FROM mfa_challenges
                WHERE token_hash = \(tokenHash) AND used_at IS NULL AND expires_at > now() FOR UPDATE
                """,
                logger: logger
            )
            var challenge: (UUID, String, String)?
            for try await row in challenges.decode((UUID, String, String).self) { challenge = row }
            guard let (user, tenantText, purposeText) = challenge, let tenant = TenantID(tenantText),
                let purpose = ChallengePurpose(rawValue: purposeText)
            else { return .invalid }
            let secrets = try await connection.query(
                "SELECT secret_sealed, last_step, confirmed_at IS NOT NULL FROM mfa_totp WHERE user_id = \(user) FOR UPDATE",
                logger: logger
            )
            var stored: (ByteBuffer, Int64, Bool)?
            for try await row in secrets.decode((ByteBuffer, Int64, Bool).self) { stored = row }
            // Verifying needs the enrolled secret; enrolling, the one login_mfa_enroll just made.
            // MFA turned off, reset or enrolled elsewhere since the password step: sign in again.
            guard let (sealed, lastStep, confirmed) = stored else { return purpose == .enroll ? .enrolmentNotStarted : .invalid }
            guard confirmed == (purpose == .verify) else { return .invalid }
            if purpose == .verify, let left = try await secondFactorLockLeft(user, on: connection) { return .locked(retryAfterMs: left) }
            let totp = TOTP(
                secret: try settings.keyEncryption.open(try SealedSecret(bytes: Array(buffer: sealed)), associatedData: Self.totpBinding(user))
            )
            // A step accepted once is never accepted again, nor any before it.
            if let step = totp.matchingStep(code, at: now), step > lastStep {
                try await connection.query(
                    "UPDATE mfa_totp SET last_step = \(step), confirmed_at = coalesce(confirmed_at, now()) WHERE user_id = \(user)",
                    logger: logger
                )
                try await connection.query("UPDATE mfa_challenges SET used_at = now() WHERE user_id = \(user) AND used_at IS NULL", logger: logger)
                if purpose == .enroll {
                    return .enrolled(user: user, tenant: tenant, backupCodes: try await replaceBackupCodes(user, on: connection))
                }
                return .signedIn(user: user, tenant: tenant, method: "otp", backupCodesLeft: -1)
            }
            if purpose == .verify, let left = try await spendBackupCode(backupHash, user: user, on: connection) {
                try await connection.query("UPDATE mfa_challenges SET used_at = now() WHERE user_id = \(user) AND used_at IS NULL", logger: logger)
                return .signedIn(user: user, tenant: tenant, method: "backup", backupCodesLeft: left)
            }
            try await connection.query(
                """
                UPDATE mfa_challenges SET attempts = attempts + 1,
                    used_at = CASE WHEN attempts + 1 >= \(Self.challengeAttempts) THEN now() END
                WHERE token_hash = \(tokenHash)
                """,
                logger: logger
            )
            // A wrong code of an enrolled secret counts toward the account's lock: the password
            // step succeeded, so only someone who knows the password can run it up.
            let lock = purpose == .verify ? try await recordSecondFactorFailure(user, on: connection) : nil
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
            throw Self.secondFactorLocked(retryAfterMs: retryAfterMs)
        case .wrongCode(let user, let tenant, let lock):
            if let lock { await secondFactorLockStarted(lock, user: user, tenant: tenant, call: call) }
            await rateLimit.reportFailure(.mfa, context: call)
            await audited(.loginFailed, about: user, in: tenant, call: call, reason: "invalid MFA code", failed: true)
            throw RampartError(.unauthenticated, "the code is not right", details: ["field": "code"])
        case .enrolled(let user, let tenant, let codes):
            await audited(.mfaEnrolled, about: user, in: tenant, call: call)
            var reply = try await completeSignIn(user: user, tenant: tenant, amr: ["pwd", "otp", "mfa"], call: call)
            reply.backupCodes = codes
            return reply
        case .signedIn(let user, let tenant, let method, let left):
            if method == "backup" { await audited(.mfaBackupCodeUsed, about: user, in: tenant, call: call, reason: "\(left) backup codes left") }
            return try await completeSignIn(user: user, tenant: tenant, amr: ["pwd", method, "mfa"], call: call)
        }
    }

    /// The session the password step asked for, for the member's standing now (not then).
    private func completeSignIn(user: UUID, tenant: TenantID, amr: [String], call: CallContext) async throws -> Rampart_V1_TokenReply {
        guard let (member, policies) = try await memberships.activeMemberAndPolicies(user, tenant: tenant),
            let email = try await activeAccount(user).flatMap({ EmailAddress($0.email) })
        else { throw Self.invalidChallenge }
        // TEN-11 again: the second step may come from another address than the first.
        try await admitAddress(policies, tenant: tenant, user: user, call: call)
        return try await openSession(user: user, email: email, tenant: tenant, role: member.role, amr: amr, call: call)
    }

    /// Spends an unused backup code of `user` with this keyed hash; the codes left, or nil when
    /// it is not one.
    func spendBackupCode(_ hash: [UInt8], user: UUID, on connection: PostgresConnection) async throws -> Int? {
        let spent = try await connection.query(
            """
            UPDATE mfa_backup_codes SET used_at = now()
            WHERE user_id = \(user) AND code_hash = \(ByteBuffer(bytes: hash)) AND used_at IS NULL RETURNING user_id
            """,
            logger: logger
        )
        var used = false
        for try await _ in spent.decode(UUID.self) { used = true }
        guard used else { return nil }
        let left = try await connection.query("SELECT count(*) FROM mfa_backup_codes WHERE user_id = \(user) AND used_at IS NULL", logger: logger)
        var count = 0
        for try await value in left.decode(Int.self) { count = value }
        return count
    }

    /// The sealed secret opens only as this user's: a row copied onto another user does not.
    static func totpBinding(_ user: UUID) -> [UInt8] {
        Array("\(totpSealPurpose):\(user.uuidString.lowercased())".utf8)
    }

    /// `xxxxx-xxxxx` in Crockford's base32 (digits and letters but i, l, o, u): 50 random bits,
    /// easy to read out and type.
    static func newBackupCode() -> String {
        let alphabet = Array("0123456789abcdefghjkmnpqrstvwxyz".utf8)
        let characters = randomBytes(10).map { alphabet[Int($0 & 0x1f)] }
        return String(decoding: characters[0..<5], as: UTF8.self) + "-" + String(decoding: characters[5..<10], as: UTF8.self)
    }

    /// The keyed hash a backup code is stored and looked up as.
    func backupCodeHash(_ code: String) throws -> [UInt8] {
        try settings.keyEncryption.keyedHash(Array(Self.normalizedBackupCode(code).utf8), purpose: Self.backupCodePurpose)
    }

    /// What a typed code is compared as: lower case, without spaces or dashes, with the letters
    /// Crockford leaves out read as the digits they look like.
    static func normalizedBackupCode(_ code: String) -> String {
        String(
            code.lowercased().compactMap { character -> Character? in
                switch character {
                case "-", " ": nil
                case "o": "0"
                case "i", "l": "1"
                default: character
                }
            }
        )
    }

}
