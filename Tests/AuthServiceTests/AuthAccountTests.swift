import Foundation
import NATSKit
import RampartModels
import ServiceKit
import ServicesTestSupport
import TestSupport
import Testing

@testable import AuthService

@Suite("AUTH-7 AUTH-8 AUTH-9 password change and reset, email verification, password rotation")
struct AuthAccountTests {
    typealias Fixture = AuthSessionTests
    static let password = HTTP.password
    static let newPassword = "N3w-Passphrase-42"

    func login(_ cluster: TenantsCluster, _ password: String, ip: String = "198.51.100.120") async throws -> Rampart_V1_TokenReply {
        var request = Rampart_V1_LoginRequest()
        request.email = "jane@initech.example"
        request.password = password
        return try await cluster.call(Subjects.Auth.login, request, ip: ip)
    }

    @Test("change: the current password is required, the new one passes the policy, the other sessions end")
    func change() async throws {
        let (cluster, user) = try await Fixture.signedUp()
        let here = try await login(cluster, Self.password, ip: "198.51.100.121")
        let elsewhere = try await login(cluster, Self.password, ip: "198.51.100.122")
        func change(_ current: String, _ new: String) async throws -> Rampart_V1_ChangePasswordReply {
            var request = Rampart_V1_ChangePasswordRequest()
            request.currentPassword = current
            request.newPassword = new
            request.currentSessionID = here.sessionID
            return try await cluster.call(Subjects.Auth.changePassword, request, tenant: TenantID(user.tenantID), principal: "user:\(user.userID)")
        }
        await expectError(.permissionDenied) { _ = try await change("Wr0ng-password!", Self.newPassword) }
        let weak = await expectError(.invalidArgument) { _ = try await change(Self.password, "short") }
        #expect(weak?.details["field"] == "new_password")
        let changed = try await change(Self.password, Self.newPassword)
        #expect(changed.otherSessionsRevoked == 1)
        await expectError(.unauthenticated) {
            var refresh = Rampart_V1_RefreshRequest()
            refresh.refreshToken = elsewhere.refreshToken
            _ = try await cluster.call(Subjects.Auth.refresh, refresh)
        }
        var refresh = Rampart_V1_RefreshRequest()
        refresh.refreshToken = here.refreshToken
        _ = try await cluster.call(Subjects.Auth.refresh, refresh)
        await expectError(.unauthenticated) { _ = try await login(cluster, Self.password, ip: "198.51.100.123") }
        _ = try await login(cluster, Self.newPassword, ip: "198.51.100.124")
        await cluster.stop()
    }

    @Test("reset: the same answer for any address, a single-use link that expires, every session ended")
    func reset() async throws {
        let (cluster, _) = try await Fixture.signedUp()
        let session = try await login(cluster, Self.password)
        func request(_ email: String) async throws {
            var request = Rampart_V1_RequestPasswordResetRequest()
            request.email = email
            _ = try await cluster.call(Subjects.Auth.requestPasswordReset, request, ip: "198.51.100.125")
        }
        func confirm(_ token: String, _ password: String) async throws {
            var request = Rampart_V1_ConfirmPasswordResetRequest()
            request.token = token
            request.newPassword = password
            _ = try await cluster.call(Subjects.Auth.confirmPasswordReset, request)
        }
        let link = try await cluster.resetMail(to: "jane@initech.example") { () async throws in
            try await request("nobody@initech.example")
            try await request("JANE@initech.example")
        }
        let links = try await cluster.mails(from: .auth).filter { $0.template == "password_reset" }
        #expect(links.map(\.to) == ["jane@initech.example"])  // none for the unknown address
        #expect(link.expiresAtMs - WallClock.milliseconds() <= 1_800_000)

        // A weak password leaves the token usable; garbage tokens get the same answer as spent ones.
        await expectError(.invalidArgument) { try await confirm(link.token, "weak") }
        for garbage in ["", "x", String(repeating: "A", count: 43), link.token + "A"] {
            await expectError(.notFound) { try await confirm(garbage, Self.newPassword) }
        }
        try await confirm(link.token, Self.newPassword)
        await expectError(.notFound) { try await confirm(link.token, "An0ther-Passphrase!") }
        await expectError(.unauthenticated) {
            var refresh = Rampart_V1_RefreshRequest()
            refresh.refreshToken = session.refreshToken
            _ = try await cluster.call(Subjects.Auth.refresh, refresh)
        }
        _ = try await login(cluster, Self.newPassword, ip: "198.51.100.126")

        // An expired link does nothing.
        let second = try await cluster.resetMail(to: "jane@initech.example") { try await request("jane@initech.example") }
        _ = try await TestPostgres.psql(
            "UPDATE account_tokens SET expires_at = now() - interval '1 second' WHERE used_at IS NULL",
            database: cluster.databases[.auth]!
        )
        await expectError(.notFound) { try await confirm(second.token, "An0ther-Passphrase!") }
        await cluster.stop()
    }

    @Test("registration sends a verification link, good once")
    func verification() async throws {
        let (cluster, user) = try await Fixture.signedUp()
        let links = try await cluster.mails(from: .auth).filter { $0.template == "email_verification" }
        let link = try #require(links.first)
        #expect(link.recipientName.isEmpty == false)
        var request = Rampart_V1_VerifyEmailRequest()
        request.token = link.token
        let verified = try await cluster.call(Subjects.Auth.verifyEmail, request)
        #expect(verified.userID == user.userID)
        #expect(try await TestPostgres.psql("SELECT email_verified_at IS NOT NULL FROM users", database: cluster.databases[.auth]!) == "t")
        await expectError(.notFound) { _ = try await cluster.call(Subjects.Auth.verifyEmail, request) }
        await cluster.stop()
    }

    @Test("a tenant rotating passwords every 90 days refuses an older one, once it is verified")
    func rotation() async throws {
        let (cluster, user) = try await Fixture.signedUp()
        var policy = Rampart_V1_UpdateTenantRequest()
        policy.passwordRotationDays = 90
        let _: Rampart_V1_Tenant = try await cluster.call(
            Subjects.Tenants.update,
            policy,
            tenant: TenantID(user.tenantID),
            principal: "user:\(user.userID)"
        )
        _ = try await login(cluster, Self.password, ip: "198.51.100.130")  // changed today: fine
        _ = try await TestPostgres.psql("UPDATE users SET password_changed_at = now() - interval '91 days'", database: cluster.databases[.auth]!)
        let expired = await expectError(.failedPrecondition) { _ = try await login(cluster, Self.password, ip: "198.51.100.131") }
        #expect(expired?.details["reason"] == "password_expired")
        // A wrong password still gets the ordinary answer: expiry is said only to who knows the password.
        await expectError(.unauthenticated) { _ = try await login(cluster, "Wr0ng-password!", ip: "198.51.100.132") }
        await cluster.stop()
    }
}
