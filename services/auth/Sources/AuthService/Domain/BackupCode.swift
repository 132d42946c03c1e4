import SodiumKit

/// MFA-3's backup codes: `xxxxx-xxxxx` in Crockford's base32 (digits and letters but i, l, o,
/// u), 50 random bits each, easy to read out and type. Stored as keyed hashes under the key ring.
enum BackupCode {
    static let count = 10
    static let hashPurpose = "rampart mfa backup code"

    static func new() -> String {
        let alphabet = Array("0123456789abcdefghjkmnpqrstvwxyz".utf8)
        let characters = randomBytes(10).map { alphabet[Int($0 & 0x1f)] }
        return String(decoding: characters[0..<5], as: UTF8.self) + "-" + String(decoding: characters[5..<10], as: UTF8.self)
    }

    /// What a typed code is compared as: lower case, without spaces or dashes, with the letters
    /// Crockford leaves out read as the digits they look like.
    static func normalized(_ code: String) -> String {
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

    /// The keyed hash a code is stored and looked up as.
    static func hash(_ code: String, keyRing: KeyRing) throws -> [UInt8] {
        try keyRing.keyedHash(Array(normalized(code).utf8), purpose: hashPurpose)
    }
}
