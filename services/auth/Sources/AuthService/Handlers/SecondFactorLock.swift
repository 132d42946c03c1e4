import PostgresNIO
import RampartModels
import ServiceKit

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

/// Issue 26, finding 2: a second factor must not be worn down. Each challenge allows five codes,
/// but someone with the password can open challenge after challenge from rotating addresses, so
/// wrong codes are counted per account across all of them (and across a session's proofs):
/// `AuthSettings.SecondFactorLock`'s threshold within its window refuses every code for a while,
/// longer each time, and mails the owner. Only someone past the password step can count a
/// failure, so knowing an address is not enough to lock its owner out; a password reset, which
/// takes the password from whoever guessed, lifts the lock.
extension Sessions {
    /// How many milliseconds `user`'s second factor stays locked; nil when it is not.
    func secondFactorLockLeft(_ user: UUID, on connection: PostgresConnection) async throws -> Int64? {
        let rows = try await connection.query(
            "SELECT (extract(epoch FROM locked_until - now()) * 1000)::bigint FROM mfa_locks WHERE user_id = \(user) AND locked_until > now()",
            logger: logger
        )
        return try await rows.first(decoding: Int64.self).map { left in max(1, left) }
    }

    /// Counts a wrong code of `user`'s; the lock when this one starts one. Called while the
    /// user's TOTP row is locked, so concurrent wrong codes are counted one after another.
    func recordSecondFactorFailure(_ user: UUID, on connection: PostgresConnection) async throws -> SecondFactorLockStarted? {
        let rules = settings.secondFactorLock
        let window = Double(rules.windowSeconds)
        try await connection.query("INSERT INTO mfa_failures (user_id) VALUES (\(user))", logger: logger)
        try await connection.query(
            "DELETE FROM mfa_failures WHERE user_id = \(user) AND failed_at <= now() - make_interval(secs => \(window))",
            logger: logger
        )
        let counted = try await connection.query("SELECT count(*) FROM mfa_failures WHERE user_id = \(user)", logger: logger)
        var failures = 0
        for try await count in counted.decode(Int.self) { failures = count }
        guard failures >= rules.threshold else { return nil }
        // A lock within the window after the last one is the next in a row, and twice as long.
        let previous = try await connection.query(
            "SELECT locks, locked_until > now() - make_interval(secs => \(window)) FROM mfa_locks WHERE user_id = \(user) FOR UPDATE",
            logger: logger
        )
        var locks = 1
        for try await (count, recent) in previous.decode((Int, Bool).self) where recent { locks = count + 1 }
        let seconds = rules.seconds(lock: locks)
        try await connection.query(
            """
            INSERT INTO mfa_locks (user_id, locked_until, locks) VALUES (\(user), now() + make_interval(secs => \(Double(seconds))), \(locks))
            ON CONFLICT (user_id) DO UPDATE SET locked_until = excluded.locked_until, locks = excluded.locks
            """,
            logger: logger
        )
        return SecondFactorLockStarted(seconds: seconds, locks: locks)
    }

    /// A new lock, audited in `tenant` and told to the owner, who learns their password is known.
    func secondFactorLockStarted(_ lock: SecondFactorLockStarted, user: UUID, tenant: TenantID, call: CallContext) async {
        var event = Rampart_V1_AuditEvent(.mfaLocked, tenant: tenant, target: ("user", user.uuidString.lowercased()), call: call, service: .auth)
        event.outcome = .failure
        event.reason = "\(settings.secondFactorLock.threshold) wrong codes within \(settings.secondFactorLock.windowSeconds / 3600) hours"
        event.details = ["locked_seconds": String(lock.seconds), "locks": String(lock.locks)]
        await audit.record(event)
        await notices.send(.mfaLocked, to: user, call: call, values: ["minutes": String(max(1, (lock.seconds + 59) / 60))])
    }

    static func secondFactorLocked(retryAfterMs: Int64) -> RampartError {
        RampartError(
            .rateLimited,
            "too many wrong codes for this account: codes are refused for \(max(1, (retryAfterMs + 59_999) / 60_000)) minutes; a password reset lifts this",
            details: ["retry_after_ms": String(retryAfterMs), "reason": "mfa_locked"]
        )
    }

    /// The count and any lock go: the password changed, was reset, or MFA went off.
    func liftSecondFactorLock(_ user: UUID, on connection: PostgresConnection) async throws {
        try await connection.query("DELETE FROM mfa_failures WHERE user_id = \(user)", logger: logger)
        try await connection.query("DELETE FROM mfa_locks WHERE user_id = \(user)", logger: logger)
    }
}
