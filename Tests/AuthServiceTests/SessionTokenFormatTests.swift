import RampartModels
import ServicesTestSupport
import SodiumKit
import Testing

@testable import AuthService

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

@Suite("AUTH-6's refresh token, finding 3's device token and MFA-4's challenge token")
struct SessionTokenFormatTests {
    let keyRing: KeyRing
    let tenant = TenantID.random()

    init() throws {
        keyRing = try KeyRing(parsing: "k:\(SecretKey.generate().exportBase64())")
    }

    @Test("a refresh token reads back as its tenant and secret; its successor is the same for the same key")
    func refreshRoundTrip() throws {
        let token = RefreshToken.new(in: tenant)
        let parsed = try #require(RefreshToken(token.text))
        #expect(parsed == token && parsed.hash == sha256(token.secret))
        let successor = try token.successor(keyRing: keyRing)
        #expect(successor.tenant == tenant && successor.secret != token.secret)
        #expect(try token.successor(keyRing: keyRing) == successor)
        let otherRing = try KeyRing(parsing: "k:\(SecretKey.generate().exportBase64())")
        #expect(try token.successor(keyRing: otherRing) != successor)
    }

    @Test("anything else is no refresh token: another form of the tenant, a short secret, extra parts")
    func refreshRefused() {
        let text = RefreshToken.new(in: tenant).text
        let hostile = [
            "", ".", text + ".x", tenant.hex.uppercased() + text.dropFirst(32), String(text.dropLast(2)), "x" + text,
            tenant.hex + "." + String(repeating: "A", count: 200),
        ]
        for token in hostile { #expect(RefreshToken(token) == nil, "\(token.debugDescription)") }
    }

    @Test("a device token names its user's device until the password changes or 90 days pass")
    func deviceToken() throws {
        let user = UUID()
        let changed: Int64 = 1_700_000_000_000
        let now: Int64 = 1_800_000_000
        let token = try DeviceToken.issue(to: user, passwordChangedAtMs: changed, keyRing: keyRing, now: now)
        let device = try #require(DeviceToken.deviceID(token, user: user, passwordChangedAtMs: changed, keyRing: keyRing, now: now))
        #expect(device.count == 32)
        #expect(DeviceToken.deviceID(token, user: UUID(), passwordChangedAtMs: changed, keyRing: keyRing, now: now) == nil)
        #expect(DeviceToken.deviceID(token, user: user, passwordChangedAtMs: changed + 1, keyRing: keyRing, now: now) == nil)
        let later = now + DeviceToken.lifetimeSeconds
        #expect(DeviceToken.deviceID(token, user: user, passwordChangedAtMs: changed, keyRing: keyRing, now: later) == nil)
        #expect(DeviceToken.deviceID(token, user: user, passwordChangedAtMs: changed, keyRing: keyRing, now: now - 120) == nil)
        let otherRing = try KeyRing(parsing: "k:\(SecretKey.generate().exportBase64())")
        #expect(DeviceToken.deviceID(token, user: user, passwordChangedAtMs: changed, keyRing: otherRing, now: now) == nil)
        // One flipped bit anywhere is no token.
        var bytes = try #require(Base64.decode(String(token.dropFirst(4)), variant: Base64.urlSafeNoPadding))
        bytes[20] ^= 1
        let forged = "dev_" + Base64.encode(bytes, variant: Base64.urlSafeNoPadding)
        #expect(DeviceToken.deviceID(forged, user: user, passwordChangedAtMs: changed, keyRing: keyRing, now: now) == nil)
    }

    @Test("a challenge token hashes as its random part; anything else is none")
    func challengeToken() throws {
        let (token, hash) = ChallengeToken.new()
        #expect(ChallengeToken.hash(token) == hash)
        for text in ["", "mfa_", "mfa_" + String(repeating: "A", count: 80), "xfa_" + token.dropFirst(4), String(token.dropLast(2))] {
            #expect(ChallengeToken.hash(text) == nil, "\(text.debugDescription)")
        }
    }
}
