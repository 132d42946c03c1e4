import CSodium

/// A value encrypted at rest with XChaCha20-Poly1305, self-describing: it carries the ID of the
/// key that sealed it and its nonce, so a key ring can open values sealed under older keys.
///
/// Binary layout: `0x01 | key-id length | key id | 24-byte nonce | ciphertext + 16-byte tag`.
/// The header (version, length, key id) is authenticated with the caller's associated data, so
/// relabelling a value with another key ID fails like any other tampering. Text form:
/// `rs1.` + URL-safe base64 of the binary layout.
public struct SealedSecret: Sendable, Equatable, CustomStringConvertible {
    static let version: UInt8 = 1
    static let textPrefix = "rs1."
    static let nonceByteCount = Int(crypto_aead_xchacha20poly1305_ietf_NPUBBYTES)
    static let tagByteCount = Int(crypto_aead_xchacha20poly1305_ietf_ABYTES)

    public let bytes: [UInt8]
    public let keyID: String

    /// Parses the binary layout; refuses anything truncated or of another version.
    public init(bytes: [UInt8]) throws(SodiumError) {
        guard bytes.count >= 2, bytes[0] == Self.version else { throw .malformed("unknown version") }
        let idLength = Int(bytes[1])
        guard idLength > 0, bytes.count >= 2 + idLength + Self.nonceByteCount + Self.tagByteCount else {
            throw .malformed("truncated")
        }
        guard let keyID = String(validating: bytes[2..<(2 + idLength)], as: UTF8.self), KeyRing.isValidKeyID(keyID) else {
            throw .malformed("invalid key id")
        }
        self.bytes = bytes
        self.keyID = keyID
    }

    public init(text: String) throws(SodiumError) {
        guard text.hasPrefix(Self.textPrefix),
            let bytes = Base64.decode(String(text.dropFirst(Self.textPrefix.count)), variant: sodium_base64_VARIANT_URLSAFE_NO_PADDING)
        else {
            throw .malformed("not a sealed secret")
        }
        try self.init(bytes: bytes)
    }

    public var text: String {
        Self.textPrefix + Base64.encode(bytes, variant: sodium_base64_VARIANT_URLSAFE_NO_PADDING)
    }

    var headerLength: Int { 2 + bytes[1].asInt }

    public var description: String { "SealedSecret(key: \(keyID), \(bytes.count) bytes)" }
}

extension UInt8 {
    fileprivate var asInt: Int { Int(self) }
}

/// The keys that seal secrets: one current key that seals, and older keys kept only to open
/// what they sealed, so keys rotate without a flag day. Key material never appears in
/// `description` or a mirror.
public struct KeyRing: Sendable, CustomStringConvertible, CustomReflectable {
    public let currentKeyID: String
    private let keys: [String: SecretKey]

    public init(currentKeyID: String, keys: [String: SecretKey]) throws(SodiumError) {
        try Sodium.ensureReady()
        for id in keys.keys where !Self.isValidKeyID(id) {
            throw .invalidKey("key id \(id.debugDescription) must be 1-64 of A-Z a-z 0-9 _ -")
        }
        guard keys[currentKeyID] != nil else { throw .unknownKey(currentKeyID) }
        self.currentKeyID = currentKeyID
        self.keys = keys
    }

    /// Parses configuration of the form `id:base64key[,id:base64key…]`; the first key is current.
    public init(parsing specification: String) throws(SodiumError) {
        let entries = try Self.parseEntries(specification)
        var keys: [String: SecretKey] = [:]
        for entry in entries { keys[entry.id] = try SecretKey(bytes: entry.bytes) }
        try self.init(currentKeyID: entries[0].id, keys: keys)
    }

    /// The `id:base64[,id:base64…]` form every key setting uses (sealing keys, the audit signing
    /// keys): at least one entry, valid and distinct IDs, base64 bytes. What the bytes must be is
    /// the caller's to check.
    public static func parseEntries(_ specification: String) throws(SodiumError) -> [(id: String, bytes: [UInt8])] {
        var entries: [(id: String, bytes: [UInt8])] = []
        for entry in specification.split(separator: ",") {
            let parts = entry.trimmingSpaces.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, let bytes = Base64.decode(String(parts[1])) else {
                throw .invalidKey("each key is written id:base64")
            }
            let id = String(parts[0])
            guard isValidKeyID(id) else { throw .invalidKey("key id \(id.debugDescription) must be 1-64 of A-Z a-z 0-9 _ -") }
            guard !entries.contains(where: { $0.id == id }) else { throw .invalidKey("key id \(id.debugDescription) appears twice") }
            entries.append((id, bytes))
        }
        guard !entries.isEmpty else { throw .invalidKey("no key given") }
        return entries
    }

    static func isValidKeyID(_ id: String) -> Bool {
        (1...64).contains(id.utf8.count)
            && id.utf8.allSatisfy { byte in
                (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                    || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
            }
    }

    public var keyIDs: [String] { keys.keys.sorted() }

    /// The key with this ID, for a format other than `SealedSecret` (a `SecretStream`).
    public func key(_ id: String) throws(SodiumError) -> SecretKey {
        guard let key = keys[id] else { throw .unknownKey(id) }
        return key
    }

    /// Seals with the current key and a fresh random nonce.
    public func seal(_ plaintext: [UInt8], associatedData: [UInt8] = []) -> SealedSecret {
        let key = keys[currentKeyID]!
        let id = Array(currentKeyID.utf8)
        let header = [SealedSecret.version, UInt8(id.count)] + id
        let nonce = randomBytes(SealedSecret.nonceByteCount)
        let authenticated = header + associatedData
        var ciphertext = [UInt8](repeating: 0, count: plaintext.count + SealedSecret.tagByteCount)
        var ciphertextLength: UInt64 = 0
        key.withBytes { keyBytes in
            _ = crypto_aead_xchacha20poly1305_ietf_encrypt(
                &ciphertext,
                &ciphertextLength,
                plaintext,
                UInt64(plaintext.count),
                authenticated,
                UInt64(authenticated.count),
                nil,
                nonce,
                keyBytes.bindMemory(to: UInt8.self).baseAddress!
            )
        }
        return try! SealedSecret(bytes: header + nonce + ciphertext.prefix(Int(ciphertextLength)))
    }

    /// Opens a value sealed by any key of the ring, with the same associated data.
    public func open(_ sealed: SealedSecret, associatedData: [UInt8] = []) throws(SodiumError) -> [UInt8] {
        guard let key = keys[sealed.keyID] else { throw .unknownKey(sealed.keyID) }
        let header = Array(sealed.bytes[0..<sealed.headerLength])
        let nonce = Array(sealed.bytes[sealed.headerLength..<(sealed.headerLength + SealedSecret.nonceByteCount)])
        let ciphertext = Array(sealed.bytes[(sealed.headerLength + SealedSecret.nonceByteCount)...])
        let authenticated = header + associatedData
        var plaintext = [UInt8](repeating: 0, count: ciphertext.count - SealedSecret.tagByteCount)
        var plaintextLength: UInt64 = 0
        let status = key.withBytes { keyBytes in
            crypto_aead_xchacha20poly1305_ietf_decrypt(
                &plaintext,
                &plaintextLength,
                nil,
                ciphertext,
                UInt64(ciphertext.count),
                authenticated,
                UInt64(authenticated.count),
                nonce,
                keyBytes.bindMemory(to: UInt8.self).baseAddress!
            )
        }
        guard status == 0 else { throw .authenticationFailed }
        return Array(plaintext.prefix(Int(plaintextLength)))
    }

    /// HMAC-SHA-256 of `message` under key `keyID` of the ring (the current key by default),
    /// bound to `purpose` so one key's tags for one use are never valid for another. For
    /// high-entropy secrets stored hashed: without the ring, a copy of the database can neither
    /// confirm a guessed secret nor plant one.
    public func keyedHash(_ message: [UInt8], purpose: String, keyID: String? = nil) throws(SodiumError) -> [UInt8] {
        let id = keyID ?? currentKeyID
        guard let key = keys[id] else { throw .unknownKey(id) }
        let input = Array(purpose.utf8) + [0] + message
        var tag = [UInt8](repeating: 0, count: Int(crypto_auth_hmacsha256_BYTES))
        key.withBytes { keyBytes in
            var state = crypto_auth_hmacsha256_state()
            _ = crypto_auth_hmacsha256_init(&state, keyBytes.bindMemory(to: UInt8.self).baseAddress!, keyBytes.count)
            _ = crypto_auth_hmacsha256_update(&state, input, UInt64(input.count))
            _ = crypto_auth_hmacsha256_final(&state, &tag)
        }
        return tag
    }

    /// True when `sealed` was sealed by an older key and should be sealed again with the current.
    public func needsResealing(_ sealed: SealedSecret) -> Bool {
        sealed.keyID != currentKeyID
    }

    public var description: String { "KeyRing(current: \(currentKeyID), keys: \(keyIDs.joined(separator: ",")))" }
    public var customMirror: Mirror { Mirror(self, children: ["currentKeyID": currentKeyID]) }
}

extension Substring {
    fileprivate var trimmingSpaces: Substring {
        var result = self
        while result.first == " " { result = result.dropFirst() }
        while result.last == " " { result = result.dropLast() }
        return result
    }
}
