import Foundation
import RampartModels
import RateLimitKit
import RateLimitService
import ServiceKit
import ServicesTestSupport
import SodiumKit
import TenantsService
import TestSupport
import Testing

@testable import AuthService

/// TOTP enrolment through the gateway (MFA-1, MFA-2, MFA-3, MFA-5) with auth, tenants and the
/// gateway running for real; the codes come from this test's own RFC 6238 computation.
@Suite("MFA-1..3, MFA-5 TOTP enrolment end to end", .serialized)
struct MFAHTTPTests {
    @Test("enrol → nothing on yet → a wrong code refused → confirm → ten backup codes; secrets sealed, codes hashed, audited")
    func enrolment() async throws {
        let (cluster, port, tenant, access) = try await HTTP.signedIn()
        try await stopping(cluster) {
            let enroll = "/v1/auth/mfa/totp/enroll"
            let confirm = "/v1/auth/mfa/totp/confirm"
            #expect(try await HTTP.send(port, "POST", confirm, #"{"code":"123456"}"#, token: access).status == 409)

            let enrolled = try await HTTP.send(port, "POST", enroll, HTTP.passwordProof, token: access)
            #expect(enrolled.status == 200, "\(enrolled.body)")
            let first = try HTTP.object(enrolled)
            let firstSecret = try #require(first["secret"] as? String)
            // A second enrolment before confirming replaces the secret: the first one's codes are void.
            let started = try await HTTP.send(port, "POST", enroll, HTTP.passwordProof, token: access)
            #expect(started.status == 200, "\(started.body)")
            let body = try HTTP.object(started)
            let secret = try #require(body["secret"] as? String)
            #expect(secret != firstSecret)
            #expect(try #require(Base32.decode(secret)).count == 20)
            #expect(
                body["otpauth_uri"] as? String
                    == "otpauth://totp/Rampart:ada@lovelace.example?secret=\(secret)&issuer=Rampart&algorithm=SHA1&digits=6&period=30"
            )
            #expect((body["qr_svg"] as? String)?.hasPrefix("<svg") == true)

            for wrong in [try HTTP.totpCode(firstSecret), "000000", "12345", "abcdef", try HTTP.totpCode(secret, offset: 3)]
            where wrong != (try HTTP.totpCode(secret)) {
                let refused = try await HTTP.send(port, "POST", confirm, #"{"code":"\#(wrong)"}"#, token: access)
                #expect(refused.status == 400, "\(wrong): \(refused.body)")
            }
            let confirmed = try await HTTP.send(port, "POST", confirm, #"{"code":"\#(try HTTP.totpCode(secret))"}"#, token: access)
            #expect(confirmed.status == 200, "\(confirmed.body)")
            let backupCodes = try #require(try HTTP.object(confirmed)["backup_codes"] as? [String])
            #expect(backupCodes.count == 10 && Set(backupCodes).count == 10)
            #expect(backupCodes.allSatisfy { $0.range(of: #"^[0-9a-hjkmnp-tv-z]{5}-[0-9a-hjkmnp-tv-z]{5}$"#, options: .regularExpression) != nil })

            // On: enrolling again needs MFA off first, and the confirmation cannot be replayed.
            #expect(try await HTTP.send(port, "POST", enroll, HTTP.passwordProof, token: access).status == 409)
            #expect(try await HTTP.send(port, "POST", confirm, #"{"code":"\#(try HTTP.totpCode(secret))"}"#, token: access).status == 409)

            // MFA-5: the secret is sealed (its bytes appear nowhere in the row), codes are keyed hashes.
            let database = try #require(cluster.databases[.auth])
            let sealedHex = try await TestPostgres.psql("SELECT encode(secret_sealed, 'hex') FROM mfa_totp", database: database)
            let plainHex = try #require(Base32.decode(secret)).map { String(format: "%02x", $0) }.joined()
            #expect(!sealedHex.isEmpty && !sealedHex.contains(plainHex))
            #expect(
                try await TestPostgres.psql("SELECT count(*) FROM mfa_totp WHERE confirmed_at IS NOT NULL AND last_step > 0", database: database)
                    == "1"
            )
            let stored = try await TestPostgres.psql("SELECT string_agg(encode(code_hash, 'escape'), ',') FROM mfa_backup_codes", database: database)
            #expect(backupCodes.allSatisfy { !stored.contains($0) && !stored.contains($0.replacingOccurrences(of: "-", with: "")) })
            #expect(try await TestPostgres.psql("SELECT count(*) FROM mfa_backup_codes", database: database) == "10")

            let audited = try await cluster.events(
                Subjects.audit(tenant: TenantID(tenant)),
                as: Rampart_V1_AuditEvent.self,
                stream: Subjects.auditStream
            )
            #expect(audited.contains { $0.action == AuditAction.mfaEnrolled.rawValue })
            // Each wrong confirmation is on record as a failure.
            #expect(audited.filter { $0.action == AuditAction.mfaFailed.rawValue && $0.outcome == .failure }.count >= 4)
        }
    }

    func passwordStep(_ port: Int) async throws -> String {
        let login = try await HTTP.send(port, "POST", "/v1/auth/login", #"{"email":"ada@lovelace.example","password":"\#(HTTP.password)"}"#)
        #expect(login.status == 200, "\(login.body)")
        let body = try HTTP.object(login)
        #expect(body["mfa_required"] as? Bool == true)
        #expect(body["access_token"] == nil && body["refresh_token"] == nil)
        return try #require(body["mfa_token"] as? String)
    }

    func secondStep(_ port: Int, _ token: String, _ code: String) async throws -> HTTPTestResponse {
        try await HTTP.send(port, "POST", "/v1/auth/login/mfa", #"{"mfa_token":"\#(token)","code":"\#(code)"}"#)
    }

    @Test("MFA-4: sign-in needs the code; a code is never accepted twice; a backup code works once; the challenge is single use")
    func signIn() async throws {
        // A dozen sign-ins and wrong codes from 127.0.0.1 in a few seconds.
        let cluster = try await TenantsCluster.start(
            settings: TenantsSettings(sagaServices: [.tenants, .auth]),
            rateLimitSettings: TenantsCluster.liftedSignInLimits(),
            without: [.permissions, .audit, .webhooks]
        )
        try await cluster.start(.gateway)
        let port = await cluster.gatewayPort.wait()
        let (tenant, access) = try await HTTP.signUp(port, cluster, email: "ada@lovelace.example", number: "732 829 320 00074")
        try await stopping(cluster) {
            // Confirming spent its step: the next one signs in. Steps are fixed here, so a 30-second
            // boundary passing mid-test changes nothing.
            let (secret, backupCodes, base) = try await HTTP.enrolMFA(port, access)
            let totp = TOTP(secret: try #require(Base32.decode(secret)))
            let next = totp.code(atStep: base + 1)

            let challenge = try await passwordStep(port)
            #expect(try await secondStep(port, challenge, "000000").status == 401)
            let signedIn = try await secondStep(port, challenge, next)
            #expect(signedIn.status == 200, "\(signedIn.body)")
            let tokens = try HTTP.object(signedIn)
            let accessToken = try #require(tokens["access_token"] as? String)
            #expect(tokens["tenant_id"] as? String == tenant)
            let payload = try #require(Base64.decode(String(accessToken.split(separator: ".")[1]), variant: Base64.urlSafeNoPadding))
            let claims = try #require(try JSONSerialization.jsonObject(with: Data(payload)) as? [String: Any])
            #expect(claims["amr"] as? [String] == ["pwd", "otp", "mfa"])
            // A refreshed token says the same of its session.
            let refreshToken = try #require(tokens["refresh_token"] as? String)
            let refreshed = try HTTP.object(try await HTTP.send(port, "POST", "/v1/auth/token/refresh", #"{"refresh_token":"\#(refreshToken)"}"#))
            let refreshedToken = try #require(refreshed["access_token"] as? String)
            let refreshedPayload = try #require(Base64.decode(String(refreshedToken.split(separator: ".")[1]), variant: Base64.urlSafeNoPadding))
            #expect((try JSONSerialization.jsonObject(with: Data(refreshedPayload)) as? [String: Any])?["amr"] as? [String] == ["pwd", "otp", "mfa"])
            #expect(try await HTTP.send(port, "GET", "/v1/auth/whoami", token: accessToken).status == 200)
            // The challenge is spent, and the code is spent with a fresh challenge too.
            #expect(try await secondStep(port, challenge, next).status == 401)
            let replay = try await passwordStep(port)
            #expect(try await secondStep(port, replay, next).status == 401)
            #expect(try await secondStep(port, replay, totp.code(atStep: base)).status == 401)  // older than the last one accepted

            // A backup code, once.
            let backup = try await passwordStep(port)
            let typed = backupCodes[0].uppercased().replacingOccurrences(of: "-", with: " ")
            #expect(try await secondStep(port, backup, typed).status == 200)
            #expect(try await secondStep(port, try await passwordStep(port), backupCodes[0]).status == 401)
            let audited = try await cluster.events(
                Subjects.audit(tenant: TenantID(tenant)),
                as: Rampart_V1_AuditEvent.self,
                stream: Subjects.auditStream
            )
            #expect(audited.contains { $0.action == AuditAction.mfaBackupCodeUsed.rawValue && $0.reason == "9 backup codes left" })

            // Five wrong codes spend a challenge: the right one is refused after.
            let guessed = try await passwordStep(port)
            for wrong in ["111111", "222222", "333333", "444444", "555555"] { #expect(try await secondStep(port, guessed, wrong).status == 401) }
            #expect(try await secondStep(port, guessed, backupCodes[1]).status == 401)
            // Forged and malformed challenges.
            for forged in ["mfa_AAAA", "", "mfa_" + String(repeating: "A", count: 43), "' OR 1=1 --"] {
                #expect(try await secondStep(port, forged, backupCodes[1]).status == 401, "\(forged)")
            }
        }
    }

    @Test(
        "MFA-3: status shows the codes left; regenerating needs a current TOTP code and kills the old codes; turning MFA off needs a code or a backup code, never the password alone"
    )
    func manage() async throws {
        let cluster = try await TenantsCluster.start(
            settings: TenantsSettings(sagaServices: [.tenants, .auth]),
            rateLimitSettings: TenantsCluster.liftedSignInLimits(),
            without: [.permissions, .audit, .webhooks]
        )
        try await stopping(cluster) {
            try await cluster.start(.gateway)
            let port = await cluster.gatewayPort.wait()
            let (tenant, access) = try await HTTP.signUp(port, cluster, email: "ada@lovelace.example", number: "732 829 320 00074")
            #expect(try HTTP.object(try await HTTP.send(port, "GET", "/v1/auth/mfa", token: access))["enabled"] == nil)
            #expect(try await HTTP.send(port, "DELETE", "/v1/auth/mfa", #"{"code":"123456"}"#, token: access).status == 409)
            // The step whose code confirmed, whenever the 30 s window turns: that code is spent.
            let (secret, oldCodes, base) = try await HTTP.enrolMFA(port, access)
            let totp = TOTP(secret: try #require(Base32.decode(secret)))
            let status = try HTTP.object(try await HTTP.send(port, "GET", "/v1/auth/mfa", token: access))
            #expect(status["enabled"] as? Bool == true)
            #expect(status["backup_codes_remaining"] as? Int == 10)

            let regenerate = "/v1/auth/mfa/backup-codes/regenerate"
            for proof in [#"{"code":"000000"}"#, #"{"code":"\#(oldCodes[0])"}"#, #"{"code":"\#(totp.code(atStep: base))"}"#, "{}"] {
                #expect(try await HTTP.send(port, "POST", regenerate, proof, token: access).status == 403, "\(proof)")
            }
            let regenerated = try await HTTP.send(port, "POST", regenerate, #"{"code":"\#(totp.code(atStep: base + 1))"}"#, token: access)
            #expect(regenerated.status == 200, "\(regenerated.body)")
            let newCodes = try #require(try HTTP.object(regenerated)["backup_codes"] as? [String])
            #expect(newCodes.count == 10 && Set(newCodes).isDisjoint(with: oldCodes))
            // The old codes no longer sign in; a new one does.
            let challenge = try await passwordStep(port)
            #expect(try await secondStep(port, challenge, oldCodes[1]).status == 401)
            #expect(try await secondStep(port, challenge, newCodes[0]).status == 200)
            #expect(try HTTP.object(try await HTTP.send(port, "GET", "/v1/auth/mfa", token: access))["backup_codes_remaining"] as? Int == 9)

            // Off: not for the password (not a second factor), a spent code or a spent backup code;
            // for an unused backup code, and sign-in is one step again.
            let password = try await HTTP.send(port, "DELETE", "/v1/auth/mfa", #"{"password":"\#(HTTP.password)"}"#, token: access)
            #expect(password.status == 400 && HTTP.errors(password)["field"] == "password", "\(password.body)")
            #expect(try await HTTP.send(port, "DELETE", "/v1/auth/mfa", #"{"code":"\#(totp.code(atStep: base + 1))"}"#, token: access).status == 403)
            #expect(try await HTTP.send(port, "DELETE", "/v1/auth/mfa", #"{"code":"\#(newCodes[0])"}"#, token: access).status == 403)
            let disabled = try await HTTP.send(port, "DELETE", "/v1/auth/mfa", #"{"code":"\#(newCodes[1])"}"#, token: access)
            #expect(disabled.status == 200, "\(disabled.body)")
            let login = try HTTP.object(
                try await HTTP.send(port, "POST", "/v1/auth/login", #"{"email":"ada@lovelace.example","password":"\#(HTTP.password)"}"#)
            )
            #expect(login["access_token"] as? String != nil && login["mfa_required"] == nil)
            #expect(try await HTTP.send(port, "POST", "/v1/auth/mfa/totp/enroll", HTTP.passwordProof, token: access).status == 200)
            let audited = try await cluster.events(
                Subjects.audit(tenant: TenantID(tenant)),
                as: Rampart_V1_AuditEvent.self,
                stream: Subjects.auditStream
            )
            let failures = Set(audited.filter { $0.action == AuditAction.mfaFailed.rawValue && $0.outcome == .failure }.map(\.reason))
            #expect(failures == ["a wrong code to regenerate the backup codes", "a wrong code to turn MFA off"])
        }
    }

    @Test(
        "MFA-6: an owner or admin resets the MFA of a member whose home tenant is theirs, audited; not a plain member, not an admin an owner's, not another home's"
    )
    func adminReset() async throws {
        let world = try await GatewayWorld.start()
        try await stopping(world.cluster) {
            let members = "/v1/tenants/\(world.tenant)/members"
            let caraID = try await HTTP.newPerson(world, email: "cara@lovelace.example", invitedWith: world.adaToken)
            let caraLogin = try await HTTP.signIn(world.port, "cara@lovelace.example")
            let cara = (id: caraID, token: try #require(try HTTP.object(caraLogin)["access_token"] as? String, "\(caraLogin.body)"))
            _ = try await HTTP.enrolMFA(world.port, cara.token)
            _ = try await HTTP.enrolMFA(world.port, world.bobToken)
            _ = try await HTTP.enrolMFA(world.port, world.adaToken)

            // Bob's home is his own tenant: his MFA, which guards that tenant too, is not Ada's to reset.
            let elsewhere = try await world.send("DELETE", "\(members)/\(world.bob)/mfa", token: world.adaToken)
            #expect(elsewhere.status == 403, "\(elsewhere.body)")
            #expect((try HTTP.object(elsewhere)["errors"] as? [String: Any])?["reason"] as? String == "not_home_tenant")
            #expect(try HTTP.object(try await world.send("GET", "/v1/auth/mfa", token: world.bobToken))["enabled"] as? Bool == true)

            // A plain member has no members.manage; an admin cannot touch an owner's MFA.
            #expect(try await world.send("DELETE", "\(members)/\(world.ada)/mfa", token: world.bobToken).status == 403)
            let promoted = try await world.send("PATCH", "\(members)/\(world.bob)", #"{"role":"MEMBER_ROLE_ADMIN"}"#, token: world.adaToken)
            let revision = try #require(promoted.headers["rampart-consistency-token"])
            let byAdmin = try await world.send("DELETE", "\(members)/\(world.ada)/mfa", token: world.bobToken, revision: revision)
            #expect(byAdmin.status == 403, "\(byAdmin.body)")
            // Nor another tenant's member, nor a malformed ID.
            #expect(try await world.send("DELETE", "\(members)/\(UUID().uuidString.lowercased())/mfa", token: world.adaToken).status == 404)
            #expect(try await world.send("DELETE", "\(members)/not-a-user/mfa", token: world.adaToken).status == 400)

            let reset = try await world.send("DELETE", "\(members)/\(cara.id)/mfa", token: world.adaToken)
            #expect(reset.status == 200, "\(reset.body)")
            #expect(try HTTP.object(reset)["reset"] as? Bool == true)
            #expect(try HTTP.object(try await world.send("GET", "/v1/auth/mfa", token: cara.token))["enabled"] == nil)
            #expect(try HTTP.object(try await world.send("GET", "/v1/auth/mfa", token: world.adaToken))["enabled"] as? Bool == true)
            // Again: nothing left to reset.
            #expect(try HTTP.object(try await world.send("DELETE", "\(members)/\(cara.id)/mfa", token: world.adaToken))["reset"] == nil)
            let audited = try await world.cluster.events(
                Subjects.audit(tenant: TenantID(world.tenant)),
                as: Rampart_V1_AuditEvent.self,
                stream: Subjects.auditStream
            )
            #expect(audited.filter { $0.action == AuditAction.mfaReset.rawValue && $0.target.id == cara.id && $0.actor.id == world.ada }.count == 1)
        }
    }

    @Test(
        "MFA-7: required of admins, then of everyone: members without MFA enrol during sign-in, sessions without it end at refresh, an admin reset brings enrolment back"
    )
    func policy() async throws {
        let world = try await GatewayWorld.start(rateLimitSettings: TenantsCluster.liftedSignInLimits())
        try await stopping(world.cluster) {
            let tenantPath = "/v1/tenants/\(world.tenant)"
            func require(_ requirement: String, token: String) async throws -> HTTPTestResponse {
                try await world.send("PATCH", tenantPath, #"{"mfa_requirement":"\#(requirement)"}"#, token: token)
            }
            func login(_ email: String) async throws -> [String: Any] {
                let body = #"{"email":"\#(email)","password":"\#(HTTP.password)","tenant_id":"\#(world.tenant)"}"#
                let answer = try await HTTP.send(world.port, "POST", "/v1/auth/login", body)
                #expect(answer.status == 200, "\(answer.body)")
                return try HTTP.object(answer)
            }
            func enrolAtSignIn(_ token: String) async throws -> HTTPTestResponse {
                try await HTTP.send(world.port, "POST", "/v1/auth/login/mfa/enroll", #"{"mfa_token":"\#(token)"}"#)
            }
            let ada = "ada@lovelace.example"
            let bob = "bob@babbage.example"

            // Setting it takes settings.manage, which a plain member lacks; unknown values are refused.
            #expect(try await require("MFA_REQUIREMENT_ADMINS", token: world.bobToken).status == 403)
            #expect(try await require("SOMETIMES", token: world.adaToken).status == 400)
            let set = try await require("MFA_REQUIREMENT_ADMINS", token: world.adaToken)
            #expect(set.status == 200, "\(set.body)")
            #expect((try HTTP.object(set)["policies"] as? [String: Any])?["mfa_requirement"] as? String == "MFA_REQUIREMENT_ADMINS")

            // Bob, a plain member, signs in as before; Ada, the owner, has to enrol first.
            let bobSession = try await login(bob)
            let bobRefresh = try #require(bobSession["refresh_token"] as? String)
            let stopped = try await login(ada)
            #expect(stopped["mfa_required"] as? Bool == true && stopped["mfa_enrollment_required"] as? Bool == true)
            #expect(stopped["access_token"] == nil && stopped["refresh_token"] == nil)
            let enrolment = try #require(stopped["mfa_token"] as? String)
            // The code step before enrolling says what to do; forged tokens and hostile bodies get a 4xx.
            #expect(try await secondStep(world.port, enrolment, "123456").status == 409)
            for forged in ["mfa_AAAA", "", "' OR 1=1 --", "mfa_" + String(repeating: "A", count: 43)] {
                #expect(try await enrolAtSignIn(forged).status == 401, "\(forged)")
            }
            #expect(try await HTTP.send(world.port, "POST", "/v1/auth/login/mfa/enroll", #"{"mfa_token":1}"#).status == 400)
            #expect(try await HTTP.send(world.port, "POST", "/v1/auth/login/mfa/enroll", #"{"mfa_token":"x","user_id":"y"}"#).status == 400)

            let started = try await enrolAtSignIn(enrolment)
            #expect(started.status == 200, "\(started.body)")
            let secret = try #require(try HTTP.object(started)["secret"] as? String)
            #expect((try HTTP.object(started)["otpauth_uri"] as? String)?.contains("Rampart:\(ada)?") == true)
            #expect(try await secondStep(world.port, enrolment, "000000").status == 401)
            let enrolled = try await secondStep(world.port, enrolment, try HTTP.totpCode(secret))
            #expect(enrolled.status == 200, "\(enrolled.body)")
            let tokens = try HTTP.object(enrolled)
            let access = try #require(tokens["access_token"] as? String)
            let payload = try #require(Base64.decode(String(access.split(separator: ".")[1]), variant: Base64.urlSafeNoPadding))
            #expect((try JSONSerialization.jsonObject(with: Data(payload)) as? [String: Any])?["amr"] as? [String] == ["pwd", "otp", "mfa"])
            #expect((tokens["backup_codes"] as? [String])?.count == 10)
            #expect(try HTTP.object(try await world.send("GET", "/v1/auth/mfa", token: access))["backup_codes_remaining"] as? Int == 10)
            // The token is spent; Ada's next sign-in is an ordinary MFA one, whose token enrols nothing.
            #expect(try await enrolAtSignIn(enrolment).status == 401)
            let next = try await login(ada)
            #expect(next["mfa_required"] as? Bool == true && next["mfa_enrollment_required"] == nil)
            #expect(try await enrolAtSignIn(try #require(next["mfa_token"] as? String)).status == 401)

            // Everyone: Bob's session, opened without MFA, is not refreshed (and ends); he enrols next.
            #expect(try await require("MFA_REQUIREMENT_EVERYONE", token: access).status == 200)
            let refused = try await HTTP.send(world.port, "POST", "/v1/auth/token/refresh", #"{"refresh_token":"\#(bobRefresh)"}"#)
            #expect(refused.status == 401, "\(refused.body)")
            #expect((try HTTP.object(refused)["errors"] as? [String: String])?["reason"] == "mfa_required")
            let bobAccess = try #require(bobSession["access_token"] as? String)
            #expect(try await eventually { try await HTTP.send(world.port, "GET", "/v1/auth/whoami", token: bobAccess).status == 401 })
            let bobStopped = try await login(bob)
            #expect(bobStopped["mfa_enrollment_required"] as? Bool == true)
            let bobEnrolment = try #require(bobStopped["mfa_token"] as? String)
            let bobSecret = try #require(try HTTP.object(try await enrolAtSignIn(bobEnrolment))["secret"] as? String)
            #expect(try await secondStep(world.port, bobEnrolment, try HTTP.totpCode(bobSecret)).status == 200)

            // MFA-6 then MFA-7: after an admin's reset Cara (whose home tenant this is) enrols again
            // at her next sign-in.
            let cara = "cara@lovelace.example"
            let caraUser = try await HTTP.newPerson(world, email: cara, invitedWith: access)
            let caraEnrolment = try #require(try await login(cara)["mfa_token"] as? String)
            let caraSecret = try #require(try HTTP.object(try await enrolAtSignIn(caraEnrolment))["secret"] as? String)
            #expect(try await secondStep(world.port, caraEnrolment, try HTTP.totpCode(caraSecret)).status == 200)
            #expect(try await world.send("DELETE", "\(tenantPath)/members/\(caraUser)/mfa", token: access).status == 200)
            #expect(try await login(cara)["mfa_enrollment_required"] as? Bool == true)
            // With the policy off, she signs in with her password alone.
            #expect(try await require("MFA_REQUIREMENT_NONE", token: access).status == 200)
            #expect(try await login(cara)["access_token"] as? String != nil)

            let audited = try await world.cluster.events(
                Subjects.audit(tenant: TenantID(world.tenant)),
                as: Rampart_V1_AuditEvent.self,
                stream: Subjects.auditStream
            )
            #expect(
                audited.filter { $0.action == AuditAction.mfaEnrolled.rawValue }.map(\.target.id).sorted()
                    == [world.ada, world.bob, caraUser].sorted()
            )
            #expect(
                audited.filter { $0.action == AuditAction.tenantPolicyChanged.rawValue }.map { $0.details["mfa_requirement"] } == [
                    "admins", "everyone", "none",
                ]
            )
        }
    }

    /// A cluster with the shipped sign-in limits and the gateway believing X-Forwarded-For from
    /// 127.0.0.1, so one test can be many addresses; Ada signed up with MFA on.
    func guessingTarget() async throws -> (TenantsCluster, Int, wrong: String) {
        let cluster = try await TenantsCluster.start(
            settings: TenantsSettings(sagaServices: [.tenants, .auth]),
            without: [.permissions, .audit, .webhooks]
        )
        cluster.gatewaySettings.trustedProxies = [IPNetwork(cidr: "127.0.0.1/32")!]
        try await cluster.start(.gateway)
        let port = await cluster.gatewayPort.wait()
        let (_, access) = try await HTTP.signUp(port, cluster, email: "ada@lovelace.example", number: "732 829 320 00074")
        let (secret, _, _) = try await HTTP.enrolMFA(port, access)
        // A code no step in reach accepts, so every guess is a miss.
        let totp = TOTP(secret: try #require(Base32.decode(secret)))
        let now = TOTP.step(at: WallClock.milliseconds() / 1000)
        let live = Set((now - 2...now + 2).map { totp.code(atStep: $0) })
        return (cluster, port, try #require(["000000", "111111", "222222"].first { !live.contains($0) }))
    }

    /// Guesses the second step evaluated (answered "the code is not right") from `address`,
    /// through as many challenges as the password step grants, until refused.
    func guesses(_ port: Int, from address: String, wrong: String, maximum: Int = 100) async throws -> Int {
        let headers = ["Content-Type": "application/json", "X-Forwarded-For": address]
        var evaluated = 0
        while evaluated < maximum {
            let login = try await httpRequest(
                port: port,
                "POST",
                "/v1/auth/login",
                headers: headers,
                body: Array(#"{"email":"ada@lovelace.example","password":"\#(HTTP.password)"}"#.utf8)
            )
            guard login.status == 200, let token = try HTTP.object(login)["mfa_token"] as? String else { return evaluated }
            var refused = false
            for _ in 0..<10 {
                let guess = try await httpRequest(
                    port: port,
                    "POST",
                    "/v1/auth/login/mfa",
                    headers: headers,
                    body: Array(#"{"mfa_token":"\#(token)","code":"\#(wrong)"}"#.utf8)
                )
                guard guess.status == 401, guess.body.contains("the code is not right") else {
                    refused = guess.status == 429
                    break
                }
                evaluated += 1
            }
            if refused { return evaluated }
        }
        return evaluated
    }

    @Test("brute force: one address gets a handful of guesses before 429 and a ban; many addresses share the account's 5 challenges in 15 minutes")
    func bruteForce() async throws {
        let (cluster, port, wrong) = try await guessingTarget()
        try await stopping(cluster) {
            // One address: the login limit (5 a minute, password and code steps together), then
            // fail2ban's ban after 10 failures; nothing more gets through.
            let alone = try await guesses(port, from: "198.51.100.1", wrong: wrong)
            #expect(alone >= 1 && alone <= 5, "\(alone)")
            #expect(try await guesses(port, from: "198.51.100.1", wrong: wrong) == 0)
            // Many addresses: the account's limit grants 5 password steps in 15 minutes (one spent
            // signing up, some above), each challenge 5 codes: at most 25 guesses.
            var spread = 0
            for host in 2...60 { spread += try await guesses(port, from: "203.0.113.\(host)", wrong: wrong, maximum: 30) }
            #expect(alone + spread <= 25, "\(alone) + \(spread)")
        }
    }

    @Test("an API key cannot enrol; unsigned requests and hostile codes get a precise 4xx")
    func refused() async throws {
        let (cluster, port, tenant, access) = try await HTTP.signedIn()
        try await stopping(cluster) {
            let (key, _) = try await HTTP.createAPIKey(port, tenant, access, #"{"name":"k","scopes":["boards:read"]}"#)
            #expect(try await HTTP.send(port, "POST", "/v1/auth/mfa/totp/enroll", token: key).status == 403)
            #expect(try await HTTP.send(port, "POST", "/v1/auth/mfa/totp/enroll").status == 401)
            _ = try await HTTP.send(port, "POST", "/v1/auth/mfa/totp/enroll", HTTP.passwordProof, token: access)
            for hostile in [#"{"code":"1234567"}"#, #"{"code":"12\u0000456"}"#, #"{"code":123456}"#, #"{"code":"123456","extra":1}"#] {
                #expect(try await HTTP.send(port, "POST", "/v1/auth/mfa/totp/confirm", hostile, token: access).status == 400, "\(hostile)")
            }
        }
    }

    @Test("backup codes: Crockford base32, and typed codes read the way people type them")
    func backupCodes() {
        let codes = (0..<1000).map { _ in BackupCode.new() }
        #expect(Set(codes).count == 1000)
        #expect(BackupCode.normalized("AbCdE-0O1IL") == "abcde00111")
        #expect(BackupCode.normalized(" k7m2p - 9xq3r ") == "k7m2p9xq3r")
    }
}
