import Foundation
import RampartModels
import RateLimitService
import ServiceKit
import ServicesTestSupport
import TenantsService
import TestSupport
import Testing
import WebhooksService

/// AUTH-11 through the gateway: an account whose address nobody has proven may sign in, but
/// gets no power beyond its own account, holds its domain's Starter claim only for a while, and
/// loses everything it made when the mailbox's owner resets the password by mail.
@Suite("AUTH-11 proof of mailbox before power", .serialized)
struct ProofOfMailboxTests {
    static func cluster(claimGraceSeconds: Int = 3 * 86_400) async throws -> (TenantsCluster, Int) {
        let cluster = try await TenantsCluster.start(
            settings: TenantsSettings(sagaServices: [.tenants, .auth, .permissions, .webhooks], starterClaimGraceSeconds: claimGraceSeconds),
            rateLimitSettings: TenantsCluster.liftedRegistrationLimits(),
            without: [.audit, .webhooks]
        )
        cluster.webhooksSettings = WebhooksSettings(allowedNetworks: [IPNetwork(cidr: "127.0.0.1/32")!])
        try await cluster.start(.webhooks)
        try await cluster.start(.gateway)
        return (cluster, await cluster.gatewayPort.wait())
    }

    static func expectUnverified(_ response: HTTPTestResponse, sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect(response.status == 403, "\(response.body)", sourceLocation: sourceLocation)
        let body = try HTTP.object(response)
        #expect(body["type"] as? String == "https://rampart.dev/problems/permission_denied", sourceLocation: sourceLocation)
        #expect((body["errors"] as? [String: Any])?["reason"] as? String == "email_unverified", "\(body)", sourceLocation: sourceLocation)
    }

    static func refresh(_ port: Int, _ email: String) async throws -> String {
        let login = try await HTTP.send(port, "POST", "/v1/auth/login", #"{"email":"\#(email)","password":"\#(HTTP.password)"}"#)
        return try #require(try HTTP.object(login)["access_token"] as? String)
    }

    /// The reset a mailbox's owner makes: asked for, and confirmed with the link's token.
    static func resetByMail(_ port: Int, _ cluster: TenantsCluster, _ email: String, to password: String) async throws {
        let reset = try await cluster.resetMail(to: email) { () async throws in
            #expect(try await HTTP.send(port, "POST", "/v1/auth/password/reset/request", #"{"email":"\#(email)"}"#).status == 200)
        }
        let body = #"{"token":"\#(reset.token)","new_password":"\#(password)"}"#
        let confirmed = try await HTTP.send(port, "POST", "/v1/auth/password/reset/confirm", body)
        #expect(confirmed.status == 200, "\(confirmed.body)")
    }

    @Test("unverified: API keys, webhook endpoints and invitations are refused with the reason, nothing written; verified, each works")
    func refusals() async throws {
        let (cluster, port) = try await Self.cluster()
        try await stopping(cluster) {
            let (tenant, access) = try await HTTP.signUp(port, cluster, email: "ada@lovelace.example", number: "732 829 320 00074", verified: false)
            let keys = "/v1/tenants/\(tenant)/api-keys"
            let key = #"{"name":"CI","scopes":["boards:read"]}"#
            let endpoints = "/v1/tenants/\(tenant)/webhooks/endpoints"
            let endpoint = #"{"url":"http://127.0.0.1:9/hook","event_types":["member.*"]}"#
            let invite = #"{"email":"grace@hopper.example","role":"MEMBER_ROLE_MEMBER"}"#

            // Signing in and one's own account work; power over others does not.
            #expect(try await HTTP.send(port, "GET", "/v1/auth/whoami", token: access).status == 200)
            try Self.expectUnverified(try await HTTP.send(port, "POST", keys, key, token: access))
            try Self.expectUnverified(try await HTTP.send(port, "POST", endpoints, endpoint, token: access))
            try Self.expectUnverified(try await HTTP.send(port, "POST", "/v1/tenants/\(tenant)/members", invite, token: access))
            let schema = "t_\(tenant)"
            #expect(try await TestPostgres.psql("SELECT count(*) FROM \(schema).api_keys", database: cluster.databases[.auth]!) == "0")
            #expect(try await TestPostgres.psql("SELECT count(*) FROM \(schema).endpoints", database: cluster.databases[.webhooks]!) == "0")
            #expect(try await TestPostgres.psql("SELECT count(*) FROM \(schema).invitations", database: cluster.databases[.tenants]!) == "0")
            #expect(try await cluster.mails().isEmpty)
            // The domain's Starter claim is provisional, with the time it lapses.
            let provisional = try HTTP.object(try await HTTP.send(port, "GET", "/v1/tenants/\(tenant)", token: access))
            #expect(try #require(provisional["starter_claim_until_ms"] as? NSNumber).int64Value > WallClock.milliseconds())

            try await HTTP.verify(port, cluster, email: "ada@lovelace.example")
            // auth reads its table: a key can be made at once. The gateway reads the token, which
            // says "unverified" until the next one is issued.
            #expect(try await HTTP.send(port, "POST", keys, key, token: access).status == 201)
            try Self.expectUnverified(try await HTTP.send(port, "POST", endpoints, endpoint, token: access))
            let fresh = try await Self.refresh(port, "ada@lovelace.example")
            #expect(try await HTTP.send(port, "POST", endpoints, endpoint, token: fresh).status == 201)
            #expect(try await HTTP.send(port, "POST", "/v1/tenants/\(tenant)/members", invite, token: fresh).status == 201)
            let held = try HTTP.object(try await HTTP.send(port, "GET", "/v1/tenants/\(tenant)", token: fresh))
            #expect(held["starter_claim_until_ms"] == nil, "held for good")
        }
    }

    @Test("pre-hijacking: a squatter on someone's address keeps nothing once the mailbox's owner resets by mail")
    func preHijacking() async throws {
        let (cluster, port) = try await Self.cluster()
        try await stopping(cluster) {
            // Mallory registers Ada's address before Ada does, and arms the account.
            let (tenant, squatter) = try await HTTP.signUp(port, cluster, email: "ada@lovelace.example", number: "732 829 320 00074", verified: false)
            let squatterLogin = try HTTP.object(
                try await HTTP.send(port, "POST", "/v1/auth/login", #"{"email":"ada@lovelace.example","password":"\#(HTTP.password)"}"#)
            )
            let squatterRefresh = try #require(squatterLogin["refresh_token"] as? String)
            try Self.expectUnverified(
                try await HTTP.send(port, "POST", "/v1/tenants/\(tenant)/api-keys", #"{"name":"backdoor","scopes":["boards:read"]}"#, token: squatter)
            )
            try Self.expectUnverified(
                try await HTTP.send(
                    port,
                    "POST",
                    "/v1/tenants/\(tenant)/webhooks/endpoints",
                    #"{"url":"http://127.0.0.1:9/exfiltrate","event_types":["*"]}"#,
                    token: squatter
                )
            )
            _ = try await HTTP.enrolMFA(port, squatter)
            let auth = try #require(cluster.databases[.auth])
            #expect(try await TestPostgres.psql("SELECT count(*) FROM mfa_totp WHERE confirmed_at IS NOT NULL", database: auth) == "1")

            // Ada asks for a reset; the link reaches her mailbox, not Mallory.
            let newPassword = "Correct-h0rse-battery!"
            try await Self.resetByMail(port, cluster, "ada@lovelace.example", to: newPassword)

            // Mallory's session, refresh token, password and second factor are all gone.
            #expect(try await HTTP.send(port, "GET", "/v1/auth/whoami", token: squatter).status == 401)
            #expect(try await HTTP.send(port, "POST", "/v1/auth/token/refresh", #"{"refresh_token":"\#(squatterRefresh)"}"#).status == 401)
            #expect(
                try await HTTP.send(port, "POST", "/v1/auth/login", #"{"email":"ada@lovelace.example","password":"\#(HTTP.password)"}"#).status == 401
            )
            #expect(try await TestPostgres.psql("SELECT count(*) FROM mfa_totp", database: auth) == "0")
            #expect(try await TestPostgres.psql("SELECT count(*) FROM mfa_backup_codes", database: auth) == "0")
            // Ada signs in with her password alone (no second factor of Mallory's to pass), her
            // address verified and the organization's claim hers for good.
            let login = try await HTTP.send(port, "POST", "/v1/auth/login", #"{"email":"ada@lovelace.example","password":"\#(newPassword)"}"#)
            #expect(login.status == 200, "\(login.body)")
            let ada = try #require(try HTTP.object(login)["access_token"] as? String)
            #expect(
                try await HTTP.send(port, "POST", "/v1/tenants/\(tenant)/api-keys", #"{"name":"mine","scopes":["boards:read"]}"#, token: ada).status
                    == 201
            )
            #expect(try await TestPostgres.psql("SELECT starter_claim_until IS NULL FROM tenants", database: cluster.databases[.tenants]!) == "t")
            let audited = try await cluster.events(
                Subjects.audit(tenant: TenantID(tenant)),
                as: Rampart_V1_AuditEvent.self,
                stream: Subjects.auditStream
            )
            let resetEvent = try #require(audited.last { $0.action == AuditAction.passwordReset.rawValue })
            #expect(resetEvent.details["mfa_removed"] == "true" && resetEvent.details["sessions_revoked"] == "2", "\(resetEvent.details)")
            let notice = try #require(try await cluster.mails(from: .auth).last { $0.template == "notice_password_changed" })
            #expect(notice.values["mfa_removed"] == "true")
        }
    }

    @Test("a reset by mail ends every API key and session made before it; a second factor enrolled after verification stays")
    func resetEndsCredentials() async throws {
        let (cluster, port) = try await Self.cluster()
        try await stopping(cluster) {
            let (tenant, access) = try await HTTP.signUp(port, cluster, email: "ada@lovelace.example", number: "732 829 320 00074")
            let (key, _) = try await HTTP.createAPIKey(port, tenant, access, #"{"name":"CI","scopes":["boards:read"]}"#)
            #expect(try await HTTP.send(port, "GET", "/v1/auth/whoami", token: key).status == 200)
            _ = try await HTTP.enrolMFA(port, access)

            let newPassword = "An0ther-long-passphrase"
            try await Self.resetByMail(port, cluster, "ada@lovelace.example", to: newPassword)

            #expect(try await HTTP.send(port, "GET", "/v1/auth/whoami", token: key).status == 401)
            #expect(try await HTTP.send(port, "GET", "/v1/auth/whoami", token: access).status == 401)
            let revoked = try await TestPostgres.psql("SELECT revoked_reason FROM t_\(tenant).api_keys", database: cluster.databases[.auth]!)
            #expect(revoked == "password_reset")
            // Her own second factor, enrolled once the address was proven, still guards the account.
            let login = try HTTP.object(
                try await HTTP.send(port, "POST", "/v1/auth/login", #"{"email":"ada@lovelace.example","password":"\#(newPassword)"}"#)
            )
            #expect(login["mfa_required"] as? Bool == true && login["access_token"] == nil)
        }
    }

    @Test(
        "a Starter claim is provisional while the owner is unverified: after the grace period the next registration takes it, audited; a verified owner keeps it"
    )
    func provisionalClaim() async throws {
        let (cluster, port) = try await Self.cluster(claimGraceSeconds: 2)
        try await stopping(cluster) {
            func register(_ email: String, _ number: String) async throws -> HTTPTestResponse {
                try await HTTP.send(
                    port,
                    "POST",
                    "/v1/auth/register",
                    #"{"email":"\#(email)","password":"\#(HTTP.password)","name":"A","organization":{"name":"Org","country":"FR","registration_number":"\#(number)"}}"#
                )
            }
            let first = try await register("ada@analytical.example", "732 829 320 00074")
            #expect(first.status == 201, "\(first.body)")
            let squatted = try #require(try HTTP.object(first)["tenant_id"] as? String)
            // Within the grace period the claim holds.
            let held = try await register("grace@analytical.example", "443 061 841 00047")
            #expect(held.status == 409 && held.body.contains("Starter"), "\(held.body)")
            try await Task.sleep(for: .milliseconds(2_500))
            let second = try await register("grace@analytical.example", "443 061 841 00047")
            #expect(second.status == 201, "\(second.body)")
            let taker = try #require(try HTTP.object(second)["tenant_id"] as? String)
            let tenants = try #require(cluster.databases[.tenants])
            #expect(try await TestPostgres.psql("SELECT id FROM tenants WHERE starter_claim = 'analytical.example'", database: tenants) == taker)
            let audited = try await cluster.events(
                Subjects.audit(tenant: TenantID(squatted)),
                as: Rampart_V1_AuditEvent.self,
                stream: Subjects.auditStream
            )
            let lapsed = try #require(audited.last { $0.action == AuditAction.starterClaimLapsed.rawValue })
            #expect(lapsed.details["taken_by_tenant"] == taker)

            // A verified owner's claim does not lapse.
            let third = try await register("alan@turing.example", "552 100 554 00013")
            #expect(third.status == 201, "\(third.body)")
            #expect(try await cluster.waitFor(.active, try #require(try HTTP.object(third)["tenant_id"] as? String)))
            try await HTTP.verify(port, cluster, email: "alan@turing.example")
            try await Task.sleep(for: .milliseconds(2_500))
            let kept = try await register("joan@turing.example", "542 107 651 00011")
            #expect(kept.status == 409 && kept.body.contains("Starter"), "\(kept.body)")
        }
    }
}
