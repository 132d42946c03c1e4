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

/// A lock that a wrong code just started: how long it lasts and how many in a row it is.
struct SecondFactorLockStarted: Sendable {
    var seconds: Int
    var locks: Int
}

/// auth's global MFA tables (MFA-1..7): a user's MFA is theirs across every tenant they belong
/// to. `mfa_totp` holds the secret sealed with the key ring (its key ID inside the sealed value,
/// for rotation) and bound to the user; `mfa_backup_codes` the backup codes as keyed hashes;
/// `mfa_challenges` the sign-ins waiting for their second step; `mfa_failures` and `mfa_locks`
/// the count of wrong codes per account and the lock it starts (issue 26, finding 2).
struct SecondFactorStore: Sendable {
    let database: Database
    let keyRing: KeyRing
    let lockRules: AuthSettings.SecondFactorLock
    let logger: Logger

    static let sealPurpose = "rampart totp secret"

    /// The sealed secret opens only as this user's: a row copied onto another user does not.
    static func binding(_ user: UUID) -> [UInt8] {
        Array("\(sealPurpose):\(user.uuidString.lowercased())".utf8)
    }

    // MARK: The secret

    /// Stores a new unconfirmed secret for `user`, replacing an unconfirmed one; false when a
    /// confirmed one is there (it stays until MFA is turned off).
    func beginEnrolment(_ user: UUID, secret: [UInt8]) async throws -> Bool {
        let sealed = keyRing.seal(secret, associatedData: Self.binding(user))
        let rows = try await database.query(
            """
            INSERT INTO mfa_totp (user_id, secret_sealed) VALUES (\(user), \(ByteBuffer(bytes: sealed.bytes)))
            ON CONFLICT (user_id) DO UPDATE SET secret_sealed = excluded.secret_sealed, created_at = now(), last_step = -1
                WHERE mfa_totp.confirmed_at IS NULL
            RETURNING user_id
            """
        )
        return try await rows.first(decoding: UUID.self) != nil
    }

    /// `user`'s secret locked for this transaction, with the last time step accepted and
    /// whether it is confirmed; nil when there is none.
    func lockSecret(_ user: UUID, on connection: PostgresConnection) async throws -> (totp: TOTP, lastStep: Int64, confirmed: Bool)? {
        let rows = try await connection.query(
            "SELECT secret_sealed, last_step, confirmed_at IS NOT NULL FROM mfa_totp WHERE user_id = \(user) FOR UPDATE",
            logger: logger
        )
        guard let (sealed, lastStep, confirmed) = try await rows.first(decoding: (ByteBuffer, Int64, Bool).self) else { return nil }
        let secret = try keyRing.open(try SealedSecret(bytes: Array(buffer: sealed)), associatedData: Self.binding(user))
        return (TOTP(secret: secret), lastStep, confirmed)
    }

    /// Spends time step `step` of `user`'s secret (none before it is accepted again) and
    /// confirms the secret when it was not yet.
    func accept(_ step: Int64, of user: UUID, on connection: PostgresConnection) async throws {
        try await connection.query(
            "UPDATE mfa_totp SET last_step = \(step), confirmed_at = coalesce(confirmed_at, now()) WHERE user_id = \(user)",
            logger: logger
        )
    }

    func isEnabled(for user: UUID) async throws -> Bool {
        let rows = try await database.query("SELECT 1 FROM mfa_totp WHERE user_id = \(user) AND confirmed_at IS NOT NULL")
        return try await rows.first(decoding: Int.self) != nil
    }

    /// When MFA went on for `user` and how many backup codes are unused; nil when it is off.
    func status(of user: UUID) async throws -> (enabledAtMs: Int64, backupCodesLeft: Int32)? {
        let rows = try await database.query(
            """
            SELECT (extract(epoch FROM confirmed_at) * 1000)::bigint,
                (SELECT count(*) FROM mfa_backup_codes b WHERE b.user_id = t.user_id AND b.used_at IS NULL)::integer
            FROM mfa_totp t WHERE user_id = \(user) AND confirmed_at IS NOT NULL
            """
        )
        return try await rows.first(decoding: (Int64, Int32).self)
    }

    /// MFA off for `user`: the secret, the backup codes, open challenges and the count of wrong
    /// codes go; whether there was a secret.
    @discardableResult
    func remove(_ user: UUID, on connection: PostgresConnection) async throws -> Bool {
        try await connection.query("DELETE FROM mfa_backup_codes WHERE user_id = \(user)", logger: logger)
        try await connection.query("DELETE FROM mfa_challenges WHERE user_id = \(user)", logger: logger)
        try await liftLock(user, on: connection)
        let rows = try await connection.query("DELETE FROM mfa_totp WHERE user_id = \(user) RETURNING user_id", logger: logger)
        return try await rows.first(decoding: UUID.self) != nil
    }

    /// AUTH-11 at a password reset: a second factor enrolled before the mailbox was proved
    /// (or never confirmed) is someone's who may not own the address, and goes with its backup
    /// codes; whether a confirmed one went.
    func removeUnproved(_ user: UUID, on connection: PostgresConnection) async throws -> Bool {
        let removed = try await connection.query(
            """
            DELETE FROM mfa_totp t USING users u
            WHERE t.user_id = \(user) AND u.id = t.user_id
              AND (u.email_verified_at IS NULL OR t.confirmed_at IS NULL OR t.confirmed_at < u.email_verified_at)
            RETURNING t.confirmed_at IS NOT NULL
            """,
            logger: logger
        )
        let confirmed = try await removed.first(decoding: Bool.self) ?? false
        if confirmed { try await connection.query("DELETE FROM mfa_backup_codes WHERE user_id = \(user)", logger: logger) }
        return confirmed
    }

    // MARK: Backup codes

    /// New backup codes for `user`, the old ones gone; the codes, to show once.
    func replaceBackupCodes(_ user: UUID, on connection: PostgresConnection) async throws -> [String] {
        let codes = (0..<BackupCode.count).map { _ in BackupCode.new() }
        try await connection.query("DELETE FROM mfa_backup_codes WHERE user_id = \(user)", logger: logger)
        for code in codes {
            let hash = try BackupCode.hash(code, keyRing: keyRing)
            try await connection.query(
                "INSERT INTO mfa_backup_codes (user_id, code_hash, key_id) VALUES (\(user), \(ByteBuffer(bytes: hash)), \(keyRing.currentKeyID))",
                logger: logger
            )
        }
        return codes
    }

    /// Spends `code` when it is an unused backup code of `user`'s; the codes left, or nil when
    /// it is not one.
    func spendBackupCode(_ code: String, of user: UUID, on connection: PostgresConnection) async throws -> Int? {
        let hash = try BackupCode.hash(String(code.prefix(32)), keyRing: keyRing)
        let spent = try await connection.query(
            """
            UPDATE mfa_backup_codes SET used_at = now()
            WHERE user_id = \(user) AND code_hash = \(ByteBuffer(bytes: hash)) AND used_at IS NULL RETURNING user_id
            """,
            logger: logger
        )
        guard try await spent.first(decoding: UUID.self) != nil else { return nil }
        let left = try await connection.query("SELECT count(*) FROM mfa_backup_codes WHERE user_id = \(user) AND used_at IS NULL", logger: logger)
        return try await left.first(decoding: Int.self) ?? 0
    }

    // MARK: Sign-in challenges

    /// A challenge for the second step of `user`'s sign-in to `tenant`; its token.
    func openChallenge(_ purpose: ChallengeToken.Purpose, user: UUID, tenant: TenantID) async throws -> String {
        let (token, hash) = ChallengeToken.new()
        try await database.query(
            """
            INSERT INTO mfa_challenges (token_hash, user_id, tenant_id, purpose, expires_at)
            VALUES (\(ByteBuffer(bytes: hash)), \(user), \(tenant.hex), \(purpose.rawValue),
                now() + make_interval(secs => \(Double(ChallengeToken.lifetimeSeconds))))
            """
        )
        return token
    }

    /// The user of an open enrolment challenge (MFA-7) with this token hash.
    func enrollingUser(_ tokenHash: [UInt8]) async throws -> UUID? {
        let rows = try await database.query(
            """
            SELECT user_id FROM mfa_challenges WHERE token_hash = \(ByteBuffer(bytes: tokenHash))
                AND purpose = \(ChallengeToken.Purpose.enroll.rawValue) AND used_at IS NULL AND expires_at > now()
            """
        )
        return try await rows.first(decoding: UUID.self)
    }

    /// The open challenge with this token hash, locked for this transaction.
    func lockChallenge(
        _ tokenHash: [UInt8],
        on connection: PostgresConnection
    ) async throws -> (
        user: UUID, tenant: TenantID, purpose: ChallengeToken.Purpose
    )? {
        let rows = try await connection.query(
            """
            SELECT user_id, tenant_id, purpose FROM mfa_challenges
            WHERE token_hash = \(ByteBuffer(bytes: tokenHash)) AND used_at IS NULL AND expires_at > now() FOR UPDATE
            """,
            logger: logger
        )
        guard let (user, tenantText, purposeText) = try await rows.first(decoding: (UUID, String, String).self),
            let tenant = TenantID(tenantText), let purpose = ChallengeToken.Purpose(rawValue: purposeText)
        else { return nil }
        return (user, tenant, purpose)
    }

    /// Counts a wrong code against the challenge; the last attempt spends it.
    func countWrongCode(_ tokenHash: [UInt8], on connection: PostgresConnection) async throws {
        try await connection.query(
            """
            UPDATE mfa_challenges SET attempts = attempts + 1,
                used_at = CASE WHEN attempts + 1 >= \(ChallengeToken.attempts) THEN now() END
            WHERE token_hash = \(ByteBuffer(bytes: tokenHash))
            """,
            logger: logger
        )
    }

    /// Spends every open challenge of `user`'s, in every tenant (a sign-in completed, or the
    /// person isolated); on `connection`, inside its transaction.
    func spendChallenges(of user: UUID, on connection: PostgresConnection? = nil) async throws {
        let query: PostgresQuery = "UPDATE mfa_challenges SET used_at = now() WHERE user_id = \(user) AND used_at IS NULL"
        if let connection { try await connection.query(query, logger: logger) } else { try await database.query(query) }
    }

    /// Spends the open challenges in `tenant`: `user`'s, or with nil everyone's (an isolation).
    func spendChallenges(in tenant: TenantID, of user: UUID?) async throws {
        try await database.query(
            """
            UPDATE mfa_challenges SET used_at = now()
            WHERE tenant_id = \(tenant.hex) AND (\(user)::uuid IS NULL OR user_id = \(user)::uuid) AND used_at IS NULL
            """
        )
    }

    // MARK: The lock (issue 26, finding 2)

    /// How many milliseconds `user`'s second factor stays locked; nil when it is not.
    func lockLeft(_ user: UUID, on connection: PostgresConnection) async throws -> Int64? {
        let rows = try await connection.query(
            "SELECT (extract(epoch FROM locked_until - now()) * 1000)::bigint FROM mfa_locks WHERE user_id = \(user) AND locked_until > now()",
            logger: logger
        )
        return try await rows.first(decoding: Int64.self).map { left in max(1, left) }
    }

    /// Counts a wrong code of `user`'s; the lock when this one starts one. Called while the
    /// user's TOTP row is locked, so concurrent wrong codes are counted one after another.
    func recordFailure(_ user: UUID, on connection: PostgresConnection) async throws -> SecondFactorLockStarted? {
        let window = Double(lockRules.windowSeconds)
        try await connection.query("INSERT INTO mfa_failures (user_id) VALUES (\(user))", logger: logger)
        try await connection.query(
            "DELETE FROM mfa_failures WHERE user_id = \(user) AND failed_at <= now() - make_interval(secs => \(window))",
            logger: logger
        )
        let counted = try await connection.query("SELECT count(*) FROM mfa_failures WHERE user_id = \(user)", logger: logger)
        guard try await counted.first(decoding: Int.self) ?? 0 >= lockRules.threshold else { return nil }
        // A lock within the window after the last one is the next in a row, and twice as long.
        let previous = try await connection.query(
            "SELECT locks, locked_until > now() - make_interval(secs => \(window)) FROM mfa_locks WHERE user_id = \(user) FOR UPDATE",
            logger: logger
        )
        var locks = 1
        if let (count, recent) = try await previous.first(decoding: (Int, Bool).self), recent { locks = count + 1 }
        let seconds = lockRules.seconds(lock: locks)
        try await connection.query(
            """
            INSERT INTO mfa_locks (user_id, locked_until, locks) VALUES (\(user), now() + make_interval(secs => \(Double(seconds))), \(locks))
            ON CONFLICT (user_id) DO UPDATE SET locked_until = excluded.locked_until, locks = excluded.locks
            """,
            logger: logger
        )
        return SecondFactorLockStarted(seconds: seconds, locks: locks)
    }

    /// The count and any lock go: the password changed, was reset, or MFA went off.
    func liftLock(_ user: UUID, on connection: PostgresConnection) async throws {
        try await connection.query("DELETE FROM mfa_failures WHERE user_id = \(user)", logger: logger)
        try await connection.query("DELETE FROM mfa_locks WHERE user_id = \(user)", logger: logger)
    }
}
