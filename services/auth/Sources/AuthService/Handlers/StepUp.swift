import RampartModels
import ServiceKit

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// What cannot be undone (deleting the organization, resetting someone's MFA) asks for a
/// recent proof: a step-up makes the session's `auth_time` now.
extension Sessions {
    /// The factors again: with MFA on, a current code or an unused backup code (the password
    /// is not the factor a thief lacks); without, the password. A new access token for the same
    /// session, its `auth_time` now; the refresh token stays.
    func stepUp(_ request: Rampart_V1_StepUpRequest, call: CallContext) async throws -> Rampart_V1_TokenReply {
        let (tenant, user) = try call.signedIn()
        guard let session = UUID(uuidString: request.sessionID) else { throw RampartError(.unauthenticated, "sign in first") }
        let mfa = try await factors.store.isEnabled(for: user)
        let method: String
        if mfa {
            guard request.password.isEmpty, !request.code.isEmpty else {
                throw RampartError.invalidArgument("your account has MFA: step up with a code from your app or a backup code", field: "code")
            }
            try await factors.limitProofs(of: user, call: call)
            let outcome = try await factors.store.database.transaction { [factors] in try await factors.spend(request.code, user: user, on: $0) }
            method = try await factors.settle(outcome, to: "step up", tenant: tenant, user: user, call: call)
        } else {
            guard request.code.isEmpty, !request.password.isEmpty else {
                throw RampartError.invalidArgument("step up with your password (your account has no MFA)", field: "password")
            }
            try await factors.provePassword(request.password, user: user, tenant: tenant, field: "password", to: "step up", call: call)
            method = "pwd"
        }
        let now = WallClock.milliseconds() / 1000
        guard let amr = try await store.stepUp(session, user: user, in: tenant, amr: mfa ? ["pwd", method, "mfa"] : ["pwd"], authTime: now),
            let member = try await memberships.activeMember(user, tenant: tenant)
        else {
            throw RampartError(.unauthenticated, "the session has ended: sign in again")
        }
        await factors.audited(.sessionSteppedUp, about: user, in: tenant, call: call, reason: method)
        return try await issuer.tokens(user: user, tenant: tenant, session: session, role: member.role, refresh: "", amr: amr, authTime: now)
    }
}
