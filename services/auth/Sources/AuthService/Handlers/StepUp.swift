import PostgresNIO
import RampartModels
import ServiceKit

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A signed-in person proving it is them again. A session can be stolen or left open, so what
/// would let its holder take the account over (a new password, an authenticator of their own,
/// MFA off) asks for a proof, and what cannot be undone (deleting the organization, resetting
/// someone's MFA) asks for a recent one: a step-up makes the session's `auth_time` now.
extension Sessions {
    /// Every such proof of one account, right or wrong, draws on `account_proof`: a session's
    /// holder guesses no faster than a sign-in would let them.
    func limitProofs(of user: UUID, call: CallContext) async throws {
        try await limit("account_proof", key: user.uuidString.lowercased(), call: call, refusal: "too many attempts to prove it is you")
    }

    /// The account's current password, proved by its signed-in owner; their address. A wrong
    /// one is a fail2ban failure, audited, and answers 403 naming `field`.
    @discardableResult
    func provePassword(_ password: String, user: UUID, tenant: TenantID, field: String, to purpose: String, call: CallContext) async throws -> String
    {
        try await limitProofs(of: user, call: call)
        let found = try await activeAccount(user)
        let verdict = try await hasher.verify(String(password.prefix(1024)), against: found?.passwordHash)
        guard let email = found?.email, verdict.matches else {
            await rateLimit.reportFailure(.password, context: call)
            await audited(.passwordProofFailed, about: user, in: tenant, call: call, reason: "a wrong password to \(purpose)", failed: true)
            throw RampartError(.permissionDenied, "the password is not right", details: ["field": field])
        }
        return email
    }

    /// The factors again: with MFA on, a current code or an unused backup code (the password
    /// is not the factor a thief lacks); without, the password. A new access token for the same
    /// session, its `auth_time` now; the refresh token stays.
    func stepUp(_ request: Rampart_V1_StepUpRequest, call: CallContext) async throws -> Rampart_V1_TokenReply {
        let (tenant, user) = try call.signedIn()
        guard let session = UUID(uuidString: request.sessionID) else { throw RampartError(.unauthenticated, "sign in first") }
        let mfa = try await mfaEnabled(user)
        let method: String
        if mfa {
            guard request.password.isEmpty, !request.code.isEmpty else {
                throw RampartError.invalidArgument("your account has MFA: step up with a code from your app or a backup code", field: "code")
            }
            try await limitProofs(of: user, call: call)
            let outcome = try await database.transaction { try await spendSecondFactor(request.code, user: user, on: $0) }
            method = try await settle(outcome, to: "step up", tenant: tenant, user: user, call: call)
        } else {
            guard request.code.isEmpty, !request.password.isEmpty else {
                throw RampartError.invalidArgument("step up with your password (your account has no MFA)", field: "password")
            }
            try await provePassword(request.password, user: user, tenant: tenant, field: "password", to: "step up", call: call)
            method = "pwd"
        }
        let amr = mfa ? ["pwd", method, "mfa"] : ["pwd"]
        let now = WallClock.milliseconds() / 1000
        let rows = try await database.query(
            """
            UPDATE \(schema: tenant).sessions SET authenticated_at = to_timestamp(\(Double(now))), amr = \(amr.joined(separator: " ")), last_seen_at = now()
            WHERE id = \(session) AND user_id = \(user) AND revoked_at IS NULL AND expires_at > now() RETURNING id
            """
        )
        var live = false
        for try await _ in rows.decode(UUID.self) { live = true }
        guard live, let member = try await memberships.activeMember(user, tenant: tenant) else {
            throw RampartError(.unauthenticated, "the session has ended: sign in again")
        }
        await audited(.sessionSteppedUp, about: user, in: tenant, call: call, reason: method)
        return try await tokens(user: user, tenant: tenant, session: session, role: member.role, refresh: "", amr: amr, authTime: now)
    }
}
