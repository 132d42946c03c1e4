public import SwiftProtobuf

/// A request/reply operation: its subject, the request it takes and the reply it answers, so
/// that a caller and a handler of one operation cannot disagree on either.
public struct RPCEndpoint<Request: SwiftProtobuf.Message, Reply: SwiftProtobuf.Message>: Sendable {
    public let subject: String

    /// `rampart.v1.<service>.<operation>`.
    public init(_ operation: String, of service: ServiceName) {
        subject = Subjects.operation(operation, of: service)
    }

    /// Any subject (tests' probe handlers).
    public init(subject: String) {
        self.subject = subject
    }
}

/// NATS subject names. `proto/SUBJECTS.md` lists every subject with its publisher, its
/// subscribers and its transport; keep the two in step.
public enum Subjects {
    /// Prefix of every request/reply subject: `rampart.v1.<service>.<operation>`.
    public static let requestPrefix = "rampart.v1"

    /// A request/reply operation of a service.
    public static func operation(_ operation: String, of service: ServiceName) -> String {
        "\(requestPrefix).\(service.subjectToken).\(operation)"
    }

    /// Health of one service (any replica answers): `rampart.v1.<service>.health`.
    public static func health(_ service: ServiceName) -> RPCEndpoint<Rampart_V1_HealthRequest, Rampart_V1_HealthReply> {
        RPCEndpoint("health", of: service)
    }

    /// webhooks' operations (SPEC section 9).
    public enum Webhooks {
        public static let createEndpoint = RPCEndpoint<Rampart_V1_CreateEndpointRequest, Rampart_V1_CreateEndpointReply>(
            "create_endpoint",
            of: .webhooks
        )
        public static let pauseDeliveries = RPCEndpoint<Rampart_V1_PauseDeliveriesRequest, Rampart_V1_PauseDeliveriesReply>(
            "pause_deliveries",
            of: .webhooks
        )
        public static let listEndpoints = RPCEndpoint<Rampart_V1_ListEndpointsRequest, Rampart_V1_ListEndpointsReply>("list_endpoints", of: .webhooks)
        public static let getEndpoint = RPCEndpoint<Rampart_V1_EndpointRequest, Rampart_V1_EndpointReply>("get_endpoint", of: .webhooks)
        public static let updateEndpoint = RPCEndpoint<Rampart_V1_UpdateEndpointRequest, Rampart_V1_EndpointReply>("update_endpoint", of: .webhooks)
        public static let deleteEndpoint = RPCEndpoint<Rampart_V1_EndpointRequest, Rampart_V1_EndpointReply>("delete_endpoint", of: .webhooks)
        public static let rotateSecret = RPCEndpoint<Rampart_V1_RotateSecretRequest, Rampart_V1_CreateEndpointReply>("rotate_secret", of: .webhooks)
        public static let listDeliveries = RPCEndpoint<Rampart_V1_ListDeliveriesRequest, Rampart_V1_ListDeliveriesReply>(
            "list_deliveries",
            of: .webhooks
        )
        public static let redeliver = RPCEndpoint<Rampart_V1_RedeliverRequest, Rampart_V1_DeliveryReply>("redeliver", of: .webhooks)
        public static let testEndpoint = RPCEndpoint<Rampart_V1_TestEndpointRequest, Rampart_V1_DeliveryReply>("test_endpoint", of: .webhooks)
        public static let receiveInbound = RPCEndpoint<Rampart_V1_InboundRequest, Rampart_V1_InboundReply>("receive_inbound", of: .webhooks)
    }

    /// Verified events from outside providers (WH-5): `rampart.events.inbound.<provider>`.
    public enum InboundEvents {
        public static func received(from provider: String) -> String { "\(eventsPrefix).inbound.\(provider)" }
        /// A provider's name, which is also its subject token: 1 to 32 of `a-z`, `0-9`, `-`, `_`.
        public static func isProviderName(_ name: String) -> Bool {
            (1...32).contains(name.utf8.count)
                && name.utf8.allSatisfy { (0x61...0x7A).contains($0) || (0x30...0x39).contains($0) || $0 == 0x2D || $0 == 0x5F }
        }
        public static let all = "\(eventsPrefix).inbound.>"
    }

    /// rate-limit's operations (SPEC section 8).
    public enum RateLimit {
        public static let check = RPCEndpoint<Rampart_V1_RateLimitCheckRequest, Rampart_V1_RateLimitDecision>("check", of: .rateLimit)
        public static let batchCheck = RPCEndpoint<Rampart_V1_RateLimitBatchCheckRequest, Rampart_V1_RateLimitBatchCheckReply>(
            "batch_check",
            of: .rateLimit
        )
        public static let reportFailure = RPCEndpoint<Rampart_V1_ReportFailureRequest, Rampart_V1_ReportFailureReply>(
            "report_failure",
            of: .rateLimit
        )
        /// A subject of its own, so NATS can grant it to auth alone: giving units back undoes a limit.
        public static let refund = RPCEndpoint<Rampart_V1_RateLimitCheckRequest, Rampart_V1_RateLimitDecision>("refund", of: .rateLimit)
        public static let listBans = RPCEndpoint<Rampart_V1_ListBansRequest, Rampart_V1_ListBansReply>("list_bans", of: .rateLimit)
        public static let unban = RPCEndpoint<Rampart_V1_UnbanRequest, Rampart_V1_UnbanReply>("unban", of: .rateLimit)

        /// Key-value bucket of the counters: `<policy>.<key digest>`.
        public static let countersBucket = "rampart_ratelimit"
        /// Key-value bucket of bans, watched by every rate-limit replica and the gateway.
        public static let bansBucket = "rampart_bans"
    }

    /// permissions' operations (SPEC section 6).
    public enum Permissions {
        public static let check = RPCEndpoint<Rampart_V1_CheckRequest, Rampart_V1_CheckReply>("check", of: .permissions)
        public static let batchCheck = RPCEndpoint<Rampart_V1_BatchCheckRequest, Rampart_V1_BatchCheckReply>("batch_check", of: .permissions)
        public static let listPermissions = RPCEndpoint<Rampart_V1_ListPermissionsRequest, Rampart_V1_ListPermissionsReply>(
            "list_permissions",
            of: .permissions
        )
        public static let listAccess = RPCEndpoint<Rampart_V1_ListAccessRequest, Rampart_V1_ListAccessReply>("list_access", of: .permissions)
        public static let setResourceRole = RPCEndpoint<Rampart_V1_SetResourceRoleRequest, Rampart_V1_PermissionsWriteReply>(
            "set_resource_role",
            of: .permissions
        )
        public static let removeResourceRole = RPCEndpoint<Rampart_V1_RemoveResourceRoleRequest, Rampart_V1_PermissionsWriteReply>(
            "remove_resource_role",
            of: .permissions
        )
        public static let syncMember = RPCEndpoint<Rampart_V1_SyncMemberRequest, Rampart_V1_SyncMemberReply>("sync_member", of: .permissions)
        public static let accessReview = RPCEndpoint<Rampart_V1_AccessReviewRequest, Rampart_V1_AccessReviewReply>("access_review", of: .permissions)
        public static let completeAccessReview = RPCEndpoint<Rampart_V1_CompleteAccessReviewRequest, Rampart_V1_AccessReviewReply>(
            "complete_access_review",
            of: .permissions
        )

        /// Key-value bucket of each tenant's newest policy revision (key: tenant, value: the
        /// revision in decimal), watched by every permissions replica and gateway (PERM-6).
        public static let revisionsBucket = "rampart_policy_revisions"

        /// A revisions bucket entry's value.
        public static func revisionValue(_ revision: UInt64) -> [UInt8] { Array(String(revision).utf8) }

        /// A revisions bucket entry, read back; nil for anything malformed.
        public static func revision(key: String, value: [UInt8]) -> (tenant: TenantID, revision: UInt64)? {
            guard let tenant = TenantID(key), let revision = UInt64(String(decoding: value, as: UTF8.self)) else { return nil }
            return (tenant, revision)
        }
    }

    /// JetStream stream for domain events that must not be lost.
    public static let eventsStream = "RAMPART_EVENTS"
    public static let eventsPrefix = "rampart.events"

    /// audit's operations (SPEC section 7).
    public enum Audit {
        public static let verify = RPCEndpoint<Rampart_V1_AuditVerifyRequest, Rampart_V1_AuditVerifyReply>("verify", of: .audit)
        public static let query = RPCEndpoint<Rampart_V1_AuditQueryRequest, Rampart_V1_AuditQueryReply>("query", of: .audit)
        public static let export = RPCEndpoint<Rampart_V1_AuditExportRequest, Rampart_V1_AuditExportReply>("export", of: .audit)
    }

    /// auth's operations (SPEC sections 1-4).
    public enum Auth {
        public static let register = RPCEndpoint<Rampart_V1_RegisterRequest, Rampart_V1_RegisterReply>("register", of: .auth)
        public static let login = RPCEndpoint<Rampart_V1_LoginRequest, Rampart_V1_TokenReply>("login", of: .auth)
        public static let refresh = RPCEndpoint<Rampart_V1_RefreshRequest, Rampart_V1_TokenReply>("refresh", of: .auth)
        public static let logout = RPCEndpoint<Rampart_V1_LogoutRequest, Rampart_V1_LogoutReply>("logout", of: .auth)
        public static let jwks = RPCEndpoint<Rampart_V1_JwksRequest, Rampart_V1_JwksReply>("jwks", of: .auth)
        public static let listSessions = RPCEndpoint<Rampart_V1_ListSessionsRequest, Rampart_V1_ListSessionsReply>("list_sessions", of: .auth)
        public static let revokeSessions = RPCEndpoint<Rampart_V1_RevokeSessionsRequest, Rampart_V1_RevokeSessionsReply>("revoke_sessions", of: .auth)
        public static let changePassword = RPCEndpoint<Rampart_V1_ChangePasswordRequest, Rampart_V1_ChangePasswordReply>("change_password", of: .auth)
        public static let requestPasswordReset = RPCEndpoint<Rampart_V1_RequestPasswordResetRequest, Rampart_V1_RequestPasswordResetReply>(
            "request_password_reset",
            of: .auth
        )
        public static let confirmPasswordReset = RPCEndpoint<Rampart_V1_ConfirmPasswordResetRequest, Rampart_V1_ConfirmPasswordResetReply>(
            "confirm_password_reset",
            of: .auth
        )
        public static let verifyEmail = RPCEndpoint<Rampart_V1_VerifyEmailRequest, Rampart_V1_VerifyEmailReply>("verify_email", of: .auth)
        public static let loginMFA = RPCEndpoint<Rampart_V1_LoginMfaRequest, Rampart_V1_TokenReply>("login_mfa", of: .auth)
        public static let loginMFAEnroll = RPCEndpoint<Rampart_V1_LoginMfaEnrollRequest, Rampart_V1_MfaEnrollReply>("login_mfa_enroll", of: .auth)
        public static let mfaEnroll = RPCEndpoint<Rampart_V1_MfaEnrollRequest, Rampart_V1_MfaEnrollReply>("mfa_enroll", of: .auth)
        public static let mfaConfirm = RPCEndpoint<Rampart_V1_MfaConfirmRequest, Rampart_V1_MfaConfirmReply>("mfa_confirm", of: .auth)
        public static let mfaStatus = RPCEndpoint<Rampart_V1_MfaStatusRequest, Rampart_V1_MfaStatusReply>("mfa_status", of: .auth)
        public static let mfaRegenerateBackupCodes = RPCEndpoint<Rampart_V1_MfaProofRequest, Rampart_V1_MfaConfirmReply>(
            "mfa_regenerate_backup_codes",
            of: .auth
        )
        public static let mfaDisable = RPCEndpoint<Rampart_V1_MfaProofRequest, Rampart_V1_MfaDisableReply>("mfa_disable", of: .auth)
        public static let mfaReset = RPCEndpoint<Rampart_V1_MfaResetRequest, Rampart_V1_MfaResetReply>("mfa_reset", of: .auth)
        public static let revokeCredentials = RPCEndpoint<Rampart_V1_RevokeCredentialsRequest, Rampart_V1_RevokeCredentialsReply>(
            "revoke_credentials",
            of: .auth
        )
        public static let isolateUser = RPCEndpoint<Rampart_V1_IsolateUserRequest, Rampart_V1_UserIsolationReply>("isolate_user", of: .auth)
        public static let liftUserIsolation = RPCEndpoint<Rampart_V1_LiftUserIsolationRequest, Rampart_V1_UserIsolationReply>(
            "lift_user_isolation",
            of: .auth
        )
        public static let createAPIKey = RPCEndpoint<Rampart_V1_CreateApiKeyRequest, Rampart_V1_CreateApiKeyReply>("create_api_key", of: .auth)
        public static let listAPIKeys = RPCEndpoint<Rampart_V1_ListApiKeysRequest, Rampart_V1_ListApiKeysReply>("list_api_keys", of: .auth)
        public static let revokeAPIKey = RPCEndpoint<Rampart_V1_RevokeApiKeyRequest, Rampart_V1_RevokeApiKeyReply>("revoke_api_key", of: .auth)
        public static let rotateAPIKey = RPCEndpoint<Rampart_V1_RotateApiKeyRequest, Rampart_V1_CreateApiKeyReply>("rotate_api_key", of: .auth)
        public static let verifyAPIKey = RPCEndpoint<Rampart_V1_VerifyApiKeyRequest, Rampart_V1_VerifyApiKeyReply>("verify_api_key", of: .auth)
        public static let createSSOConnection = RPCEndpoint<Rampart_V1_CreateSsoConnectionRequest, Rampart_V1_SsoConnectionReply>(
            "create_sso_connection",
            of: .auth
        )
        public static let listSSOConnections = RPCEndpoint<Rampart_V1_ListSsoConnectionsRequest, Rampart_V1_ListSsoConnectionsReply>(
            "list_sso_connections",
            of: .auth
        )
        public static let getSSOConnection = RPCEndpoint<Rampart_V1_SsoConnectionRequest, Rampart_V1_SsoConnectionReply>(
            "get_sso_connection",
            of: .auth
        )
        public static let updateSSOConnection = RPCEndpoint<Rampart_V1_UpdateSsoConnectionRequest, Rampart_V1_SsoConnectionReply>(
            "update_sso_connection",
            of: .auth
        )
        public static let addSSODomain = RPCEndpoint<Rampart_V1_AddSsoDomainRequest, Rampart_V1_SsoDomainReply>("add_sso_domain", of: .auth)
        public static let listSSODomains = RPCEndpoint<Rampart_V1_ListSsoDomainsRequest, Rampart_V1_ListSsoDomainsReply>(
            "list_sso_domains",
            of: .auth
        )
        public static let verifySSODomain = RPCEndpoint<Rampart_V1_SsoDomainRequest, Rampart_V1_SsoDomainReply>("verify_sso_domain", of: .auth)
        public static let removeSSODomain = RPCEndpoint<Rampart_V1_SsoDomainRequest, Rampart_V1_SsoDomainReply>("remove_sso_domain", of: .auth)
        public static let ssoStatus = RPCEndpoint<Rampart_V1_SsoStatusRequest, Rampart_V1_SsoStatusReply>("sso_status", of: .auth)
        public static let ssoStart = RPCEndpoint<Rampart_V1_SsoStartRequest, Rampart_V1_SsoStartReply>("sso_start", of: .auth)
        public static let ssoCallback = RPCEndpoint<Rampart_V1_SsoCallbackRequest, Rampart_V1_SsoCallbackReply>("sso_callback", of: .auth)
        public static let googleStart = RPCEndpoint<Rampart_V1_GoogleStartRequest, Rampart_V1_SsoStartReply>("google_start", of: .auth)
        public static let linkGoogle = RPCEndpoint<Rampart_V1_LinkGoogleRequest, Rampart_V1_SsoStartReply>("link_google", of: .auth)
        public static let listIdentities = RPCEndpoint<Rampart_V1_ListIdentitiesRequest, Rampart_V1_ListIdentitiesReply>("list_identities", of: .auth)
        public static let unlinkGoogle = RPCEndpoint<Rampart_V1_UnlinkGoogleRequest, Rampart_V1_UnlinkGoogleReply>("unlink_google", of: .auth)
        public static let deleteSSOConnection = RPCEndpoint<Rampart_V1_SsoConnectionRequest, Rampart_V1_SsoConnectionReply>(
            "delete_sso_connection",
            of: .auth
        )
        public static let join = RPCEndpoint<Rampart_V1_JoinRequest, Rampart_V1_JoinReply>("join", of: .auth)
        public static let switchTenant = RPCEndpoint<Rampart_V1_SwitchTenantRequest, Rampart_V1_TokenReply>("switch_tenant", of: .auth)
        public static let stepUp = RPCEndpoint<Rampart_V1_StepUpRequest, Rampart_V1_TokenReply>("step_up", of: .auth)
        public static let resendEmailVerification = RPCEndpoint<Rampart_V1_ResendEmailVerificationRequest, Rampart_V1_ResendEmailVerificationReply>(
            "resend_email_verification",
            of: .auth
        )

        /// Key-value bucket of sessions and API keys ended early, watched by every gateway.
        public static let revocationsBucket = "rampart_revocations"
        public static func revocationKey(_ kind: Rampart_V1_Revocation.Kind, tenant: TenantID, id: String) -> String {
            "\(kind == .apiKey ? "api_key" : "session").\(tenant.hex).\(id)"
        }
    }

    /// Messages for the mail sender (AUTH-10): `rampart.events.mail.<service>`, one subject per
    /// publisher so that each service's NATS user may speak only for itself.
    public enum MailEvents {
        public static func requested(by service: ServiceName) -> String { prefix + service.subjectToken }
        public static let all = prefix + ">"
        /// The publisher's token of a request's subject (`auth` of `rampart.events.mail.auth`).
        public static func publisher(of subject: String) -> String { subject.hasPrefix(prefix) ? String(subject.dropFirst(prefix.count)) : "" }
        static let prefix = "\(eventsPrefix).mail."
    }

    /// tenants' operations (SPEC section 5).
    public enum Tenants {
        public static let admitRegistration = RPCEndpoint<Rampart_V1_AdmitRegistrationRequest, Rampart_V1_AdmitRegistrationReply>(
            "admit_registration",
            of: .tenants
        )
        public static let register = RPCEndpoint<Rampart_V1_RegisterTenantRequest, Rampart_V1_RegisterTenantReply>("register", of: .tenants)
        public static let get = RPCEndpoint<Rampart_V1_GetTenantRequest, Rampart_V1_Tenant>("get", of: .tenants)
        public static let update = RPCEndpoint<Rampart_V1_UpdateTenantRequest, Rampart_V1_Tenant>("update", of: .tenants)
        public static let delete = RPCEndpoint<Rampart_V1_DeleteTenantRequest, Rampart_V1_Tenant>("delete", of: .tenants)
        public static let getIPAllowlist = RPCEndpoint<Rampart_V1_GetIpAllowlistRequest, Rampart_V1_IpAllowlist>("get_ip_allowlist", of: .tenants)
        public static let setIPAllowlist = RPCEndpoint<Rampart_V1_IpAllowlist, Rampart_V1_IpAllowlist>("set_ip_allowlist", of: .tenants)
        public static let inviteMember = RPCEndpoint<Rampart_V1_InviteMemberRequest, Rampart_V1_InviteMemberReply>("invite_member", of: .tenants)
        public static let getInvitation = RPCEndpoint<Rampart_V1_GetInvitationRequest, Rampart_V1_InvitationPreview>("get_invitation", of: .tenants)
        public static let provisionMember = RPCEndpoint<Rampart_V1_ProvisionMemberRequest, Rampart_V1_ProvisionMemberReply>(
            "provision_member",
            of: .tenants
        )
        public static let acceptInvitation = RPCEndpoint<Rampart_V1_AcceptInvitationRequest, Rampart_V1_AcceptInvitationReply>(
            "accept_invitation",
            of: .tenants
        )
        public static let confirmOwnerEmail = RPCEndpoint<Rampart_V1_ConfirmOwnerEmailRequest, Rampart_V1_ConfirmOwnerEmailReply>(
            "confirm_owner_email",
            of: .tenants
        )
        public static let isolateMember = RPCEndpoint<Rampart_V1_IsolateMemberRequest, Rampart_V1_IsolationReply>("isolate_member", of: .tenants)
        public static let liftMemberIsolation = RPCEndpoint<Rampart_V1_LiftMemberIsolationRequest, Rampart_V1_IsolationReply>(
            "lift_member_isolation",
            of: .tenants
        )
        public static let isolateTenant = RPCEndpoint<Rampart_V1_IsolateTenantRequest, Rampart_V1_IsolationReply>("isolate_tenant", of: .tenants)
        public static let liftTenantIsolation = RPCEndpoint<Rampart_V1_LiftTenantIsolationRequest, Rampart_V1_IsolationReply>(
            "lift_tenant_isolation",
            of: .tenants
        )
        public static let cancelInvitation = RPCEndpoint<Rampart_V1_CancelInvitationRequest, Rampart_V1_CancelInvitationReply>(
            "cancel_invitation",
            of: .tenants
        )
        public static let resendInvitation = RPCEndpoint<Rampart_V1_ResendInvitationRequest, Rampart_V1_InviteMemberReply>(
            "resend_invitation",
            of: .tenants
        )
        public static let listMemberships = RPCEndpoint<Rampart_V1_ListMembershipsRequest, Rampart_V1_ListMembershipsReply>(
            "list_memberships",
            of: .tenants
        )
        public static let listMembers = RPCEndpoint<Rampart_V1_ListMembersRequest, Rampart_V1_ListMembersReply>("list_members", of: .tenants)
        public static let getMember = RPCEndpoint<Rampart_V1_GetMemberRequest, Rampart_V1_MemberReply>("get_member", of: .tenants)
        public static let updateMember = RPCEndpoint<Rampart_V1_UpdateMemberRequest, Rampart_V1_MemberReply>("update_member", of: .tenants)
        public static let removeMember = RPCEndpoint<Rampart_V1_RemoveMemberRequest, Rampart_V1_MemberReply>("remove_member", of: .tenants)
    }

    /// Domain events of a tenant's life: the provisioning saga and its reverse, plan changes.
    public enum TenantEvents {
        public static let created = "\(eventsPrefix).tenant.created"
        public static let deleted = "\(eventsPrefix).tenant.deleted"
        public static let planChanged = "\(eventsPrefix).tenant.plan_changed"
        /// created, deleted and plan_changed: what every data-owning service follows, in order.
        public static let lifecycle = "\(eventsPrefix).tenant.*"
        public static func provisioned(by service: ServiceName) -> String {
            "\(eventsPrefix).tenant.provisioned.\(service.subjectToken)"
        }
        public static func deprovisioned(by service: ServiceName) -> String {
            "\(eventsPrefix).tenant.deprovisioned.\(service.subjectToken)"
        }
        /// Everything about tenants, the receipts included: what tenants' saga follows.
        public static let all = "\(eventsPrefix).tenant.>"
    }

    /// Domain events about members.
    public enum MemberEvents {
        public static let disabled = "\(eventsPrefix).member.disabled"
        public static let loggedIn = "\(eventsPrefix).member.logged_in"
        /// A member joined, changed role or status, or left: permissions re-reads it.
        public static let changed = "\(eventsPrefix).member.changed"
    }

    /// JetStream stream for audit events.
    public static let auditStream = "RAMPART_AUDIT"
    public static let auditPrefix = "rampart.audit"

    /// Where `service` publishes an audit event: `rampart.audit.<tenant hex>.<service>`, or
    /// `rampart.audit.platform.<service>` for events of no tenant. NATS lets each service
    /// publish under its own name alone, and `audit` stores an action only from the services
    /// that own it (`AuditAction.publishers`), so a service's credential cannot write another's
    /// events into a log.
    public static func audit(tenant: TenantID?, by service: ServiceName) -> String {
        "\(auditPrefix).\(tenant?.hex ?? "platform").\(service.subjectToken)"
    }

    /// The audit events of one tenant (or the platform's), from every service: a filter.
    public static func audit(tenant: TenantID?) -> String {
        "\(auditPrefix).\(tenant?.hex ?? "platform").*"
    }

    /// JetStream stream where audit publishes each chain's signed checkpoints as well as storing
    /// them: a copy that whoever can write audit's database cannot cut (issue 26, finding 14).
    public static let auditCheckpointsStream = "RAMPART_AUDIT_CHECKPOINTS"
    public static let auditCheckpointsPrefix = "rampart.audit_checkpoints"

    /// Where the checkpoints of one tenant's chain (or the platform's) are published.
    public static func auditCheckpoints(tenant: TenantID?) -> String {
        "\(auditCheckpointsPrefix).\(tenant?.hex ?? "platform")"
    }

    /// Every audit event: the stream's subjects and the filter of those who follow them all.
    /// The wider `>` (not `*.*`) keeps the stream's and its consumers' configuration as it was
    /// before the publisher's name was added, so a deployment's update changes neither.
    public static let auditAll = "\(auditPrefix).>"
}
