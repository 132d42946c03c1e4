import Crypto
import CryptoExtras
// JSONSerialization, to write claims of any shape as a provider would.
import Foundation
import SodiumKit
import Testing

@testable import AuthService

/// A provider's signing keys, made in the test: what a real provider's JWKS and tokens look like.
struct TestProvider {
    static let rsa = try! _RSA.Signing.PrivateKey(keySize: .bits2048)
    let p256 = P256.Signing.PrivateKey()
    let ed25519 = Curve25519.Signing.PrivateKey()

    var jwks: String {
        let primitives = try! Self.rsa.publicKey.getKeyPrimitives()
        let ec = p256.publicKey.rawRepresentation
        return """
            {"keys": [
              {"kty": "RSA", "kid": "rsa-1", "use": "sig", "n": "\(b64(primitives.modulus))", "e": "\(b64(primitives.publicExponent))"},
              {"kty": "EC", "kid": "ec-1", "crv": "P-256", "x": "\(b64(ec.prefix(32)))", "y": "\(b64(ec.suffix(32)))"},
              {"kty": "OKP", "kid": "ed-1", "crv": "Ed25519", "x": "\(b64(ed25519.publicKey.rawRepresentation))"},
              {"kty": "RSA", "kid": "enc-1", "use": "enc", "n": "\(b64(primitives.modulus))", "e": "AQAB"},
              {"kty": "EC", "kid": "broken", "crv": "P-256", "x": "not base64!"},
              {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"}
            ]}
            """
    }

    var keys: ProviderKeySet { try! ProviderKeySet(json: Array(jwks.utf8)) }

    func token(
        _ claims: [String: Any],
        alg: String = "RS256",
        kid: String? = "rsa-1",
        extraHeader: [String: Any] = [:]
    )
        -> String
    {
        var header: [String: Any] = ["alg": alg, "typ": "JWT"]
        if let kid { header["kid"] = kid }
        header.merge(extraHeader) { $1 }
        let input = b64(json(header)) + "." + b64(json(claims))
        return input + "." + b64(sign(Array(input.utf8), alg: alg))
    }

    func sign(_ input: [UInt8], alg: String) -> [UInt8] {
        switch alg {
        case "RS256": Array(try! Self.rsa.signature(for: SHA256.hash(data: input), padding: .insecurePKCS1v1_5).rawRepresentation)
        case "PS256": Array(try! Self.rsa.signature(for: SHA256.hash(data: input), padding: .PSS).rawRepresentation)
        case "ES256": Array(try! p256.signature(for: input).rawRepresentation)
        case "EdDSA": Array(try! ed25519.signature(for: input))
        case "HS256": Array(HMAC<SHA256>.authenticationCode(for: input, using: SymmetricKey(data: Array("client-secret".utf8))))
        default: []
        }
    }
}

private func b64(_ bytes: some Collection<UInt8>) -> String { Base64.encode(Array(bytes), variant: Base64.urlSafeNoPadding) }
private func json(_ object: [String: Any]) -> [UInt8] { Array(try! JSONSerialization.data(withJSONObject: object)) }

@Suite("SSO-1's ID token: signature against the provider's JWKS, then every claim OpenID Connect Core 3.1.3.7 names")
struct IDTokenTests {
    let provider = TestProvider()
    let now = Date()
    let issuer = "https://idp.example.com"

    func expectation(algorithms: Set<SigningAlgorithm> = SigningAlgorithm.asymmetric, secret: String? = nil) -> IDTokenExpectation {
        IDTokenExpectation(
            issuer: issuer,
            clientID: "rampart-client",
            nonce: "n-0S6_WzA2Mj",
            algorithms: algorithms,
            clientSecret: secret.map { Array($0.utf8) },
            now: now
        )
    }

    func claims(_ changes: [String: Any?] = [:]) -> [String: Any] {
        var claims: [String: Any] = [
            "iss": issuer, "aud": "rampart-client", "sub": "248289761001", "nonce": "n-0S6_WzA2Mj",
            "iat": now.timeIntervalSince1970 - 5, "exp": now.timeIntervalSince1970 + 300,
            "email": "ada@example.com", "email_verified": true, "amr": ["pwd", "mfa"],
        ]
        for (name, value) in changes { claims[name] = value }
        return claims
    }

    func rejection(_ token: String, _ expectation: IDTokenExpectation? = nil) -> IDTokenRejection? {
        do {
            _ = try IDToken.verify(token, keys: provider.keys, expecting: expectation ?? self.expectation())
            return nil
        } catch { return error }
    }

    @Test("A token signed with each asymmetric algorithm a provider uses is accepted, and its claims read")
    func acceptsEachAlgorithm() throws {
        for (alg, kid) in [("RS256", "rsa-1"), ("PS256", "rsa-1"), ("ES256", "ec-1"), ("EdDSA", "ed-1")] {
            let token = try IDToken.verify(provider.token(claims(), alg: alg, kid: kid), keys: provider.keys, expecting: expectation())
            #expect(token.subject == "248289761001", "\(alg)")
            #expect(token.email == "ada@example.com")
            #expect(token.emailVerified)
            #expect(token.methods == ["pwd", "mfa"])
        }
    }

    @Test("Keys the set cannot sign with are left out: encryption, symmetric and malformed keys")
    func keySetKeepsSigningKeys() throws {
        #expect(provider.keys.keys.map(\.kid) == ["rsa-1", "ec-1", "ed-1"])
        #expect(throws: ProviderKeySet.Failure.noUsableKey) { try ProviderKeySet(json: Array(#"{"keys": [{"kty": "oct", "k": "AA"}]}"#.utf8)) }
        #expect(throws: ProviderKeySet.Failure.notAKeySet) { try ProviderKeySet(json: Array("<html>".utf8)) }
        // An RSA modulus under 2048 bits is not a key RFC 7518 lets anyone sign with.
        let short = b64(Array(repeating: 0xC3, count: 128))
        #expect(throws: ProviderKeySet.Failure.noUsableKey) {
            try ProviderKeySet(json: Array(#"{"keys": [{"kty": "RSA", "kid": "s", "n": "\#(short)", "e": "AQAB"}]}"#.utf8))
        }
    }

    @Test("alg none, an unknown alg and HS256 from a connection that does not name it are refused")
    func refusesUnsignedAndSymmetric() {
        let unsigned = b64(json(["alg": "none"])) + "." + b64(json(claims())) + "."
        #expect(rejection(unsigned) == .algorithmNotAllowed)
        #expect(rejection(provider.token(claims(), alg: "none")) == .algorithmNotAllowed)
        #expect(rejection(provider.token(claims(), alg: "HS512")) == .algorithmNotAllowed)
        #expect(rejection(provider.token(claims(), alg: "HS256")) == .algorithmNotAllowed)
        // Named by the connection, HS256 checks with the client secret, and with nothing else.
        let hs256 = expectation(algorithms: [.hs256], secret: "client-secret")
        #expect(rejection(provider.token(claims(), alg: "HS256", kid: nil), hs256) == nil)
        #expect(rejection(provider.token(claims(), alg: "HS256", kid: nil), expectation(algorithms: [.hs256], secret: "other")) == .badSignature)
        // A connection that allows RS256 only refuses a correctly signed ES256 token.
        #expect(rejection(provider.token(claims(), alg: "ES256", kid: "ec-1"), expectation(algorithms: [.rs256])) == .algorithmNotAllowed)
    }

    @Test("A key is used only with its own type: an RSA key named for an ES256 token is unknown")
    func keyTypeMatchesAlgorithm() {
        #expect(rejection(provider.token(claims(), alg: "ES256", kid: "rsa-1")) == .unknownKey)
        #expect(rejection(provider.token(claims(), alg: "RS256", kid: "ec-1")) == .unknownKey)
        #expect(rejection(provider.token(claims(), alg: "RS256", kid: "rotated-away")) == .unknownKey)
        // Without a kid, the one key that fits the algorithm is used; with several it would be a guess.
        #expect(rejection(provider.token(claims(), alg: "ES256", kid: nil)) == nil)
        let twoRSA = ProviderKeySet(keys: provider.keys.keys + provider.keys.keys.filter { $0.kid == "rsa-1" })
        #expect(throws: IDTokenRejection.unknownKey) {
            try IDToken.verify(provider.token(claims(), kid: nil), keys: twoRSA, expecting: expectation())
        }
    }

    @Test("A tampered payload, header or signature fails the signature")
    func tamperedTokens() {
        let token = provider.token(claims())
        let parts = token.split(separator: ".").map(String.init)
        let forged = b64(json(claims(["sub": "someone-else"])))
        #expect(rejection([parts[0], forged, parts[2]].joined(separator: ".")) == .badSignature)
        let otherHeader = b64(json(["alg": "RS256", "kid": "rsa-1", "typ": "at+jwt"]))
        #expect(rejection([otherHeader, parts[1], parts[2]].joined(separator: ".")) == .badSignature)
        #expect(rejection([parts[0], parts[1], b64(Array(repeating: 0, count: 256))].joined(separator: ".")) == .badSignature)
        // Signed by another key that claims the provider's kid.
        let impostor = TestProvider()
        #expect(rejection(impostor.token(claims(), alg: "ES256", kid: "ec-1")) == .badSignature)
    }

    @Test("Malformed tokens: wrong section count, bad base64, a critical extension, oversized")
    func malformedTokens() {
        let token = provider.token(claims())
        #expect(rejection(token + ".x.y") == .malformed)
        #expect(rejection("a.b") == .malformed)
        #expect(rejection(token.replacing(".", with: ".*")) == .malformed)
        #expect(rejection(provider.token(claims(), extraHeader: ["crit": ["exp"]])) == .malformed)
        #expect(rejection(provider.token(claims(), extraHeader: ["kid": 7])) == .malformed)
        #expect(rejection(provider.token(claims(["pad": String(repeating: "x", count: IDToken.maximumLength)]))) == .malformed)
    }

    @Test("iss, aud and azp: another issuer, another audience, several audiences without this client as azp")
    func issuerAndAudience() {
        #expect(rejection(provider.token(claims(["iss": "https://idp.example.com/"]))) == .wrongIssuer)
        #expect(rejection(provider.token(claims(["iss": nil]))) == .wrongIssuer)
        #expect(rejection(provider.token(claims(["aud": "another-client"]))) == .wrongAudience)
        #expect(rejection(provider.token(claims(["aud": ["another-client"]]))) == .wrongAudience)
        #expect(rejection(provider.token(claims(["aud": ["rampart-client", "another-client"]]))) == .wrongAuthorizedParty)
        #expect(rejection(provider.token(claims(["aud": ["rampart-client", "b"], "azp": "b"]))) == .wrongAuthorizedParty)
        #expect(rejection(provider.token(claims(["aud": ["rampart-client", "b"], "azp": "rampart-client"]))) == nil)
        #expect(rejection(provider.token(claims(["azp": "another-client"]))) == .wrongAuthorizedParty)
    }

    @Test("exp, iat and nbf with a minute's leeway; an iat older than ten minutes is not this sign-in's")
    func timeClaims() {
        let t = now.timeIntervalSince1970
        #expect(rejection(provider.token(claims(["exp": t - 61]))) == .expired)
        #expect(rejection(provider.token(claims(["exp": t - 30]))) == nil)
        #expect(rejection(provider.token(claims(["exp": nil]))) == .expired)
        #expect(rejection(provider.token(claims(["exp": "tomorrow"]))) == .expired)
        #expect(rejection(provider.token(claims(["iat": t + 120]))) == .notYetValid)
        #expect(rejection(provider.token(claims(["iat": t - 700]))) == .expired)
        #expect(rejection(provider.token(claims(["nbf": t + 120]))) == .notYetValid)
        #expect(rejection(provider.token(claims(["nbf": "now"]))) == .notYetValid)
    }

    @Test("nonce and sub: another nonce, none, an empty or missing subject")
    func nonceAndSubject() {
        #expect(rejection(provider.token(claims(["nonce": "n-other"]))) == .wrongNonce)
        #expect(rejection(provider.token(claims(["nonce": nil]))) == .wrongNonce)
        #expect(rejection(provider.token(claims(["sub": ""]))) == .missingSubject)
        #expect(rejection(provider.token(claims(["sub": nil]))) == .missingSubject)
    }

    @Test("email_verified counts only as JSON true")
    func emailVerified() throws {
        for value: Any in ["true", 1, false] {
            let token = try IDToken.verify(provider.token(claims(["email_verified": value])), keys: provider.keys, expecting: expectation())
            #expect(!token.emailVerified, "\(value)")
        }
    }
}
