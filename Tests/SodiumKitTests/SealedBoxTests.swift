import SodiumKit
import Testing

@Suite("SodiumKit sealed boxes: sealed with a public key, opened only with its secret key")
struct SealedBoxTests {
    @Test("what is sealed to a key opens with its secret key, under the key's ID, and with nothing else")
    func roundTrip() throws {
        let keys = try SealedBox.SecretKeys(parsing: try SealedBox.SecretKeys.generate(id: "m1"))
        let publicKey = try SealedBox.PublicKey(parsing: keys.currentPublicKey.text)
        #expect(publicKey == keys.currentPublicKey && publicKey.id == "m1")
        let token = Array("0123456789abcdef.c2VjcmV0".utf8)
        let sealed = publicKey.seal(token)
        #expect(publicKey.seal(token) != sealed)  // a key pair of its own each time
        #expect(try keys.open(sealed) == token)

        let other = try SealedBox.SecretKeys(parsing: try SealedBox.SecretKeys.generate(id: "m1"))
        #expect(throws: SodiumError.authenticationFailed) { try other.open(sealed) }
        var flipped = sealed
        flipped[flipped.count - 1] ^= 1
        #expect(throws: SodiumError.authenticationFailed) { try keys.open(flipped) }
        #expect(throws: SodiumError.self) { try keys.open(Array(sealed.prefix(20))) }
        var relabelled = sealed
        relabelled[2] = UInt8(ascii: "x")
        #expect(throws: SodiumError.unknownKey("x1")) { try keys.open(relabelled) }
    }

    @Test("rotation: the recipient keeps an older secret key and still opens what was sealed to it")
    func rotation() throws {
        let old = try SealedBox.SecretKeys.generate(id: "m1")
        let sealed = try SealedBox.SecretKeys(parsing: old).currentPublicKey.seal([7])
        let rotated = try SealedBox.SecretKeys(parsing: try SealedBox.SecretKeys.generate(id: "m2") + "," + old)
        #expect(rotated.currentPublicKey.id == "m2")
        #expect(try rotated.open(sealed) == [7])
    }

    @Test("malformed keys are refused; the secret keys never print")
    func configuration() throws {
        for bad in ["", "m1", "m1:!!", "m1:AAAA", "bad id:" + String(repeating: "A", count: 44)] {
            #expect(throws: SodiumError.self) { try SealedBox.PublicKey(parsing: bad) }
        }
        let keys = try SealedBox.SecretKeys(parsing: try SealedBox.SecretKeys.generate(id: "m1"))
        #expect(!"\(keys)".contains(keys.currentPublicKey.text.dropFirst(3)))
        #expect(String(reflecting: keys).contains("m1"))
    }
}
