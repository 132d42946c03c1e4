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
    public static func health(_ service: ServiceName) -> String {
        operation("health", of: service)
    }

    /// webhooks' operations (SPEC section 9).
    public enum Webhooks {
        public static let createEndpoint = Subjects.operation("create_endpoint", of: .webhooks)
        public static let pauseDeliveries = Subjects.operation("pause_deliveries", of: .webhooks)
        public static let listEndpoints = Subjects.operation("list_endpoints", of: .webhooks)
        public static let getEndpoint = Subjects.operation("get_endpoint", of: .webhooks)
        public static let updateEndpoint = Subjects.operation("update_endpoint", of: .webhooks)
        public static let deleteEndpoint = Subjects.operation("delete_endpoint", of: .webhooks)
        public static let rotateSecret = Subjects.operation("rotate_secret", of: .webhooks)
        public static let listDeliveries = Subjects.operation("list_deliveries", of: .webhooks)
        public static let redeliver = Subjects.operation("redeliver", of: .webhooks)
        public static let testEndpoint = Subjects.operation("test_endpoint", of: .webhooks)
        public static let receiveInbound = Subjects.operation("receive_inbound", of: .webhooks)
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
        public static let check = Subjects.operation("check", of: .rateLimit)
        public static let batchCheck = Subjects.operation("batch_check", of: .rateLimit)
        public static let reportFailure = Subjects.operation("report_failure", of: .rateLimit)
        /// A subject of its own, so NATS can grant it to auth alone: giving units back undoes a limit.
        public static let refund = Subjects.operation("refund", of: .rateLimit)
        public static let listBans = Subjects.operation("list_bans", of: .rateLimit)
        public static let unban = Subjects.operation("unban", of: .rateLimit)

        /// Key-value bucket of the counters: `<policy>.<key digest>`.
        public static let countersBucket = "rampart_ratelimit"
        /// Key-value bucket of bans, watched by every rate-limit replica and the gateway.
        public static let bansBucket = "rampart_bans"
    }

    /// permissions' operations (SPEC section 6).
    public enum Permissions {
        public static let check = Subjects.operation("check", of: .permissions)
        public static let batchCheck = Subjects.operation("batch_check", of: .permissions)
        public static let listPermissions = Subjects.operation("list_permissions", of: .permissions)
        public static let listAccess = Subjects.operation("list_access", of: .permissions)
        public static let setResourceRole = Subjects.operation("set_resource_role", of: .permissions)
        public static let removeResourceRole = Subjects.operation("remove_resource_role", of: .permissions)
        public static let syncMember = Subjects.operation("sync_member", of: .permissions)
        public static let accessReview = Subjects.operation("access_review", of: .permissions)
        public static let completeAccessReview = Subjects.operation("complete_access_review", of: .permissions)

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
        public static let verify = Subjects.operation("verify", of: .audit)
        public static let query = Subjects.operation("query", of: .audit)
        public static let export = Subjects.operation("export", of: .audit)
    }

    /// auth's operations (SPEC sections 1-4).
    public enum Auth {
        public static let register = Subjects.operation("register", of: .auth)
        public static let login = Subjects.operation("login", of: .auth)
        public static let refresh = Subjects.operation("refresh", of: .auth)
        public static let logout = Subjects.operation("logout", of: .auth)
        public static let jwks = Subjects.operation("jwks", of: .auth)
        public static let listSessions = Subjects.operation("list_sessions", of: .auth)
        public static let revokeSessions = Subjects.operation("revoke_sessions", of: .auth)
        public static let changePassword = Subjects.operation("change_password", of: .auth)
        public static let requestPasswordReset = Subjects.operation("request_password_reset", of: .auth)
        public static let confirmPasswordReset = Subjects.operation("confirm_password_reset", of: .auth)
        public static let verifyEmail = Subjects.operation("verify_email", of: .auth)
        public static let loginMFA = Subjects.operation("login_mfa", of: .auth)
        public static let loginMFAEnroll = Subjects.operation("login_mfa_enroll", of: .auth)
        public static let mfaEnroll = Subjects.operation("mfa_enroll", of: .auth)
        public static let mfaConfirm = Subjects.operation("mfa_confirm", of: .auth)
        public static let mfaStatus = Subjects.operation("mfa_status", of: .auth)
        public static let mfaRegenerateBackupCodes = Subjects.operation("mfa_regenerate_backup_codes", of: .auth)
        public static let mfaDisable = Subjects.operation("mfa_disable", of: .auth)
        public static let mfaReset = Subjects.operation("mfa_reset", of: .auth)
        public static let revokeCredentials = Subjects.operation("revoke_credentials", of: .auth)
        public static let isolateUser = Subjects.operation("isolate_user", of: .auth)
        public static let liftUserIsolation = Subjects.operation("lift_user_isolation", of: .auth)
        public static let createAPIKey = Subjects.operation("create_api_key", of: .auth)
        public static let listAPIKeys = Subjects.operation("list_api_keys", of: .auth)
        public static let revokeAPIKey = Subjects.operation("revoke_api_key", of: .auth)
        public static let rotateAPIKey = Subjects.operation("rotate_api_key", of: .auth)
        public static let verifyAPIKey = Subjects.operation("verify_api_key", of: .auth)
        public static let join = Subjects.operation("join", of: .auth)
        public static let switchTenant = Subjects.operation("switch_tenant", of: .auth)
        public static let stepUp = Subjects.operation("step_up", of: .auth)
        public static let resendEmailVerification = Subjects.operation("resend_email_verification", of: .auth)

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
        public static let admitRegistration = Subjects.operation("admit_registration", of: .tenants)
        public static let register = Subjects.operation("register", of: .tenants)
        public static let get = Subjects.operation("get", of: .tenants)
        public static let update = Subjects.operation("update", of: .tenants)
        public static let delete = Subjects.operation("delete", of: .tenants)
        public static let getIPAllowlist = Subjects.operation("get_ip_allowlist", of: .tenants)
        public static let setIPAllowlist = Subjects.operation("set_ip_allowlist", of: .tenants)
        public static let inviteMember = Subjects.operation("invite_member", of: .tenants)
        public static let getInvitation = Subjects.operation("get_invitation", of: .tenants)
        public static let acceptInvitation = Subjects.operation("accept_invitation", of: .tenants)
        public static let confirmOwnerEmail = Subjects.operation("confirm_owner_email", of: .tenants)
        public static let isolateMember = Subjects.operation("isolate_member", of: .tenants)
        public static let liftMemberIsolation = Subjects.operation("lift_member_isolation", of: .tenants)
        public static let isolateTenant = Subjects.operation("isolate_tenant", of: .tenants)
        public static let liftTenantIsolation = Subjects.operation("lift_tenant_isolation", of: .tenants)
        public static let cancelInvitation = Subjects.operation("cancel_invitation", of: .tenants)
        public static let resendInvitation = Subjects.operation("resend_invitation", of: .tenants)
        public static let listMemberships = Subjects.operation("list_memberships", of: .tenants)
        public static let listMembers = Subjects.operation("list_members", of: .tenants)
        public static let getMember = Subjects.operation("get_member", of: .tenants)
        public static let updateMember = Subjects.operation("update_member", of: .tenants)
        public static let removeMember = Subjects.operation("remove_member", of: .tenants)
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
