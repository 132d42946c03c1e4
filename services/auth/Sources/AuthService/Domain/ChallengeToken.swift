import SodiumKit

/// The single-use token a sign-in's password step answers with when a second step is needed
/// (MFA-4, MFA-7): `mfa_` + 32 random bytes in base64url, stored as the SHA-256 of the bytes.
enum ChallengeToken {
    static let lifetimeSeconds = 300
    /// Wrong codes one challenge takes before it is spent.
    static let attempts = 5

    /// What the second step of a sign-in is for.
    enum Purpose: String, Sendable {
        /// A code of the user's enrolled TOTP, or a backup code.
        case verify
        /// MFA-7: enrolment first (login_mfa_enroll), then its first code.
        case enroll
    }

    static func new() -> (token: String, hash: [UInt8]) {
        let secret = randomBytes(32)
        return ("mfa_" + Base64.encode(secret, variant: Base64.urlSafeNoPadding), sha256(secret))
    }

    /// The stored hash of a well-formed token; nil for anything else.
    static func hash(_ token: String) -> [UInt8]? {
        guard token.hasPrefix("mfa_"), token.utf8.count < 64,
            let secret = Base64.decode(String(token.dropFirst(4)), variant: Base64.urlSafeNoPadding), secret.count == 32
        else { return nil }
        return sha256(secret)
    }
}
