import CSodium

/// Public-key sealing with libsodium's sealed boxes (X25519 with a key pair made for each value,
/// XSalsa20-Poly1305): whoever holds the public key seals, only the holder of the secret key
/// opens, and not even the sealer can open what it sealed. For a secret that one service hands
/// to another through a place others read, as the tokens auth and tenants give the mail sender
/// through the domain-events stream.
///
/// Binary layout: `0x01 | key-id length | key id | crypto_box_seal output`. The key ID names the
/// recipient's key pair, so the recipient's keys rotate: it keeps the old secret keys until
/// nothing sealed to them is in flight.
public enum SealedBox {
    static let version: UInt8 = 1
    static let keyByteCount = Int(crypto_box_publickeybytes())
    static let overhead = Int(crypto_box_sealbytes())

    /// The recipient's public key: `id:base64` in configuration.
    public struct PublicKey: Sendable, Equatable {
        public let id: String
        public let bytes: [UInt8]

        public init(id: String, bytes: [UInt8]) throws(SodiumError) {
            try Sodium.ensureReady()
            guard KeyRing.isValidKeyID(id) else { throw .invalidKey("key id \(id.debugDescription) must be 1-64 of A-Z a-z 0-9 _ -") }
            guard bytes.count == SealedBox.keyByteCount else {
                throw .invalidKey("a public key is \(SealedBox.keyByteCount) bytes, not \(bytes.count)")
            }
            self.id = id
            self.bytes = bytes
        }

        /// `id:base64`, exactly one entry.
        public init(parsing specification: String) throws(SodiumError) {
            let entries = try KeyRing.parseEntries(specification)
            guard entries.count == 1 else { throw .invalidKey("one public key, written id:base64") }
            try self.init(id: entries[0].id, bytes: entries[0].bytes)
        }

        public var text: String { "\(id):\(Base64.encode(bytes))" }

        /// Seals `plaintext` to this key.
        public func seal(_ plaintext: [UInt8]) -> [UInt8] {
            let id = Array(self.id.utf8)
            var sealed = [UInt8](repeating: 0, count: plaintext.count + SealedBox.overhead)
            _ = crypto_box_seal(&sealed, plaintext, UInt64(plaintext.count), bytes)
            return [SealedBox.version, UInt8(id.count)] + id + sealed
        }
    }

    /// The recipient's secret keys, by ID (`id:base64[,id:base64…]` of 32-byte X25519 secret
    /// keys; the first is the one whose public key senders should have). Never printed.
    public struct SecretKeys: Sendable, CustomStringConvertible, CustomReflectable {
        private let keys: [String: (secret: SecretKey, public: PublicKey)]
        /// The first key's public half: what the senders are configured with.
        public let currentPublicKey: PublicKey

        public init(parsing specification: String) throws(SodiumError) {
            try Sodium.ensureReady()
            var keys: [String: (secret: SecretKey, public: PublicKey)] = [:]
            var first: PublicKey?
            for entry in try KeyRing.parseEntries(specification) {
                let secret = try SecretKey(bytes: entry.bytes)
                var publicBytes = [UInt8](repeating: 0, count: SealedBox.keyByteCount)
                secret.withBytes { _ = crypto_scalarmult_base(&publicBytes, $0.bindMemory(to: UInt8.self).baseAddress!) }
                let publicKey = try PublicKey(id: entry.id, bytes: publicBytes)
                keys[entry.id] = (secret, publicKey)
                if first == nil { first = publicKey }
            }
            self.keys = keys
            currentPublicKey = first!
        }

        /// A new random secret key, as configuration (`id:base64`) — handle it as the secret it is.
        public static func generate(id: String) throws(SodiumError) -> String {
            guard KeyRing.isValidKeyID(id) else { throw .invalidKey("key id \(id.debugDescription) must be 1-64 of A-Z a-z 0-9 _ -") }
            return "\(id):\(SecretKey.generate().exportBase64())"
        }

        /// Opens a value sealed to one of these keys; refuses anything else, changed or truncated.
        public func open(_ sealed: [UInt8]) throws(SodiumError) -> [UInt8] {
            guard sealed.count >= 2, sealed[0] == SealedBox.version else { throw .malformed("unknown version") }
            let idLength = Int(sealed[1])
            guard idLength > 0, sealed.count >= 2 + idLength + SealedBox.overhead else { throw .malformed("truncated") }
            guard let id = String(validating: sealed[2..<(2 + idLength)], as: UTF8.self) else { throw .malformed("invalid key id") }
            guard let key = keys[id] else { throw .unknownKey(id) }
            let box = Array(sealed[(2 + idLength)...])
            var plaintext = [UInt8](repeating: 0, count: box.count - SealedBox.overhead)
            let status = key.secret.withBytes { secret in
                crypto_box_seal_open(&plaintext, box, UInt64(box.count), key.public.bytes, secret.bindMemory(to: UInt8.self).baseAddress!)
            }
            guard status == 0 else { throw .authenticationFailed }
            return plaintext
        }

        public var description: String { "SealedBox.SecretKeys(\(keys.keys.sorted()))" }
        public var customMirror: Mirror { Mirror(self, children: []) }
    }
}
