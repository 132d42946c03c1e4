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

/// The gateway and services with SSO providers allowed on loopback, as `make run` has them.
func ssoWorld() async throws -> GatewayWorld {
    try await GatewayWorld.start(authSettings: TenantsCluster.ssoAuthSettings)
}

@Suite("SSO-1, SSO-2 connections through the gateway: made, read, changed and removed by owners and admins", .serialized)
struct SSOConnectionHTTPTests {
    static let secret = "s3cr3t-never-answered-9f2c"

    func connections(_ world: GatewayWorld) -> String { "/v1/tenants/\(world.tenant)/sso/connections" }

    func create(_ world: GatewayWorld, issuer: String, extra: String = "") async throws -> [String: Any] {
        let made = try await world.send(
            "POST",
            connections(world),
            #"{"preset":"oidc","issuer":"\#(issuer)","client_id":"rampart-test","client_secret":"\#(Self.secret)"\#(extra)}"#,
            token: world.adaToken
        )
        #expect(made.status == 201, "\(made.body)")
        #expect(!made.body.contains(Self.secret))
        return try #require(try HTTP.object(made)["connection"] as? [String: Any])
    }

    @Test("Made in draft with the redirect URI to register; the secret never answered and sealed at rest; audited without it")
    func createAndRead() async throws {
        let provider = try await MockOpenIDProvider.start()
        defer { provider.stop() }
        let world = try await ssoWorld()
        try await stopping(world.cluster) {
            let connection = try await create(world, issuer: provider.issuer, extra: #","test_users":["Ada@Lovelace.example"]"#)
            let id = try #require(connection["connection_id"] as? String)
            #expect(connection["state"] as? String == "draft")
            #expect(connection["issuer"] as? String == provider.issuer)
            #expect(connection["redirect_uri"] as? String == "http://127.0.0.1:8080/v1/auth/sso/callback")
            #expect(connection["test_users"] as? [String] == ["ada@lovelace.example"])

            let listed = try await world.send("GET", connections(world), token: world.adaToken)
            #expect(listed.status == 200 && !listed.body.contains(Self.secret), "\(listed.body)")
            #expect((try HTTP.object(listed)["connections"] as? [[String: Any]])?.map { $0["connection_id"] as? String } == [id])
            let one = try await world.send("GET", connections(world) + "/" + id, token: world.adaToken)
            #expect(one.status == 200 && !one.body.contains(Self.secret), "\(one.body)")

            let database = try #require(world.cluster.databases[.auth])
            let sealed = try await TestPostgres.psql("SELECT client_secret_sealed FROM t_\(world.tenant).sso_connections", database: database)
            #expect(!sealed.isEmpty && !sealed.contains(Self.secret))

            let audited = try await world.cluster.events(
                Subjects.audit(tenant: TenantID(world.tenant)),
                as: Rampart_V1_AuditEvent.self,
                stream: Subjects.auditStream
            )
            let changes = audited.filter { $0.action == AuditAction.ssoConnectionChanged.rawValue }
            #expect(changes.map { $0.details["change"] } == ["created"])
            #expect(changes.first?.details["after"]?.contains("state=\"draft\"") == true)
            #expect(!changes.contains { $0.details.values.contains { $0.contains(Self.secret) } })
        }
    }

    @Test("A member without sso.manage is refused; another tenant's connection is not found")
    func permissions() async throws {
        let provider = try await MockOpenIDProvider.start()
        defer { provider.stop() }
        let world = try await ssoWorld()
        try await stopping(world.cluster) {
            let id = try #require(try await create(world, issuer: provider.issuer)["connection_id"] as? String)
            try HTTP.expectRefused(try await world.send("GET", connections(world), token: world.bobToken), needs: "sso.manage")
            try HTTP.expectRefused(
                try await world.send("PATCH", connections(world) + "/" + id, #"{"state":"active"}"#, token: world.bobToken),
                needs: "sso.manage"
            )
            // Bob owns his own tenant: Ada's connection ID in his tenant's path is no connection.
            let whoami = try await world.send("GET", "/v1/auth/whoami", token: world.bobHomeToken)
            let bobTenant = try #require(try HTTP.object(whoami)["tenant_id"] as? String)
            let elsewhere = try await world.send("GET", "/v1/tenants/\(bobTenant)/sso/connections/\(id)", token: world.bobHomeToken)
            #expect(elsewhere.status == 404, "\(elsewhere.body)")
            let removed = try await world.send("DELETE", "/v1/tenants/\(bobTenant)/sso/connections/\(id)", token: world.bobHomeToken)
            #expect(removed.status == 404, "\(removed.body)")
            #expect(try await world.send("GET", connections(world) + "/" + id, token: world.adaToken).status == 200)
        }
    }

    @Test("Each bad field gets a 400 naming it, and nothing is stored")
    func badInput() async throws {
        let world = try await ssoWorld()
        try await stopping(world.cluster) {
            let base = #""client_id":"c","client_secret":"s""#
            let cases: [(body: String, field: String)] = [
                (#"{"preset":"saml",\#(base)}"#, "preset"),
                (#"{"preset":"oidc",\#(base)}"#, "issuer"),
                (#"{"preset":"oidc","issuer":"https://idp.example.com/?tenant=1",\#(base)}"#, "issuer"),
                (#"{"preset":"oidc","issuer":"https://user:pw@idp.example.com",\#(base)}"#, "issuer"),
                (#"{"preset":"oidc","issuer":"ftp://idp.example.com",\#(base)}"#, "issuer"),
                (#"{"preset":"oidc","issuer":"https://idp.example.com\r\nX: y",\#(base)}"#, "issuer"),
                (#"{"preset":"google","issuer":"https://evil.example.com",\#(base)}"#, "issuer"),
                (#"{"preset":"microsoft","directory":"common",\#(base)}"#, "directory"),
                (#"{"preset":"microsoft","directory":"not a directory",\#(base)}"#, "directory"),
                // The SSRF guard: a private address, and plain http to a public one.
                (#"{"preset":"oidc","issuer":"https://10.0.0.7",\#(base)}"#, "issuer"),
                (#"{"preset":"oidc","issuer":"https://169.254.169.254/latest",\#(base)}"#, "issuer"),
                (#"{"preset":"oidc","issuer":"http://93.184.216.34",\#(base)}"#, "issuer"),
                (#"{"preset":"google","client_id":"","client_secret":"s"}"#, "client_id"),
                (#"{"preset":"google","client_id":"\#(String(repeating: "c", count: 257))","client_secret":"s"}"#, "client_id"),
                (#"{"preset":"google","client_id":"c","client_secret":""}"#, "client_secret"),
                (#"{"preset":"google","client_id":"c","client_secret":"two words"}"#, "client_secret"),
                (#"{"preset":"google",\#(base),"domains":["not a domain"]}"#, "domains"),
                // A real domain, but not one this tenant verified.
                (#"{"preset":"google",\#(base),"domains":["lovelace.example"]}"#, "domains"),
                (#"{"preset":"google",\#(base),"test_users":["ada"]}"#, "test_users"),
                (#"{"preset":"google",\#(base),"claim_mapping":{"role":"groups"}}"#, "claim_mapping"),
                (#"{"preset":"google",\#(base),"claim_mapping":{"email":"a b"}}"#, "claim_mapping"),
                (#"{"preset":"google",\#(base),"id_token_algorithms":["none"]}"#, "id_token_algorithms"),
            ]
            for (body, field) in cases {
                let refused = try await world.send("POST", connections(world), body, token: world.adaToken)
                #expect(refused.status == 400, "\(body): \(refused.body)")
                #expect(HTTP.errors(refused)["field"] == field, "\(body): \(refused.body)")
            }
            // Not JSON of this route's shape at all.
            let unknown = try await world.send("POST", connections(world), #"{"preset":"google","admin":true}"#, token: world.adaToken)
            #expect(unknown.status == 400, "\(unknown.body)")
            let listed = try HTTP.object(try await world.send("GET", connections(world), token: world.adaToken))
            #expect((listed["connections"] as? [Any] ?? []).isEmpty)
        }
    }

    @Test("draft → testing (needs a test user and a provider that answers) → active → draft; each change audited with before and after")
    func states() async throws {
        let provider = try await MockOpenIDProvider.start()
        defer { provider.stop() }
        let world = try await ssoWorld()
        try await stopping(world.cluster) {
            let id = try #require(try await create(world, issuer: provider.issuer)["connection_id"] as? String)
            let path = connections(world) + "/" + id
            let noTester = try await world.send("PATCH", path, #"{"state":"testing"}"#, token: world.adaToken)
            #expect(noTester.status == 400 && HTTP.errors(noTester)["field"] == "test_users", "\(noTester.body)")
            let listWithoutFlag = try await world.send("PATCH", path, #"{"test_users":["ada@lovelace.example"]}"#, token: world.adaToken)
            #expect(listWithoutFlag.status == 400 && HTTP.errors(listWithoutFlag)["field"] == "set_test_users", "\(listWithoutFlag.body)")

            let testing = try await world.send(
                "PATCH",
                path,
                #"{"state":"testing","test_users":["ada@lovelace.example"],"set_test_users":true}"#,
                token: world.adaToken
            )
            #expect(testing.status == 200, "\(testing.body)")
            #expect((try HTTP.object(testing)["connection"] as? [String: Any])?["state"] as? String == "testing")

            // A provider that does not answer cannot be activated; the connection stays as it was.
            let deadIssuer = "http://127.0.0.1:\(Ports.free())"
            let dead = try await world.send("PATCH", path, #"{"issuer":"\#(deadIssuer)","state":"active"}"#, token: world.adaToken)
            #expect(dead.status == 409, "\(dead.body)")
            #expect((try HTTP.object(dead)["detail"] as? String)?.contains("the provider must answer") == true, "\(dead.body)")
            #expect(HTTP.errors(dead)["field"] == "issuer")
            let unchanged = try HTTP.object(try await world.send("GET", path, token: world.adaToken))["connection"] as? [String: Any]
            #expect(unchanged?["issuer"] as? String == provider.issuer && unchanged?["state"] as? String == "testing")

            let active = try await world.send(
                "PATCH",
                path,
                #"{"state":"active","client_secret":"rotated-secret-77","trust_provider_mfa":true}"#,
                token: world.adaToken
            )
            #expect(active.status == 200 && !active.body.contains("rotated-secret-77"), "\(active.body)")
            let back = try await world.send("PATCH", path, #"{"state":"draft"}"#, token: world.adaToken)
            #expect(back.status == 200, "\(back.body)")
            let removed = try await world.send("DELETE", path, token: world.adaToken)
            #expect(removed.status == 200, "\(removed.body)")
            #expect(try await world.send("GET", path, token: world.adaToken).status == 404)

            let audited = try await world.cluster.events(
                Subjects.audit(tenant: TenantID(world.tenant)),
                as: Rampart_V1_AuditEvent.self,
                stream: Subjects.auditStream
            )
            let changes = audited.filter { $0.action == AuditAction.ssoConnectionChanged.rawValue }
            #expect(
                changes.map { $0.details["change"] ?? "" }
                    == ["created", "updated", "updated, client secret replaced", "updated", "deleted"]
            )
            #expect(changes[1].details["before"]?.contains("state=\"draft\"") == true)
            #expect(changes[1].details["after"]?.contains("state=\"testing\"") == true)
            #expect(!changes.contains { $0.details.values.contains { $0.contains("rotated-secret-77") } })
        }
    }

    @Test("Concurrent changes of different fields: each answered 200 or 409, and no 200 is lost to a stale write")
    func concurrentChanges() async throws {
        let provider = try await MockOpenIDProvider.start()
        defer { provider.stop() }
        let world = try await ssoWorld()
        try await stopping(world.cluster) {
            let id = try #require(try await create(world, issuer: provider.issuer)["connection_id"] as? String)
            let path = connections(world) + "/" + id
            // Each change and how to see it in the stored connection.
            let changes: [(body: String, applied: @Sendable ([String: Any]) -> Bool)] = [
                (#"{"client_id":"client-2"}"#, { $0["client_id"] as? String == "client-2" }),
                (#"{"trust_provider_mfa":true}"#, { $0["trust_provider_mfa"] as? Bool == true }),
                (#"{"test_users":["cara@lovelace.example"],"set_test_users":true}"#, { $0["test_users"] as? [String] == ["cara@lovelace.example"] }),
                (#"{"claim_mapping":{"email":"upn"},"set_claim_mapping":true}"#, { ($0["claim_mapping"] as? [String: String])?["email"] == "upn" }),
                (#"{"id_token_algorithms":["ES256"],"set_id_token_algorithms":true}"#, { $0["id_token_algorithms"] as? [String] == ["ES256"] }),
            ]
            for _ in 0..<3 {
                let statuses = try await withThrowingTaskGroup(of: (Int, Int).self) { group in
                    for (index, change) in changes.enumerated() {
                        group.addTask { (index, try await world.send("PATCH", path, change.body, token: world.adaToken).status) }
                    }
                    return try await group.reduce(into: [Int: Int]()) { $0[$1.0] = $1.1 }
                }
                #expect(statuses.values.allSatisfy { [200, 409].contains($0) }, "\(statuses)")
                let stored = try #require(try HTTP.object(try await world.send("GET", path, token: world.adaToken))["connection"] as? [String: Any])
                for (index, status) in statuses where status == 200 {
                    #expect(changes[index].applied(stored), "change \(changes[index].body) answered 200 but is not stored: \(stored)")
                }
                // Back to the start for the next round.
                let reset =
                    #"{"client_id":"rampart-test","trust_provider_mfa":false,"set_test_users":true,"set_claim_mapping":true,"set_id_token_algorithms":true}"#
                #expect(try await world.send("PATCH", path, reset, token: world.adaToken).status == 200)
            }
        }
    }
}
