import AuthService
import Foundation
import RampartModels
import ServiceKit
import ServicesTestSupport
import TenantsService
import TestSupport
import Testing

/// Resource roles, the check and the access review through the gateway (SPEC section 14), with
/// auth, tenants and permissions running for real.
@Suite("PERM-1..6 end to end through the gateway", .serialized)
struct PermissionsHTTPTests {
    @Test("set and remove board roles, check with the returned consistency token, list access, review as CSV")
    func rolesAndChecks() async throws {
        let (cluster, port) = try await HTTP.permissionsCluster()
        try await stopping(cluster) {
            let (tenant, access) = try await HTTP.signUp(port, cluster, email: "ada@lovelace.example", number: "732 829 320 00074")
            let ada = try #require(try HTTP.object(try await HTTP.send(port, "GET", "/v1/auth/whoami", token: access))["principal"] as? String)
            let editor = String(try await cluster.addMember(to: TenantID(tenant)!, invitedBy: ada).dropFirst(5))
            let board = "/v1/tenants/\(tenant)/resources/boards/roadmap/roles"

            let owned = try await HTTP.send(port, "PUT", "\(board)/\(ada.dropFirst(5))", #"{"role":"owner"}"#, token: access)
            #expect(owned.status == 200, "\(owned.body)")
            let shared = try await HTTP.send(port, "PUT", "\(board)/\(editor)", #"{"role":"editor"}"#, token: access)
            #expect(shared.status == 200, "\(shared.body)")
            let sharedRevision = try #require(shared.headers["rampart-consistency-token"])
            #expect(try HTTP.object(shared)["revision"] as? Int == Int(sharedRevision))
            #expect((try HTTP.object(shared)["binding"] as? [String: Any])?["resource"] as? String == "boards/roadmap")

            let check = "/v1/tenants/\(tenant)/permissions/check"
            let write = #"{"principal_id":"\#(editor)","action":"boards.write","resource":"boards/roadmap"}"#
            let allowed = try HTTP.object(try await HTTP.send(port, "POST", check, write, token: access, revision: sharedRevision))
            #expect(allowed["allowed"] as? Bool == true)
            #expect(allowed["reason"] as? String == "resource_role:editor@boards/roadmap")
            let delete = #"{"principal_id":"\#(editor)","action":"boards.delete","resource":"boards/roadmap"}"#
            #expect(try HTTP.object(try await HTTP.send(port, "POST", check, delete, token: access))["allowed"] == nil)  // false is left out

            let listed = try HTTP.object(try await HTTP.send(port, "GET", board, token: access))
            let bindings = try #require(listed["bindings"] as? [[String: Any]])
            #expect(
                Set(bindings.map { "\($0["principal"] as? String ?? "")=\($0["role"] as? String ?? "")" }) == [
                    "\(ada)=owner", "user:\(editor)=editor",
                ]
            )

            // Revoked: the gateway's cached "allowed" is not served to a request presenting the revision.
            let revoked = try await HTTP.send(port, "DELETE", "\(board)/\(editor)", token: access)
            #expect(revoked.status == 200, "\(revoked.body)")
            let revokedRevision = try #require(revoked.headers["rampart-consistency-token"])
            #expect(Int(revokedRevision)! == Int(sharedRevision)! + 1)
            let refused = try HTTP.object(try await HTTP.send(port, "POST", check, write, token: access, revision: revokedRevision))
            #expect(refused["allowed"] == nil)
            #expect(refused["reason"] as? String == "no_role_grants")

            // The access review, as a spreadsheet.
            let csv = try await HTTP.send(port, "GET", "/v1/tenants/\(tenant)/access-review?format=csv", token: access)
            #expect(csv.status == 200)
            #expect(csv.headers["content-type"] == "text/csv; charset=utf-8")
            #expect(csv.body.hasPrefix("user_id,email,tenant_role,status,resource_roles,last_active_at\r\n"))
            #expect(csv.body.contains("owner@boards/roadmap"))
            let completed = try await HTTP.send(port, "POST", "/v1/tenants/\(tenant)/access-review/complete", #"{"note":"done"}"#, token: access)
            #expect(completed.status == 200, "\(completed.body)")

            // An API key asks about itself: its scopes meet its creator's roles.
            let (key, _) = try await HTTP.createAPIKey(port, tenant, access, #"{"name":"reader","scopes":["boards:read"]}"#)
            let read = try HTTP.object(try await HTTP.send(port, "POST", check, #"{"action":"boards.read","resource":"boards/roadmap"}"#, token: key))
            #expect(read["allowed"] as? Bool == true)
            let keyWrite = try HTTP.object(
                try await HTTP.send(port, "POST", check, #"{"action":"boards.write","resource":"boards/roadmap"}"#, token: key)
            )
            #expect(keyWrite["reason"] as? String == "scope_missing")
            // ... and cannot change roles.
            #expect(try await HTTP.send(port, "PUT", "\(board)/\(editor)", #"{"role":"viewer"}"#, token: key).status == 403)
        }
    }

    @Test("hostile paths, bodies and tokens get a precise 4xx and change nothing")
    func hostileInput() async throws {
        let (cluster, port) = try await HTTP.permissionsCluster()
        try await stopping(cluster) {
            let (tenant, access) = try await HTTP.signUp(port, cluster, email: "grace@hopper.example", number: "732 829 320 00074")
            let (other, _) = try await HTTP.signUp(port, cluster, email: "alan@turing.example", number: "443 061 841 00047")
            let user = UUID().uuidString.lowercased()
            let base = "/v1/tenants/\(tenant)/resources"
            let cases: [(String, String, String?, Int)] = [
                ("PUT", "\(base)/boards/x/roles/not-a-uuid", #"{"role":"viewer"}"#, 400),
                ("PUT", "\(base)/boards/x/roles/\(user)x", #"{"role":"viewer"}"#, 400),
                ("PUT", "\(base)/BOARDS/x/roles/\(user)", #"{"role":"viewer"}"#, 400),
                ("PUT", "\(base)/boards/x%27%3B%20DROP%20TABLE%20members%3B--/roles/\(user)", #"{"role":"viewer"}"#, 400),
                ("PUT", "\(base)/boards/\(String(repeating: "a", count: 65))/roles/\(user)", #"{"role":"viewer"}"#, 400),
                ("PUT", "\(base)/boards/x/roles/\(user)", #"{"role":"viewer","resource":"boards/y"}"#, 400),
                ("PUT", "\(base)/boards/x/roles/\(user)", #"{"role":7}"#, 400),
                ("PUT", "\(base)/boards/x/roles/\(user)", #"{"role":"viewer"}"#, 409),  // not a member
                ("PUT", "/v1/tenants/\(other)/resources/boards/x/roles/\(user)", #"{"role":"viewer"}"#, 403),
                ("POST", "/v1/tenants/\(tenant)/permissions/check", #"{"principal_id":"../../etc","action":"boards.read"}"#, 400),
                ("POST", "/v1/tenants/\(tenant)/permissions/check", #"{"action":"boards.fly"}"#, 400),
                ("POST", "/v1/tenants/\(tenant)/permissions/check", #"{"action":"boards.read","resource":"boards/../x"}"#, 400),
                ("GET", "/v1/tenants/\(tenant)/access-review?format=xml", nil, 400),
            ]
            for (method, path, body, status) in cases {
                let response = try await HTTP.send(port, method, path, body, token: access)
                #expect(response.status == status, "\(method) \(path) \(body ?? ""): \(response.body)")
                #expect(response.headers["content-type"] == "application/problem+json", "\(path)")
            }
            let badToken = try await HTTP.send(port, "GET", "\(base)/boards/x/roles", token: access, revision: "12abc")
            #expect(badToken.status == 400)
            let unknownRevision = try await HTTP.send(port, "GET", "\(base)/boards/x/roles", token: access, revision: "999999")
            #expect(unknownRevision.status == 400, "\(unknownRevision.body)")
            #expect(
                try await TestPostgres.psql(
                    "SELECT count(*) FROM \(TenantID(tenant)!.schemaName).resources",
                    database: cluster.databases[.permissions]!
                )
                    == "0"
            )
        }
    }

    @Test("PERM-3: a configured, verified super-admin's token carries the flag; the bypass is answered and audited")
    func superAdmin() async throws {
        var settings = TenantsCluster.testAuthSettings
        settings.superAdmins = ["root@platform.example"]
        let (cluster, port) = try await HTTP.permissionsCluster(authSettings: settings)
        try await stopping(cluster) {
            let (tenant, unverified) = try await HTTP.signUp(
                port,
                cluster,
                email: "root@platform.example",
                number: "732 829 320 00074",
                verified: false
            )
            let check = "/v1/tenants/\(tenant)/permissions/check"
            let question = #"{"action":"boards.delete","resource":"boards/vault"}"#
            // Not verified yet: the address alone gives nothing.
            await cluster.stop(.auth)
            try await cluster.start(.auth)
            #expect(
                try HTTP.object(try await HTTP.send(port, "POST", check, question, token: unverified))["reason"] as? String == "tenant_role:owner"
            )

            let database = try #require(cluster.databases[.auth])
            _ = try await TestPostgres.psql("UPDATE users SET email_verified_at = now() WHERE email = 'root@platform.example'", database: database)
            await cluster.stop(.auth)
            try await cluster.start(.auth)
            #expect(try await TestPostgres.psql("SELECT super_admin FROM users WHERE email = 'root@platform.example'", database: database) == "t")
            let login = try await HTTP.send(port, "POST", "/v1/auth/login", #"{"email":"root@platform.example","password":"\#(HTTP.password)"}"#)
            let token = try #require(try HTTP.object(login)["access_token"] as? String)
            for _ in 1...2 {
                let bypass = try HTTP.object(try await HTTP.send(port, "POST", check, question, token: token))
                #expect(bypass["allowed"] as? Bool == true)
                #expect(bypass["reason"] as? String == "superadmin_bypass")
            }
            let audited = try await cluster.events(
                Subjects.audit(tenant: TenantID(tenant)),
                as: Rampart_V1_AuditEvent.self,
                stream: Subjects.auditStream
            )
            #expect(audited.filter { $0.action == AuditAction.superAdminBypass.rawValue && $0.superAdmin }.count == 2)

            // Taken off the list: the flag goes at the next start.
            await cluster.stop(.auth)
            cluster.authSettings.superAdmins = []
            try await cluster.start(.auth)
            #expect(try await TestPostgres.psql("SELECT super_admin FROM users WHERE email = 'root@platform.example'", database: database) == "f")
        }
    }
}
