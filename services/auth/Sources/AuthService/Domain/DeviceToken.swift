import ServiceKit
import SodiumKit

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Issue 26, finding 3 (OWASP's "device cookies"): `login_account` refuses an account's sign-ins
/// once someone has guessed wrong too often, and anyone who knows an address can do that. A
/// device that signed in to the account before holds a token saying so; its sign-ins are
/// counted against the token alone (`login_device`), so the owner gets through while the
/// guessing goes on, and a stolen token buys its holder no more than five guesses.
///
/// The token is the user, a random device ID and when it was issued, with a keyed hash of those
/// and the password's change time: it names one account, cannot be forged or moved to another,
/// and dies with a password change or reset (and when the key ring's current key changes).
enum DeviceToken {
    static let purpose = "rampart device token"
    static let lifetimeSeconds: Int64 = 90 * 86_400
    private static let payloadBytes = 16 + 16 + 8

    /// A new token for `user`, whose password last changed at `passwordChangedAtMs`.
    static func issue(to user: UUID, passwordChangedAtMs: Int64, keyRing: KeyRing, now: Int64 = WallClock.milliseconds() / 1000) throws -> String {
        var payload = withUnsafeBytes(of: user.uuid) { Array($0) }
        payload += randomBytes(16)
        payload += bigEndian(now)
        let mac = try keyRing.keyedHash(payload + bigEndian(passwordChangedAtMs), purpose: purpose)
        return "dev_" + Base64.encode(payload + mac, variant: Base64.urlSafeNoPadding)
    }

    /// The device ID (hex) of a token issued to `user` since their password last changed and
    /// less than 90 days ago; nil for anything else.
    static func deviceID(
        _ token: String,
        user: UUID,
        passwordChangedAtMs: Int64,
        keyRing: KeyRing,
        now: Int64 = WallClock.milliseconds() / 1000
    ) -> String? {
        guard token.hasPrefix("dev_"), token.utf8.count <= 128,
            let bytes = Base64.decode(String(token.dropFirst(4)), variant: Base64.urlSafeNoPadding),
            bytes.count == payloadBytes + 32
        else { return nil }
        let payload = Array(bytes[0..<payloadBytes])
        guard payload[0..<16].elementsEqual(withUnsafeBytes(of: user.uuid) { Array($0) }),
            let mac = try? keyRing.keyedHash(payload + bigEndian(passwordChangedAtMs), purpose: purpose),
            constantTimeEquals(mac, bytes[payloadBytes...])
        else { return nil }
        let issued = payload[32..<40].reduce(Int64(0)) { $0 << 8 | Int64($1) }
        guard issued <= now + 60, now - issued < lifetimeSeconds else { return nil }
        return hexString(Array(payload[16..<32]))
    }

    private static func bigEndian(_ value: Int64) -> [UInt8] {
        (0..<8).reversed().map { UInt8(truncatingIfNeeded: value >> ($0 * 8)) }
    }
}
