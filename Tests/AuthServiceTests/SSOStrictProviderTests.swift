import AuthService
// NSNull, JSON's null for the provider's control.
import Foundation
import RampartModels
import ServiceKit
import ServicesTestSupport
import TestSupport
import Testing

@Suite("SSO-1, SSO-3 against a strict provider (Authlib): PKCE, ES256 and EdDSA, key rotation, RFC 9207, hostile ID tokens", .serialized)
struct SSOStrictProviderTests {
    struct World {
        let world: GatewayWorld
        let provider: StrictOpenIDProvider
        let connection: String

        func signIn() async throws -> HTTPTestResponse {
            var browser = SSOBrowser(gatewayPort: world.port)
            let callback = try await provider.authorize(try await browser.start("connection_id=\(connection)"))
            return try await browser.callback(callback)
        }
    }

    func withWorld(_ body: (World) async throws -> Void) async throws {
        let provider = try await StrictOpenIDProvider.start(redirectURI: "http://127.0.0.1:8080/v1/auth/sso/callback")
        defer { provider.stop() }
        let world = try await GatewayWorld.start(authSettings: TenantsCluster.ssoAuthSettings, rateLimitSettings: TenantsCluster.liftedSignInLimits())
        try await stopping(world.cluster) {
            let made = try await world.send(
                "POST",
                "/v1/tenants/\(world.tenant)/sso/connections",
                #"{"preset":"oidc","issuer":"\#(provider.issuer)","client_id":"\#(provider.clientID)","client_secret":"\#(provider.clientSecret)"}"#,
                token: world.adaToken
            )
            let id = try #require((try HTTP.object(made)["connection"] as? [String: Any])?["connection_id"] as? String, "\(made.body)")
            let active = try await world.send(
                "PATCH",
                "/v1/tenants/\(world.tenant)/sso/connections/\(id)",
                #"{"state":"active"}"#,
                token: world.adaToken
            )
            #expect(active.status == 200, "\(active.body)")
            try await provider.control(["user": ["sub": "ada-strict", "email": "ada@lovelace.example", "email_verified": true]])
            try await body(World(world: world, provider: provider, connection: id))
        }
    }

    @Test("ES256 then EdDSA tokens sign Ada in; the provider saw PKCE S256 and the verifier, and sent iss, which was checked")
    func algorithmsAndPKCE() async throws {
        try await withWorld { w in
            let es256 = try await w.signIn()
            #expect(es256.status == 200, "\(es256.body)")
            let seen = try await w.provider.seen()
            #expect(seen["authorize"]?["code_challenge_method"] == "S256")
            let challenge = try #require(seen["authorize"]?["code_challenge"])
            let verifier = try #require(seen["token"]?["code_verifier"])
            #expect(challenge.count == 43 && verifier.count >= 43 && challenge != verifier)
            #expect(seen["token"]?["redirect_uri"] == "http://127.0.0.1:8080/v1/auth/sso/callback")
            try await w.provider.control(["alg": "EdDSA"])
            let edDSA = try await w.signIn()
            #expect(edDSA.status == 200, "\(edDSA.body)")
        }
    }

    @Test("The provider rotates its key mid-test: auth fetches the JWK Set again and the next sign-in works")
    func keyRotation() async throws {
        try await withWorld { w in
            #expect(try await w.signIn().status == 200)
            try await w.provider.control(["rotate": true])
            // A set fetched moments ago is not fetched again at once (ten seconds): made-up key
            // IDs cannot make auth hammer the provider. Past that, the new key is found.
            try await Task.sleep(for: .seconds(11))
            let rotated = try await w.signIn()
            #expect(rotated.status == 200, "\(rotated.body)")
        }
    }

    @Test("Hostile answers: each refused with its reason, no session, audited as sso.login_failed")
    func hostileTokens() async throws {
        try await withWorld { w in
            let cases: [(misbehave: String, reason: String)] = [
                ("wrong_nonce", "id_token_wrong_nonce"),
                ("expired", "id_token_expired"),
                ("other_audience", "id_token_wrong_audience"),
                ("several_audiences", "id_token_wrong_azp"),
                ("tampered", "id_token_signature_invalid"),
                ("none_alg", "id_token_algorithm_not_allowed"),
                ("unknown_key", "id_token_unknown_key"),
                ("wrong_iss_parameter", "issuer_mismatch"),
                ("no_iss_parameter", "issuer_missing"),
            ]
            for (misbehave, reason) in cases {
                try await w.provider.control(["misbehave": misbehave])
                let refused = try await w.signIn()
                #expect(refused.status == 401 && HTTP.errors(refused)["reason"] == reason, "\(misbehave): \(refused.body)")
                #expect(!refused.body.contains("access_token"))
            }
            try await w.provider.control(["misbehave": NSNull()])
            #expect(try await w.signIn().status == 200)
            let audited = try await w.world.cluster.events(
                Subjects.audit(tenant: TenantID(w.world.tenant)),
                as: Rampart_V1_AuditEvent.self,
                stream: Subjects.auditStream
            )
            let reasons = audited.filter { $0.action == AuditAction.ssoLoginFailed.rawValue }.map(\.reason)
            #expect(reasons == cases.map(\.reason), "\(reasons)")
        }
    }
}
