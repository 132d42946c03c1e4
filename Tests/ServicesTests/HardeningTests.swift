import Foundation
import RampartModels
import TestSupport
import Testing

/// Issue 26, the security review's findings, each attacked through the gateway as the review
/// describes it. (The SSRF ranges it added are in WebhookGuardTests.)
@Suite("Security review: each finding attacked through the gateway", .serialized)
struct HardeningTests {
    typealias HTTP = APIKeyHTTPTests

    @Test("an owner holding only a session cannot drop their own MFA with the admin reset; DELETE /v1/auth/mfa's proof stays the way")
    func ownMFAReset() async throws {
        let world = try await GatewayRoutesTests.world()
        defer { Task { await world.cluster.stop() } }
        _ = try await MFAHTTPTests().enrol(world.port, world.adaToken)
        let own = try await world.send("DELETE", "/v1/tenants/\(world.tenant)/members/\(world.ada)/mfa", token: world.adaToken)
        #expect(own.status == 403, "\(own.body)")
        #expect((try HTTP.object(own)["errors"] as? [String: Any])?["reason"] as? String == "own_account")
        #expect(try HTTP.object(try await world.send("GET", "/v1/auth/mfa", token: world.adaToken))["enabled"] as? Bool == true)
    }

    @Test("sso_enforced cannot be set while no SSO connection exists: a 400 naming it, nothing stored")
    func ssoEnforcedRefused() async throws {
        let world = try await GatewayRoutesTests.world()
        defer { Task { await world.cluster.stop() } }
        let path = "/v1/tenants/\(world.tenant)"
        let refused = try await world.send("PATCH", path, #"{"sso_enforced":true,"name":"Renamed"}"#, token: world.adaToken)
        #expect(refused.status == 400, "\(refused.body)")
        #expect((try HTTP.object(refused)["errors"] as? [String: Any])?["field"] as? String == "sso_enforced")
        let tenant = try HTTP.object(try await world.send("GET", path, token: world.adaToken))
        #expect((tenant["policies"] as? [String: Any])?["sso_enforced"] == nil)
        #expect(tenant["name"] as? String != "Renamed", "nothing of the request written")
        #expect(try await world.send("PATCH", path, #"{"sso_enforced":false}"#, token: world.adaToken).status == 200)
    }

    @Test("a reset link dies when another reset is used or the password is changed")
    func resetLinksSpent() async throws {
        // Four reset requests and sign-ins from 127.0.0.1 within seconds.
        let world = try await GatewayRoutesTests.world(rateLimitSettings: TenantsCluster.liftedSignInLimits())
        defer { Task { await world.cluster.stop() } }
        func requestReset() async throws -> String {
            #expect(try await HTTP.send(world.port, "POST", "/v1/auth/password/reset/request", #"{"email":"ada@lovelace.example"}"#).status == 200)
            return try #require(try await world.cluster.mails(from: .auth).last { $0.template == "password_reset" }).token
        }
        func confirm(_ token: String, _ password: String) async throws -> Int {
            try await HTTP.send(world.port, "POST", "/v1/auth/password/reset/confirm", #"{"token":"\#(token)","new_password":"\#(password)"}"#).status
        }
        let first = try await requestReset()
        let second = try await requestReset()
        #expect(try await confirm(second, "Correct-h0rse-battery!") == 200)
        #expect(try await confirm(first, "An0ther-long-passphrase") == 404, "the older link died with the reset")

        let third = try await requestReset()
        let login = try HTTP.object(
            try await HTTP.send(world.port, "POST", "/v1/auth/login", #"{"email":"ada@lovelace.example","password":"Correct-h0rse-battery!"}"#)
        )
        let access = try #require(login["access_token"] as? String)
        let changed = try await HTTP.send(
            world.port,
            "POST",
            "/v1/auth/password/change",
            #"{"current_password":"Correct-h0rse-battery!","new_password":"Yet-an0ther-passphrase"}"#,
            token: access
        )
        #expect(changed.status == 200, "\(changed.body)")
        #expect(try await confirm(third, "An0ther-long-passphrase") == 404, "a link mailed before the change does not undo it")
    }
}
