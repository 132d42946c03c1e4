import Foundation
import NATSKit
import RampartModels
import ServiceKit
import ServicesTestSupport
import SodiumKit
import TenantsService
import TestSupport
import Testing
import TokenKit

@testable import AuthService

@Suite("AUTH-3 AUTH-5 AUTH-6 sign-in, access tokens, rotating refresh tokens, sign-out")
struct AuthSessionTests {
    static let password = "Tr0ub4dor&3xkcd!"

    /// auth, tenants and rate-limit, and one registered user whose tenant is active.
    static func signedUp(
        email: String = "jane@initech.example",
        authSettings: AuthSettings = TenantsCluster.testAuthSettings,
        verified: Bool = false
    ) async throws -> (TenantsCluster, Rampart_V1_RegisterReply) {
        let cluster = try await TenantsCluster.start(
            settings: TenantsSettings(sagaServices: [.tenants, .auth]),
            authSettings: authSettings,
            without: [.permissions, .audit, .webhooks]
        )
        var request = Rampart_V1_RegisterRequest()
        request.email = email
        request.password = password
        request.name = "Jane"
        request.organization.name = "Initech"
        request.organization.country = "US"
        request.organization.registrationNumber = "94-2404110"
        let reply = try await cluster.call(Subjects.Auth.register, request, ip: "203.0.113.70")
        #expect(try await cluster.waitFor(.active, reply.tenantID))
        if verified {
            // With the token its mail carries (AUTH-11: API keys need it).
            var verification = Rampart_V1_VerifyEmailRequest()
            verification.token = try #require(try await cluster.mails(from: .auth).last { $0.template == "email_verification" }).token
            _ = try await cluster.call(Subjects.Auth.verifyEmail, verification)
        }
        return (cluster, reply)
    }

    func login(_ cluster: TenantsCluster, _ email: String, _ password: String, ip: String = "198.51.100.80") async throws -> Rampart_V1_TokenReply {
        var request = Rampart_V1_LoginRequest()
        request.email = email
        request.password = password
        return try await cluster.call(Subjects.Auth.login, request, ip: ip)
    }

    func refresh(_ cluster: TenantsCluster, _ token: String) async throws -> Rampart_V1_TokenReply {
        var request = Rampart_V1_RefreshRequest()
        request.refreshToken = token
        return try await cluster.call(Subjects.Auth.refresh, request)
    }

    func verifier(_ cluster: TenantsCluster) async throws -> AccessTokenVerifier {
        let jwks = try await cluster.call(Subjects.Auth.jwks, Rampart_V1_JwksRequest())
        return AccessTokenVerifier(issuer: "rampart", publicKeys: try JWKS.parse(jwks.json))
    }

    @Test("AUTH-3 reuse interval: a retried refresh within it gets the same successor; after it, or once the successor is used, the session ends")
    func refreshReuseInterval() async throws {
        var settings = TenantsCluster.testAuthSettings
        // Long enough that the retry lands inside it even while every other suite loads the machine.
        settings.refreshReuseSeconds = 5
        let (cluster, _) = try await Self.signedUp(authSettings: settings)
        let tokens = try await login(cluster, "jane@initech.example", Self.password)
        let first = try await refresh(cluster, tokens.refreshToken)
        // The answer was lost; the client retries with the same token.
        let retried = try await refresh(cluster, tokens.refreshToken)
        #expect(retried.refreshToken == first.refreshToken)
        // The successor used: a copy of the old token is a theft again.
        let second = try await refresh(cluster, first.refreshToken)
        await expectError(.unauthenticated) { _ = try await refresh(cluster, tokens.refreshToken) }
        await expectError(.unauthenticated) { _ = try await refresh(cluster, second.refreshToken) }

        // Past the interval, the retry revokes as it would with the interval off.
        let other = try await login(cluster, "jane@initech.example", Self.password)
        _ = try await refresh(cluster, other.refreshToken)
        try await Task.sleep(for: .milliseconds(5200))
        await expectError(.unauthenticated) { _ = try await refresh(cluster, other.refreshToken) }
        await cluster.stop()
    }

    @Test("sign in, verify the access token against the JWKS, refresh, detect reuse, sign out")
    func lifecycle() async throws {
        let (cluster, user) = try await Self.signedUp()
        let tokens = try await login(cluster, "JANE@initech.example", Self.password)
        #expect(tokens.tokenType == "Bearer")
        #expect(tokens.expiresIn == 900)
        let claims = try await verifier(cluster).verify(tokens.accessToken, now: WallClock.milliseconds() / 1000)
        #expect(claims.sub == user.userID)
        #expect(claims.tenant == user.tenantID)
        #expect(claims.sid == tokens.sessionID)
        #expect(claims.roles == ["owner"])
        #expect(claims.amr == ["pwd"])
        #expect(claims.exp - claims.iat == 900)
        #expect(tokens.refreshToken.hasPrefix(user.tenantID + "."))
        // Only hashes are stored.
        let stored = try await TestPostgres.psql("SELECT count(*) FROM t_\(user.tenantID).refresh_tokens", database: cluster.databases[.auth]!)
        #expect(stored == "1")
        let dump = try await TestPostgres.psql(
            "SELECT encode(token_hash, 'base64') FROM t_\(user.tenantID).refresh_tokens",
            database: cluster.databases[.auth]!
        )
        #expect(!dump.contains(tokens.refreshToken.split(separator: ".")[1]))

        // Rotation: each refresh spends the token and returns the next.
        let second = try await refresh(cluster, tokens.refreshToken)
        #expect(second.refreshToken != tokens.refreshToken)
        #expect(second.sessionID == tokens.sessionID)
        let third = try await refresh(cluster, second.refreshToken)
        // The first token again: someone else has a copy. The whole session ends.
        await expectError(.unauthenticated) { _ = try await refresh(cluster, tokens.refreshToken) }
        await expectError(.unauthenticated) { _ = try await refresh(cluster, third.refreshToken) }
        let reason = try await TestPostgres.psql(
            "SELECT revoked_reason FROM t_\(user.tenantID).sessions WHERE id = '\(tokens.sessionID)'",
            database: cluster.databases[.auth]!
        )
        #expect(reason == "refresh_token_reused")

        // Sign out of a fresh session: only its owner can, once.
        let fresh = try await login(cluster, "jane@initech.example", Self.password)
        var logout = Rampart_V1_LogoutRequest()
        logout.sessionID = fresh.sessionID
        await expectError(.notFound) {
            let _: Rampart_V1_LogoutReply = try await cluster.call(
                Subjects.Auth.logout,
                logout,
                tenant: TenantID(user.tenantID),
                principal: "user:\(UUID().uuidString)"
            )
        }
        let _: Rampart_V1_LogoutReply = try await cluster.call(
            Subjects.Auth.logout,
            logout,
            tenant: TenantID(user.tenantID),
            principal: "user:\(user.userID)"
        )
        await expectError(.notFound) {
            let _: Rampart_V1_LogoutReply = try await cluster.call(
                Subjects.Auth.logout,
                logout,
                tenant: TenantID(user.tenantID),
                principal: "user:\(user.userID)"
            )
        }
        await expectError(.unauthenticated) { _ = try await refresh(cluster, fresh.refreshToken) }
        // Garbage refresh tokens: the same answer.
        for garbage in [
            "", "x", user.tenantID + ".", TenantID.random().hex + "." + fresh.refreshToken.split(separator: ".")[1],
            String(repeating: "a", count: 5000),
        ] {
            await expectError(.unauthenticated) { _ = try await refresh(cluster, garbage) }
        }
        await cluster.stop()
    }

    @Test("unknown email, wrong password and disabled member get the same answer; a disabled member cannot refresh")
    func sameAnswer() async throws {
        let (cluster, user) = try await Self.signedUp(verified: true)
        let unknown = await expectError(.unauthenticated) {
            _ = try await login(cluster, "nobody@initech.example", Self.password, ip: "198.51.100.81")
        }
        let wrong = await expectError(.unauthenticated) {
            _ = try await login(cluster, "jane@initech.example", Self.password + "x", ip: "198.51.100.82")
        }
        #expect(unknown?.message == wrong?.message)
        #expect(unknown?.details == wrong?.details)

        // A member disabled in tenants: the session they had cannot be refreshed, and sign-in fails the same way.
        let tokens = try await login(cluster, "jane@initech.example", Self.password, ip: "198.51.100.83")
        var keyRequest = Rampart_V1_CreateApiKeyRequest()
        keyRequest.name = "Jane's script"
        keyRequest.scopes = ["boards:read"]
        let key: Rampart_V1_CreateApiKeyReply = try await cluster.call(
            Subjects.Auth.createAPIKey,
            keyRequest,
            tenant: TenantID(user.tenantID),
            principal: "user:\(user.userID)"
        )
        var verify = Rampart_V1_VerifyApiKeyRequest()
        verify.key = key.key
        let verified = try await cluster.call(Subjects.Auth.verifyAPIKey, verify, ip: "198.51.100.83")
        #expect(verified.createdBy == user.userID)
        // A second owner, so the first may be disabled.
        let bob = try await cluster.addMember(
            to: TenantID(user.tenantID)!,
            role: .owner,
            invitedBy: "user:\(user.userID)",
            email: "bob@initech.example"
        )
        var disable = Rampart_V1_UpdateMemberRequest()
        disable.userID = user.userID
        disable.status = .disabled
        let _: Rampart_V1_MemberReply = try await cluster.call(
            Subjects.Tenants.updateMember,
            disable,
            tenant: TenantID(user.tenantID),
            principal: bob
        )
        await expectError(.unauthenticated) { _ = try await refresh(cluster, tokens.refreshToken) }
        // auth heard member.disabled and told the gateways: every session of the user, at once.
        #expect(
            try await eventually(within: .seconds(10)) {
                try await cluster.revocations().contains {
                    $0.kind == .session && $0.userID == user.userID && $0.id == tokens.sessionID && $0.reason == "member_disabled"
                }
            }
        )
        // Their API keys with them (AUTH-4), and auth refuses the key even where no gateway asks.
        #expect(
            try await eventually(within: .seconds(10)) {
                try await cluster.revocations().contains { $0.kind == .apiKey && $0.id == key.apiKey.apiKeyID }
            }
        )
        await expectError(.unauthenticated) {
            _ = try await cluster.call(Subjects.Auth.verifyAPIKey, verify, ip: "198.51.100.83")
        }
        let disabled = await expectError(.unauthenticated) {
            _ = try await login(cluster, "jane@initech.example", Self.password, ip: "198.51.100.84")
        }
        #expect(disabled?.message == wrong?.message)
        await cluster.stop()
    }

    @Test("list my sessions, log out everywhere but here, and every revocation is recorded for the gateways")
    func sessionManagement() async throws {
        let (cluster, user) = try await Self.signedUp()
        let tenant = TenantID(user.tenantID)
        let principal = "user:\(user.userID)"
        var sessions: [Rampart_V1_TokenReply] = []
        for index in 0..<3 { sessions.append(try await login(cluster, "jane@initech.example", Self.password, ip: "198.51.100.9\(index)")) }
        var list = Rampart_V1_ListSessionsRequest()
        list.currentSessionID = sessions[2].sessionID
        var listed: Rampart_V1_ListSessionsReply = try await cluster.call(Subjects.Auth.listSessions, list, tenant: tenant, principal: principal)
        #expect(listed.sessions.map(\.sessionID) == sessions.reversed().map(\.sessionID))
        #expect(listed.sessions.map(\.current) == [true, false, false])
        #expect(listed.sessions.last?.ip == "198.51.100.90")
        // Someone else in the tenant sees none of them.
        let stranger: Rampart_V1_ListSessionsReply = try await cluster.call(
            Subjects.Auth.listSessions,
            list,
            tenant: tenant,
            principal: "user:\(UUID().uuidString)"
        )
        #expect(stranger.sessions.isEmpty)

        var everywhere = Rampart_V1_RevokeSessionsRequest()
        everywhere.exceptSessionID = sessions[2].sessionID
        let revoked: Rampart_V1_RevokeSessionsReply = try await cluster.call(
            Subjects.Auth.revokeSessions,
            everywhere,
            tenant: tenant,
            principal: principal
        )
        #expect(revoked.revoked == 2)
        listed = try await cluster.call(Subjects.Auth.listSessions, list, tenant: tenant, principal: principal)
        #expect(listed.sessions.map(\.sessionID) == [sessions[2].sessionID])
        await expectError(.unauthenticated) { _ = try await refresh(cluster, sessions[0].refreshToken) }
        _ = try await refresh(cluster, sessions[2].refreshToken)

        let revocations = try await cluster.revocations()
        #expect(Set(revocations.map(\.id)) == [sessions[0].sessionID, sessions[1].sessionID])
        #expect(
            revocations.allSatisfy {
                $0.kind == .session && $0.userID == user.userID && $0.tenantID == user.tenantID && $0.untilMs > $0.occurredAtMs + 900_000
            }
        )
        await cluster.stop()
    }

    @Test("5 sign-ins a minute per address, then rate_limited with a retry time; bad input is refused without a hash")
    func limits() async throws {
        let (cluster, _) = try await Self.signedUp()
        for _ in 0..<5 {
            await expectError(.unauthenticated) { _ = try await login(cluster, "jane@initech.example", "Wr0ng-password!", ip: "192.0.2.90") }
        }
        let limited = await expectError(.rateLimited) { _ = try await login(cluster, "jane@initech.example", Self.password, ip: "192.0.2.90") }
        #expect(Int(limited?.details["retry_after_ms"] ?? "") ?? 0 > 0)
        // The account's own limit holds across addresses: 5 failures above, from one address, count for it too.
        await expectError(.rateLimited) { _ = try await login(cluster, "jane@initech.example", Self.password, ip: "192.0.2.91") }
        for email in ["", String(repeating: "a", count: 10_000) + "@x.example", "jane\u{0}@initech.example", "' OR 1=1 --"] {
            await expectError(.unauthenticated) { _ = try await login(cluster, email, Self.password, ip: "192.0.2.92") }
        }
        await cluster.stop()
    }
}
