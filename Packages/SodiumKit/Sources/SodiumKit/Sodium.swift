import CSodium

/// libsodium, initialised once per process (`sodium_init` is safe to call from any thread).
enum Sodium {
    static let isReady: Bool = sodium_init() >= 0

    static func ensureReady() throws(SodiumError) {
        guard isReady else { throw SodiumError.unavailable }
    }
}

public enum SodiumError: Error, Equatable, Sendable, CustomStringConvertible {
    /// libsodium could not initialise (no entropy source).
    case unavailable
    /// The sealed value is not in the format `SealedSecret` writes.
    case malformed(String)
    /// No key of the ring has this ID.
    case unknownKey(String)
    /// Authentication failed: the ciphertext, the key ID or the associated data was changed, or
    /// the key is not the one that sealed it.
    case authenticationFailed
    case invalidKey(String)
    case hashingFailed

    public var description: String {
        switch self {
        case .unavailable: "libsodium is unavailable"
        case .malformed(let why): "malformed sealed secret: \(why)"
        case .unknownKey(let id): "no key with id \(id.debugDescription) in the key ring"
        case .authenticationFailed: "sealed secret failed authentication"
        case .invalidKey(let why): "invalid key: \(why)"
        case .hashingFailed: "password hashing failed (out of memory?)"
        }
    }
}

/// Random bytes from the operating system's CSPRNG.
public func randomBytes(_ count: Int) -> [UInt8] {
    precondition(Sodium.isReady, "libsodium is unavailable")
    var bytes = [UInt8](repeating: 0, count: count)
    guard count > 0 else { return bytes }
    bytes.withUnsafeMutableBytes { randombytes_buf($0.baseAddress!, $0.count) }
    return bytes
}

/// Compares two secrets in time that depends only on their length, so that a comparison cannot
/// be timed to learn how many leading bytes matched. Different lengths compare unequal.
public func constantTimeEquals(_ lhs: some Collection<UInt8>, _ rhs: some Collection<UInt8>) -> Bool {
    let left = Array(lhs)
    let right = Array(rhs)
    guard left.count == right.count else { return false }
    if left.isEmpty { return true }
    return left.withUnsafeBytes { l in
        right.withUnsafeBytes { r in sodium_memcmp(l.baseAddress, r.baseAddress, l.count) == 0 }
    }
}

/// BLAKE2b-256 of `bytes`, as lowercase hex: a fingerprint, not a password hash.
public func fingerprint(_ bytes: some Collection<UInt8>) -> String {
    precondition(Sodium.isReady, "libsodium is unavailable")
    let input = Array(bytes)
    var output = [UInt8](repeating: 0, count: 32)
    _ = crypto_generichash(&output, 32, input, UInt64(input.count), nil, 0)
    return hexString(output)
}

/// SHA-256 of `bytes` (the audit log's hash chain: a standard any verifier has).
public func sha256(_ bytes: some Collection<UInt8>) -> [UInt8] {
    precondition(Sodium.isReady, "libsodium is unavailable")
    let input = Array(bytes)
    var output = [UInt8](repeating: 0, count: 32)
    _ = crypto_hash_sha256(&output, input, UInt64(input.count))
    return output
}

/// SHA-256 of a stream fed piece by piece (a backup file's checksum, without holding the file).
public struct SHA256Hasher {
    private var state = crypto_hash_sha256_state()

    public init() {
        precondition(Sodium.isReady, "libsodium is unavailable")
        crypto_hash_sha256_init(&state)
    }

    public mutating func update(_ bytes: some Collection<UInt8>) {
        let input = Array(bytes)
        crypto_hash_sha256_update(&state, input, UInt64(input.count))
    }

    public mutating func finish() -> [UInt8] {
        var output = [UInt8](repeating: 0, count: 32)
        crypto_hash_sha256_final(&state, &output)
        return output
    }
}

/// HMAC-SHA-256 of `message` under a key of any length (Standard Webhooks and Stripe signatures).
public func hmacSHA256(key: some Collection<UInt8>, message: some Collection<UInt8>) -> [UInt8] {
    precondition(Sodium.isReady, "libsodium is unavailable")
    let keyBytes = Array(key)
    let input = Array(message)
    var state = crypto_auth_hmacsha256_state()
    var output = [UInt8](repeating: 0, count: Int(crypto_auth_hmacsha256_BYTES))
    _ = crypto_auth_hmacsha256_init(&state, keyBytes, keyBytes.count)
    _ = crypto_auth_hmacsha256_update(&state, input, UInt64(input.count))
    _ = crypto_auth_hmacsha256_final(&state, &output)
    return output
}

/// Lowercase hex, two digits a byte (on rate-limit's hot path: no string per byte).
public func hexString(_ bytes: [UInt8]) -> String {
    let digits = Array("0123456789abcdef".utf8)
    return String(unsafeUninitializedCapacity: bytes.count * 2) { buffer in
        for (index, byte) in bytes.enumerated() {
            buffer[index * 2] = digits[Int(byte >> 4)]
            buffer[index * 2 + 1] = digits[Int(byte & 0x0F)]
        }
        return bytes.count * 2
    }
}

/// The bytes of lowercase hex as `hexString` writes it; nil for anything else.
public func bytes(hex: String) -> [UInt8]? {
    let digits = Array(hex.utf8)
    guard digits.count % 2 == 0 else { return nil }
    func value(_ digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
        default: nil
        }
    }
    var result: [UInt8] = []
    result.reserveCapacity(digits.count / 2)
    var index = 0
    while index < digits.count {
        guard let high = value(digits[index]), let low = value(digits[index + 1]) else { return nil }
        result.append(high << 4 | low)
        index += 2
    }
    return result
}
