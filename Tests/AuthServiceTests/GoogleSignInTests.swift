import AuthService
import GatewayService
import RampartModels
import ServiceKit
import ServicesTestSupport
import TestSupport
import Testing

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The strict Authlib provider stands in for Google: the platform's client is registered there.
@Suite("SSO-4 Sign in with Google: linked by verified equal address or from settings, then by Google's subject", .serialized)
struct GoogleSignInTests {
    struct World {
        let world: GatewayWorld
        let google: StrictOpenIDProvider

        /// A Google sign-in as `claims` (sub, email, email_verified), to `query`'s tenant.
        func signIn(_ claims: [String: Any], query: String = "") async throws -> HTTPTestResponse {
            try await google.control(["user": claims])
            var browser = SSOBrowser(gatewayPort: world.port)
            let authorization = try await browser.start(query, at: "/v1/auth/google/start")
            return try await browser.callback(try await google.authorize(authorization))
        }

        /// A link from settings with `token`, as the Google account `claims` names.
        func link(_ claims: [String: Any], token: String) async throws -> HTTPTestResponse {
            try await google.control(["user": claims])
            var browser = SSOBrowser(gatewayPort: world.port)
            let started = try await browser.startLink(token: token)
            #expect(started.status == 200, "\(started.body)")
            let authorization = try #require(try HTTP.object(started)["authorization_url"] as? String)
            return try await browser.callback(try await google.authorize(authorization))
        }

        /// The platform's events and those of Ada's tenant and `others`.
        func audited(_ action: AuditAction, others: [String] = []) async throws -> [Rampart_V1_AuditEvent] {
            var events: [Rampart_V1_AuditEvent] = []
            for tenant in [nil, TenantID(world.tenant)] + others.map(TenantID.init) {
                events += try await world.cluster.events(Subjects.audit(tenant: tenant), as: Rampart_V1_AuditEvent.self, stream: Subjects.auditStream)
            }
            return events.filter { $0.action == action.rawValue }
        }
    }

    func withWorld(gateway: GatewaySettings = GatewaySettings(), _ body: (World) async throws -> Void) async throws {
        let google = try await StrictOpenIDProvider.start(redirectURI: "http://127.0.0.1:8080/v1/auth/sso/callback")
        defer { google.stop() }
        var settings = TenantsCluster.ssoAuthSettings
        settings.google = AuthSettings.GoogleClient(clientID: google.clientID, clientSecret: google.clientSecret, issuer: google.issuer)
        let world = try await GatewayWorld.start(authSettings: settings, rateLimitSettings: TenantsCluster.liftedSignInLimits(), gateway: gateway)
        try await stopping(world.cluster) { try await body(World(world: world, google: google)) }
    }

    static var ada: [String: Any] { ["sub": "google-ada", "email": "ada@lovelace.example", "email_verified": true] }

    @Test("The first sign-in links the account of Google's verified address, audited; later ones find it by subject, whatever the address")
    func linkedByAddressThenSubject() async throws {
        try await withWorld { w in
            let first = try await w.signIn(Self.ada)
            #expect(first.status == 200, "\(first.body)")
            let token = try #require(try HTTP.object(first)["access_token"] as? String)
            let listed = try await w.world.send("GET", "/v1/auth/identities", token: token)
            let identities = try #require(try HTTP.object(listed)["identities"] as? [[String: Any]], "\(listed.body)")
            #expect(identities.count == 1 && identities.first?["provider"] as? String == "google")
            #expect(identities.first?["email"] as? String == "ada@lovelace.example")
            let me = try HTTP.object(try await w.world.send("GET", "/v1/auth/whoami", token: token))
            #expect(me["tenant_id"] as? String == w.world.tenant, "her home organization")

            // Google's address changed; the subject did not.
            var moved = Self.ada
            moved["email"] = "countess@analytical.example"
            #expect(try await w.signIn(moved).status == 200)
            let linked = try await w.audited(.identityLinked)
            #expect(linked.count == 1 && linked.first?.details["via"] == "sign_in", "\(linked)")
        }
    }

    @Test("Refused with their reason, and audited: an unverified Google address, no account, an unverified account, another Google account")
    func refusals() async throws {
        try await withWorld { w in
            let (_, _) = try await HTTP.signUp(
                w.world.port,
                w.world.cluster,
                email: "unverified@hopper.example",
                number: "552 100 554 00013",
                verified: false
            )
            #expect(try await w.signIn(Self.ada).status == 200)
            let cases: [(claims: [String: Any], reason: String)] = [
                (["sub": "google-x", "email": "ada@lovelace.example", "email_verified": false], "email_unverified"),
                (["sub": "google-y", "email": "nobody@nowhere.example", "email_verified": true], "no_account"),
                (["sub": "google-z", "email": "unverified@hopper.example", "email_verified": true], "account_unverified"),
                // Ada is linked to google-ada: another Google account with her address is not her.
                (["sub": "google-impostor", "email": "ada@lovelace.example", "email_verified": true], "another_google_account"),
            ]
            for (claims, reason) in cases {
                let refused = try await w.signIn(claims)
                #expect(refused.status == 403 && HTTP.errors(refused)["reason"] == reason, "\(reason): \(refused.body)")
                #expect(!refused.body.contains("access_token"))
                if reason != "email_unverified" { #expect(refused.body.contains("link Google from your settings"), "\(refused.body)") }
            }
            let failures = try await w.audited(.ssoLoginFailed).map(\.reason)
            #expect(Set(cases.map(\.reason)).isSubset(of: Set(failures)), "\(failures)")
            // An ID token for another client is refused as for a connection.
            try await w.google.control(["misbehave": "other_audience"])
            let other = try await w.signIn(Self.ada)
            #expect(other.status == 401 && HTTP.errors(other)["reason"] == "id_token_wrong_audience", "\(other.body)")
        }
    }

    @Test(
        "Linked from settings (any verified address), it signs in to the home or a chosen organization; taken Google accounts refused; unlinked, it no longer signs in"
    )
    func linkFromSettings() async throws {
        try await withWorld { w in
            let bobGoogle: [String: Any] = ["sub": "google-bob", "email": "bob.at.home@gmail.example", "email_verified": true]
            let linked = try await w.link(bobGoogle, token: w.world.bobHomeToken)
            #expect(linked.status == 200, "\(linked.body)")
            #expect(try HTTP.object(linked)["email"] as? String == "bob.at.home@gmail.example")
            let home = try await w.signIn(bobGoogle)
            #expect(home.status == 200, "\(home.body)")
            let homeMe = try HTTP.object(
                try await w.world.send("GET", "/v1/auth/whoami", token: try #require(try HTTP.object(home)["access_token"] as? String))
            )
            #expect(homeMe["principal"] as? String == "user:\(w.world.bob)" && homeMe["tenant_id"] as? String != w.world.tenant)
            let inAda = try await w.signIn(bobGoogle, query: "tenant_id=\(w.world.tenant)")
            let adaMe = try HTTP.object(
                try await w.world.send("GET", "/v1/auth/whoami", token: try #require(try HTTP.object(inAda)["access_token"] as? String))
            )
            #expect(adaMe["tenant_id"] as? String == w.world.tenant)

            // Bob's Google account is his: Ada cannot link it; Bob cannot link a second one.
            let taken = try await w.link(bobGoogle, token: w.world.adaToken)
            #expect(taken.status == 409 && HTTP.errors(taken)["reason"] == "google_account_taken", "\(taken.body)")
            let second = try await w.link(
                ["sub": "google-bob-2", "email": "bob@babbage.example", "email_verified": true],
                token: w.world.bobHomeToken
            )
            #expect(second.status == 409 && HTTP.errors(second)["reason"] == "another_google_account", "\(second.body)")

            #expect(try await w.world.send("DELETE", "/v1/auth/identities/google", token: w.world.bobHomeToken).status == 204)
            let gone = try await w.world.send("DELETE", "/v1/auth/identities/google", token: w.world.bobHomeToken)
            #expect(gone.status == 404, "\(gone.body)")
            let after = try await w.signIn(bobGoogle)
            #expect(after.status == 403 && HTTP.errors(after)["reason"] == "no_account", "\(after.body)")
            let bobHome = try #require(homeMe["tenant_id"] as? String)
            #expect(try await w.audited(.identityUnlinked, others: [bobHome]).count == 1)
            #expect(try await w.audited(.identityLinked, others: [bobHome]).first?.details["via"] == "settings")
        }
    }

    @Test("Linking is a new way in: a session signed in longer ago than the step-up window gets 401 step_up_required, and no cookie")
    func linkNeedsRecentProof() async throws {
        var gateway = GatewaySettings()
        gateway.stepUpSeconds = 2
        try await withWorld(gateway: gateway) { w in
            try await Task.sleep(for: .seconds(3))
            var browser = SSOBrowser(gatewayPort: w.world.port)
            let stale = try await browser.startLink(token: w.world.bobHomeToken)
            #expect(stale.status == 401 && HTTP.errors(stale)["reason"] == "step_up_required", "\(stale.body)")
            #expect(browser.cookie == nil)
        }
    }

    @Test("Unlinking is refused while Google is the account's only way in")
    func lastWayIn() async throws {
        try await withWorld { w in
            #expect(try await w.link(Self.ada, token: w.world.adaToken).status == 200)
            // As an account SSO made: no password (the hash no password matches).
            _ = try await TestPostgres.psql(
                "UPDATE users SET password_hash = '!sso' WHERE id = '\(w.world.ada)'",
                database: w.world.cluster.databases[.auth]!
            )
            let refused = try await w.world.send("DELETE", "/v1/auth/identities/google", token: w.world.adaToken)
            #expect(refused.status == 409 && HTTP.errors(refused)["reason"] == "last_way_in", "\(refused.body)")
            #expect(try await w.signIn(Self.ada).status == 200, "still linked")
        }
    }

    @Test("The organization's rules apply: SSO enforcement refuses Google but for a break-glass owner (audited); MFA asks its step")
    func organizationRules() async throws {
        try await withWorld { w in
            let world = w.world
            let first = try await w.signIn(Self.ada)
            #expect(first.status == 200, "\(first.body)")
            // An active connection (the same provider serves), then enforcement.
            let made = try await world.send(
                "POST",
                "/v1/tenants/\(world.tenant)/sso/connections",
                #"{"preset":"oidc","issuer":"\#(w.google.issuer)","client_id":"\#(w.google.clientID)","client_secret":"\#(w.google.clientSecret)"}"#,
                token: world.adaToken
            )
            let id = try #require((try HTTP.object(made)["connection"] as? [String: Any])?["connection_id"] as? String, "\(made.body)")
            let connection = "/v1/tenants/\(world.tenant)/sso/connections/\(id)"
            #expect(try await world.send("PATCH", connection, #"{"state":"active"}"#, token: world.adaToken).status == 200)
            #expect(try await world.send("PATCH", "/v1/tenants/\(world.tenant)", #"{"sso_enforced":true}"#, token: world.adaToken).status == 200)
            let refused = try await w.signIn(Self.ada)
            #expect(refused.status == 403 && HTTP.errors(refused)["reason"] == "sso_required", "\(refused.body)")
            let named = try await world.send(
                "PATCH",
                "/v1/tenants/\(world.tenant)",
                #"{"break_glass_owners":["\#(world.ada)"],"set_break_glass_owners":true}"#,
                token: world.adaToken
            )
            #expect(named.status == 200, "\(named.body)")
            let admitted = try await w.signIn(Self.ada)
            #expect(admitted.status == 200, "\(admitted.body)")
            #expect(try await w.audited(.ssoBreakGlassUsed).count == 1)

            // With MFA on, Google's answer earns the MFA step, not a session.
            let token = try #require(try HTTP.object(admitted)["access_token"] as? String)
            _ = try await HTTP.enrolMFA(world.port, token)
            let challenged = try await w.signIn(Self.ada)
            #expect(
                challenged.status == 200 && !challenged.body.contains("access_token") && challenged.body.contains("mfa_token"),
                "\(challenged.body)"
            )
        }
    }

    @Test("Without a Google client, the start and the link answer 404")
    func notOffered() async throws {
        let world = try await GatewayWorld.start(authSettings: TenantsCluster.ssoAuthSettings)
        try await stopping(world.cluster) {
            let start = try await HTTP.send(world.port, "GET", "/v1/auth/google/start")
            #expect(start.status == 404 && HTTP.errors(start)["reason"] == "google_not_configured", "\(start.body)")
            var browser = SSOBrowser(gatewayPort: world.port)
            let link = try await browser.startLink(token: world.adaToken)
            #expect(link.status == 404, "\(link.body)")
        }
    }
}
