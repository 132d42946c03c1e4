import Foundation
import RampartModels
import ServiceKit
import SodiumKit
import TestSupport
import Testing

@testable import AuthService

/// TOTP enrolment through the gateway (MFA-1, MFA-2, MFA-3, MFA-5) with auth, tenants and the
/// gateway running for real; the codes come from this test's own RFC 6238 computation.
@Suite("MFA-1..3, MFA-5 TOTP enrolment end to end", .serialized)
struct MFAHTTPTests {
    typealias HTTP = APIKeyHTTPTests

    func code(_ secret: String, offset: Int64 = 0) throws -> String {
        let bytes = try #require(Base32.decode(secret))
        return TOTP(secret: bytes).code(atStep: TOTP.step(at: WallClock.milliseconds() / 1000) + offset)
    }

    @Test("enrol → nothing on yet → a wrong code refused → confirm → ten backup codes; secrets sealed, codes hashed, audited")
    func enrolment() async throws {
        let (cluster, port, tenant, access) = try await HTTP.signedIn()
        defer { Task { await cluster.stop() } }
        let enroll = "/v1/auth/mfa/totp/enroll"
        let confirm = "/v1/auth/mfa/totp/confirm"
        #expect(try await HTTP.send(port, "POST", confirm, #"{"code":"123456"}"#, token: access).status == 409)

        let enrolled = try await HTTP.send(port, "POST", enroll, token: access)
        #expect(enrolled.status == 200, "\(enrolled.body)")
        let first = try HTTP.object(enrolled)
        let firstSecret = try #require(first["secret"] as? String)
        // A second enrolment before confirming replaces the secret: the first one's codes are void.
        let started = try await HTTP.send(port, "POST", enroll, token: access)
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

        for wrong in [try code(firstSecret), "000000", "12345", "abcdef", try code(secret, offset: 3)] where wrong != (try code(secret)) {
            let refused = try await HTTP.send(port, "POST", confirm, #"{"code":"\#(wrong)"}"#, token: access)
            #expect(refused.status == 400, "\(wrong): \(refused.body)")
        }
        let confirmed = try await HTTP.send(port, "POST", confirm, #"{"code":"\#(try code(secret))"}"#, token: access)
        #expect(confirmed.status == 200, "\(confirmed.body)")
        let backupCodes = try #require(try HTTP.object(confirmed)["backup_codes"] as? [String])
        #expect(backupCodes.count == 10 && Set(backupCodes).count == 10)
        #expect(backupCodes.allSatisfy { $0.range(of: #"^[0-9a-hjkmnp-tv-z]{5}-[0-9a-hjkmnp-tv-z]{5}$"#, options: .regularExpression) != nil })

        // On: enrolling again needs MFA off first, and the confirmation cannot be replayed.
        #expect(try await HTTP.send(port, "POST", enroll, token: access).status == 409)
        #expect(try await HTTP.send(port, "POST", confirm, #"{"code":"\#(try code(secret))"}"#, token: access).status == 409)

        // MFA-5: the secret is sealed (its bytes appear nowhere in the row), codes are keyed hashes.
        let database = try #require(cluster.databases[.auth])
        let sealedHex = try await TestPostgres.psql("SELECT encode(secret_sealed, 'hex') FROM mfa_totp", database: database)
        let plainHex = try #require(Base32.decode(secret)).map { String(format: "%02x", $0) }.joined()
        #expect(!sealedHex.isEmpty && !sealedHex.contains(plainHex))
        #expect(
            try await TestPostgres.psql("SELECT count(*) FROM mfa_totp WHERE confirmed_at IS NOT NULL AND last_step > 0", database: database) == "1"
        )
        let stored = try await TestPostgres.psql("SELECT string_agg(encode(code_hash, 'escape'), ',') FROM mfa_backup_codes", database: database)
        #expect(backupCodes.allSatisfy { !stored.contains($0) && !stored.contains($0.replacingOccurrences(of: "-", with: "")) })
        #expect(try await TestPostgres.psql("SELECT count(*) FROM mfa_backup_codes", database: database) == "10")

        let audited = try await cluster.events(Subjects.audit(tenant: TenantID(tenant)), as: Rampart_V1_AuditEvent.self, stream: Subjects.auditStream)
        #expect(audited.contains { $0.action == AuditAction.mfaEnrolled.rawValue })
    }

    @Test("an API key cannot enrol; unsigned requests and hostile codes get a precise 4xx")
    func refused() async throws {
        let (cluster, port, tenant, access) = try await HTTP.signedIn()
        defer { Task { await cluster.stop() } }
        let (key, _) = try await HTTP.create(port, tenant, access, #"{"name":"k","scopes":["boards:read"]}"#)
        #expect(try await HTTP.send(port, "POST", "/v1/auth/mfa/totp/enroll", token: key).status == 403)
        #expect(try await HTTP.send(port, "POST", "/v1/auth/mfa/totp/enroll").status == 401)
        _ = try await HTTP.send(port, "POST", "/v1/auth/mfa/totp/enroll", token: access)
        for hostile in [#"{"code":"1234567"}"#, #"{"code":"12\u0000456"}"#, #"{"code":123456}"#, #"{"code":"123456","extra":1}"#] {
            #expect(try await HTTP.send(port, "POST", "/v1/auth/mfa/totp/confirm", hostile, token: access).status == 400, "\(hostile)")
        }
    }

    @Test("backup codes: Crockford base32, and typed codes read the way people type them")
    func backupCodes() {
        let codes = (0..<1000).map { _ in Sessions.newBackupCode() }
        #expect(Set(codes).count == 1000)
        #expect(Sessions.normalizedBackupCode("AbCdE-0O1IL") == "abcde00111")
        #expect(Sessions.normalizedBackupCode(" k7m2p - 9xq3r ") == "k7m2p9xq3r")
    }
}
