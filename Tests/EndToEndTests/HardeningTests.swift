import AuthService
import Foundation
import GatewayService
import RampartModels
import ServiceKit
import ServicesTestSupport
import SodiumKit
import TestSupport
import Testing
import TokenKit

/// Issue 26, the security review's findings, each attacked through the gateway as the review
/// describes it. (The SSRF ranges it added are in WebhookGuardTests.)
@Suite("Security review: each finding attacked through the gateway", .serialized)
struct HardeningTests {
    @Test("an owner holding only a session cannot drop their own MFA with the admin reset; DELETE /v1/auth/mfa's proof stays the way")
    func ownMFAReset() async throws {
        let world = try await GatewayWorld.start()
        try await stopping(world.cluster) {
            _ = try await HTTP.enrolMFA(world.port, world.adaToken)
            let own = try await world.send("DELETE", "/v1/tenants/\(world.tenant)/members/\(world.ada)/mfa", token: world.adaToken)
            #expect(own.status == 403, "\(own.body)")
            #expect((try HTTP.object(own)["errors"] as? [String: Any])?["reason"] as? String == "own_account")
            #expect(try HTTP.object(try await world.send("GET", "/v1/auth/mfa", token: world.adaToken))["enabled"] as? Bool == true)
        }
    }

    @Test("sso_enforced cannot be set while no SSO connection exists: a 400 naming it, nothing stored")
    func ssoEnforcedRefused() async throws {
        let world = try await GatewayWorld.start()
        try await stopping(world.cluster) {
            let path = "/v1/tenants/\(world.tenant)"
            let refused = try await world.send("PATCH", path, #"{"sso_enforced":true,"name":"Renamed"}"#, token: world.adaToken)
            #expect(refused.status == 400, "\(refused.body)")
            #expect((try HTTP.object(refused)["errors"] as? [String: Any])?["field"] as? String == "sso_enforced")
            let tenant = try HTTP.object(try await world.send("GET", path, token: world.adaToken))
            #expect((tenant["policies"] as? [String: Any])?["sso_enforced"] == nil)
            #expect(tenant["name"] as? String != "Renamed", "nothing of the request written")
            #expect(try await world.send("PATCH", path, #"{"sso_enforced":false}"#, token: world.adaToken).status == 200)
        }
    }

    @Test("a reset link dies when another reset is used or the password is changed")
    func resetLinksSpent() async throws {
        // Four reset requests and sign-ins from 127.0.0.1 within seconds.
        let world = try await GatewayWorld.start(rateLimitSettings: TenantsCluster.liftedSignInLimits())
        try await stopping(world.cluster) {
            func requestReset() async throws -> String {
                try await world.cluster.resetMail(to: "ada@lovelace.example") { () async throws in
                    #expect(
                        try await HTTP.send(world.port, "POST", "/v1/auth/password/reset/request", #"{"email":"ada@lovelace.example"}"#).status == 200
                    )
                }.token
            }
            func confirm(_ token: String, _ password: String) async throws -> Int {
                try await HTTP.send(world.port, "POST", "/v1/auth/password/reset/confirm", #"{"token":"\#(token)","new_password":"\#(password)"}"#)
                    .status
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

    /// A sign-up as a client at `ip` (the gateway trusts 127.0.0.1 as its proxy in these tests).
    static func register(
        _ port: Int,
        email: String,
        country: String = "FR",
        number: String = "552 100 554 00013",
        from ip: String
    ) async throws
        -> HTTPTestResponse
    {
        let body =
            #"{"email":"\#(email)","password":"\#(HTTP.password)","name":"Eve","organization":{"name":"Probe","country":"\#(country)","registration_number":"\#(number)"}}"#
        return try await httpRequest(
            port: port,
            "POST",
            "/v1/auth/register",
            headers: ["Content-Type": "application/json", "X-Forwarded-For": ip],
            body: Array(body.utf8)
        )
    }

    static var behindProxy: GatewaySettings {
        var settings = GatewaySettings()
        settings.trustedProxies = [IPNetwork(cidr: "127.0.0.1/32")!]
        return settings
    }

    @Test("sign-up tells whether an address has an account no more often than the per-IP limits allow, and mails its owner")
    func registrationOracle() async throws {
        let world = try await GatewayWorld.start(gateway: Self.behindProxy)
        try await stopping(world.cluster) {
            // The review's probe: a taken and an unknown address with an organization that cannot
            // register. Both fail on the organization, alike.
            let taken = try await Self.register(world.port, email: "ada@lovelace.example", country: "ZZ", from: "198.51.100.1")
            let unknown = try await Self.register(world.port, email: "nobody@unknown.example", country: "ZZ", from: "198.51.100.1")
            #expect(taken.status == 400 && unknown.status == 400, "\(taken.body) \(unknown.body)")
            #expect(try HTTP.object(taken)["errors"] as? [String: String] == HTTP.object(unknown)["errors"] as? [String: String])

            // With an organization that can: the address is looked at only within TEN-6's 3 an hour.
            for _ in 0..<3 {
                let answer = try await Self.register(world.port, email: "ada@lovelace.example", from: "198.51.100.2")
                #expect(answer.status == 409, "\(answer.body)")
            }
            for email in ["ada@lovelace.example", "nobody@unknown.example"] {
                let answer = try await Self.register(world.port, email: email, from: "198.51.100.2")
                #expect(answer.status == 429, "\(email): \(answer.body)")
            }
            // Each attempt on her address told Ada, from where.
            let notices = try await world.cluster.mails(from: .auth).filter { $0.template == "notice_registration_attempted" }
            #expect(notices.count == 3)
            #expect(notices.allSatisfy { $0.to == "ada@lovelace.example" && $0.values["ip"] == "198.51.100.2" })
            #expect(
                try await HTTP.send(world.port, "POST", "/v1/auth/login", #"{"email":"nobody@unknown.example","password":"\#(HTTP.password)"}"#)
                    .status
                    == 401
            )
        }
    }

    @Test("a burst of sign-ups from many addresses is refused for a moment (503, Retry-After) rather than queued before sign-ins")
    func signUpBurst() async throws {
        // bcrypt 11 (about 0.15 s a hash) on 2 threads: sign-ups may hold one, sign-ins keep one.
        let world = try await GatewayWorld.start(
            authSettings: AuthSettings(passwordAlgorithm: .bcrypt(cost: 11), hashThreads: 2),
            rateLimitSettings: TenantsCluster.liftedRegistrationLimits(),
            gateway: Self.behindProxy
        )
        try await stopping(world.cluster) {
            let signIn = #"{"email":"ada@lovelace.example","password":"\#(HTTP.password)"}"#
            let clock = ContinuousClock()
            let start = clock.now
            #expect(try await HTTP.send(world.port, "POST", "/v1/auth/login", signIn).status == 200)
            let quiet = clock.now - start

            let burst = 12
            async let signUps = withThrowingTaskGroup(of: HTTPTestResponse.self) { group in
                for index in 0..<burst {
                    group.addTask { try await Self.register(world.port, email: "eve\(index)@org\(index).example", from: "203.0.113.\(index + 1)") }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            async let signIns = withThrowingTaskGroup(of: (Int, Duration).self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        let start = clock.now
                        let status = try await HTTP.send(world.port, "POST", "/v1/auth/login", signIn).status
                        return (status, clock.now - start)
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let (registered, signedIn) = try await (signUps, signIns)
            let refused = registered.filter { $0.status == 503 }
            #expect(registered.allSatisfy { [201, 503].contains($0.status) }, "\(registered.map(\.body))")
            #expect(!refused.isEmpty, "every one of \(burst) simultaneous sign-ups was hashed")
            #expect(refused.allSatisfy { $0.headers["retry-after"] != nil })
            #expect(signedIn.allSatisfy { $0.0 == 200 })
            // Not a timing test (make bench measures sign-ins): a loose bound, against a sign-in stuck behind the burst.
            let slowest = signedIn.map(\.1).max() ?? .zero
            #expect(slowest < quiet * 4 + .seconds(1), "sign-in took \(slowest) in the burst, \(quiet) alone")
        }
    }

    @Test("outside the tenant's IP allowlist a sign-in answers as a wrong password does; the MFA step and refresh are refused and spend nothing")
    func allowlistAtSignIn() async throws {
        let world = try await GatewayWorld.start(rateLimitSettings: TenantsCluster.liftedSignInLimits(), gateway: Self.behindProxy)
        try await stopping(world.cluster) {
            let (inside, outside) = ("198.51.100.5", "203.0.113.9")
            func send(_ path: String, _ json: String, from ip: String) async throws -> HTTPTestResponse {
                try await Self.send(world.port, "POST", path, json, from: ip)
            }
            func signIn(_ password: String, from ip: String) async throws -> HTTPTestResponse {
                try await send("/v1/auth/login", #"{"email":"ada@lovelace.example","password":"\#(password)"}"#, from: ip)
            }
            // A session from before the list, MFA on, then the list (set from inside it).
            let earlier = try HTTP.object(try await signIn(HTTP.password, from: inside))
            let refresh = try #require(earlier["refresh_token"] as? String)
            let (_, backupCodes, _) = try await HTTP.enrolMFA(world.port, world.adaToken)
            let listed = try await httpRequest(
                port: world.port,
                "PUT",
                "/v1/tenants/\(world.tenant)/ip-allowlist",
                headers: ["Content-Type": "application/json", "Authorization": "Bearer \(world.adaToken)", "X-Forwarded-For": inside],
                body: Array(#"{"cidrs":["198.51.100.0/24"]}"#.utf8)
            )
            #expect(listed.status == 200, "\(listed.body)")

            let right = try await signIn(HTTP.password, from: outside)
            let wrong = try await signIn("Not-the-passw0rd!", from: outside)
            #expect(right.status == 401 && wrong.status == 401, "\(right.body)")
            #expect(try HTTP.object(right)["detail"] as? String == HTTP.object(wrong)["detail"] as? String)

            // The refresh token: refused from outside, and still good from inside (nothing spent).
            let refreshBody = #"{"refresh_token":"\#(refresh)"}"#
            let refusedRefresh = try await send("/v1/auth/token/refresh", refreshBody, from: outside)
            #expect(refusedRefresh.status == 403, "\(refusedRefresh.body)")
            let refreshed = try await send("/v1/auth/token/refresh", refreshBody, from: inside)
            #expect(refreshed.status == 200, "\(refreshed.body)")

            // The password step from inside, the second step from outside.
            let challenge = try #require(try HTTP.object(try await signIn(HTTP.password, from: inside))["mfa_token"] as? String)
            #expect(try HTTP.object(try await signIn(HTTP.password, from: outside))["mfa_token"] == nil, "no challenge from outside")
            let secondStep = #"{"mfa_token":"\#(challenge)","code":"\#(backupCodes[0])"}"#
            let refusedStep = try await send("/v1/auth/login/mfa", secondStep, from: outside)
            #expect(refusedStep.status == 403, "\(refusedStep.body)")

            let denials = try await world.cluster.events(
                Subjects.audit(tenant: TenantID(world.tenant)!),
                as: Rampart_V1_AuditEvent.self,
                stream: Subjects.auditStream
            )
            .filter { $0.action == AuditAction.ipAllowlistDenied.rawValue }
            #expect(denials.count == 4, "the right password from outside, twice; the refresh; the second step")
        }
    }

    /// A request as if from `ip`, through a gateway that trusts 127.0.0.1 as its proxy.
    static func send(
        _ port: Int,
        _ method: String,
        _ path: String,
        _ json: String? = nil,
        token: String? = nil,
        from ip: String
    ) async throws -> HTTPTestResponse {
        var headers = ["X-Forwarded-For": ip]
        if json != nil { headers["Content-Type"] = "application/json" }
        if let token { headers["Authorization"] = "Bearer \(token)" }
        return try await httpRequest(port: port, method, path, headers: headers, body: Array((json ?? "").utf8))
    }

    /// An access token's claims, unverified (the test reads what the gateway was given).
    static func claims(_ token: String) throws -> [String: Any] {
        let payload = try #require(token.split(separator: ".").dropFirst().first.map(String.init))
        let bytes = try #require(Base64.decode(payload, variant: Base64.urlSafeNoPadding))
        return try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
    }

    @Test("an admin's MFA reset and tenant deletion need a recent proof: a stale session gets 401 step_up_required, a step-up opens them for minutes")
    func stepUp() async throws {
        var gateway = GatewaySettings()
        gateway.stepUpSeconds = 2
        let world = try await GatewayWorld.start(rateLimitSettings: TenantsCluster.liftedSignInLimits(), gateway: gateway)
        try await stopping(world.cluster) {
            let caraID = try await HTTP.newPerson(world, email: "cara@lovelace.example", invitedWith: world.adaToken)
            let caraLogin = try await HTTP.signIn(world.port, "cara@lovelace.example")
            _ = try await HTTP.enrolMFA(world.port, try #require(try HTTP.object(caraLogin)["access_token"] as? String))
            let (adaSecret, adaBackupCodes, _) = try await HTTP.enrolMFA(world.port, world.adaToken)
            let reset = "/v1/tenants/\(world.tenant)/members/\(caraID)/mfa"
            let tenant = "/v1/tenants/\(world.tenant)"
            try await Task.sleep(for: .seconds(3))

            // A session alone, signed in longer ago than the window: refused before anything is done.
            let stale = try await world.send("DELETE", reset, token: world.adaToken)
            #expect(stale.status == 401, "\(stale.body)")
            #expect(HTTP.errors(stale)["reason"] == "step_up_required" && HTTP.errors(stale)["max_age"] == "2")
            #expect(stale.headers["www-authenticate"]?.contains(#"error="insufficient_user_authentication""#) == true, "\(stale.headers)")
            #expect(try await world.send("DELETE", tenant, token: world.adaToken).status == 401)
            #expect(try await world.send("GET", tenant, token: world.adaToken).status == 200, "the tenant is still there")

            // With MFA on the step-up takes a second factor: not the password, not a wrong code.
            let stepUp = "/v1/auth/step-up"
            let password = try await world.send("POST", stepUp, #"{"password":"\#(HTTP.password)"}"#, token: world.adaToken)
            #expect(password.status == 400 && HTTP.errors(password)["field"] == "code", "\(password.body)")
            #expect(try await world.send("POST", stepUp, #"{"code":"000000"}"#, token: world.adaToken).status == 403)
            // (Enrolment spent the current step: the next one, which a code one step ahead is accepted as.)
            let stepped = try await world.send(
                "POST",
                stepUp,
                #"{"code":"\#(try HTTP.totpCode(adaSecret, offset: 1))"}"#,
                token: world.adaToken
            )
            #expect(stepped.status == 200, "\(stepped.body)")
            let body = try HTTP.object(stepped)
            #expect(body["refresh_token"] == nil, "the session's refresh token stays")
            let fresh = try #require(body["access_token"] as? String)
            let claims = try Self.claims(fresh)
            let now = WallClock.milliseconds() / 1000
            #expect(abs((claims["auth_time"] as? Int64 ?? 0) - now) <= 1 && claims["amr"] as? [String] == ["pwd", "otp", "mfa"], "\(claims)")
            #expect(claims["sid"] as? String == (try Self.claims(world.adaToken))["sid"] as? String, "the same session")

            let done = try await world.send("DELETE", reset, token: fresh)
            #expect(try done.status == 200 && HTTP.object(done)["reset"] as? Bool == true, "\(done.body)")
            // Minutes, not for good: the stepped-up token goes stale as well; a backup code steps up too.
            try await Task.sleep(for: .seconds(3))
            #expect(try await world.send("DELETE", tenant, token: fresh).status == 401)
            let again = try await world.send("POST", stepUp, #"{"code":"\#(adaBackupCodes[0])"}"#, token: fresh)
            #expect(again.status == 200, "\(again.body)")

            // Without MFA, the password steps up; a wrong one is refused.
            #expect(try await world.send("POST", stepUp, #"{"password":"Not-the-passw0rd!"}"#, token: world.bobToken).status == 403)
            #expect(try await world.send("POST", stepUp, #"{"code":"123456"}"#, token: world.bobToken).status == 400)
            #expect(try await world.send("POST", stepUp, #"{"password":"\#(HTTP.password)"}"#, token: world.bobToken).status == 200)

            let steps = try await world.cluster.events(
                Subjects.audit(tenant: TenantID(world.tenant)!),
                as: Rampart_V1_AuditEvent.self,
                stream: Subjects.auditStream
            )
            .filter { $0.action == AuditAction.sessionSteppedUp.rawValue }
            #expect(steps.map(\.reason).sorted() == ["backup", "otp", "pwd"])
        }
    }

    @Test(
        "a signed-in person's password proofs (change, enrolment, step-up) share a per-account limit across addresses, and wrong ones feed fail2ban"
    )
    func passwordProofs() async throws {
        var limits = TenantsCluster.liftedAPILimit()
        limits.fail2ban.threshold = 3
        let world = try await GatewayWorld.start(rateLimitSettings: limits, gateway: Self.behindProxy)
        try await stopping(world.cluster) {
            let change = "/v1/auth/password/change"
            func wrongChange(from ip: String) async throws -> HTTPTestResponse {
                try await Self.send(
                    world.port,
                    "POST",
                    change,
                    #"{"current_password":"Not-the-passw0rd!","new_password":"An0ther-long-passphrase"}"#,
                    token: world.bobToken,
                    from: ip
                )
            }
            // A thief holding Bob's session guesses from a new address each time: five guesses.
            for host in 1...5 {
                let refused = try await wrongChange(from: "198.51.100.\(host)")
                #expect(refused.status == 403 && HTTP.errors(refused)["field"] == "current_password", "\(refused.body)")
            }
            let right = #"{"current_password":"\#(HTTP.password)","new_password":"An0ther-long-passphrase"}"#
            let limited = try await Self.send(world.port, "POST", change, right, token: world.bobToken, from: "198.51.100.6")
            #expect(limited.status == 429 && HTTP.errors(limited)["policy"] == "account_proof", "\(limited.body)")
            let enrol = try await Self.send(
                world.port,
                "POST",
                "/v1/auth/mfa/totp/enroll",
                HTTP.passwordProof,
                token: world.bobToken,
                from: "198.51.100.7"
            )
            #expect(enrol.status == 429, "the same budget: \(enrol.body)")

            // Wrong proofs are failures to fail2ban: three from one address ban it, even for a sign-in.
            for _ in 1...3 {
                let refused = try await Self.send(
                    world.port,
                    "POST",
                    "/v1/auth/step-up",
                    #"{"password":"Not-the-passw0rd!"}"#,
                    token: world.adaToken,
                    from: "203.0.113.9"
                )
                #expect(refused.status == 403, "\(refused.body)")
            }
            let banned = try await Self.send(
                world.port,
                "POST",
                "/v1/auth/login",
                #"{"email":"ada@lovelace.example","password":"\#(HTTP.password)"}"#,
                from: "203.0.113.9"
            )
            #expect(banned.status == 429, "\(banned.body)")
            #expect(try await Self.send(world.port, "GET", "/v1/auth/whoami", token: world.adaToken, from: "203.0.113.10").status == 200)

            let failures = try await world.cluster.events(
                Subjects.audit(tenant: TenantID(world.tenant)!),
                as: Rampart_V1_AuditEvent.self,
                stream: Subjects.auditStream
            )
            .filter { $0.action == AuditAction.passwordProofFailed.rawValue && $0.outcome == .failure }
            #expect(failures.count == 8, "\(failures.map(\.reason))")
        }
    }

    @Test("enrolling an authenticator takes the password again: a stolen session without it cannot put the thief's app on the account")
    func enrolmentNeedsPassword() async throws {
        let world = try await GatewayWorld.start()
        try await stopping(world.cluster) {
            let enroll = "/v1/auth/mfa/totp/enroll"
            let none = try await world.send("POST", enroll, "{}", token: world.adaToken)
            #expect(none.status == 403 && HTTP.errors(none)["field"] == "password", "\(none.body)")
            #expect(try await world.send("POST", enroll, #"{"password":"Not-the-passw0rd!"}"#, token: world.adaToken).status == 403)
            #expect(try await world.send("POST", enroll, #"{"password":12}"#, token: world.adaToken).status == 400)
            #expect(try await world.send("POST", enroll, HTTP.passwordProof, token: world.adaToken).status == 200)
        }
    }

    @Test(
        "wrong second-factor codes are counted per account across challenges: ten lock the factor for a growing time, mail and audit it; a reset lifts it"
    )
    func secondFactorWearDown() async throws {
        var auth = TenantsCluster.testAuthSettings
        auth.secondFactorLock.firstLockSeconds = 2
        auth.secondFactorLock.maximumLockSeconds = 60
        let world = try await GatewayWorld.start(
            authSettings: auth,
            rateLimitSettings: TenantsCluster.liftedSignInLimits(),
            gateway: Self.behindProxy
        )
        try await stopping(world.cluster) {
            let (secret, backupCodes, _) = try await HTTP.enrolMFA(world.port, world.adaToken)
            func challenge(from ip: String, password: String = HTTP.password) async throws -> String? {
                let login = try await Self.send(
                    world.port,
                    "POST",
                    "/v1/auth/login",
                    #"{"email":"ada@lovelace.example","password":"\#(password)"}"#,
                    from: ip
                )
                return try HTTP.object(login)["mfa_token"] as? String
            }
            func code(_ token: String, _ code: String, from ip: String) async throws -> HTTPTestResponse {
                try await Self.send(world.port, "POST", "/v1/auth/login/mfa", #"{"mfa_token":"\#(token)","code":"\#(code)"}"#, from: ip)
            }

            // Knowing the address is not enough to count: wrong passwords earn no challenge, no lock.
            for host in 1...12 { #expect(try await challenge(from: "192.0.2.\(host)", password: "Not-the-passw0rd!") == nil) }
            let owner = try await code(
                try #require(try await challenge(from: "198.51.100.1")),
                try HTTP.totpCode(secret, offset: 1),
                from: "198.51.100.1"
            )
            #expect(owner.status == 200, "\(owner.body)")

            // With the password, three challenges from three addresses, fifteen wrong codes at once:
            // ten are judged, the tenth locks, the rest are refused unjudged.
            var tokens: [(String, String)] = []
            for host in 1...3 { tokens.append((try #require(try await challenge(from: "203.0.113.\(host)")), "203.0.113.\(host)")) }
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for (token, ip) in tokens {
                    for guess in 0..<5 { group.addTask { try await code(token, String(format: "%06d", 100_000 + guess), from: ip).status } }
                }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(statuses.filter { $0 == 401 }.count == 10 && statuses.filter { $0 == 429 }.count == 5, "\(statuses.sorted())")

            // The owner's own code is refused too while it lasts, with when to come back.
            let refused = try await code(try #require(try await challenge(from: "198.51.100.1")), backupCodes[0], from: "198.51.100.1")
            #expect(
                refused.status == 429 && HTTP.errors(refused)["reason"] == "mfa_locked" && refused.headers["retry-after"] != nil,
                "\(refused.body)"
            )
            #expect(try await world.send("POST", "/v1/auth/step-up", #"{"code":"\#(backupCodes[0])"}"#, token: world.adaToken).status == 429)
            let mail = try await world.cluster.mails(from: .auth).last { $0.template == "notice_mfa_locked" }
            #expect(mail?.to == "ada@lovelace.example" && mail?.values["minutes"] == "1")

            // Once it ends, the count still stands: the next wrong code locks again, for twice as long.
            try await Task.sleep(for: .seconds(3))
            let next = try #require(try await challenge(from: "203.0.113.4"))
            #expect(try await code(next, "999999", from: "203.0.113.4").status == 401)
            #expect(try await code(next, backupCodes[0], from: "203.0.113.4").status == 429)
            let locks = try await world.cluster.events(
                Subjects.audit(tenant: TenantID(world.tenant)!),
                as: Rampart_V1_AuditEvent.self,
                stream: Subjects.auditStream
            )
            .filter { $0.action == AuditAction.mfaLocked.rawValue }
            #expect(locks.map { $0.details["locks"] ?? "" } == ["1", "2"] && locks.last?.details["locked_seconds"] == "4", "\(locks.map(\.details))")

            // The owner resets the password (whoever guessed had it) and is back in at once.
            let reset = try await world.cluster.resetMail(to: "ada@lovelace.example") { () async throws in
                #expect(
                    try await HTTP.send(world.port, "POST", "/v1/auth/password/reset/request", #"{"email":"ada@lovelace.example"}"#).status == 200
                )
            }.token
            let newPassword = "Correct-h0rse-battery!"
            #expect(
                try await HTTP.send(world.port, "POST", "/v1/auth/password/reset/confirm", #"{"token":"\#(reset)","new_password":"\#(newPassword)"}"#)
                    .status == 200
            )
            let back = try await code(
                try #require(try await challenge(from: "198.51.100.1", password: newPassword)),
                backupCodes[0],
                from: "198.51.100.1"
            )
            #expect(back.status == 200, "\(back.body)")
        }
    }

    @Test("anyone can fill an account's sign-in limit with wrong passwords, but not lock its owner's device out; right passwords count nothing")
    func accountLockout() async throws {
        let world = try await GatewayWorld.start(gateway: Self.behindProxy)
        try await stopping(world.cluster) {
            func signIn(
                _ email: String = "ada@lovelace.example",
                password: String = HTTP.password,
                from ip: String,
                device: String? = nil
            ) async throws -> HTTPTestResponse {
                let token = device.map { #","device_token":"\#($0)""# } ?? ""
                return try await Self.send(
                    world.port,
                    "POST",
                    "/v1/auth/login",
                    #"{"email":"\#(email)","password":"\#(password)"\#(token)}"#,
                    from: ip
                )
            }
            let wrong = "Not-the-passw0rd!"

            // The owner's own sign-ins are not counted against the account: six in a row get in.
            var device = ""
            for host in 1...6 {
                let signedIn = try await signIn(from: "198.51.100.\(host)")
                #expect(signedIn.status == 200, "\(host): \(signedIn.body)")
                device = try #require(try HTTP.object(signedIn)["device_token"] as? String)
            }

            // Ten wrong passwords at once from ten addresses: five judged, five refused unjudged.
            let statuses = try await withThrowingTaskGroup(of: (Int, String?).self) { group in
                for host in 1...10 {
                    group.addTask {
                        let r = try await signIn(password: wrong, from: "203.0.113.\(host)")
                        return (r.status, HTTP.errors(r)["policy"])
                    }
                }
                return try await group.reduce(into: [(Int, String?)]()) { $0.append($1) }
            }
            #expect(statuses.filter { $0.0 == 401 }.count == 5, "\(statuses)")
            #expect(statuses.filter { $0.0 == 429 && $0.1 == "login_account" }.count == 5, "\(statuses)")

            // The account stays shut to sign-ins without a device token, open to the owner's device.
            #expect(try await signIn(from: "198.51.100.20").status == 429)
            let owner = try await signIn(from: "198.51.100.21", device: device)
            #expect(owner.status == 200, "\(owner.body)")

            // The token is this account's alone and cannot be forged.
            let bobDevice = try #require(try HTTP.object(try await signIn("bob@babbage.example", from: "198.51.100.30"))["device_token"] as? String)
            #expect(try await signIn(from: "198.51.100.31", device: bobDevice).status == 429)
            var forged = Array(device.utf8)
            forged[10] = forged[10] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
            #expect(try await signIn(from: "198.51.100.32", device: String(decoding: forged, as: UTF8.self)).status == 429)

            // A stolen device token buys five guesses of its own, then that device is shut too.
            for host in 40...44 { #expect(try await signIn(password: wrong, from: "203.0.113.\(host)", device: device).status == 401) }
            let stolen = try await signIn(from: "203.0.113.45", device: device)
            #expect(stolen.status == 429 && HTTP.errors(stolen)["policy"] == "login_device", "\(stolen.body)")

            // A password change voids every device token: the old one counts as none.
            let newPassword = "Correct-h0rse-battery!"
            let changed = try await world.send(
                "POST",
                "/v1/auth/password/change",
                #"{"current_password":"\#(HTTP.password)","new_password":"\#(newPassword)"}"#,
                token: world.adaToken
            )
            #expect(changed.status == 200, "\(changed.body)")
            let void = try await signIn(password: newPassword, from: "198.51.100.50", device: device)
            #expect(void.status == 429 && HTTP.errors(void)["policy"] == "login_account", "\(void.body)")
        }
    }

    @Test("a service that is down is named as a service: no internal subject and no NATS client text reaches the problem")
    func serviceDownDetail() async throws {
        let world = try await GatewayWorld.start()  // webhooks is not started
        try await stopping(world.cluster) {
            let down = try await world.send("GET", "/v1/tenants/\(world.tenant)/webhooks/endpoints", token: world.adaToken)
            #expect(down.status == 503, "\(down.body)")
            let detail = try #require(try HTTP.object(down)["detail"] as? String)
            #expect(detail == "the webhooks service is not answering: try again shortly", "\(detail)")
            #expect(!down.body.contains("rampart.v1") && !down.body.lowercased().contains("nats"), "\(down.body)")
        }
    }

    @Test("boards are their tenant's: no tenant can squat another's board IDs or learn of them; a board its last holder left takes boards.share")
    func resourceHomes() async throws {
        let world = try await GatewayWorld.start()
        try await stopping(world.cluster) {
            let bobHome = try #require(try Self.claims(world.bobHomeToken)["tenant"] as? String)
            func bind(_ board: String, _ user: String, _ role: String, in tenant: String, token: String) async throws -> HTTPTestResponse {
                try await world.send("PUT", "/v1/tenants/\(tenant)/resources/boards/\(board)/roles/\(user)", #"{"role":"\#(role)"}"#, token: token)
            }

            // Bob binds "plans" in his own tenant before Ada does in hers: both are theirs.
            let squat = try await bind("plans", world.bob, "owner", in: bobHome, token: world.bobHomeToken)
            #expect(squat.status == 200, "\(squat.body)")
            #expect(try await bind("plans", world.ada, "owner", in: world.tenant, token: world.adaToken).status == 200)
            // Bob's "plans" grants nothing on Ada's, and his own tenant answers the same for an ID that
            // Ada's tenant uses as for one nobody uses.
            let check = #"{"principal_id":"\#(world.bob)","action":"boards.read","resource":"boards/plans"}"#
            let bobOnAda = try HTTP.object(
                try await world.send("POST", "/v1/tenants/\(world.tenant)/permissions/check", check, token: world.adaToken)
            )
            #expect(bobOnAda["allowed"] == nil && bobOnAda["reason"] as? String == "no_role_grants", "\(bobOnAda)")
            #expect(try await bind("roadmap", world.ada, "owner", in: world.tenant, token: world.adaToken).status == 200)
            let known = try await bind("roadmap", world.bob, "owner", in: bobHome, token: world.bobHomeToken)
            let unknown = try await bind("nowhere", world.bob, "owner", in: bobHome, token: world.bobHomeToken)
            #expect(known.status == 200 && unknown.status == 200, "\(known.body) \(unknown.body)")
            // Naming Ada's tenant from Bob's own is refused before anything is looked up: the same
            // answer whether the board exists there or not.
            let foreign = try await bind("roadmap", world.bob, "owner", in: world.tenant, token: world.bobHomeToken)
            let foreignUnknown = try await bind("nowhere", world.bob, "owner", in: world.tenant, token: world.bobHomeToken)
            #expect(foreign.status == 403 && foreignUnknown.status == 403)
            #expect(try HTTP.object(foreign)["detail"] as? String == (try HTTP.object(foreignUnknown)["detail"] as? String))

            // Carol owns "budget" and leaves; Bob, a plain member who may create boards, cannot take it.
            let carol = String(try await world.cluster.addMember(to: TenantID(world.tenant)!, invitedBy: "user:\(world.ada)").dropFirst(5))
            #expect(try await bind("budget", carol, "owner", in: world.tenant, token: world.adaToken).status == 200)
            #expect(try await world.send("DELETE", "/v1/tenants/\(world.tenant)/members/\(carol)", token: world.adaToken).status == 200)
            let roles = "/v1/tenants/\(world.tenant)/resources/boards/budget/roles"
            #expect(
                try await eventually(within: .seconds(10)) {
                    let bindings = try HTTP.object(try await world.send("GET", roles, token: world.adaToken))["bindings"] as? [[String: Any]] ?? []
                    return !bindings.contains { $0["principal"] as? String == "user:\(carol)" }
                }
            )
            let taken = try await bind("budget", world.bob, "owner", in: world.tenant, token: world.bobToken)
            #expect(taken.status == 403, "\(taken.body)")
            #expect((try HTTP.object(taken)["detail"] as? String)?.contains("boards.share") == true, "\(taken.body)")
            // A fresh board he may create; an admin may hand him the orphaned one.
            #expect(try await bind("sketches", world.bob, "owner", in: world.tenant, token: world.bobToken).status == 200)
            #expect(try await bind("budget", world.bob, "owner", in: world.tenant, token: world.adaToken).status == 200)
        }
    }

    @Test("an admin who rotates a member's API key gets a key that acts as the admin, never one that speaks for the member")
    func rotationByAdmin() async throws {
        let world = try await GatewayWorld.start()
        try await stopping(world.cluster) {
            let keys = "/v1/tenants/\(world.tenant)/api-keys"
            let created = try await world.send("POST", keys, #"{"name":"Bob's reports","scopes":["boards:read"]}"#, token: world.bobToken)
            #expect(created.status == 201, "\(created.body)")
            let old = try #require(try HTTP.object(created)["key"] as? String)
            let id = try #require((try HTTP.object(created)["api_key"] as? [String: Any])?["api_key_id"] as? String)

            let rotated = try await world.send("POST", "\(keys)/\(id)/rotate", #"{"grace_seconds":600}"#, token: world.adaToken)
            #expect(rotated.status == 201, "\(rotated.body)")
            let successor = try #require(try HTTP.object(rotated)["key"] as? String)
            #expect((try HTTP.object(rotated)["api_key"] as? [String: Any])?["created_by"] as? String == world.ada)
            func creator(_ key: String) async throws -> String? {
                try HTTP.object(try await world.send("GET", "/v1/auth/whoami", token: key))["created_by"] as? String
            }
            #expect(try await creator(successor) == world.ada)
            #expect(try await creator(old) == world.bob, "the old key stays Bob's for its grace period")

            // Bob leaves: his key ends with him; the one Ada holds now is hers and goes on.
            #expect(try await world.send("DELETE", "/v1/tenants/\(world.tenant)/members/\(world.bob)", token: world.adaToken).status == 200)
            #expect(
                try await eventually(within: .seconds(10)) {
                    try await world.send("GET", "/v1/auth/whoami", token: old).status == 401
                }
            )
            #expect(try await world.send("GET", "/v1/auth/whoami", token: successor).status == 200)
        }
    }

    @Test("a revocation applies from the moment a gateway receives it, whatever auth's clock says, and outlives the most leeway a gateway may give")
    func revocationClock() async throws {
        let world = try await GatewayWorld.start()
        try await stopping(world.cluster) {
            let login = try await HTTP.send(world.port, "POST", "/v1/auth/login", #"{"email":"ada@lovelace.example","password":"\#(HTTP.password)"}"#)
            let access = try #require(try HTTP.object(login)["access_token"] as? String)
            let session = try #require(try HTTP.object(try await world.send("GET", "/v1/auth/whoami", token: access))["session_id"] as? String)

            // auth's clock runs ten minutes ahead of this gateway's: its revocation is still in force here.
            var revocation = Rampart_V1_Revocation()
            revocation.kind = .session
            revocation.tenantID = world.tenant
            revocation.id = session
            revocation.userID = world.ada
            revocation.reason = "logout"
            revocation.occurredAtMs = WallClock.milliseconds() + 600_000
            revocation.effectiveAtMs = revocation.occurredAtMs
            revocation.untilMs = revocation.occurredAtMs + 1_500_000
            let bucket = try await world.cluster.client.jetStream().keyValue(Subjects.Auth.revocationsBucket)
            _ = try await bucket.put(
                Subjects.Auth.revocationKey(.session, tenant: TenantID(world.tenant)!, id: session),
                try revocation.serializedBytes()
            )
            #expect(
                try await eventually(within: .seconds(5)) {
                    try await world.send("GET", "/v1/auth/whoami", token: access).status == 401
                }
            )

            // auth keeps a revocation past the token's life plus the most leeway any gateway may have.
            #expect(try await world.send("POST", "/v1/auth/logout", token: world.adaToken).status == 204)
            let recorded = try #require(try await world.cluster.revocations().first { $0.reason == "logout" && $0.id != session })
            let kept = (recorded.untilMs - recorded.occurredAtMs) / 1000
            #expect(kept >= Int64(TenantsCluster.testAuthSettings.accessTokenSeconds + AccessTokenVerifier.maximumLeewaySeconds), "\(kept)")
        }
    }

    @Test("a reset request for a known address waits on nothing an unknown one does not: the link is written and mailed after the answer")
    func resetRequestTiming() async throws {
        let world = try await GatewayWorld.start()
        try await stopping(world.cluster) {
            let database = try #require(world.cluster.databases[.auth])
            let lockHeld = """
                SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
                WHERE c.relname = 'account_tokens' AND l.mode = 'ExclusiveLock' AND l.granted
                """
            // The token table held for five seconds: an answer that wrote the link would wait them out.
            let holder = Task {
                try await TestPostgres.psql("BEGIN; LOCK TABLE account_tokens IN EXCLUSIVE MODE; SELECT pg_sleep(5); COMMIT;", database: database)
            }
            #expect(try await eventually(within: .seconds(5)) { try await TestPostgres.psql(lockHeld, database: database) == "1" })
            let reset = try await world.cluster.resetMail(to: "ada@lovelace.example") { () async throws in
                let answered = try await HTTP.send(world.port, "POST", "/v1/auth/password/reset/request", #"{"email":"ada@lovelace.example"}"#)
                #expect(answered.status == 200, "\(answered.body)")
                #expect(try await TestPostgres.psql(lockHeld, database: database) == "1", "the answer waited for the link's write")
            }
            _ = try await holder.value
            #expect(!reset.token.isEmpty, "the link still goes out once the table is free")
        }
    }
}
