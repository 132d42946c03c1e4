import RampartModels
import RateLimitKit
import ServiceKit

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// What every step that opens or renews a session checks first: the client's rate limits
/// (AUTH-5), the tenant's IP allowlist (TEN-11) and password rotation (AUTH-9).
struct SignInGuard: Sendable {
    let rateLimit: RateLimitClient
    let audit: AuditPublisher

    /// One answer for every way a sign-in can fail on the credentials (AUTH-5).
    static let invalidCredentials = RampartError(.unauthenticated, "invalid email or password")

    /// A sign-in that failed before anyone was known: a failure for fail2ban (RL-3), and the
    /// audit event with the address tried, `action` (`login.failed`, `sso.login_failed`) and why.
    func failed(
        _ action: AuditAction,
        email: String,
        tenant: TenantID?,
        target: (type: String, id: String),
        reason: String,
        call: CallContext
    ) async {
        await rateLimit.reportFailure(.login, context: call)
        var anonymous = Rampart_V1_AuditActor()
        anonymous.kind = .anonymous
        anonymous.email = email
        var event = Rampart_V1_AuditEvent(action, tenant: tenant, target: target, call: call, actor: anonymous, service: .auth)
        event.outcome = .failure
        event.reason = reason
        await audit.record(event)
    }

    /// The client's address, which every sign-in step is limited by.
    func clientAddress(_ call: CallContext) throws -> String {
        guard let ip = call.clientIP else {
            throw RampartError(.invalidArgument, "the client's IP address is required to sign in", details: ["field": "client_ip"])
        }
        return ip
    }

    /// One call under `policy`, refused past its limit with `refusal` and when to try again.
    func limit(_ policy: String, key: String, call: CallContext, refusal: String = "too many sign-in attempts") async throws {
        switch await rateLimit.check(policy: policy, key: key, context: call) {
        case .allowed, .allowedUnchecked: return
        case .refused(let decision):
            throw decision.refusal(refusal)
        case .unavailable:
            throw RampartError(.unavailable, "sign-in is unavailable right now: try again shortly")
        }
    }

    /// TEN-11 for a session about to open or refresh in `tenant`: the client's address must be
    /// in the tenant's allowlist (when it has one). A refusal is audited in the tenant's log and
    /// answered with `refusal` (by default a 403 that says why).
    func admitAddress(
        _ policies: Rampart_V1_TenantPolicies,
        tenant: TenantID,
        user: UUID,
        call: CallContext,
        refusal: RampartError = RampartError(.permissionDenied, "your address is not in this organization's IP allowlist")
    ) async throws {
        if Self.allowlistAdmits(policies, call: call) { return }
        var event = Rampart_V1_AuditEvent(
            .ipAllowlistDenied,
            tenant: tenant,
            target: ("user", user.uuidString.lowercased()),
            call: call,
            actor: Rampart_V1_AuditActor(principal: Principal(user: user)),
            service: .auth
        )
        event.outcome = .failure
        event.reason = "address \(call.clientIP ?? "unknown") is outside the tenant's IP allowlist"
        await audit.record(event)
        throw refusal
    }

    /// SSO-2 for a way in other than the tenant's SSO (a password, Google): whether `user` may
    /// take it here. Where SSO is enforced only a break-glass owner may, and each time is recorded.
    func admitWithoutSSO(
        _ policies: Rampart_V1_TenantPolicies,
        role: Rampart_V1_MemberRole,
        tenant: TenantID,
        user: UUID,
        email: String,
        call: CallContext
    ) async -> Bool {
        guard policies.ssoEnforced else { return true }
        // Named, and still an owner: one demoted since is no longer anyone's way in.
        guard policies.admitsWithoutSSO(user, role: role) else { return false }
        var event = Rampart_V1_AuditEvent(
            .ssoBreakGlassUsed,
            tenant: tenant,
            target: ("user", user.uuidString.lowercased()),
            call: call,
            service: .auth
        )
        event.actor.email = email
        await audit.record(event)
        return true
    }

    static func allowlistAdmits(_ policies: Rampart_V1_TenantPolicies, call: CallContext) -> Bool {
        guard !policies.ipAllowlist.isEmpty else { return true }
        guard let ip = call.clientIP, let client = IPNetwork(address: ip) else { return false }
        return policies.ipAllowlist.contains(where: { IPNetwork(cidr: $0)?.contains(client) == true })
    }

    /// AUTH-9: a tenant that rotates passwords every N days refuses a password older than that,
    /// after it was verified (so the answer says nothing to someone without it).
    static func checkRotation(_ user: UserStore.User, policies: Rampart_V1_TenantPolicies) throws {
        let days = Int64(policies.passwordRotationDays)
        guard days > 0, WallClock.milliseconds() - user.passwordChangedAtMs > days * 86_400_000 else { return }
        throw RampartError(
            .failedPrecondition,
            "your password is older than this organization allows (\(days) days): reset it to sign in",
            details: ["reason": "password_expired"]
        )
    }
}
