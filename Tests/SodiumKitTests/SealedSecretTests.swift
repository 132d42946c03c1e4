import SodiumKit
import Testing

@Suite("SodiumKit sealed secrets (MFA-5, TEN-9)")
struct SealedSecretTests {
    let ring = try! KeyRing(currentKeyID: "k1", keys: ["k1": SecretKey.generate()])

    @Test("a sealed secret opens to the same bytes, in binary and in text form")
    func roundTrip() throws {
        let secret = Array("JBSWY3DPEHPK3PXP".utf8)
        let sealed = ring.seal(secret, associatedData: Array("user:42".utf8))
        #expect(sealed.keyID == "k1")
        #expect(try ring.open(sealed, associatedData: Array("user:42".utf8)) == secret)
        let parsed = try SealedSecret(text: sealed.text)
        #expect(parsed == sealed)
        #expect(try ring.open(parsed, associatedData: Array("user:42".utf8)) == secret)
    }

    @Test("sealing twice gives different ciphertexts (fresh nonce)")
    func freshNonce() {
        let first = ring.seal([1, 2, 3])
        let second = ring.seal([1, 2, 3])
        #expect(first.bytes != second.bytes)
    }

    @Test("any changed byte of the ciphertext is refused")
    func tamperedCiphertext() throws {
        let sealed = ring.seal(Array("secret".utf8))
        for index in sealed.bytes.indices.dropFirst(2 + 2) {
            var bytes = sealed.bytes
            bytes[index] ^= 0x01
            let tampered = try SealedSecret(bytes: bytes)
            #expect(throws: SodiumError.authenticationFailed) { try ring.open(tampered) }
        }
    }

    @Test("a value relabelled with another key's ID is refused")
    func relabelledKeyID() throws {
        let other = SecretKey.generate()
        let ring = try KeyRing(currentKeyID: "k1", keys: ["k1": SecretKey.generate(), "k2": other])
        let sealed = ring.seal(Array("secret".utf8))
        var bytes = sealed.bytes
        bytes[3] = UInt8(ascii: "2")  // "k1" → "k2"
        let relabelled = try SealedSecret(bytes: bytes)
        #expect(relabelled.keyID == "k2")
        #expect(throws: SodiumError.authenticationFailed) { try ring.open(relabelled) }
    }

    @Test("the wrong key is refused")
    func wrongKey() throws {
        let sealed = ring.seal(Array("secret".utf8))
        let impostor = try KeyRing(currentKeyID: "k1", keys: ["k1": SecretKey.generate()])
        #expect(throws: SodiumError.authenticationFailed) { try impostor.open(sealed) }
    }

    @Test("the wrong associated data is refused")
    func wrongAssociatedData() {
        let sealed = ring.seal(Array("secret".utf8), associatedData: Array("tenant-a".utf8))
        #expect(throws: SodiumError.authenticationFailed) { try ring.open(sealed, associatedData: Array("tenant-b".utf8)) }
        #expect(throws: SodiumError.authenticationFailed) { try ring.open(sealed) }
    }

    @Test("an old key of the ring still opens what it sealed, and flags it for resealing")
    func keyRotation() throws {
        let old = SecretKey.generate()
        let before = try KeyRing(currentKeyID: "2025", keys: ["2025": old])
        let sealed = before.seal(Array("secret".utf8))
        let after = try KeyRing(currentKeyID: "2026", keys: ["2026": SecretKey.generate(), "2025": old])
        #expect(try after.open(sealed) == Array("secret".utf8))
        #expect(after.needsResealing(sealed))
        #expect(after.seal([1]).keyID == "2026")
        #expect(!after.needsResealing(after.seal([1])))
        let dropped = try KeyRing(currentKeyID: "2026", keys: ["2026": SecretKey.generate()])
        #expect(throws: SodiumError.unknownKey("2025")) { try dropped.open(sealed) }
    }

    @Test("malformed and truncated values are refused with a clear error")
    func malformed() throws {
        #expect(throws: SodiumError.self) { try SealedSecret(text: "not sealed") }
        #expect(throws: SodiumError.self) { try SealedSecret(text: "rs1.!!!") }
        #expect(throws: SodiumError.self) { try SealedSecret(bytes: []) }
        #expect(throws: SodiumError.self) { try SealedSecret(bytes: [2, 1, 65]) }
        let sealed = ring.seal(Array("secret".utf8))
        #expect(throws: SodiumError.self) { try SealedSecret(bytes: Array(sealed.bytes.prefix(20))) }
    }

    @Test("a key ring parses id:base64 pairs, the first current, and never prints key material")
    func keyRingConfiguration() throws {
        let first = SecretKey.generate()
        let second = SecretKey.generate()
        let ring = try KeyRing(parsing: "new:\(first.exportBase64()), old:\(second.exportBase64())")
        #expect(ring.currentKeyID == "new")
        #expect(ring.keyIDs == ["new", "old"])
        for text in [ring.description, String(describing: ring), String(reflecting: ring), "\(first)"] {
            #expect(!text.contains(first.exportBase64()))
            #expect(!text.contains(second.exportBase64()))
        }
        #expect(throws: SodiumError.self) { try KeyRing(parsing: "") }
        #expect(throws: SodiumError.self) { try KeyRing(parsing: "a:short") }
        #expect(throws: SodiumError.self) { try KeyRing(parsing: "a b:\(first.exportBase64())") }
        #expect(throws: SodiumError.self) { try KeyRing(parsing: "a:\(first.exportBase64()),a:\(second.exportBase64())") }
    }
}

@Suite("SodiumKit primitives")
struct PrimitiveTests {
    @Test("argon2id verifies the right password only, and flags old parameters for rehash")
    func argon2id() throws {
        let policy = Argon2id(operationsLimit: 2, memoryLimit: 16 * 1024 * 1024)
        let hash = try policy.hash("correct horse battery staple")
        #expect(hash.hasPrefix("$argon2id$"))
        #expect(Argon2id.verify("correct horse battery staple", against: hash))
        #expect(!Argon2id.verify("correct horse battery stapl", against: hash))
        #expect(!Argon2id.verify("correct horse battery staple", against: "$argon2id$garbage"))
        #expect(!Argon2id.verify("x", against: "$2b$12$notargon"))
        #expect(!policy.needsRehash(hash))
        #expect(Argon2id(operationsLimit: 3, memoryLimit: 16 * 1024 * 1024).needsRehash(hash))
        #expect(try policy.hash("same") != policy.hash("same"))  // salted
    }

    @Test("constant-time comparison")
    func constantTime() {
        #expect(constantTimeEquals([1, 2, 3], [1, 2, 3]))
        #expect(!constantTimeEquals([1, 2, 3], [1, 2, 4]))
        #expect(!constantTimeEquals([1, 2, 3], [1, 2]))
        #expect(constantTimeEquals([UInt8](), []))
    }

    @Test("random bytes are the requested length and differ")
    func random() {
        #expect(randomBytes(32).count == 32)
        #expect(randomBytes(32) != randomBytes(32))
        #expect(randomBytes(0).isEmpty)
    }

    @Test("fingerprint is BLAKE2b-256 in lowercase hex (RFC 7693 test vector)")
    func fingerprintVector() {
        #expect(fingerprint(Array("abc".utf8)) == "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319")
        #expect(fingerprint([UInt8]()).count == 64)
    }

    @Test("sha256 matches the FIPS 180-2 test vector")
    func sha256Vector() {
        #expect(hexString(sha256(Array("abc".utf8))) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    @Test("a keyed hash is HMAC-SHA-256 of purpose, NUL, message, under the named key of the ring")
    func keyedHash() throws {
        let old = try SecretKey(bytes: Array(0..<32))
        let ring = try KeyRing(currentKeyID: "new", keys: ["old": old, "new": .generate()])
        let tag = try ring.keyedHash(Array("abc".utf8), purpose: "api_key", keyID: "old")
        #expect(hexString(tag) == "97fd989210606014b0da3fda11746415f6736ef746ec4a4a4ad103df190b4c4b")
        #expect(try ring.keyedHash(Array("abc".utf8), purpose: "other", keyID: "old") != tag)
        #expect(try ring.keyedHash(Array("abc".utf8), purpose: "api_key") != tag)
        #expect(throws: SodiumError.unknownKey("gone")) { try ring.keyedHash([1], purpose: "api_key", keyID: "gone") }
    }
}

@Suite("SodiumKit streams (OPS-2 backups)")
struct SecretStreamTests {
    @Test("chunks open in order only, under their key and associated data; the last is marked")
    func stream() throws {
        let key = SecretKey.generate()
        var sealer = try SecretStream.Sealer(key: key)
        let chunks = [
            sealer.seal([1, 2, 3], associatedData: [9], isFinal: false), sealer.seal([4], associatedData: [9], isFinal: false),
            sealer.seal([], associatedData: [9], isFinal: true),
        ]
        #expect(chunks[0].count == 3 + SecretStream.chunkOverhead)

        var opener = try SecretStream.Opener(key: key, header: sealer.header)
        #expect(try opener.open(chunks[0], associatedData: [9]) == ([1, 2, 3], false))
        #expect(try opener.open(chunks[1], associatedData: [9]) == ([4], false))
        #expect(try opener.open(chunks[2], associatedData: [9]) == ([], true))

        var reordered = try SecretStream.Opener(key: key, header: sealer.header)
        #expect(throws: SodiumError.authenticationFailed) { try reordered.open(chunks[1], associatedData: [9]) }
        var otherData = try SecretStream.Opener(key: key, header: sealer.header)
        #expect(throws: SodiumError.authenticationFailed) { try otherData.open(chunks[0], associatedData: [8]) }
        var otherKey = try SecretStream.Opener(key: .generate(), header: sealer.header)
        #expect(throws: SodiumError.authenticationFailed) { try otherKey.open(chunks[0], associatedData: [9]) }
        #expect(throws: SodiumError.self) { _ = try SecretStream.Opener(key: key, header: [1, 2, 3]) }
    }

    @Test("SHA-256 fed in pieces equals SHA-256 at once")
    func hasher() {
        let bytes = (0..<10_000).map { UInt8($0 % 251) }
        var hasher = SHA256Hasher()
        hasher.update(bytes.prefix(3))
        hasher.update(bytes.dropFirst(3))
        #expect(hasher.finish() == sha256(bytes))
    }
}
