import AuthService
import Foundation
import NATSKit
import RampartModels
import RateLimitKit
import RateLimitService
import ServiceKit
import ServicesTestSupport
import TenantsService
import TestSupport
import Testing
import WebhooksService

@testable import GatewayService

/// The tenant, member, audit and admin routes of SPEC section 14, each behind the permission
/// its action needs (PERM-2), with every service they reach running for real.
@Suite("GW-4, PERM-2 section 14's tenant, member, audit and admin routes, each behind its permission", .serialized)
struct GatewayRoutesTests {
    @Test("members: listed by any member; invited, promoted and removed with members.manage, which a plain member lacks")
    func members() async throws {
        let world = try await GatewayWorld.start()
        try await stopping(world.cluster) {
            let members = "/v1/tenants/\(world.tenant)/members"

            let listed = try HTTP.object(try await world.send("GET", members, token: world.bobToken))
            let ids = Set(try #require(listed["members"] as? [[String: Any]]).compactMap { $0["user_id"] as? String })
            #expect(ids == [world.ada, world.bob])

            let invitation = #"{"email":"carol@example.org","role":"MEMBER_ROLE_MEMBER"}"#
            try HTTP.expectRefused(try await world.send("POST", members, invitation, token: world.bobToken), needs: "members.manage")
            try HTTP.expectRefused(
                try await world.send("PATCH", "\(members)/\(world.ada)", #"{"role":"MEMBER_ROLE_MEMBER"}"#, token: world.bobToken),
                needs: "members.manage"
            )
            try HTTP.expectRefused(try await world.send("DELETE", "\(members)/\(world.ada)", token: world.bobToken), needs: "members.manage")

            let invited = try await world.send("POST", members, invitation, token: world.adaToken)
            #expect(invited.status == 201, "\(invited.body)")
            // The token goes to Carol's mailbox alone, never back to the inviter.
            #expect(try HTTP.object(invited)["token"] == nil)
            #expect(try await world.cluster.invitationToken(to: "carol@example.org", in: TenantID(world.tenant)!).isEmpty == false)

            // Promoted: the change's revision, presented, lets Bob manage members at once.
            let promoted = try await world.send("PATCH", "\(members)/\(world.bob)", #"{"role":"MEMBER_ROLE_ADMIN"}"#, token: world.adaToken)
            #expect(promoted.status == 200, "\(promoted.body)")
            let revision = try #require(promoted.headers["rampart-consistency-token"])
            let byBob = try await world.send(
                "POST",
                members,
                #"{"email":"dan@example.org","role":"MEMBER_ROLE_MEMBER"}"#,
                token: world.bobToken,
                revision: revision
            )
            #expect(byBob.status == 201, "\(byBob.body)")

            // The path names the member; a body naming another is refused, as are malformed IDs.
            let other = UUID().uuidString.lowercased()
            #expect(
                try await world.send(
                    "PATCH",
                    "\(members)/\(world.bob)",
                    #"{"user_id":"\#(other)","role":"MEMBER_ROLE_MEMBER"}"#,
                    token: world.adaToken
                )
                .status == 400
            )
            for hostile in ["..%2F..%2Fadmin", "1%20OR%201=1", "not-a-uuid", String(repeating: "a", count: 300)] {
                #expect(try await world.send("DELETE", "\(members)/\(hostile)", token: world.adaToken).status == 400, "\(hostile)")
            }
            #expect(
                try await world.send("PATCH", "\(members)/\(world.bob)", #"{"role":"MEMBER_ROLE_ADMIN","extra":1}"#, token: world.adaToken).status
                    == 400
            )

            let removed = try await world.send("DELETE", "\(members)/\(world.bob)", token: world.adaToken)
            #expect(removed.status == 200, "\(removed.body)")
            let after = try HTTP.object(try await world.send("GET", members, token: world.adaToken))
            #expect(Set(try #require(after["members"] as? [[String: Any]]).compactMap { $0["user_id"] as? String }) == [world.ada])

            // Another tenant's credentials never reach these routes.
            #expect(try await world.send("GET", members, token: world.bobHomeToken).status == 403)
        }
    }

    @Test("the tenant: read by members, changed with settings.manage, deleted only with tenant.delete (owners)")
    func tenant() async throws {
        let world = try await GatewayWorld.start()
        try await stopping(world.cluster) {
            let path = "/v1/tenants/\(world.tenant)"
            #expect(try await world.send("GET", path, token: world.bobToken).status == 200)
            try HTTP.expectRefused(try await world.send("PATCH", path, #"{"name":"Bob's now"}"#, token: world.bobToken), needs: "settings.manage")
            try HTTP.expectRefused(
                try await world.send("PUT", "\(path)/ip-allowlist", #"{"cidrs":["10.0.0.0/8"]}"#, token: world.bobToken),
                needs: "settings.manage"
            )
            try HTTP.expectRefused(try await world.send("DELETE", path, token: world.bobToken), needs: "tenant.delete")

            let renamed = try await world.send("PATCH", path, #"{"name":"Analytical Engines"}"#, token: world.adaToken)
            #expect(renamed.status == 200, "\(renamed.body)")
            #expect(try HTTP.object(renamed)["name"] as? String == "Analytical Engines")
            #expect(try await world.send("PATCH", path, #"{"name":"x","owner":"me"}"#, token: world.adaToken).status == 400)

            // An admin manages settings but cannot delete the tenant.
            let promoted = try await world.send("PATCH", "\(path)/members/\(world.bob)", #"{"role":"MEMBER_ROLE_ADMIN"}"#, token: world.adaToken)
            let revision = try #require(promoted.headers["rampart-consistency-token"])
            #expect(try await world.send("PATCH", path, #"{"name":"Admin's"}"#, token: world.bobToken, revision: revision).status == 200)
            try HTTP.expectRefused(try await world.send("DELETE", path, token: world.bobToken, revision: revision), needs: "tenant.delete")

            let deleted = try await world.send("DELETE", path, token: world.adaToken)
            #expect(deleted.status == 202, "\(deleted.body)")
            #expect(try HTTP.object(deleted)["status"] as? String == "TENANT_STATUS_DELETING")
        }
    }

    @Test("audit events, export and verification need audit.read; filters are validated")
    func audit() async throws {
        let world = try await GatewayWorld.start()
        try await stopping(world.cluster) {
            let events = "/v1/tenants/\(world.tenant)/audit-events"
            try HTTP.expectRefused(try await world.send("GET", events, token: world.bobToken), needs: "audit.read")
            try HTTP.expectRefused(try await world.send("GET", "\(events)/export?format=csv", token: world.bobToken), needs: "audit.read")
            try HTTP.expectRefused(try await world.send("GET", "\(events)/verify", token: world.bobToken), needs: "audit.read")

            // Bob's joining is in the trail, once audit has stored it.
            let joined = try await eventually(within: .seconds(15)) {
                let page = try HTTP.object(try await world.send("GET", "\(events)?action=member.joined", token: world.adaToken))
                return (page["records"] as? [[String: Any]])?.isEmpty == false
            }
            #expect(joined)
            let page = try HTTP.object(try await world.send("GET", "\(events)?page_size=1", token: world.adaToken))
            #expect((page["records"] as? [[String: Any]])?.count == 1)
            #expect((page["next_cursor"] as? String)?.isEmpty == false)

            for hostile in [
                "page_size=0", "page_size=501", "page_size=x", "outcome=maybe", "ip=999.1.1.1", "from_ms=-1", "unknown=1", "action=a&action=b",
                "actor_id=\(String(repeating: "a", count: 300))", "target_id=%00",
            ] {
                let refused = try await world.send("GET", "\(events)?\(hostile)", token: world.adaToken)
                #expect(refused.status == 400, "\(hostile): \(refused.body)")
                #expect(refused.headers["content-type"] == "application/problem+json")
            }

            let csv = try await world.send("GET", "\(events)/export?format=csv", token: world.adaToken)
            #expect(csv.status == 200)
            #expect(csv.headers["content-type"] == "text/csv; charset=utf-8")
            #expect(csv.body.contains("member.joined"))
            let jsonl = try await world.send("GET", "\(events)/export", token: world.adaToken)
            #expect(jsonl.status == 200)
            #expect(jsonl.headers["content-type"] == "application/jsonl")
            #expect(jsonl.body.split(separator: "\n").allSatisfy { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) != nil })
            #expect(try await world.send("GET", "\(events)/export?format=xml", token: world.adaToken).status == 400)

            let verified = try HTTP.object(try await world.send("GET", "\(events)/verify", token: world.adaToken))
            #expect(verified["valid"] as? Bool == true)
        }
    }

    @Test("bans are listed and lifted by platform super-admins only")
    func bans() async throws {
        var settings = TenantsCluster.testAuthSettings
        settings.superAdmins = ["ada@lovelace.example"]
        let world = try await GatewayWorld.start(authSettings: settings)
        try await stopping(world.cluster) {
            // The flag needs a verified address, applied at auth's start.
            _ = try await TestPostgres.psql(
                "UPDATE users SET email_verified_at = now() WHERE email = 'ada@lovelace.example'",
                database: world.cluster.databases[.auth]!
            )
            await world.cluster.stop(.auth)
            try await world.cluster.start(.auth)
            let login = try await HTTP.send(world.port, "POST", "/v1/auth/login", #"{"email":"ada@lovelace.example","password":"\#(HTTP.password)"}"#)
            let root = try #require(try HTTP.object(login)["access_token"] as? String)

            let limiter = RateLimitClient(connection: world.cluster.client)
            for _ in 0..<10 { await limiter.reportFailure(.login, context: CallContext(clientIP: "198.51.100.7")) }

            #expect(try await world.send("GET", "/v1/admin/bans", token: world.bobToken).status == 403)
            #expect(try await world.send("DELETE", "/v1/admin/bans/198.51.100.7", token: world.bobToken).status == 403)
            let listed = try HTTP.object(try await world.send("GET", "/v1/admin/bans", token: root))
            #expect((listed["bans"] as? [[String: Any]])?.contains { $0["network"] as? String == "198.51.100.7/32" } == true)
            #expect(try await world.send("GET", "/v1/admin/bans/198.51.100.7", token: root).status == 200)
            #expect(try await world.send("GET", "/v1/admin/bans/not-an-ip", token: root).status == 400)

            let lifted = try await world.send("DELETE", "/v1/admin/bans/198.51.100.7", token: root)
            #expect(lifted.status == 200, "\(lifted.body)")
            #expect(try HTTP.object(lifted)["lifted"] as? Bool == true)
            #expect(try await world.send("GET", "/v1/admin/bans/198.51.100.7", token: root).status == 404)
            // Lifting again is idempotent: nothing left to lift.
            let again = try await world.send("DELETE", "/v1/admin/bans/198.51.100.7", token: root)
            #expect(again.status == 200)
            #expect(try HTTP.object(again)["lifted"] == nil)
            #expect(try await world.send("DELETE", "/v1/admin/bans/203.0.113.1", token: root).status == 404)
        }
    }

    @Test("a service that is not running: 503; one that does not answer in time: 504")
    func unavailableServices() async throws {
        let world = try await GatewayWorld.start(gateway: GatewaySettings(callTimeoutSeconds: 1))
        try await stopping(world.cluster) {
            let verify = "/v1/tenants/\(world.tenant)/audit-events/verify"
            await world.cluster.stop(.audit)
            let missing = try await world.send("GET", verify, token: world.adaToken)
            #expect(missing.status == 503, "\(missing.body)")
            #expect(missing.headers["content-type"] == "application/problem+json")

            // Something takes audit's requests and never answers.
            let silent = try world.cluster.client.subscribe(to: Subjects.Audit.verify.subject)
            try await world.cluster.client.flush()
            let slow = try await world.send("GET", verify, token: world.adaToken)
            #expect(slow.status == 504, "\(slow.body)")
            #expect(try HTTP.object(slow)["type"] as? String == "https://rampart.dev/problems/deadline_exceeded")
            _ = silent
        }
    }
}
