import Foundation
import GatewayService
import RampartModels
import RateLimitService
import ServiceKit
import TenantsService
import TestSupport
import Testing
import WebhooksService

@testable import AuthService

/// The gateway's HTTP API as the suites drive it: clusters with a gateway, sign-up and sign-in,
/// requests and their JSON. One place, so a suite never borrows another suite's helpers.
package enum HTTP {
    /// Every test account's password.
    package static let password = "Tr0ub4dor&3xkcd!"

    /// A cluster with the gateway, and a signed-in owner of a fresh tenant.
    package static func signedIn() async throws -> (TenantsCluster, port: Int, tenant: String, access: String) {
        let (cluster, port) = try await authCluster()
        let (tenant, access) = try await signUp(port, cluster, email: "ada@lovelace.example", number: "732 829 320 00074")
        return (cluster, port, tenant, access)
    }

    /// Registers `email` with a tenant of its own and signs in. `verified`: the address is
    /// verified first with the token its verification mail carries (AUTH-8), as its owner would.
    package static func signUp(
        _ port: Int,
        _ cluster: TenantsCluster,
        email: String,
        number: String,
        verified: Bool = true
    ) async throws -> (tenant: String, access: String) {
        let registration =
            #"{"email":"\#(email)","password":"\#(password)","name":"Ada","organization":{"name":"Org \#(number)","country":"FR","registration_number":"\#(number)"}}"#
        let registered = try await send(port, "POST", "/v1/auth/register", registration)
        #expect(registered.status == 201, "\(registered.body)")
        let tenant = try #require(try object(registered)["tenant_id"] as? String)
        #expect(try await cluster.waitFor(.active, tenant))
        if verified { try await verify(port, cluster, email: email) }
        let login = try await send(port, "POST", "/v1/auth/login", #"{"email":"\#(email)","password":"\#(password)"}"#)
        return (tenant, try #require(try object(login)["access_token"] as? String))
    }

    /// Spends the newest verification token mailed to `email`, as the link in the mail does.
    package static func verify(_ port: Int, _ cluster: TenantsCluster, email: String) async throws {
        let mail = try await cluster.mails(from: .auth).last { $0.template == "email_verification" && $0.to == email.lowercased() }
        let verified = try await send(port, "POST", "/v1/auth/email/verify", #"{"token":"\#(try #require(mail).token)"}"#)
        #expect(verified.status == 200, "\(verified.body)")
    }

    /// A request to the gateway: JSON when `json` is given, the bearer `token`, and the
    /// consistency token a permission change returned (PERM-6).
    package static func send(
        _ port: Int,
        _ method: String,
        _ path: String,
        _ json: String? = nil,
        token: String? = nil,
        revision: String? = nil
    ) async throws -> HTTPTestResponse {
        var headers: [String: String] = [:]
        if json != nil { headers["Content-Type"] = "application/json" }
        if let token { headers["Authorization"] = "Bearer \(token)" }
        if let revision { headers["Rampart-Consistency-Token"] = revision }
        return try await httpRequest(port: port, method, path, headers: headers, body: Array((json ?? "").utf8))
    }

    package static func object(_ response: HTTPTestResponse) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any])
    }

    /// A problem's `errors` (field, reason, …); empty when it has none.
    package static func errors(_ response: HTTPTestResponse) -> [String: String] {
        (try? JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any])?["errors"] as? [String: String] ?? [:]
    }

    package static func createAPIKey(_ port: Int, _ tenant: String, _ access: String, _ json: String) async throws -> (key: String, id: String) {
        let created = try await send(port, "POST", "/v1/tenants/\(tenant)/api-keys", json, token: access)
        #expect(created.status == 201, "\(created.body)")
        let body = try object(created)
        let key = try #require(body["key"] as? String)
        let id = try #require((body["api_key"] as? [String: Any])?["api_key_id"] as? String)
        return (key, id)
    }

    /// A 403 from the gateway's own check names the permission and the reason permissions gave.
    package static func expectRefused(_ response: HTTPTestResponse, needs action: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect(response.status == 403, "\(response.body)", sourceLocation: sourceLocation)
        let body = try HTTP.object(response)
        #expect((body["detail"] as? String)?.contains(action) == true, sourceLocation: sourceLocation)
        #expect((body["errors"] as? [String: String])?["reason"] == "no_role_grants", sourceLocation: sourceLocation)
    }

    /// A current TOTP code (or the one `offset` steps away) of an authenticator holding `secret`.
    package static func totpCode(_ secret: String, offset: Int64 = 0) throws -> String {
        let bytes = try #require(Base32.decode(secret))
        return TOTP(secret: bytes).code(atStep: TOTP.step(at: WallClock.milliseconds() / 1000) + offset)
    }

    /// Enrols and confirms `access`'s user in TOTP MFA: the secret, the backup codes and the
    /// step of the code that confirmed (spent).
    /// Enrols and confirms `access`'s user: the secret and the backup codes.
    /// Enrols and confirms; `confirmedStep` is the TOTP step of the code that confirmed (spent).
    package static func enrolMFA(_ port: Int, _ access: String) async throws -> (secret: String, backupCodes: [String], confirmedStep: Int64) {
        let secret = try #require(
            try object(try await send(port, "POST", "/v1/auth/mfa/totp/enroll", passwordProof, token: access))["secret"] as? String
        )
        let step = TOTP.step(at: WallClock.milliseconds() / 1000)
        let code = TOTP(secret: try #require(Base32.decode(secret))).code(atStep: step)
        let confirmed = try await send(port, "POST", "/v1/auth/mfa/totp/confirm", #"{"code":"\#(code)"}"#, token: access)
        #expect(confirmed.status == 200, "\(confirmed.body)")
        return (secret, try #require(try object(confirmed)["backup_codes"] as? [String]), step)
    }

    // MARK: Clusters behind a gateway

    /// auth and tenants behind the gateway.
    package static func authCluster() async throws -> (TenantsCluster, Int) {
        let cluster = try await TenantsCluster.start(
            settings: TenantsSettings(sagaServices: [.tenants, .auth]),
            without: [.permissions, .audit, .webhooks]
        )
        try await cluster.start(.gateway)
        return (cluster, await cluster.gatewayPort.wait())
    }

    /// auth, tenants and permissions, with sign-in limits lifted (TEN-10's several sign-ins).
    package static func teamsCluster() async throws -> (TenantsCluster, Int) {
        let cluster = try await TenantsCluster.start(
            settings: TenantsSettings(sagaServices: [.tenants, .auth, .permissions]),
            rateLimitSettings: TenantsCluster.liftedSignInLimits(),
            without: [.audit, .webhooks]
        )
        try await cluster.start(.gateway)
        return (cluster, await cluster.gatewayPort.wait())
    }

    /// auth, tenants and permissions behind the gateway.
    package static func permissionsCluster(authSettings: AuthSettings = TenantsCluster.testAuthSettings) async throws -> (TenantsCluster, Int) {
        let cluster = try await TenantsCluster.start(
            settings: TenantsSettings(sagaServices: [.tenants, .auth, .permissions]),
            authSettings: authSettings,
            without: [.audit, .webhooks]
        )
        try await cluster.start(.gateway)
        return (cluster, await cluster.gatewayPort.wait())
    }

    // MARK: Teams and MFA

    /// Invites `email` into `tenant` over HTTP and returns the invitation's ID and the token
    /// the invitee's mail carries.
    package static func invite(
        _ port: Int,
        _ cluster: TenantsCluster,
        _ tenant: String,
        _ token: String,
        email: String,
        role: String = "MEMBER_ROLE_MEMBER"
    )
        async throws -> (id: String, token: String)
    {
        let invited = try await send(port, "POST", "/v1/tenants/\(tenant)/members", #"{"email":"\#(email)","role":"\#(role)"}"#, token: token)
        #expect(invited.status == 201, "\(invited.body)")
        #expect(!invited.body.contains("token"), "the inviter never sees the token")
        let id = try #require((try object(invited)["invitation"] as? [String: Any])?["invitation_id"] as? String)
        return (id, try await cluster.invitationToken(to: email, in: TenantID(tenant)!))
    }

    package static func signIn(_ port: Int, _ email: String, password: String = HTTP.password, tenant: String? = nil) async throws -> HTTPTestResponse
    {
        let choice = tenant.map { #","tenant_id":"\#($0)""# } ?? ""
        return try await send(port, "POST", "/v1/auth/login", #"{"email":"\#(email)","password":"\#(password)"\#(choice)}"#)
    }

    /// What enrolment asks for: the password again (every test account has `password`).
    package static let passwordProof = #"{"password":"\#(password)"}"#

    /// A person who joins `world`'s tenant by invitation (sent with `inviter`'s token) as a new
    /// account, so that it is their home tenant: their user ID.
    package static func newPerson(_ world: GatewayWorld, email: String, invitedWith inviter: String) async throws -> String {
        let (_, invitation) = try await invite(world.port, world.cluster, world.tenant, inviter, email: email)
        let accepted = try await send(
            world.port,
            "POST",
            "/v1/invitations/accept",
            #"{"token":"\#(invitation)","name":"Cara","password":"\#(password)"}"#
        )
        return try #require(try object(accepted)["user_id"] as? String, "\(accepted.body)")
    }
}

/// Ada owns a tenant; Bob, who registered his own, is a plain member of hers and signed in to it.
package struct GatewayWorld {
    package let cluster: TenantsCluster
    package let port: Int
    package let tenant: String
    package let ada: String
    package let adaToken: String
    package let bob: String
    package let bobToken: String
    /// Bob's token for his own tenant.
    package let bobHomeToken: String

    package func send(
        _ method: String,
        _ path: String,
        _ json: String? = nil,
        token: String,
        revision: String? = nil
    ) async throws -> HTTPTestResponse {
        try await HTTP.send(port, method, path, json, token: token, revision: revision)
    }

    package static func start(
        authSettings: AuthSettings = TenantsCluster.testAuthSettings,
        rateLimitSettings: RateLimitSettings = TenantsCluster.liftedAPILimit(),
        gateway: GatewaySettings = GatewaySettings(),
        webhooks: WebhooksSettings? = nil,
        gatewayPort: Int = 0
    ) async throws -> GatewayWorld {
        let cluster = try await TenantsCluster.start(
            settings: TenantsSettings(sagaServices: [.tenants, .auth, .permissions, .audit] + (webhooks == nil ? [] : [.webhooks])),
            authSettings: authSettings,
            rateLimitSettings: rateLimitSettings,
            without: [.webhooks]
        )
        if let webhooks {
            cluster.webhooksSettings = webhooks
            try await cluster.start(.webhooks)
        }
        cluster.gatewaySettings = gateway
        cluster.gatewayListenPort = gatewayPort
        try await cluster.start(.gateway)
        let port = await cluster.gatewayPort.wait()
        let (tenant, adaToken) = try await HTTP.signUp(port, cluster, email: "ada@lovelace.example", number: "732 829 320 00074")
        let (_, bobHomeToken) = try await HTTP.signUp(port, cluster, email: "bob@babbage.example", number: "443 061 841 00047")
        func principal(_ token: String) async throws -> String {
            try #require(try HTTP.object(try await HTTP.send(port, "GET", "/v1/auth/whoami", token: token))["principal"] as? String)
        }
        let ada = try await principal(adaToken)
        let bob = try await principal(bobHomeToken)
        _ = try await cluster.addMember(to: TenantID(tenant)!, invitedBy: ada, user: bob, email: "bob@babbage.example")
        let login = try await HTTP.send(
            port,
            "POST",
            "/v1/auth/login",
            #"{"email":"bob@babbage.example","password":"\#(HTTP.password)","tenant_id":"\#(tenant)"}"#
        )
        let bobToken = try #require(try HTTP.object(login)["access_token"] as? String, "\(login.body)")
        return GatewayWorld(
            cluster: cluster,
            port: port,
            tenant: tenant,
            ada: String(ada.dropFirst(5)),
            adaToken: adaToken,
            bob: String(bob.dropFirst(5)),
            bobToken: bobToken,
            bobHomeToken: bobHomeToken
        )
    }
}
