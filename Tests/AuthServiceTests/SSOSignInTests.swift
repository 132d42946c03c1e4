import AuthService
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

/// Ada (owner) and Bob (member) of one tenant, a provider on loopback, and a connection to it.
struct SSOFixture {
    let world: GatewayWorld
    let provider: MockOpenIDProvider
    let connection: String

    var path: String { "/v1/tenants/\(world.tenant)/sso/connections/\(connection)" }

    static func start(state: String, testUsers: [String] = []) async throws -> SSOFixture {
        let provider = try await MockOpenIDProvider.start()
        let world = try await GatewayWorld.start(authSettings: TenantsCluster.ssoAuthSettings, rateLimitSettings: TenantsCluster.liftedSignInLimits())
        let users = testUsers.map { "\"\($0)\"" }.joined(separator: ",")
        let made = try await world.send(
            "POST",
            "/v1/tenants/\(world.tenant)/sso/connections",
            #"{"preset":"oidc","issuer":"\#(provider.issuer)","client_id":"rampart","client_secret":"client-secret","test_users":[\#(users)]}"#,
            token: world.adaToken
        )
        #expect(made.status == 201, "\(made.body)")
        let id = try #require((try HTTP.object(made)["connection"] as? [String: Any])?["connection_id"] as? String)
        let fixture = SSOFixture(world: world, provider: provider, connection: id)
        if state != "draft" { try await fixture.move(to: state) }
        for (subject, email) in [("ada-sub", "ada@lovelace.example"), ("bob-sub", "bob@babbage.example")] {
            try await provider.setUser(subject, claims: ["email": email, "email_verified": true, "name": subject])
        }
        return fixture
    }

    func move(to state: String) async throws {
        let moved = try await world.send("PATCH", path, #"{"state":"\#(state)"}"#, token: world.adaToken)
        #expect(moved.status == 200, "\(moved.body)")
    }

    /// A whole sign-in as `subject`: the callback's answer, and the browser used.
    func signIn(as subject: String) async throws -> (answer: HTTPTestResponse, browser: SSOBrowser, callback: String) {
        var browser = SSOBrowser(gatewayPort: world.port)
        let authorization = try await browser.start("connection_id=\(connection)")
        let callback = try await SSOBrowser.signInAtMock(authorization, as: subject)
        return (try await browser.callback(callback), browser, callback)
    }

    func stop() async {
        provider.stop()
        await world.cluster.stop()
    }

    func failures() async throws -> [String] {
        try await world.cluster.events(Subjects.audit(tenant: TenantID(world.tenant)), as: Rampart_V1_AuditEvent.self, stream: Subjects.auditStream)
            .filter { $0.action == AuditAction.ssoLoginFailed.rawValue }.map(\.reason)
    }
}

@Suite("SSO-3 sign-in through a tenant's provider (oidc-provider-mock), through the gateway", .serialized)
struct SSOSignInTests {
    @Test("The start redirects with the code flow's parameters (PKCE S256, state, nonce) and a cookie binding the browser")
    func startRedirect() async throws {
        let fixture = try await SSOFixture.start(state: "active")
        try await stopping(fixture.world.cluster) {
            var browser = SSOBrowser(gatewayPort: fixture.world.port)
            let url = try await browser.start("connection_id=\(fixture.connection)")
            #expect(url.hasPrefix(fixture.provider.issuer + "/oauth2/authorize?"))
            for (name, value) in [
                ("response_type", "code"), ("client_id", "rampart"), ("code_challenge_method", "S256"), ("scope", "openid email profile"),
            ] {
                #expect(SSOBrowser.parameter(name, of: url) == value, "\(name) in \(url)")
            }
            #expect(SSOBrowser.parameter("redirect_uri", of: url) == "http://127.0.0.1:8080/v1/auth/sso/callback")
            #expect((SSOBrowser.parameter("code_challenge", of: url)?.count ?? 0) == 43)
            #expect((SSOBrowser.parameter("state", of: url)?.count ?? 0) >= 43)
            #expect((SSOBrowser.parameter("nonce", of: url)?.count ?? 0) >= 43)
            // make run's plain-HTTP loopback: no Secure, no __Host- prefix, HttpOnly and Lax still.
            #expect(browser.cookie?.hasPrefix("rampart_sso=") == true)
            let again = try await httpRequest(port: fixture.world.port, "GET", "/v1/auth/sso/start?connection_id=\(fixture.connection)")
            #expect(again.headers["set-cookie"]?.contains("HttpOnly; SameSite=Lax") == true, "\(again.headers)")
            // Two starts, two states.
            #expect(SSOBrowser.parameter("state", of: again.headers["location"] ?? "") != SSOBrowser.parameter("state", of: url))
        }
        fixture.provider.stop()
    }

    @Test("An active connection signs a member in: tokens as from the password step, a session that works, audited")
    func memberSignsIn() async throws {
        let fixture = try await SSOFixture.start(state: "active")
        try await stopping(fixture.world.cluster) {
            let (answer, _, _) = try await fixture.signIn(as: "bob-sub")
            #expect(answer.status == 200, "\(answer.body)")
            let tokens = try HTTP.object(answer)
            let access = try #require(tokens["access_token"] as? String)
            #expect(tokens["refresh_token"] is String && tokens["tenant_id"] as? String == fixture.world.tenant)
            let whoami = try HTTP.object(try await HTTP.send(fixture.world.port, "GET", "/v1/auth/whoami", token: access))
            #expect(whoami["principal"] as? String == "user:\(fixture.world.bob)")
            let audited = try await fixture.world.cluster.events(
                Subjects.audit(tenant: TenantID(fixture.world.tenant)),
                as: Rampart_V1_AuditEvent.self,
                stream: Subjects.auditStream
            )
            #expect(audited.contains { $0.action == AuditAction.loginSucceeded.rawValue && $0.actor.id == fixture.world.bob })
        }
        fixture.provider.stop()
    }

    @Test("testing: only the named test users sign in through it (another member of the tenant refused); active: both")
    func testingThenActive() async throws {
        let fixture = try await SSOFixture.start(state: "testing", testUsers: ["ada@lovelace.example"])
        try await stopping(fixture.world.cluster) {
            #expect(try await fixture.signIn(as: "ada-sub").answer.status == 200)
            let bob = try await fixture.signIn(as: "bob-sub").answer
            #expect(bob.status == 403 && HTTP.errors(bob)["reason"] == "not_a_test_user", "\(bob.body)")
            try await fixture.move(to: "active")
            #expect(try await fixture.signIn(as: "bob-sub").answer.status == 200)
            #expect(try await fixture.signIn(as: "ada-sub").answer.status == 200)
            try await fixture.move(to: "draft")
            let draft = try await httpRequest(port: fixture.world.port, "GET", "/v1/auth/sso/start?connection_id=\(fixture.connection)")
            #expect(draft.status == 404, "\(draft.body)")
            #expect(try await fixture.failures() == ["not_a_test_user"])
        }
        fixture.provider.stop()
    }

    @Test("A replayed callback, a state from another browser, an expired state: 401 with the reason, no session, audited")
    func hostileStates() async throws {
        let fixture = try await SSOFixture.start(state: "active")
        try await stopping(fixture.world.cluster) {
            // Another browser presents the state (no cookie, another's cookie): refused, and the
            // state is not spent by it: its own browser still finishes.
            var browser = SSOBrowser(gatewayPort: fixture.world.port)
            let callback = try await SSOBrowser.signInAtMock(try await browser.start("connection_id=\(fixture.connection)"), as: "ada-sub")
            let stranger = try await browser.callback(callback, cookie: "rampart_sso=\(String(repeating: "A", count: 43))")
            #expect(stranger.status == 401 && HTTP.errors(stranger)["reason"] == "state_other_browser", "\(stranger.body)")
            let cookieless = try await httpRequest(port: fixture.world.port, "GET", callback, headers: ["Accept": "application/json"])
            #expect(cookieless.status == 401 && HTTP.errors(cookieless)["reason"] == "state_other_browser", "\(cookieless.body)")
            #expect(try await browser.callback(callback).status == 200)
            // The same answer again, by the same browser: spent.
            let replay = try await browser.callback(callback)
            #expect(replay.status == 401 && HTTP.errors(replay)["reason"] == "state_replayed", "\(replay.body)")
            #expect(!replay.body.contains("access_token"))

            // A state made up, and one past its ten minutes.
            let unknown = try await browser.callback("/v1/auth/sso/callback?code=x&state=\(String(repeating: "B", count: 43))")
            #expect(unknown.status == 401 && HTTP.errors(unknown)["reason"] == "state_unknown", "\(unknown.body)")
            var late = SSOBrowser(gatewayPort: fixture.world.port)
            let lateCallback = try await SSOBrowser.signInAtMock(try await late.start("connection_id=\(fixture.connection)"), as: "ada-sub")
            _ = try await TestPostgres.psql(
                "UPDATE sso_sign_ins SET expires_at = now() - interval '1 second' WHERE used_at IS NULL",
                database: try #require(fixture.world.cluster.databases[.auth])
            )
            let expired = try await late.callback(lateCallback)
            #expect(expired.status == 401 && HTTP.errors(expired)["reason"] == "state_expired", "\(expired.body)")

            // Concurrent callbacks with one state: one session, every other refused.
            var racing = SSOBrowser(gatewayPort: fixture.world.port)
            let raced = try await SSOBrowser.signInAtMock(try await racing.start("connection_id=\(fixture.connection)"), as: "ada-sub")
            let statuses = try await withThrowingTaskGroup(of: Int.self) { [racing] group in
                for _ in 0..<6 { group.addTask { try await racing.callback(raced).status } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(statuses.filter { $0 == 200 }.count == 1 && statuses.filter { $0 == 401 }.count == 5, "\(statuses)")

            let reasons = try await fixture.failures()
            for reason in ["state_other_browser", "state_replayed", "state_expired"] { #expect(reasons.contains(reason), "\(reasons)") }
        }
        fixture.provider.stop()
    }

    @Test("The provider's refusal, another issuer in the answer (RFC 9207), an unverified address, a non-member, another subject: refused")
    func hostileAnswers() async throws {
        let fixture = try await SSOFixture.start(state: "active")
        try await stopping(fixture.world.cluster) {
            func refused(_ subject: String, extra: String = "", status: Int, reason: String) async throws {
                var browser = SSOBrowser(gatewayPort: fixture.world.port)
                let callback = try await SSOBrowser.signInAtMock(try await browser.start("connection_id=\(fixture.connection)"), as: subject)
                let answer = try await browser.callback(callback, extra: extra)
                #expect(answer.status == status && HTTP.errors(answer)["reason"] == reason, "\(subject) \(extra): \(answer.body)")
                #expect(!answer.body.contains("access_token"))
            }
            try await refused("ada-sub", extra: "&iss=\(SSOBrowser.percent("https://evil.example"))", status: 401, reason: "issuer_mismatch")
            // The provider says no (the person declined): its error, and no code.
            var browser = SSOBrowser(gatewayPort: fixture.world.port)
            let url = try await browser.start("connection_id=\(fixture.connection)")
            let state = try #require(SSOBrowser.parameter("state", of: url))
            let declined = try await browser.callback("/v1/auth/sso/callback?error=access_denied&state=\(state)")
            #expect(declined.status == 401 && HTTP.errors(declined)["reason"] == "provider_error", "\(declined.body)")

            try await fixture.provider.setUser("unverified", claims: ["email": "ada@lovelace.example", "email_verified": false])
            try await refused("unverified", status: 403, reason: "email_unverified")
            try await fixture.provider.setUser("carol", claims: ["email": "carol@lovelace.example", "email_verified": true])
            try await refused("carol", status: 403, reason: "not_a_member")
            // Ada signs in as ada-sub once; then another subject of the provider claims her address.
            #expect(try await fixture.signIn(as: "ada-sub").answer.status == 200)
            try await fixture.provider.setUser("impostor", claims: ["email": "ada@lovelace.example", "email_verified": true])
            try await refused("impostor", status: 403, reason: "subject_mismatch")
            let reasons = try await fixture.failures()
            for reason in ["issuer_mismatch", "provider_error", "email_unverified", "not_a_member", "subject_mismatch"] {
                #expect(reasons.contains(reason), "\(reasons)")
            }
        }
        fixture.provider.stop()
    }

    @Test("The start refuses what it cannot serve: open redirects, both or neither of connection_id and email, unknown IDs")
    func badStarts() async throws {
        let fixture = try await SSOFixture.start(state: "active")
        try await stopping(fixture.world.cluster) {
            let id = fixture.connection
            let cases: [(query: String, status: Int, field: String)] = [
                ("connection_id=\(id)&return_to=\(SSOBrowser.percent("https://evil.example/"))", 400, "return_to"),
                ("connection_id=\(id)&return_to=\(SSOBrowser.percent("//evil.example/console/"))", 400, "return_to"),
                ("connection_id=\(id)&return_to=\(SSOBrowser.percent("/console/../../evil"))", 400, "return_to"),
                ("connection_id=\(id)&return_to=\(SSOBrowser.percent("/console/\\evil"))", 400, "return_to"),
                ("connection_id=\(id)&email=ada%40lovelace.example", 400, "connection_id"),
                ("", 400, "connection_id"),
                ("connection_id=not-an-id", 400, "connection_id"),
                ("connection_id=\(UUID().uuidString.lowercased())", 404, "connection_id"),
                ("email=ada%40nowhere.example", 404, "email"),
                ("email=not-an-address", 400, "email"),
                ("connection_id=\(id)&extra=1", 400, "extra"),
            ]
            for (query, status, field) in cases {
                let answer = try await httpRequest(port: fixture.world.port, "GET", "/v1/auth/sso/start?" + query)
                #expect(answer.status == status && HTTP.errors(answer)["field"] == field, "\(query): \(answer.body)")
                #expect(answer.headers["location"] == nil)
            }
            let allowed = try await httpRequest(
                port: fixture.world.port,
                "GET",
                "/v1/auth/sso/start?connection_id=\(id)&return_to=\(SSOBrowser.percent("/console/settings/security"))"
            )
            #expect(allowed.status == 302, "\(allowed.body)")
        }
        fixture.provider.stop()
    }
}

@Suite("SSO-3 from a browser: the callback opens the console")
struct SSOBrowserAnswerTests {
    static let html = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"

    @Test("A browser's callback gets the console's session cookies and a 303 to return_to; a replayed one, the sign-in page with the refusal")
    func consoleSession() async throws {
        let fixture = try await SSOFixture.start(state: "active")
        try await stopping(fixture.world.cluster) {
            let world = fixture.world
            var browser = SSOBrowser(gatewayPort: world.port)
            let authorization = try await browser.start("connection_id=\(fixture.connection)&return_to=%2Fconsole%2Fsettings")
            let callback = try await SSOBrowser.signInAtMock(authorization, as: "bob-sub")
            let answer = try await browser.callback(callback, accept: Self.html)
            #expect(answer.status == 303 && answer.headers["location"] == "/console/settings", "\(answer.status) \(answer.body)")
            let setCookies = (answer.headers["set-cookie"] ?? "").split(separator: "\n")
            let session = try #require(setCookies.first { $0.hasPrefix("rampart_session=") })
            let access = try #require(setCookies.first { $0.hasPrefix("rampart_access=") })
            #expect(session.contains("HttpOnly") && access.contains("HttpOnly") && setCookies.contains { $0.hasPrefix("rampart_sso=;") })
            let cookies = [session, access].map { String($0.split(separator: ";")[0]) }.joined(separator: "; ")
            let home = try await httpRequest(port: world.port, "GET", "/console/", headers: ["Cookie": cookies])
            #expect(home.status == 200 && home.body.contains("signed in as bob@babbage.example"), "\(home.body)")

            let replayed = try await browser.callback(callback, accept: Self.html)
            #expect(replayed.status == 401 && replayed.headers["content-type"]?.hasPrefix("text/html") == true, "\(replayed.body)")
            #expect(replayed.body.contains(#"role="alert""#) && replayed.body.contains("used already"), "\(replayed.body)")
        }
        fixture.provider.stop()
    }
}

@Suite("SSO-2 enforcement: passwords refused for members, break-glass owners audited", .serialized)
struct SSOEnforcementTests {
    @Test(
        "Enforced only with an active connection; then a member's password is refused, SSO works, a break-glass owner's password works and is audited"
    )
    func enforcement() async throws {
        let fixture = try await SSOFixture.start(state: "draft")
        try await stopping(fixture.world.cluster) {
            let world = fixture.world
            let tenant = "/v1/tenants/\(world.tenant)"
            func password(_ email: String) async throws -> HTTPTestResponse {
                try await HTTP.send(
                    world.port,
                    "POST",
                    "/v1/auth/login",
                    #"{"email":"\#(email)","password":"\#(HTTP.password)","tenant_id":"\#(world.tenant)"}"#
                )
            }
            let early = try await world.send("PATCH", tenant, #"{"sso_enforced":true}"#, token: world.adaToken)
            #expect(early.status == 400 && HTTP.errors(early)["field"] == "sso_enforced", "\(early.body)")
            try await fixture.move(to: "active")
            // Break-glass owners are owners, at most two: Bob is a member.
            let notOwner = try await world.send(
                "PATCH",
                tenant,
                #"{"break_glass_owners":["\#(world.bob)"],"set_break_glass_owners":true}"#,
                token: world.adaToken
            )
            #expect(notOwner.status == 400 && HTTP.errors(notOwner)["field"] == "break_glass_owners", "\(notOwner.body)")
            let enforced = try await world.send("PATCH", tenant, #"{"sso_enforced":true}"#, token: world.adaToken)
            #expect(enforced.status == 200, "\(enforced.body)")

            // Passwords: refused as wrong ones, for the member and for an owner not named.
            for email in ["bob@babbage.example", "ada@lovelace.example"] {
                let refused = try await password(email)
                #expect(refused.status == 401 && !refused.body.contains("access_token"), "\(email): \(refused.body)")
            }
            #expect(try await fixture.signIn(as: "bob-sub").answer.status == 200)

            // A reset link is withheld from Ada, whose home tenant enforces SSO (the answer is the
            // same empty one); Bob's home is his own tenant, which does not: his comes.
            let reset = #"{"email":"ada@lovelace.example"}"#
            #expect(try await HTTP.send(world.port, "POST", "/v1/auth/password/reset/request", reset).status == 200)
            _ = try await world.cluster.resetMail(to: "bob@babbage.example") {
                _ = try await HTTP.send(world.port, "POST", "/v1/auth/password/reset/request", #"{"email":"bob@babbage.example"}"#)
            }

            let named = try await world.send(
                "PATCH",
                tenant,
                #"{"break_glass_owners":["\#(world.ada)"],"set_break_glass_owners":true}"#,
                token: world.adaToken
            )
            #expect(named.status == 200, "\(named.body)")
            #expect((try HTTP.object(named)["policies"] as? [String: Any])?["break_glass_owners"] as? [String] == [world.ada])
            #expect(try await password("ada@lovelace.example").status == 200)
            #expect(try await password("bob@babbage.example").status == 401)
            // Named, she gets a link again: the only one of hers, as the first was withheld.
            _ = try await world.cluster.resetMail(to: "ada@lovelace.example") {
                _ = try await HTTP.send(world.port, "POST", "/v1/auth/password/reset/request", reset)
            }
            let adaResets = try await world.cluster.mails(from: .auth).filter { $0.template == "password_reset" && $0.to == "ada@lovelace.example" }
            #expect(adaResets.count == 1)
            // A break-glass owner demoted since (a second owner made, then Ada an admin) has no
            // password way in any more.
            let cara = try await world.cluster.addMember(to: TenantID(world.tenant)!, role: .owner, invitedBy: "user:\(world.ada)")
            #expect(!cara.isEmpty)
            let demoted = try await world.send(
                "PATCH",
                "\(tenant)/members/\(world.ada)",
                #"{"role":"MEMBER_ROLE_ADMIN"}"#,
                token: world.adaToken
            )
            #expect(demoted.status == 200, "\(demoted.body)")
            #expect(try await password("ada@lovelace.example").status == 401)

            let audited = try await world.cluster.events(
                Subjects.audit(tenant: TenantID(world.tenant)),
                as: Rampart_V1_AuditEvent.self,
                stream: Subjects.auditStream
            )
            #expect(audited.filter { $0.action == AuditAction.ssoBreakGlassUsed.rawValue }.map(\.target.id) == [world.ada])
            #expect(audited.contains { $0.action == AuditAction.loginFailed.rawValue && $0.reason.contains("sso enforced") })

            // The only active connection of an enforcing tenant stays active, and stays.
            let deactivated = try await world.send("PATCH", fixture.path, #"{"state":"draft"}"#, token: world.adaToken)
            #expect(deactivated.status == 409 && HTTP.errors(deactivated)["field"] == "state", "\(deactivated.body)")
            let deleted = try await world.send("DELETE", fixture.path, token: world.adaToken)
            #expect(deleted.status == 409, "\(deleted.body)")

            // Off again: passwords work for members once more.
            #expect(try await world.send("PATCH", tenant, #"{"sso_enforced":false}"#, token: world.adaToken).status == 200)
            #expect(try await password("bob@babbage.example").status == 200)
            #expect(try await world.send("PATCH", fixture.path, #"{"state":"draft"}"#, token: world.adaToken).status == 200)
        }
        fixture.provider.stop()
    }
}

extension SSOEnforcementTests {
    @Test(
        "Under enforcement a session that did not come through SSO makes no API key, is not refreshed and cannot switch in; an SSO session makes keys, after a step-up too"
    )
    func sessionsWithoutSSO() async throws {
        let fixture = try await SSOFixture.start(state: "active")
        try await stopping(fixture.world.cluster) {
            let world = fixture.world
            let keys = "/v1/tenants/\(world.tenant)/api-keys"
            let key = #"{"name":"deploy","scopes":["boards:read"]}"#
            // Bob's password session from before the enforcement, and one through SSO.
            let passwordSession = try HTTP.object(try await HTTP.signIn(world.port, "bob@babbage.example", tenant: world.tenant))
            let refresh = try #require(passwordSession["refresh_token"] as? String)
            let passwordToken = try #require(passwordSession["access_token"] as? String)
            let ssoToken = try #require(try HTTP.object(try await fixture.signIn(as: "bob-sub").answer)["access_token"] as? String)
            #expect(try await world.send("POST", keys, key, token: passwordToken).status == 201)
            let enforced = try await world.send("PATCH", "/v1/tenants/\(world.tenant)", #"{"sso_enforced":true}"#, token: world.adaToken)
            #expect(enforced.status == 200, "\(enforced.body)")

            let refused = try await world.send("POST", keys, key, token: passwordToken)
            #expect(refused.status == 403 && HTTP.errors(refused)["reason"] == "sso_required", "\(refused.body)")
            let made = try await world.send("POST", keys, key, token: ssoToken)
            #expect(made.status == 201, "\(made.body)")
            let id = try #require((try HTTP.object(made)["api_key"] as? [String: Any])?["api_key_id"] as? String)
            let rotatedByPassword = try await world.send("POST", "\(keys)/\(id)/rotate", "{}", token: passwordToken)
            #expect(rotatedByPassword.status == 403 && HTTP.errors(rotatedByPassword)["reason"] == "sso_required", "\(rotatedByPassword.body)")
            // A step-up with Bob's password proves the factors again; the session came through SSO still.
            let stepped = try await world.send("POST", "/v1/auth/step-up", HTTP.passwordProof, token: ssoToken)
            #expect(stepped.status == 200, "\(stepped.body)")
            let steppedToken = try #require(try HTTP.object(stepped)["access_token"] as? String)
            let rotated = try await world.send("POST", "\(keys)/\(id)/rotate", "{}", token: steppedToken)
            #expect(rotated.status == 201, "\(rotated.body)")

            // The password session ends at its refresh; a switch from Bob's own tenant is refused.
            let refreshed = try await HTTP.send(world.port, "POST", "/v1/auth/token/refresh", #"{"refresh_token":"\#(refresh)"}"#)
            #expect(refreshed.status == 401 && HTTP.errors(refreshed)["reason"] == "sso_required", "\(refreshed.body)")
            let switched = try await world.send("POST", "/v1/auth/token/switch", #"{"tenant_id":"\#(world.tenant)"}"#, token: world.bobHomeToken)
            #expect(switched.status == 403 && HTTP.errors(switched)["reason"] == "sso_required", "\(switched.body)")

            // A break-glass owner's password session makes keys.
            let named = try await world.send(
                "PATCH",
                "/v1/tenants/\(world.tenant)",
                #"{"break_glass_owners":["\#(world.ada)"],"set_break_glass_owners":true}"#,
                token: world.adaToken
            )
            #expect(named.status == 200, "\(named.body)")
            #expect(try await world.send("POST", keys, key, token: world.adaToken).status == 201)
        }
        fixture.provider.stop()
    }
}

extension SSOBrowser {
    static func percent(_ text: String) -> String { text.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? text }
}
