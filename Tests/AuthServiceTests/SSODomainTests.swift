import AuthService
// JSONSerialization, to send hostile strings exactly.
import Foundation
import RampartModels
import ServiceKit
import ServicesTestSupport
import TestSupport
import Testing

@Suite("SSO-3 domain verification by DNS TXT record, against a DNS server on loopback", .serialized)
struct SSODomainTests {
    func world(dns: DNSPeer) async throws -> GatewayWorld {
        var settings = TenantsCluster.ssoAuthSettings
        settings.dnsServer = ("127.0.0.1", dns.peer.port)
        return try await GatewayWorld.start(authSettings: settings, rateLimitSettings: TenantsCluster.liftedSignInLimits())
    }

    func domains(_ tenant: String) -> String { "/v1/tenants/\(tenant)/domains" }

    @Test("Claim, publish, verify: refused while the record is missing or holds another value, verified once it holds the claim's; audited")
    func verifyByRecord() async throws {
        let dns = try await DNSPeer.start()
        defer { dns.stop() }
        let world = try await world(dns: dns)
        try await stopping(world.cluster) {
            let added = try await world.send("POST", domains(world.tenant), #"{"domain":"Lovelace.Example"}"#, token: world.adaToken)
            #expect(added.status == 201, "\(added.body)")
            let claim = try #require(try HTTP.object(added)["domain"] as? [String: Any])
            #expect(claim["domain"] as? String == "lovelace.example" && claim["state"] as? String == "pending")
            #expect(claim["record_name"] as? String == "_rampart-challenge.lovelace.example")
            let value = try #require(claim["record_value"] as? String)
            #expect(value.hasPrefix("rampart-domain-verification="))
            // Claiming again answers the same claim, with the same value to publish.
            let again = try await world.send("POST", domains(world.tenant), #"{"domain":"lovelace.example"}"#, token: world.adaToken)
            #expect((try HTTP.object(again)["domain"] as? [String: Any])?["record_value"] as? String == value)

            let verify = domains(world.tenant) + "/lovelace.example/verify"
            let missing = try await world.send("POST", verify, token: world.adaToken)
            #expect(missing.status == 409 && HTTP.errors(missing)["reason"] == "record_missing", "\(missing.body)")
            // The record changes at the DNS host: first another value, then the claim's.
            try dns.set(["_rampart-challenge.lovelace.example": ["rampart-domain-verification=someone-else", "v=spf1 -all"]])
            let wrong = try await world.send("POST", verify, token: world.adaToken)
            #expect(wrong.status == 409 && HTTP.errors(wrong)["reason"] == "record_mismatch", "\(wrong.body)")
            try dns.set(["_rampart-challenge.lovelace.example": ["v=spf1 -all", value]])
            let verified = try await world.send("POST", verify, token: world.adaToken)
            #expect(verified.status == 200, "\(verified.body)")
            #expect((try HTTP.object(verified)["domain"] as? [String: Any])?["state"] as? String == "verified")
            // Verified stays verified when the record goes (its job is done).
            try dns.set([:])
            #expect(try await world.send("POST", verify, token: world.adaToken).status == 200)
            let listed = try HTTP.object(try await world.send("GET", domains(world.tenant), token: world.adaToken))
            #expect((listed["domains"] as? [[String: Any]])?.map { $0["state"] as? String } == ["verified"])

            let audited = try await world.cluster.events(
                Subjects.audit(tenant: TenantID(world.tenant)),
                as: Rampart_V1_AuditEvent.self,
                stream: Subjects.auditStream
            )
            #expect(audited.filter { $0.action == AuditAction.ssoDomainChanged.rawValue }.map { $0.details["change"] } == ["added", "verified"])
        }
    }

    @Test("One tenant alone verifies a domain: another's claim is refused once it is verified, and its record does not help it")
    func oneTenantPerDomain() async throws {
        let dns = try await DNSPeer.start()
        defer { dns.stop() }
        let world = try await world(dns: dns)
        try await stopping(world.cluster) {
            let whoami = try HTTP.object(try await world.send("GET", "/v1/auth/whoami", token: world.bobHomeToken))
            let bobTenant = try #require(whoami["tenant_id"] as? String)
            // Both claim; Bob publishes his record, but Ada verifies first.
            let adas = try HTTP.object(try await world.send("POST", domains(world.tenant), #"{"domain":"lovelace.example"}"#, token: world.adaToken))
            let bobs = try HTTP.object(try await world.send("POST", domains(bobTenant), #"{"domain":"lovelace.example"}"#, token: world.bobHomeToken))
            let adaValue = try #require((adas["domain"] as? [String: Any])?["record_value"] as? String)
            let bobValue = try #require((bobs["domain"] as? [String: Any])?["record_value"] as? String)
            #expect(adaValue != bobValue)
            try dns.set(["_rampart-challenge.lovelace.example": [adaValue, bobValue]])
            #expect(try await world.send("POST", domains(world.tenant) + "/lovelace.example/verify", token: world.adaToken).status == 200)
            let late = try await world.send("POST", domains(bobTenant) + "/lovelace.example/verify", token: world.bobHomeToken)
            #expect(late.status == 409 && HTTP.errors(late)["field"] == "domain", "\(late.body)")
            let claimAgain = try await world.send("POST", domains(bobTenant), #"{"domain":"lovelace.example"}"#, token: world.bobHomeToken)
            #expect(claimAgain.status == 409, "\(claimAgain.body)")
            // Bob, a member of Ada's tenant, may not manage its domains; nor Ada another's.
            try HTTP.expectRefused(try await world.send("GET", domains(world.tenant), token: world.bobToken), needs: "sso.manage")
            #expect(try await world.send("GET", domains(bobTenant), token: world.adaToken).status == 403)
        }
    }

    @Test("Mail providers, disposable domains, public suffixes and malformed names are refused; nothing is stored")
    func refusedDomains() async throws {
        let dns = try await DNSPeer.start()
        defer { dns.stop() }
        let world = try await world(dns: dns)
        try await stopping(world.cluster) {
            for domain in [
                "gmail.com", "outlook.com", "mailinator.com", "x.mailinator.com", "co.uk", "github.io", "localhost", "not a domain",
                "lovelace.example\r\nX: y", String(repeating: "a", count: 250) + ".com", "",
            ] {
                let body = try JSONSerialization.data(withJSONObject: ["domain": domain])
                let refused = try await world.send("POST", domains(world.tenant), String(decoding: body, as: UTF8.self), token: world.adaToken)
                #expect(refused.status == 400 && HTTP.errors(refused)["field"] == "domain", "\(domain.debugDescription): \(refused.body)")
            }
            let listed = try HTTP.object(try await world.send("GET", domains(world.tenant), token: world.adaToken))
            #expect((listed["domains"] as? [Any] ?? []).isEmpty)
            let unknown = try await world.send("POST", domains(world.tenant) + "/babbage.example/verify", token: world.adaToken)
            #expect(unknown.status == 404, "\(unknown.body)")
        }
    }

    @Test("A verified domain serves a connection: sign-in found by address; the domain stays while a connection lists it; no resolver, 503")
    func domainServesConnection() async throws {
        let dns = try await DNSPeer.start()
        defer { dns.stop() }
        let provider = try await MockOpenIDProvider.start()
        defer { provider.stop() }
        let world = try await world(dns: dns)
        try await stopping(world.cluster) {
            let added = try HTTP.object(try await world.send("POST", domains(world.tenant), #"{"domain":"lovelace.example"}"#, token: world.adaToken))
            let value = try #require((added["domain"] as? [String: Any])?["record_value"] as? String)
            try dns.set(["_rampart-challenge.lovelace.example": [value]])
            #expect(try await world.send("POST", domains(world.tenant) + "/lovelace.example/verify", token: world.adaToken).status == 200)
            let made = try await world.send(
                "POST",
                "/v1/tenants/\(world.tenant)/sso/connections",
                #"{"preset":"oidc","issuer":"\#(provider.issuer)","client_id":"c","client_secret":"s","domains":["lovelace.example"]}"#,
                token: world.adaToken
            )
            #expect(made.status == 201, "\(made.body)")
            let id = try #require((try HTTP.object(made)["connection"] as? [String: Any])?["connection_id"] as? String)
            // By address: not while the connection is a draft; then to its provider.
            let draft = try await httpRequest(port: world.port, "GET", "/v1/auth/sso/start?email=ada%40lovelace.example")
            #expect(draft.status == 404, "\(draft.body)")
            let active = try await world.send(
                "PATCH",
                "/v1/tenants/\(world.tenant)/sso/connections/\(id)",
                #"{"state":"active"}"#,
                token: world.adaToken
            )
            #expect(active.status == 200, "\(active.body)")
            let started = try await httpRequest(port: world.port, "GET", "/v1/auth/sso/start?email=ada%40lovelace.example")
            #expect(started.status == 302 && started.headers["location"]?.hasPrefix(provider.issuer) == true, "\(started.body)")
            #expect(started.headers["location"]?.contains("login_hint=ada%40lovelace.example") == true)

            let kept = try await world.send("DELETE", domains(world.tenant) + "/lovelace.example", token: world.adaToken)
            #expect(kept.status == 409, "\(kept.body)")
            #expect(
                try await world.send(
                    "PATCH",
                    "/v1/tenants/\(world.tenant)/sso/connections/\(id)",
                    #"{"set_domains":true}"#,
                    token: world.adaToken
                ).status == 200
            )
            #expect(try await world.send("DELETE", domains(world.tenant) + "/lovelace.example", token: world.adaToken).status == 200)

            // The resolver is gone: 503, and the claim stays pending.
            _ = try await world.send("POST", domains(world.tenant), #"{"domain":"babbage.example"}"#, token: world.adaToken)
            dns.stop()
            let down = try await world.send("POST", domains(world.tenant) + "/babbage.example/verify", token: world.adaToken)
            #expect(down.status == 503, "\(down.body)")
        }
    }

    @Test("Just in time: a new person of a verified domain the connection serves becomes a member at first sign-in, once; others are refused")
    func justInTime() async throws {
        let dns = try await DNSPeer.start()
        defer { dns.stop() }
        let provider = try await MockOpenIDProvider.start()
        defer { provider.stop() }
        let world = try await world(dns: dns)
        try await stopping(world.cluster) {
            let added = try HTTP.object(try await world.send("POST", domains(world.tenant), #"{"domain":"lovelace.example"}"#, token: world.adaToken))
            try dns.set(["_rampart-challenge.lovelace.example": [try #require((added["domain"] as? [String: Any])?["record_value"] as? String)]])
            #expect(try await world.send("POST", domains(world.tenant) + "/lovelace.example/verify", token: world.adaToken).status == 200)
            let made = try await world.send(
                "POST",
                "/v1/tenants/\(world.tenant)/sso/connections",
                #"{"preset":"oidc","issuer":"\#(provider.issuer)","client_id":"c","client_secret":"s"}"#,
                token: world.adaToken
            )
            let id = try #require((try HTTP.object(made)["connection"] as? [String: Any])?["connection_id"] as? String)
            let path = "/v1/tenants/\(world.tenant)/sso/connections/\(id)"
            #expect(try await world.send("PATCH", path, #"{"state":"active"}"#, token: world.adaToken).status == 200)
            try await provider.setUser("cara", claims: ["email": "cara@lovelace.example", "email_verified": true, "name": "Cara Lovelace"])
            try await provider.setUser("dan", claims: ["email": "dan@elsewhere.example", "email_verified": true])

            func signIn(_ subject: String) async throws -> HTTPTestResponse {
                var browser = SSOBrowser(gatewayPort: world.port)
                let callback = try await SSOBrowser.signInAtMock(try await browser.start("connection_id=\(id)"), as: subject)
                return try await browser.callback(callback)
            }
            // The connection does not list the domain yet: Cara is nobody here.
            let unlisted = try await signIn("cara")
            #expect(unlisted.status == 403 && HTTP.errors(unlisted)["reason"] == "not_a_member", "\(unlisted.body)")
            #expect(try await world.send("PATCH", path, #"{"domains":["lovelace.example"],"set_domains":true}"#, token: world.adaToken).status == 200)

            let first = try await signIn("cara")
            #expect(first.status == 200, "\(first.body)")
            let access = try #require(try HTTP.object(first)["access_token"] as? String)
            let me = try HTTP.object(try await HTTP.send(world.port, "GET", "/v1/auth/whoami", token: access))
            let cara = try #require((me["principal"] as? String)?.dropFirst(5)).description
            let members = try HTTP.object(try await world.send("GET", "/v1/tenants/\(world.tenant)/members", token: world.adaToken))
            let entry = (members["members"] as? [[String: Any]])?.first { $0["user_id"] as? String == cara }
            #expect(entry?["role"] as? String == "MEMBER_ROLE_MEMBER" && entry?["email"] as? String == "cara@lovelace.example", "\(members)")
            // Once: the second sign-in is the same person, no second account or membership.
            let second = try await signIn("cara")
            let again = try HTTP.object(
                try await HTTP.send(world.port, "GET", "/v1/auth/whoami", token: try #require(try HTTP.object(second)["access_token"] as? String))
            )
            #expect(again["principal"] as? String == "user:\(cara)")
            let counted = try HTTP.object(try await world.send("GET", "/v1/tenants/\(world.tenant)/members", token: world.adaToken))
            #expect((counted["members"] as? [[String: Any]])?.filter { $0["email"] as? String == "cara@lovelace.example" }.count == 1)
            // No password was made: a password sign-in is refused as a wrong one.
            let password = try await HTTP.send(world.port, "POST", "/v1/auth/login", #"{"email":"cara@lovelace.example","password":"!sso"}"#)
            #expect(password.status == 401, "\(password.body)")
            // Another domain's person: refused, no account made.
            let dan = try await signIn("dan")
            #expect(dan.status == 403 && HTTP.errors(dan)["reason"] == "not_a_member", "\(dan.body)")
            let database = try #require(world.cluster.databases[.auth])
            #expect(try await TestPostgres.psql("SELECT count(*) FROM users WHERE email = 'dan@elsewhere.example'", database: database) == "0")

            let audited = try await world.cluster.events(
                Subjects.audit(tenant: TenantID(world.tenant)),
                as: Rampart_V1_AuditEvent.self,
                stream: Subjects.auditStream
            )
            #expect(audited.contains { $0.action == AuditAction.memberJoined.rawValue && $0.details["via"] == "sso" && $0.target.id == cara })
            #expect(audited.contains { $0.action == AuditAction.signup.rawValue && $0.details["via"] == "sso" })
        }
    }
}
