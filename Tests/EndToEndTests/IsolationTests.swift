import Foundation
import RampartModels
import ServiceKit
import ServicesTestSupport
import TenantsService
import TestSupport
import Testing
import WebhooksService

/// IR-1 through two gateway replicas: one action isolates a member, a tenant or a person; their
/// access tokens, refresh tokens and API keys are refused at every replica within a second, they
/// stay out until the isolation is lifted, and each step is audited with who and why.
@Suite("IR-1 isolate a member, a tenant or a person in one action", .serialized)
struct IsolationTests {
    /// A signed-in person's credentials: what an isolation must stop.
    struct Credentials {
        var access: String
        var refresh: String
        var apiKey: String
    }

    static func cluster(superAdmins: Set<String> = []) async throws -> (TenantsCluster, Int) {
        var auth = TenantsCluster.testAuthSettings
        auth.superAdmins = superAdmins
        let cluster = try await TenantsCluster.start(
            settings: TenantsSettings(sagaServices: [.tenants, .auth, .permissions, .audit, .webhooks]),
            authSettings: auth,
            rateLimitSettings: TenantsCluster.liftedSignInLimits(),
            without: [.webhooks]
        )
        cluster.webhooksSettings = WebhooksSettings(allowedNetworks: [IPNetwork(cidr: "127.0.0.1/32")!])
        try await cluster.start(.webhooks)
        try await cluster.start(.gateway)
        return (cluster, await cluster.gatewayPort.wait())
    }

    static func signIn(_ port: Int, _ email: String, tenant: String? = nil) async throws -> HTTPTestResponse {
        try await HTTP.signIn(port, email, tenant: tenant)
    }

    /// Signs `email` in to `tenant` and makes an API key there.
    static func credentials(_ port: Int, _ email: String, tenant: String) async throws -> Credentials {
        let login = try HTTP.object(try await signIn(port, email, tenant: tenant))
        let access = try #require(login["access_token"] as? String)
        let (key, _) = try await HTTP.createAPIKey(port, tenant, access, #"{"name":"script","scopes":["boards:read"]}"#)
        return Credentials(access: access, refresh: try #require(login["refresh_token"] as? String), apiKey: key)
    }

    /// Within a second, on every port: the access token and the API key get 401.
    static func expectRefused(_ credentials: Credentials, on ports: [Int], sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let start = ContinuousClock.now
        for port in ports {
            for token in [credentials.access, credentials.apiKey] {
                let refused = await eventually(within: .seconds(1)) {
                    (try? await HTTP.send(port, "GET", "/v1/auth/whoami", token: token).status) == 401
                }
                #expect(refused, "port \(port)", sourceLocation: sourceLocation)
            }
        }
        #expect(ContinuousClock.now - start < .seconds(2), sourceLocation: sourceLocation)
    }

    /// The signed-in user's ID, as whoami's principal (`user:<id>`) names it.
    static func userID(_ port: Int, _ access: String) async throws -> String {
        let principal = try #require(try HTTP.object(try await HTTP.send(port, "GET", "/v1/auth/whoami", token: access))["principal"] as? String)
        #expect(principal.hasPrefix("user:"))
        return String(principal.dropFirst(5))
    }

    static func refreshStatus(_ port: Int, _ credentials: Credentials) async throws -> Int {
        try await HTTP.send(port, "POST", "/v1/auth/token/refresh", #"{"refresh_token":"\#(credentials.refresh)"}"#).status
    }

    static func audited(_ cluster: TenantsCluster, _ tenant: String, _ action: AuditAction) async throws -> [Rampart_V1_AuditEvent] {
        try await cluster.events(Subjects.audit(tenant: TenantID(tenant)), as: Rampart_V1_AuditEvent.self, stream: Subjects.auditStream)
            .filter { $0.action == action.rawValue }
    }

    @Test("a member: refused on both gateways within 1 s, sign-in refused until lifted; a reason is required; only an owner isolates an owner")
    func member() async throws {
        let (cluster, port) = try await Self.cluster()
        let (replica, otherPort) = try await cluster.startGatewayReplica()
        defer {
            Task {
                await replica.stop()
                await cluster.stop()
            }
        }
        let (tenant, ada) = try await HTTP.signUp(port, cluster, email: "ada@lovelace.example", number: "732 829 320 00074")
        let (_, invitation) = try await HTTP.invite(port, cluster, tenant, ada, email: "grace@hopper.example", role: "MEMBER_ROLE_ADMIN")
        let joined = try await HTTP.send(
            port,
            "POST",
            "/v1/invitations/accept",
            #"{"token":"\#(invitation)","name":"Grace","password":"\#(HTTP.password)"}"#
        )
        let grace = try #require(try HTTP.object(joined)["user_id"] as? String)
        let adaID = try await Self.userID(port, ada)
        let credentials = try await Self.credentials(port, "grace@hopper.example", tenant: tenant)
        let path = "/v1/tenants/\(tenant)/members/\(grace)/isolate"

        // An admin cannot isolate an owner, nor anyone themself; a reason is required.
        let upward = try await HTTP.send(
            port,
            "POST",
            "/v1/tenants/\(tenant)/members/\(adaID)/isolate",
            #"{"reason":"mutiny"}"#,
            token: credentials.access
        )
        #expect(upward.status == 403, "\(upward.body)")
        #expect(try await HTTP.send(port, "POST", "/v1/tenants/\(tenant)/members/\(adaID)/isolate", #"{"reason":"oops"}"#, token: ada).status == 409)
        for body in [
            #"{}"#, #"{"reason":"  "}"#, #"{"reason":"a\u0000b"}"#, #"{"reason":"\#(String(repeating: "x", count: 501))"}"#, #"{"reason":7}"#,
        ] {
            let refused = try await HTTP.send(port, "POST", path, body, token: ada)
            #expect(refused.status == 400, "\(body): \(refused.body)")
        }
        #expect(try await HTTP.send(port, "GET", "/v1/auth/whoami", token: credentials.access).status == 200)

        let isolated = try await HTTP.send(port, "POST", path, #"{"reason":"laptop stolen at the airport"}"#, token: ada)
        #expect(isolated.status == 200, "\(isolated.body)")
        let reply = try HTTP.object(isolated)
        #expect(reply["sessions_revoked"] as? Int ?? 0 >= 1 && reply["api_keys_revoked"] as? Int == 1, "\(reply)")
        #expect(((reply["member"] as? [String: Any])?["isolation"] as? [String: Any])?["reason"] as? String == "laptop stolen at the airport")
        try await Self.expectRefused(credentials, on: [port, otherPort])
        #expect(try await Self.refreshStatus(otherPort, credentials) == 401)
        #expect(try await Self.signIn(otherPort, "grace@hopper.example", tenant: tenant).status == 401)
        // Kept out until lifted: re-enabling by a role change is refused.
        let enable = try await HTTP.send(port, "PATCH", "/v1/tenants/\(tenant)/members/\(grace)", #"{"status":"MEMBER_STATUS_ACTIVE"}"#, token: ada)
        #expect(enable.status == 409, "\(enable.body)")

        let lifted = try await HTTP.send(port, "DELETE", path, token: ada)
        #expect(lifted.status == 200, "\(lifted.body)")
        #expect(try await HTTP.send(port, "DELETE", path, token: ada).status == 409, "not isolated any more")
        #expect(try await Self.signIn(otherPort, "grace@hopper.example", tenant: tenant).status == 200)
        // What was revoked stays revoked.
        #expect(try await HTTP.send(otherPort, "GET", "/v1/auth/whoami", token: credentials.apiKey).status == 401)

        let events = try await Self.audited(cluster, tenant, .memberIsolated)
        #expect(events.count == 1)
        #expect(events.first?.actor.id == adaID && events.first?.reason == "laptop stolen at the airport")
        #expect(events.first?.target.id == grace)
        #expect(try await Self.audited(cluster, tenant, .memberIsolationLifted).first?.actor.id == adaID)
    }

    @Test("a tenant: every member and API key refused on both gateways, webhooks held, sign-in refused; only a platform super-admin lifts it")
    func tenant() async throws {
        let (cluster, port) = try await Self.cluster(superAdmins: ["root@platform.example"])
        let (replica, otherPort) = try await cluster.startGatewayReplica()
        let receiver = try await WebhookReceiver.start()
        defer {
            Task {
                await replica.stop()
                await cluster.stop()
            }
        }
        let (tenant, ada) = try await HTTP.signUp(port, cluster, email: "ada@lovelace.example", number: "732 829 320 00074")
        let (_, root) = try await HTTP.signUp(port, cluster, email: "root@platform.example", number: "443 061 841 00047")
        // The flag is set at auth's start for verified addresses.
        await cluster.stop(.auth)
        try await cluster.start(.auth)
        let rootToken = try #require(try HTTP.object(try await Self.signIn(port, "root@platform.example"))["access_token"] as? String)
        _ = root
        let endpoint = #"{"url":"http://127.0.0.1:\#(receiver.port)/ok","event_types":["tenant.*"]}"#
        #expect(try await HTTP.send(port, "POST", "/v1/tenants/\(tenant)/webhooks/endpoints", endpoint, token: ada).status == 201)
        let credentials = try await Self.credentials(port, "ada@lovelace.example", tenant: tenant)
        let path = "/v1/tenants/\(tenant)/isolate"

        #expect(try await HTTP.send(port, "POST", path, #"{}"#, token: ada).status == 400)
        let isolated = try await HTTP.send(port, "POST", path, #"{"reason":"credentials leaked in a public repository"}"#, token: ada)
        #expect(isolated.status == 200, "\(isolated.body)")
        let reply = try HTTP.object(isolated)
        #expect(reply["sessions_revoked"] as? Int ?? 0 >= 2 && reply["api_keys_revoked"] as? Int == 1, "\(reply)")
        #expect((reply["tenant"] as? [String: Any])?["status"] as? String == "TENANT_STATUS_SUSPENDED")
        try await Self.expectRefused(credentials, on: [port, otherPort])
        #expect(try await HTTP.send(port, "GET", "/v1/auth/whoami", token: ada).status == 401)
        #expect(try await Self.refreshStatus(port, credentials) == 401)
        #expect(try await Self.signIn(otherPort, "ada@lovelace.example").status == 401)
        // tenant.isolated is a tenant.* event: held while the tenant is isolated.
        try await Task.sleep(for: .milliseconds(1_000))
        #expect(receiver.received(at: "/ok").isEmpty)

        // The tenant's own owners are locked out with everyone; the platform lifts it.
        let notOwner = try await HTTP.send(port, "DELETE", path, token: credentials.access)
        #expect(notOwner.status == 401)
        let lifted = try await HTTP.send(otherPort, "DELETE", path, token: rootToken)
        #expect(lifted.status == 200, "\(lifted.body)")
        #expect(try await Self.signIn(port, "ada@lovelace.example").status == 200)
        let delivered = await eventually(within: .seconds(10)) { !receiver.received(at: "/ok").isEmpty }
        #expect(delivered, "the held delivery goes out once lifted")

        let events = try await Self.audited(cluster, tenant, .tenantIsolated)
        #expect(events.first?.reason == "credentials leaked in a public repository")
        #expect(try await Self.audited(cluster, tenant, .tenantIsolationLifted).first?.superAdmin == true)
    }

    @Test("a person, by a platform super-admin: refused in every tenant on both gateways, sign-in and reset refused until lifted")
    func person() async throws {
        let (cluster, port) = try await Self.cluster(superAdmins: ["root@platform.example"])
        let (replica, otherPort) = try await cluster.startGatewayReplica()
        defer {
            Task {
                await replica.stop()
                await cluster.stop()
            }
        }
        let (adaTenant, ada) = try await HTTP.signUp(port, cluster, email: "ada@lovelace.example", number: "732 829 320 00074")
        let (bobTenant, _) = try await HTTP.signUp(port, cluster, email: "bob@babbage.example", number: "443 061 841 00047")
        _ = try await HTTP.signUp(port, cluster, email: "root@platform.example", number: "552 100 554 00013")
        await cluster.stop(.auth)
        try await cluster.start(.auth)
        let root = try #require(try HTTP.object(try await Self.signIn(port, "root@platform.example"))["access_token"] as? String)
        let (_, invitation) = try await HTTP.invite(port, cluster, adaTenant, ada, email: "bob@babbage.example")
        let bobHome = try #require(try HTTP.object(try await Self.signIn(port, "bob@babbage.example"))["access_token"] as? String)
        #expect(try await HTTP.send(port, "POST", "/v1/invitations/accept", #"{"token":"\#(invitation)"}"#, token: bobHome).status == 200)
        let bob = try await Self.userID(port, bobHome)
        let inHome = try await Self.credentials(port, "bob@babbage.example", tenant: bobTenant)
        let inAda = try await Self.credentials(port, "bob@babbage.example", tenant: adaTenant)
        let path = "/v1/admin/users/\(bob)/isolate"

        #expect(try await HTTP.send(port, "POST", path, #"{"reason":"x"}"#, token: ada).status == 403, "super-admins only")
        #expect(try await HTTP.send(port, "POST", path, #"{"reason":"x"}"#, token: inHome.apiKey).status / 100 == 4)
        #expect(try await HTTP.send(port, "POST", path, #"{}"#, token: root).status == 400)
        #expect(try await HTTP.send(port, "POST", "/v1/admin/users/not-a-uuid/isolate", #"{"reason":"x"}"#, token: root).status == 400)
        let isolated = try await HTTP.send(port, "POST", path, #"{"reason":"account takeover reported by the user"}"#, token: root)
        #expect(isolated.status == 200, "\(isolated.body)")
        #expect(try HTTP.object(isolated)["api_keys_revoked"] as? Int == 2)
        try await Self.expectRefused(inHome, on: [port, otherPort])
        try await Self.expectRefused(inAda, on: [port, otherPort])
        #expect(try await Self.refreshStatus(otherPort, inAda) == 401)
        #expect(try await Self.signIn(port, "bob@babbage.example").status == 401)
        #expect(try await Self.signIn(port, "bob@babbage.example", tenant: adaTenant).status == 401)
        // A reset cannot bring the person back: no mail goes out.
        // (Reset mails leave in the order asked: once Ada's has, Bob's would have.)
        let resetsBefore = try await cluster.mails(from: .auth).filter { $0.template == "password_reset" && $0.to == "bob@babbage.example" }.count
        _ = try await cluster.resetMail(to: "ada@lovelace.example") { () async throws in
            #expect(try await HTTP.send(port, "POST", "/v1/auth/password/reset/request", #"{"email":"bob@babbage.example"}"#).status == 200)
            #expect(try await HTTP.send(port, "POST", "/v1/auth/password/reset/request", #"{"email":"ada@lovelace.example"}"#).status == 200)
        }
        #expect(
            try await cluster.mails(from: .auth).filter { $0.template == "password_reset" && $0.to == "bob@babbage.example" }.count == resetsBefore
        )

        let lifted = try await HTTP.send(otherPort, "DELETE", path, token: root)
        #expect(lifted.status == 200, "\(lifted.body)")
        #expect(try await Self.signIn(port, "bob@babbage.example", tenant: adaTenant).status == 200)
        for tenant in [adaTenant, bobTenant] {
            let events = try await Self.audited(cluster, tenant, .userIsolated)
            #expect(events.first?.reason == "account takeover reported by the user" && events.first?.superAdmin == true, "\(tenant)")
        }
    }
}
