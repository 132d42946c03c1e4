import Foundation
import SodiumKit
import Testing
import TokenKit

@Suite("AUTH-3 access tokens: EdDSA JWTs, a strict verifier, JWKS")
struct AccessTokenTests {
    let key = SigningKey.generate()
    var signer: AccessTokenSigner { AccessTokenSigner(keyID: "k1", key: key) }
    var verifier: AccessTokenVerifier { AccessTokenVerifier(issuer: "rampart", publicKeys: ["k1": key.publicKey], leewaySeconds: 30) }
    let claims = AccessToken(
        iss: "rampart",
        sub: "6f1c2d3e-0000-4000-8000-000000000001",
        tenant: "0123456789abcdef0123456789abcdef",
        sid: "s1",
        roles: ["owner"],
        amr: ["pwd"],
        iat: 1_800_000_000,
        exp: 1_800_000_900,
        jti: "j1"
    )

    func b64(_ text: String) -> String { Base64.encode(Array(text.utf8), variant: Base64.urlSafeNoPadding) }

    @Test("a signed token verifies and says what was signed")
    func roundTrip() throws {
        let token = try signer.sign(claims)
        let header = try #require(Base64.decode(String(token.split(separator: ".")[0]), variant: Base64.urlSafeNoPadding))
        #expect(String(decoding: header, as: UTF8.self) == #"{"alg":"EdDSA","kid":"k1","typ":"JWT"}"#)
        #expect(try verifier.verify(token, now: 1_800_000_100) == claims)
    }

    @Test("expired, early, foreign, tampered, alg none and HS256 tokens are refused")
    func refusals() throws {
        let token = try signer.sign(claims)
        #expect(throws: TokenError.expired) { try verifier.verify(token, now: 1_800_000_931) }
        #expect(throws: TokenError.notYetValid) { try verifier.verify(token, now: 1_799_999_900) }
        #expect(throws: Never.self) { try verifier.verify(token, now: 1_800_000_929) }  // within the leeway
        let other = AccessTokenSigner(keyID: "k1", key: .generate())
        #expect(throws: TokenError.badSignature) { try verifier.verify(try other.sign(claims), now: 1_800_000_100) }
        #expect(throws: TokenError.unknownKey) { try verifier.verify(try AccessTokenSigner(keyID: "k9", key: key).sign(claims), now: 1_800_000_100) }
        var foreign = claims
        foreign.iss = "evil"
        #expect(throws: TokenError.wrongIssuer) { try verifier.verify(try signer.sign(foreign), now: 1_800_000_100) }

        // A payload swapped under a valid signature: the signature covers it.
        let parts = token.split(separator: ".").map(String.init)
        var escalated = claims
        escalated.tenant = "fedcba9876543210fedcba9876543210"
        let encoder = JSONEncoder()
        let forged = parts[0] + "." + Base64.encode(Array(try encoder.encode(escalated)), variant: Base64.urlSafeNoPadding) + "." + parts[2]
        #expect(throws: TokenError.badSignature) { try verifier.verify(forged, now: 1_800_000_100) }
        // alg confusion: none, and HS256 "signed" with the public key.
        #expect(throws: TokenError.unsupportedAlgorithm) {
            try verifier.verify(b64(#"{"alg":"none","kid":"k1"}"#) + "." + parts[1] + ".", now: 1_800_000_100)
        }
        #expect(throws: TokenError.unsupportedAlgorithm) {
            try verifier.verify(b64(#"{"alg":"HS256","kid":"k1"}"#) + "." + parts[1] + "." + parts[2], now: 1_800_000_100)
        }
        for garbage in [
            "", "a.b", "a.b.c.d", "....", token + "x", String(repeating: "A", count: 5000), parts[0] + "." + parts[1] + "." + parts[2] + "==",
        ] {
            #expect(throws: TokenError.self, "\(garbage.prefix(40))") { try verifier.verify(garbage, now: 1_800_000_100) }
        }
    }

    @Test("JWKS: what is rendered parses back; other key types are ignored")
    func jwks() throws {
        let second = SigningKey.generate()
        let json = try JWKS.render(["k1": key.publicKey, "k2": second.publicKey])
        #expect(json.contains(#""kty":"OKP""#) && json.contains(#""crv":"Ed25519""#) && json.contains(#""alg":"EdDSA""#))
        #expect(try JWKS.parse(json) == ["k1": key.publicKey, "k2": second.publicKey])
        let mixed =
            #"{"keys":[{"kty":"RSA","kid":"r","n":"abc","e":"AQAB"},{"kty":"OKP","crv":"Ed25519","kid":"k1","x":"\#(Base64.encode(key.publicKey, variant: Base64.urlSafeNoPadding))"}]}"#
        #expect(try JWKS.parse(mixed) == ["k1": key.publicKey])
    }
}
