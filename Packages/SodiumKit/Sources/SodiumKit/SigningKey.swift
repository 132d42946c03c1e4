import CSodium

/// An Ed25519 key pair (libsodium `crypto_sign`): the audit log signs its checkpoints with it,
/// and anyone holding the public key can check them offline. The secret half is wiped when
/// freed and never printed.
public final class SigningKey: Sendable, CustomStringConvertible, CustomReflectable {
    public static let seedByteCount = Int(crypto_sign_SEEDBYTES)
    public static let publicKeyByteCount = Int(crypto_sign_PUBLICKEYBYTES)
    public static let signatureByteCount = Int(crypto_sign_BYTES)

    public let publicKey: [UInt8]
    /// `nonisolated(unsafe)` only so deinit can wipe it: it is never mutated otherwise.
    nonisolated(unsafe) private var secretKey: [UInt8]

    /// The key pair derived from a 32-byte seed (what configuration holds).
    public init(seed: [UInt8]) throws(SodiumError) {
        precondition(Sodium.isReady, "libsodium is unavailable")
        guard seed.count == Self.seedByteCount else {
            throw .invalidKey("an Ed25519 seed is \(Self.seedByteCount) bytes, not \(seed.count)")
        }
        var publicKey = [UInt8](repeating: 0, count: Self.publicKeyByteCount)
        var secretKey = [UInt8](repeating: 0, count: Int(crypto_sign_SECRETKEYBYTES))
        _ = crypto_sign_seed_keypair(&publicKey, &secretKey, seed)
        self.publicKey = publicKey
        self.secretKey = secretKey
    }

    public static func generate() -> SigningKey {
        try! SigningKey(seed: randomBytes(seedByteCount))
    }

    deinit {
        secretKey.withUnsafeMutableBytes { sodium_memzero($0.baseAddress, $0.count) }
    }

    /// A detached signature of `message`.
    public func sign(_ message: [UInt8]) -> [UInt8] {
        var signature = [UInt8](repeating: 0, count: Self.signatureByteCount)
        _ = crypto_sign_detached(&signature, nil, message, UInt64(message.count), secretKey)
        return signature
    }

    public static func verify(_ signature: [UInt8], of message: [UInt8], publicKey: [UInt8]) -> Bool {
        guard signature.count == signatureByteCount, publicKey.count == publicKeyByteCount else { return false }
        return crypto_sign_verify_detached(signature, message, UInt64(message.count), publicKey) == 0
    }

    public var description: String { "SigningKey(public: \(hexString(publicKey)))" }
    public var customMirror: Mirror { Mirror(self, children: ["publicKey": hexString(publicKey)]) }
}
