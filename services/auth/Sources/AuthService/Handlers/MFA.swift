import PostgresNIO
import RampartModels
import ServiceKit

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// TOTP MFA managed by its owner (MFA-1..3, turning it off) and reset by an admin (MFA-6). The
/// sign-in step is `SignIn`'s; the proofs and the lock are `SecondFactors`'.
struct MFAHandlers: Sendable {
    let factors: SecondFactors
    let memberships: Memberships
    let notices: SecurityNotices

    private var store: SecondFactorStore { factors.store }
    private var users: UserStore { factors.users }

    /// The password again first: a stolen session without MFA must not enrol the thief's
    /// authenticator (and lock the owner out behind it).
    func enroll(_ request: Rampart_V1_MfaEnrollRequest, call: CallContext) async throws -> Rampart_V1_MfaEnrollReply {
        let (tenant, user) = try call.signedIn()
        try await factors.provePassword(request.password, user: user, tenant: tenant, field: "password", to: "enrol an authenticator", call: call)
        return try await factors.beginEnrolment(user)
    }

    /// A current code turns MFA on, and its time step is spent (never accepted again); the
    /// answer is ten new backup codes. A wrong code counts as a failure for fail2ban (RL-3).
    func confirm(_ request: Rampart_V1_MfaConfirmRequest, call: CallContext) async throws -> Rampart_V1_MfaConfirmReply {
        let (tenant, user) = try call.signedIn()
        let now = WallClock.milliseconds() / 1000
        let confirmed = try await store.database.transaction { [store] connection -> [String]? in
            guard let (totp, _, confirmed) = try await store.lockSecret(user, on: connection), !confirmed else {
                throw RampartError(.failedPrecondition, "no enrolment to confirm: start one with enroll (or MFA is already on)")
            }
            guard let step = totp.matchingStep(request.code, at: now) else { return nil }
            try await store.accept(step, of: user, on: connection)
            return try await store.replaceBackupCodes(user, on: connection)
        }
        guard let codes = confirmed else {
            await factors.failed("a wrong code to confirm the enrolment", tenant: tenant, user: user, call: call)
            throw RampartError(.invalidArgument, "the code is not the one your app shows now", details: ["field": "code"])
        }
        await factors.audited(.mfaEnrolled, about: user, in: tenant, call: call)
        var reply = Rampart_V1_MfaConfirmReply()
        reply.backupCodes = codes
        return reply
    }

    func status(_ request: Rampart_V1_MfaStatusRequest, call: CallContext) async throws -> Rampart_V1_MfaStatusReply {
        let (_, user) = try call.signedIn()
        var reply = Rampart_V1_MfaStatusReply()
        if let (enabledAt, remaining) = try await store.status(of: user) {
            reply.enabled = true
            reply.enabledAtMs = enabledAt
            reply.backupCodesRemaining = remaining
        }
        return reply
    }

    /// Ten new backup codes for a current TOTP code (not a backup code, nor a session alone:
    /// someone holding a stolen session must not mint a second factor of their own).
    func regenerateBackupCodes(_ request: Rampart_V1_MfaProofRequest, call: CallContext) async throws -> Rampart_V1_MfaConfirmReply {
        let (tenant, user) = try call.signedIn()
        try await factors.limitProofs(of: user, call: call)
        let (outcome, codes) = try await store.database.transaction { [factors, store] connection -> (SecondFactors.Outcome, [String]) in
            let outcome = try await factors.spend(request.code, user: user, backupCodes: false, on: connection)
            guard case .spent = outcome else { return (outcome, []) }
            return (outcome, try await store.replaceBackupCodes(user, on: connection))
        }
        try await factors.settle(outcome, to: "regenerate the backup codes", tenant: tenant, user: user, call: call)
        await factors.audited(.mfaBackupCodesRegenerated, about: user, in: tenant, call: call)
        var reply = Rampart_V1_MfaConfirmReply()
        reply.backupCodes = codes
        return reply
    }

    /// MFA off, for a second factor now (a current TOTP code or an unused backup code; the
    /// password alone is not one, and a stolen session with a phished password must not shed
    /// the factor): the secret, the backup codes and any open sign-in challenge go.
    func disable(_ request: Rampart_V1_MfaProofRequest, call: CallContext) async throws -> Rampart_V1_MfaDisableReply {
        let (tenant, user) = try call.signedIn()
        guard request.password.isEmpty else {
            throw RampartError.invalidArgument(
                "turning MFA off needs a code from your app or a backup code; without either, an owner or admin of your home organization resets it",
                field: "password"
            )
        }
        try await factors.limitProofs(of: user, call: call)
        let outcome = try await store.database.transaction { [factors, store] connection -> SecondFactors.Outcome in
            let outcome = try await factors.spend(request.code, user: user, on: connection)
            guard case .spent = outcome else { return outcome }
            try await store.remove(user, on: connection)
            return outcome
        }
        try await factors.settle(outcome, to: "turn MFA off", tenant: tenant, user: user, call: call)
        await factors.audited(.mfaDisabled, about: user, in: tenant, call: call)
        await notices.send(.mfaDisabled, to: user, call: call)
        return Rampart_V1_MfaDisableReply()
    }

    /// MFA-6: an owner or admin of the calling tenant turns another member's MFA off (an owner's
    /// only by an owner; only in the member's home tenant), for a member who lost both phone and
    /// backup codes; audited in the tenant.
    func reset(_ request: Rampart_V1_MfaResetRequest, call: CallContext) async throws -> Rampart_V1_MfaResetReply {
        let (tenant, admin) = try call.signedIn()
        guard request.userID.utf8.count == 36, let target = UUID(uuidString: request.userID) else {
            throw RampartError(.invalidArgument, "user_id must be a member's user ID", details: ["field": "user_id"])
        }
        // A stolen session must not shed its second factor: one's own MFA goes off only with
        // the proof DELETE /v1/auth/mfa asks for.
        guard target != admin else {
            throw RampartError(
                .permissionDenied,
                "your own MFA is turned off with DELETE /v1/auth/mfa and a current code or your password, not by an admin reset",
                details: ["reason": "own_account"]
            )
        }
        guard let adminMember = try await memberships.activeMember(admin, tenant: tenant), [.owner, .admin].contains(adminMember.role) else {
            throw RampartError(.permissionDenied, "only an owner or admin resets a member's MFA")
        }
        guard let member = try await memberships.activeMember(target, tenant: tenant) else {
            throw RampartError(.notFound, "no such member", details: ["field": "user_id"])
        }
        guard member.role != .owner || adminMember.role == .owner else {
            throw RampartError(.permissionDenied, "only an owner resets an owner's MFA")
        }
        // MFA belongs to the person (one authenticator for all their tenants), so an admin of a
        // tenant they only joined must not turn it off everywhere: only their home tenant's can.
        guard try await users.homeTenant(of: target) == tenant.hex else {
            throw RampartError(
                .permissionDenied,
                "this member's MFA is theirs in every organization they belong to: only their home organization's owners and admins reset it",
                details: ["reason": "not_home_tenant"]
            )
        }
        let removed = try await store.database.transaction { [store] in try await store.remove(target, on: $0) }
        if removed {
            await factors.audited(.mfaReset, about: target, in: tenant, call: call)
            await notices.send(.mfaReset, to: target, call: call, values: ["tenant": tenant.hex])
        }
        var reply = Rampart_V1_MfaResetReply()
        reply.reset = removed
        return reply
    }
}
