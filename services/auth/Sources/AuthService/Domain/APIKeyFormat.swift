import SodiumKit

/// KEY-1's key: `rk_` + 8 characters that name it (the prefix, stored in plaintext so that a
/// person can tell keys apart) + 43 characters of base64url holding 256 random bits. Only an
/// HMAC-SHA-256 of prefix and secret under the key ring is stored: the secret has too much
/// entropy to guess, so a slow password hash would buy nothing but a quarter second per call,
/// and the ring's key keeps a copy of the database from confirming or planting a key.
enum APIKeyFormat {
    static let prefixAlphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789".utf8)
    static let length = 11 + 43
    static let hashPurpose = "rampart api key"

    static func new() -> (key: String, prefix: String, secret: [UInt8]) {
        var name: [UInt8] = []
        while name.count < 8 {
            // 252 = 7 × 36: bytes above it would favour the first letters.
            for byte in randomBytes(16) where byte < 252 && name.count < 8 { name.append(prefixAlphabet[Int(byte % 36)]) }
        }
        let prefix = "rk_" + String(decoding: name, as: UTF8.self)
        let secret = randomBytes(32)
        return (prefix + Base64.encode(secret, variant: Base64.urlSafeNoPadding), prefix, secret)
    }

    /// Prefix and secret of a well-formed key; nil for anything else.
    static func parse(_ key: String) -> (prefix: String, secret: [UInt8])? {
        let bytes = Array(key.utf8)
        guard bytes.count == length, key.hasPrefix("rk_"), bytes[3..<11].allSatisfy(prefixAlphabet.contains),
            let secret = Base64.decode(String(decoding: bytes[11...], as: UTF8.self), variant: Base64.urlSafeNoPadding), secret.count == 32
        else { return nil }
        return (String(decoding: bytes[..<11], as: UTF8.self), secret)
    }

    /// A scope name is a plain token (`boards:read`): anything else, a NUL byte PostgreSQL would
    /// refuse included, is unknown without asking the database.
    static func isScopeName(_ text: String) -> Bool {
        (1...64).contains(text.utf8.count)
            && text.utf8.allSatisfy {
                (0x61...0x7A).contains($0) || (0x30...0x39).contains($0) || $0 == 0x3A || $0 == 0x5F || $0 == 0x2E || $0 == 0x2D
            }
    }
}
