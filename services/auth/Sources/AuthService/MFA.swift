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

/// TOTP enrolment (MFA-1, MFA-2, MFA-3, MFA-5). A user's MFA is theirs across every tenant they
/// belong to, so it lives with the user in auth's global tables: the secret sealed with the
/// key-encryption key ring (its key ID inside the sealed value, for rotation) and bound to the
/// user, and the backup codes as keyed hashes.
extension Sessions {
    static let totpSealPurpose = "rampart totp secret"
    static let backupCodePurpose = "rampart mfa backup code"
    static let backupCodeCount = 10

    func enrollTOTP(_ request: Rampart_V1_MfaEnrollRequest, call: CallContext) async throws -> Rampart_V1_MfaEnrollReply {
        let (_, user) = try caller(call)
        let email = try await activeEmail(user)
        let secret = randomBytes(TOTP.secretBytes)
        let sealed = settings.keyEncryption.seal(secret, associatedData: Self.totpBinding(user))
        // A new secret replaces an unconfirmed one; a confirmed one stays until MFA is disabled.
        let rows = try await database.client.query(
            """
            INSERT INTO mfa_totp (user_id, secret_sealed) VALUES (\(user), \(ByteBuffer(bytes: sealed.bytes)))
            ON CONFLICT (user_id) DO UPDATE SET secret_sealed = excluded.secret_sealed, created_at = now(), last_step = -1
                WHERE mfa_totp.confirmed_at IS NULL
            RETURNING user_id
            """,
            logger: logger
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
        let (tenant, user) = try caller(call)
        let codes = (0..<Self.backupCodeCount).map { _ in Self.newBackupCode() }
        let hashes = try codes.map {
            try settings.keyEncryption.keyedHash(Array(Self.normalizedBackupCode($0).utf8), purpose: Self.backupCodePurpose)
        }
        let now = WallClock.milliseconds() / 1000
        let confirmed = try await database.transaction { connection -> Bool in
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
            guard let step = TOTP(secret: secret).matchingStep(request.code, at: now) else { return false }
            try await connection.query(
                "UPDATE mfa_totp SET confirmed_at = now(), last_step = \(step) WHERE user_id = \(user)",
                logger: logger
            )
            try await connection.query("DELETE FROM mfa_backup_codes WHERE user_id = \(user)", logger: logger)
            for hash in hashes {
                try await connection.query(
                    "INSERT INTO mfa_backup_codes (user_id, code_hash, key_id) VALUES (\(user), \(ByteBuffer(bytes: hash)), \(settings.keyEncryption.currentKeyID))",
                    logger: logger
                )
            }
            return true
        }
        guard confirmed else {
            await rateLimit.reportFailure(.mfa, context: call)
            throw RampartError(.invalidArgument, "the code is not the one your app shows now", details: ["field": "code"])
        }
        _ = try? await audit.publish(
            Rampart_V1_AuditEvent(.mfaEnrolled, tenant: tenant, target: ("user", user.uuidString.lowercased()), call: call, service: .auth)
        )
        var reply = Rampart_V1_MfaConfirmReply()
        reply.backupCodes = codes
        return reply
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

    private func activeEmail(_ user: UUID) async throws -> String {
        let rows = try await database.client.query("SELECT email FROM users WHERE id = \(user) AND status = 'active'", logger: logger)
        for try await email in rows.decode(String.self) { return email }
        throw RampartError(.unauthenticated, "sign in first")
    }
}
