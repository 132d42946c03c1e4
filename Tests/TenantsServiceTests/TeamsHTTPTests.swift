import Foundation
import RampartModels
import ServiceKit
import ServicesTestSupport
import TenantsService
import TestSupport
import Testing

/// TEN-10 end to end through the gateway: a team forms by invitation, a person belongs to
/// several tenants and moves between them, with auth, tenants, permissions and rate-limit real.
@Suite("TEN-10 teams through the gateway: invite, join, several tenants, switch", .serialized)
struct TeamsHTTPTests {
    @Test("TEN-10 a new person joins by invitation with name and password, signs in, is listed, cannot raise their role; the token works once")
    func newPerson() async throws {
        let (cluster, port) = try await HTTP.teamsCluster()
        let (tenant, owner) = try await HTTP.signUp(port, cluster, email: "ada@lovelace.example", number: "732 829 320 00074")
        let (_, token) = try await HTTP.invite(port, cluster, tenant, owner, email: "grace@hopper.example")

        // The password policy applies to the invited address.
        let weak = try await HTTP.send(port, "POST", "/v1/invitations/accept", #"{"token":"\#(token)","name":"Grace","password":"grace"}"#)
        #expect(weak.status == 400, "\(weak.body)")
        #expect(try (HTTP.object(weak)["errors"] as? [String: Any])?["password"] != nil)
        let noName = try await HTTP.send(port, "POST", "/v1/invitations/accept", #"{"token":"\#(token)","name":" ","password":"\#(HTTP.password)"}"#)
        #expect(noName.status == 400)
        #expect(try await TestPostgres.psql("SELECT count(*) FROM users", database: cluster.databases[.auth]!) == "1")

        let joined = try await HTTP.send(
            port,
            "POST",
            "/v1/invitations/accept",
            #"{"token":"\#(token)","name":"Grace","password":"\#(HTTP.password)"}"#
        )
        #expect(joined.status == 200, "\(joined.body)")
        let body = try HTTP.object(joined)
        #expect(body["tenant_id"] as? String == tenant)
        let grace = try #require(body["user_id"] as? String)
        // No organization of her own: the only tenant is Ada's.
        #expect(try await TestPostgres.psql("SELECT count(*) FROM tenants", database: cluster.databases[.tenants]!) == "1")
        // The token reached her mailbox: her address is verified by the act.
        let verified = try await TestPostgres.psql(
            "SELECT email_verified_at IS NOT NULL FROM users WHERE id = '\(grace)'",
            database: cluster.databases[.auth]!
        )
        #expect(verified == "t")
        // AUTH-8: so she has nothing to verify; Alan, who registered and has not verified yet, may
        // ask again three times an hour.
        let graceLogin = try HTTP.object(try await HTTP.signIn(port, "grace@hopper.example"))
        let resendPath = "/v1/auth/email/verification/resend"
        #expect(try await HTTP.send(port, "POST", resendPath, token: try #require(graceLogin["access_token"] as? String)).status == 409)
        let (_, alan) = try await HTTP.signUp(port, cluster, email: "alan@turing.example", number: "443 061 841 00047", verified: false)
        let before = try await cluster.mails(from: .auth).filter { $0.template == "email_verification" }.count
        for _ in 0..<3 { #expect(try await HTTP.send(port, "POST", resendPath, token: alan).status == 202) }
        let limited = try await HTTP.send(port, "POST", resendPath, token: alan)
        #expect(limited.status == 429, "\(limited.body)")
        #expect(limited.headers["retry-after"] != nil)
        let after = try await cluster.mails(from: .auth).filter { $0.template == "email_verification" }.count
        #expect(after == before + 3)

        // A second use, by anyone, is the one 400 and writes nothing.
        let again = try await HTTP.send(
            port,
            "POST",
            "/v1/invitations/accept",
            #"{"token":"\#(token)","name":"Mallory","password":"\#(HTTP.password)x"}"#
        )
        #expect(again.status == 400, "\(again.body)")
        #expect(try HTTP.object(again)["type"] as? String == "https://rampart.dev/problems/invalid_argument")
        #expect(try await TestPostgres.psql("SELECT count(*) FROM users", database: cluster.databases[.auth]!) == "3", "Ada, Grace, Alan")
        for hostile in [#"{"token":"x","name":"A","password":"B"}"#, #"{"token":12}"#, #"{"token":"\#(token)","extra":1}"#, "[]"] {
            let refused = try await HTTP.send(port, "POST", "/v1/invitations/accept", hostile)
            #expect(refused.status == 400, "\(hostile): \(refused.body)")
        }

        let login = try await HTTP.signIn(port, "grace@hopper.example")
        #expect(login.status == 200, "\(login.body)")
        let graceToken = try #require(try HTTP.object(login)["access_token"] as? String)
        #expect(try HTTP.object(login)["tenant_id"] as? String == tenant)
        let raise = try await HTTP.send(
            port,
            "PATCH",
            "/v1/tenants/\(tenant)/members/\(grace)",
            #"{"role":"MEMBER_ROLE_OWNER"}"#,
            token: graceToken
        )
        #expect(raise.status == 403, "\(raise.body)")
        let members = try await HTTP.send(port, "GET", "/v1/tenants/\(tenant)/members", token: graceToken)
        #expect(members.status == 200)
        let listed = try #require(try HTTP.object(members)["members"] as? [[String: Any]])
        #expect(listed.compactMap { $0["email"] as? String } == ["ada@lovelace.example", "grace@hopper.example"])
        #expect(listed.last?["role"] as? String == "MEMBER_ROLE_MEMBER")
        await cluster.stop()
    }

    @Test("TEN-10 an existing user joins with the token alone, lists both tenants and switches between them; other tenants refused alike")
    func existingUser() async throws {
        let (cluster, port) = try await HTTP.teamsCluster()
        let (adaTenant, ada) = try await HTTP.signUp(port, cluster, email: "ada@lovelace.example", number: "732 829 320 00074")
        let (bobTenant, bob) = try await HTTP.signUp(port, cluster, email: "bob@babbage.example", number: "443 061 841 00047")
        let (invitation, token) = try await HTTP.invite(port, cluster, adaTenant, ada, email: "bob@babbage.example", role: "MEMBER_ROLE_ADMIN")

        // Signed in, only the token: a name or password is for a new account.
        let extra = try await HTTP.send(port, "POST", "/v1/invitations/accept", #"{"token":"\#(token)","password":"x"}"#, token: bob)
        #expect(extra.status == 400, "\(extra.body)")
        // Someone else, signed in, cannot take Bob's invitation.
        let (_, carol) = try await HTTP.signUp(port, cluster, email: "carol@shaw.example", number: "441 266 525 00019")
        let stolen = try await HTTP.send(port, "POST", "/v1/invitations/accept", #"{"token":"\#(token)"}"#, token: carol)
        #expect(stolen.status == 403, "\(stolen.body)")
        let joined = try await HTTP.send(port, "POST", "/v1/invitations/accept", #"{"token":"\#(token)"}"#, token: bob)
        #expect(joined.status == 200, "\(joined.body)")
        #expect(try HTTP.object(joined)["tenant_id"] as? String == adaTenant)
        _ = invitation

        let mine = try await HTTP.send(port, "GET", "/v1/auth/tenants", token: bob)
        #expect(mine.status == 200, "\(mine.body)")
        let memberships = try #require(try HTTP.object(mine)["memberships"] as? [[String: Any]])
        #expect(memberships.compactMap { $0["tenant_id"] as? String } == [bobTenant, adaTenant])
        #expect(memberships.compactMap { $0["role"] as? String } == ["MEMBER_ROLE_OWNER", "MEMBER_ROLE_ADMIN"])

        // Switch to Ada's tenant, without the password, and back.
        let switched = try await HTTP.send(port, "POST", "/v1/auth/token/switch", #"{"tenant_id":"\#(adaTenant)"}"#, token: bob)
        #expect(switched.status == 200, "\(switched.body)")
        let inAda = try #require(try HTTP.object(switched)["access_token"] as? String)
        let whoami = try HTTP.object(try await HTTP.send(port, "GET", "/v1/auth/whoami", token: inAda))
        #expect(whoami["tenant_id"] as? String == adaTenant)
        #expect(whoami["roles"] as? [String] == ["admin"])
        #expect(try await HTTP.send(port, "GET", "/v1/tenants/\(adaTenant)/members", token: inAda).status == 200)
        let back = try await HTTP.send(port, "POST", "/v1/auth/token/switch", #"{"tenant_id":"\#(bobTenant)"}"#, token: inAda)
        #expect(back.status == 200, "\(back.body)")
        #expect(try HTTP.object(back)["tenant_id"] as? String == bobTenant)
        // Sign-in straight to the joined tenant works too.
        #expect(try await HTTP.signIn(port, "bob@babbage.example", tenant: adaTenant).status == 200)

        // A tenant Bob does not belong to, one that does not exist, and one he is disabled in:
        // the same 403, revealing nothing.
        let carolTenant =
            try #require(
                try HTTP.object(try await HTTP.send(port, "GET", "/v1/auth/tenants", token: carol))["memberships"] as? [[String: Any]]
            ).first?["tenant_id"] as? String
        var refusals: [String] = []
        for target in [try #require(carolTenant), TenantID.random().hex] {
            let refused = try await HTTP.send(port, "POST", "/v1/auth/token/switch", #"{"tenant_id":"\#(target)"}"#, token: bob)
            #expect(refused.status == 403, "\(refused.body)")
            refusals.append(try HTTP.object(refused)["detail"] as? String ?? "")
        }
        let bobID = try #require(try HTTP.object(joined)["user_id"] as? String)
        let disabled = try await HTTP.send(
            port,
            "PATCH",
            "/v1/tenants/\(adaTenant)/members/\(bobID)",
            #"{"status":"MEMBER_STATUS_DISABLED"}"#,
            token: ada
        )
        #expect(disabled.status == 200, "\(disabled.body)")
        let whileDisabled = try await HTTP.send(port, "POST", "/v1/auth/token/switch", #"{"tenant_id":"\#(adaTenant)"}"#, token: bob)
        #expect(whileDisabled.status == 403, "\(whileDisabled.body)")
        refusals.append(try HTTP.object(whileDisabled)["detail"] as? String ?? "")
        #expect(Set(refusals).count == 1, "\(refusals)")
        for hostile in [#"{"tenant_id":"../../etc"}"#, #"{"tenant_id":"ZZ"}"#, #"{"tenant_id":["x"]}"#] {
            #expect(try await HTTP.send(port, "POST", "/v1/auth/token/switch", hostile, token: bob).status == 400)
        }
        await cluster.stop()
    }

    @Test("TEN-10 the switch applies the target's MFA requirement (MFA-7) and IP allowlist (TEN-11)")
    func switchPolicies() async throws {
        let (cluster, port) = try await HTTP.teamsCluster()
        let (adaTenant, ada) = try await HTTP.signUp(port, cluster, email: "ada@lovelace.example", number: "732 829 320 00074")
        let (_, bob) = try await HTTP.signUp(port, cluster, email: "bob@babbage.example", number: "443 061 841 00047")
        let (_, token) = try await HTTP.invite(port, cluster, adaTenant, ada, email: "bob@babbage.example")
        #expect(try await HTTP.send(port, "POST", "/v1/invitations/accept", #"{"token":"\#(token)"}"#, token: bob).status == 200)

        // MFA for everyone in Ada's tenant: Bob's password-only session gets the enrolment step.
        let policy = try await HTTP.send(port, "PATCH", "/v1/tenants/\(adaTenant)", #"{"mfa_requirement":"MFA_REQUIREMENT_EVERYONE"}"#, token: ada)
        #expect(policy.status == 200, "\(policy.body)")
        let mfa = try HTTP.object(try await HTTP.send(port, "POST", "/v1/auth/token/switch", #"{"tenant_id":"\#(adaTenant)"}"#, token: bob))
        #expect(mfa["mfa_required"] as? Bool == true && mfa["mfa_enrollment_required"] as? Bool == true, "\(mfa)")
        #expect(mfa["access_token"] == nil)
        let off = try await HTTP.send(port, "PATCH", "/v1/tenants/\(adaTenant)", #"{"mfa_requirement":"MFA_REQUIREMENT_NONE"}"#, token: ada)
        #expect(off.status == 200)

        // An allowlist that leaves out the test's 127.0.0.1 (set from an address inside it).
        var allowlist = Rampart_V1_IpAllowlist()
        allowlist.cidrs = ["203.0.113.0/24"]
        let adaPrincipal = try #require(try HTTP.object(try await HTTP.send(port, "GET", "/v1/auth/whoami", token: ada))["principal"] as? String)
        let _: Rampart_V1_IpAllowlist = try await cluster.call(
            Subjects.Tenants.setIPAllowlist,
            allowlist,
            tenant: TenantID(adaTenant)!,
            principal: adaPrincipal,
            ip: "203.0.113.10"
        )
        let outside = try await HTTP.send(port, "POST", "/v1/auth/token/switch", #"{"tenant_id":"\#(adaTenant)"}"#, token: bob)
        #expect(outside.status == 403, "\(outside.body)")
        #expect(try HTTP.object(outside)["detail"] as? String == "your address is not in this organization's IP allowlist")
        let denials = try await cluster.events(
            Subjects.audit(tenant: TenantID(adaTenant)!),
            as: Rampart_V1_AuditEvent.self,
            stream: Subjects.auditStream
        )
        .filter { $0.action == AuditAction.ipAllowlistDenied.rawValue }
        #expect(denials.count == 1)
        await cluster.stop()
    }

    @Test("TEN-10 the owner cancels and re-sends invitations over HTTP; dead tokens get the one 400; members cannot manage invitations")
    func cancelAndResend() async throws {
        let (cluster, port) = try await HTTP.teamsCluster()
        let (tenant, ada) = try await HTTP.signUp(port, cluster, email: "ada@lovelace.example", number: "732 829 320 00074")
        let (cancelled, cancelledToken) = try await HTTP.invite(port, cluster, tenant, ada, email: "gone@lovelace.example")
        #expect(try await HTTP.send(port, "DELETE", "/v1/tenants/\(tenant)/invitations/\(cancelled)", token: ada).status == 204)
        #expect(try await HTTP.send(port, "DELETE", "/v1/tenants/\(tenant)/invitations/\(cancelled)", token: ada).status == 404)
        #expect(try await HTTP.send(port, "DELETE", "/v1/tenants/\(tenant)/invitations/not-a-uuid", token: ada).status == 400)

        let (resent, first) = try await HTTP.invite(port, cluster, tenant, ada, email: "again@lovelace.example")
        let renewed = try await HTTP.send(port, "POST", "/v1/tenants/\(tenant)/invitations/\(resent)/resend", token: ada)
        #expect(renewed.status == 200, "\(renewed.body)")
        #expect(!renewed.body.contains("token"))
        let second = try await cluster.invitationToken(to: "again@lovelace.example", in: TenantID(tenant)!)

        let (_, expired) = try await HTTP.invite(port, cluster, tenant, ada, email: "late@lovelace.example")
        _ = try await TestPostgres.psql(
            "UPDATE \(TenantID(tenant)!.schemaName).invitations SET expires_at = now() - interval '1 second' WHERE email = 'late@lovelace.example'",
            database: cluster.databases[.tenants]!
        )
        var answers: Set<String> = []
        for dead in [cancelledToken, first, expired] {
            let refused = try await HTTP.send(
                port,
                "POST",
                "/v1/invitations/accept",
                #"{"token":"\#(dead)","name":"X","password":"\#(HTTP.password)"}"#
            )
            #expect(refused.status == 400, "\(refused.body)")
            answers.insert(try HTTP.object(refused)["detail"] as? String ?? "")
        }
        #expect(answers.count == 1)
        #expect(try await TestPostgres.psql("SELECT count(*) FROM users", database: cluster.databases[.auth]!) == "1")
        let joined = try await HTTP.send(
            port,
            "POST",
            "/v1/invitations/accept",
            #"{"token":"\#(second)","name":"Again","password":"\#(HTTP.password)"}"#
        )
        #expect(joined.status == 200, "\(joined.body)")

        // A plain member holds no members.manage.
        let memberToken = try #require(try HTTP.object(try await HTTP.signIn(port, "again@lovelace.example"))["access_token"] as? String)
        let (other, _) = try await HTTP.invite(port, cluster, tenant, ada, email: "other@lovelace.example")
        #expect(try await HTTP.send(port, "DELETE", "/v1/tenants/\(tenant)/invitations/\(other)", token: memberToken).status == 403)
        #expect(try await HTTP.send(port, "POST", "/v1/tenants/\(tenant)/invitations/\(other)/resend", token: memberToken).status == 403)
        await cluster.stop()
    }
}
