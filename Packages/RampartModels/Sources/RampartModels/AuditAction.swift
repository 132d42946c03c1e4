/// Every action an `AuditEvent` may name (SPEC AUD-1). `proto/AUDIT_ACTIONS.md` documents each
/// one; keep the two in step. The raw value is what is stored and queried: never rename one.
public enum AuditAction: String, Sendable, CaseIterable {
    case signup = "signup"
    case loginSucceeded = "login.succeeded"
    case loginFailed = "login.failed"
    case logout = "logout"
    case mfaEnrolled = "mfa.enrolled"
    case mfaDisabled = "mfa.disabled"
    case mfaReset = "mfa.reset"
    case mfaBackupCodeUsed = "mfa.backup_code_used"
    case mfaBackupCodesRegenerated = "mfa.backup_codes_regenerated"
    case mfaFailed = "mfa.failed"
    case mfaLocked = "mfa.locked"
    case passwordChanged = "password.changed"
    case passwordReset = "password.reset"
    case passwordProofFailed = "password.proof_failed"
    case sessionSteppedUp = "session.stepped_up"
    case permissionChanged = "permission.changed"
    case tenantCreated = "tenant.created"
    case tenantActivated = "tenant.activated"
    case tenantPolicyChanged = "tenant.policy_changed"
    case tenantDeleted = "tenant.deleted"
    case starterClaimLapsed = "tenant.starter_claim_lapsed"
    case memberInvited = "member.invited"
    case memberJoined = "member.joined"
    case invitationCancelled = "invitation.cancelled"
    case invitationResent = "invitation.resent"
    case memberEnabled = "member.enabled"
    case memberDisabled = "member.disabled"
    case memberRemoved = "member.removed"
    case memberIsolated = "member.isolated"
    case memberIsolationLifted = "member.isolation_lifted"
    case tenantIsolated = "tenant.isolated"
    case tenantIsolationLifted = "tenant.isolation_lifted"
    case userIsolated = "user.isolated"
    case userIsolationLifted = "user.isolation_lifted"
    case apiKeyCreated = "api_key.created"
    case apiKeyRevoked = "api_key.revoked"
    case apiKeyRotated = "api_key.rotated"
    /// Never recorded: `sso.connection_changed` names what changed. Kept, as names are never reused.
    case ssoChanged = "sso.changed"
    case ssoConnectionChanged = "sso.connection_changed"
    case ssoLoginFailed = "sso.login_failed"
    case ssoDomainChanged = "sso.domain_changed"
    case ssoBreakGlassUsed = "sso.break_glass_used"
    case identityLinked = "identity.linked"
    case identityUnlinked = "identity.unlinked"
    case dataExported = "data.exported"
    case planChanged = "plan.changed"
    case subscriptionCancelled = "subscription.cancelled"
    case accountDeletionRequested = "account.deletion_requested"
    case tenantDeletionRequested = "tenant.deletion_requested"
    case superAdminBypass = "super_admin.bypass"
    case accessReviewCompleted = "access_review.completed"
    case ipAllowlistDenied = "ip_allowlist.denied"
    case networkBanned = "network.banned"
    case networkUnbanned = "network.unbanned"
    case webhookEndpointChanged = "webhook_endpoint.changed"
    case webhookEndpointDisabled = "webhook_endpoint.disabled"
}

extension AuditAction {
    /// The services that may record this action (`proto/AUDIT_ACTIONS.md`, "published by").
    /// `audit` drops an event whose subject names another publisher: one service's NATS
    /// credential cannot put words in another's mouth.
    public var publishers: Set<ServiceName> {
        switch self {
        case .signup, .loginSucceeded, .loginFailed, .logout, .mfaEnrolled, .mfaDisabled, .mfaReset, .mfaBackupCodeUsed,
            .mfaBackupCodesRegenerated, .mfaFailed, .mfaLocked, .passwordChanged, .passwordReset, .passwordProofFailed,
            .sessionSteppedUp, .userIsolated, .userIsolationLifted, .apiKeyCreated, .apiKeyRevoked, .apiKeyRotated, .ssoChanged,
            .ssoConnectionChanged, .ssoLoginFailed, .ssoDomainChanged, .ssoBreakGlassUsed, .identityLinked, .identityUnlinked,
            .accountDeletionRequested:
            [.auth]
        case .tenantCreated, .tenantActivated, .tenantPolicyChanged, .tenantDeleted, .starterClaimLapsed, .memberInvited,
            .memberJoined, .invitationCancelled, .invitationResent, .memberEnabled, .memberDisabled, .memberRemoved,
            .memberIsolated, .memberIsolationLifted, .tenantIsolated, .tenantIsolationLifted, .planChanged,
            .subscriptionCancelled, .tenantDeletionRequested:
            [.tenants]
        // A tenant role (tenants), a resource role (permissions), the super-admin flag (auth).
        case .permissionChanged: [.tenants, .permissions, .auth]
        case .superAdminBypass, .accessReviewCompleted: [.permissions]
        case .dataExported: [.audit, .tenants]
        // The gateway's check of every request; auth's where sessions open.
        case .ipAllowlistDenied: [.gateway, .auth]
        case .networkBanned, .networkUnbanned: [.rateLimit]
        case .webhookEndpointChanged, .webhookEndpointDisabled: [.webhooks]
        }
    }
}
