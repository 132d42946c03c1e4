import Logging
import RampartModels
import RateLimitKit
import ServiceKit
import ServiceLifecycle
import TokenKit

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Registration, login, tokens, sessions, MFA, SSO and API keys (SPEC sections 1-4).
///
/// So far: registration (the user, then the tenant through `tenants`), sign-in with EdDSA access
/// tokens and rotating refresh tokens, sign-out, the JWKS, sessions, password change and reset,
/// email verification, API keys and TOTP MFA (enrolment, the sign-in step, backup codes, an
/// admin's reset, the tenant's MFA requirement). SSO follows.
public enum AuthService {
    public static func descriptor(settings: AuthSettings = AuthSettings()) -> ServiceDescriptor {
        // Reset requests queue their mail for `ResetMailSender`, one per service instance.
        let resetMails = ResetMailQueue()
        @Sendable func links(_ context: ServiceContext) throws -> AccountLinks {
            guard let database = context.database else { throw RampartError(.internal, "auth has no database") }
            return AccountLinks(
                database: database,
                jetStream: try context.nats.jetStream(),
                mailTokenKey: settings.mailTokenKey,
                logger: context.logger
            )
        }
        @Sendable func registration(_ context: ServiceContext, _ hasher: PasswordHasher) throws -> Registration {
            guard let database = context.database else { throw RampartError(.internal, "auth has no database") }
            let jetStream = try context.nats.jetStream()
            return Registration(
                settings: settings,
                hasher: hasher,
                database: database,
                rpc: RPCClient(connection: context.nats),
                audit: AuditPublisher(jetStream: jetStream, service: .auth, logger: context.logger),
                links: try links(context),
                notices: SecurityNotices(database: database, jetStream: jetStream, logger: context.logger),
                logger: context.logger
            )
        }
        @Sendable func signingKeys(_ context: ServiceContext) throws -> SigningKeys {
            guard let database = context.database else { throw RampartError(.internal, "auth has no database") }
            return SigningKeys(
                database: database,
                keyRing: settings.keyEncryption,
                rotationSeconds: settings.signingKeyRotationSeconds,
                overlapSeconds: settings.signingKeyOverlapSeconds,
                logger: context.logger
            )
        }
        @Sendable func sessions(_ context: ServiceContext, _ hasher: PasswordHasher) throws -> Sessions {
            guard let database = context.database else { throw RampartError(.internal, "auth has no database") }
            let jetStream = try context.nats.jetStream()
            return Sessions(
                settings: settings,
                hasher: hasher,
                keys: try signingKeys(context),
                database: database,
                rpc: RPCClient(connection: context.nats),
                rateLimit: RateLimitClient(connection: context.nats),
                jetStream: jetStream,
                audit: AuditPublisher(jetStream: jetStream, service: .auth, logger: context.logger),
                links: try links(context),
                resetMails: resetMails,
                notices: SecurityNotices(database: database, jetStream: jetStream, logger: context.logger),
                logger: context.logger
            )
        }
        // One pool per service instance, made when the first of routes or services asks.
        let hasher = Result { try PasswordHasher(algorithm: settings.passwordAlgorithm, threads: settings.hashThreads) }
        return ServiceDescriptor(
            name: .auth,
            migrations: AuthMigrations.set,
            prepare: { context in
                let jetStream = try context.nats.jetStream()
                // auth owns the revocations bucket; the streams are audit's and tenants'.
                _ = try await jetStream.ensureKeyValue(
                    .init(bucket: Subjects.Auth.revocationsBucket, ttl: .seconds(settings.revocationSeconds), maxValueSize: 1024)
                )
                try await AuditPublisher(jetStream: jetStream, service: .auth, logger: context.logger).requireStream()
                try await jetStream.requireStream(Subjects.eventsStream)
                // A signing key exists before the first sign-in is served.
                try await signingKeys(context).rotateIfDue()
                try await applySuperAdmins(settings.superAdmins, context)
            },
            routes: { router, context in
                let made = Result { try registration(context, try hasher.get()) }
                router.register(Subjects.Auth.register) { (request: Rampart_V1_RegisterRequest, call) in
                    try await made.get().register(request, call: call)
                }
                router.register(Subjects.Auth.join) { (request: Rampart_V1_JoinRequest, call) in
                    try await made.get().join(request, call: call)
                }
                let signIn = Result { try sessions(context, try hasher.get()) }
                router.register(Subjects.Auth.switchTenant, requires: [.tenant, .principal]) { (request: Rampart_V1_SwitchTenantRequest, call) in
                    try await signIn.get().switchTenant(request, call: call)
                }
                router.register(Subjects.Auth.stepUp, requires: [.tenant, .principal]) { (request: Rampart_V1_StepUpRequest, call) in
                    try await signIn.get().stepUp(request, call: call)
                }
                router.register(Subjects.Auth.resendEmailVerification, requires: [.tenant, .principal]) {
                    (request: Rampart_V1_ResendEmailVerificationRequest, call) in
                    try await signIn.get().resendEmailVerification(request, call: call)
                }
                router.register(Subjects.Auth.login) { (request: Rampart_V1_LoginRequest, call) in
                    try await signIn.get().login(request, call: call)
                }
                router.register(Subjects.Auth.refresh) { (request: Rampart_V1_RefreshRequest, call) in
                    try await signIn.get().refresh(request, call: call)
                }
                router.register(Subjects.Auth.logout, requires: [.tenant, .principal]) { (request: Rampart_V1_LogoutRequest, call) in
                    try await signIn.get().logout(request, call: call)
                }
                router.register(Subjects.Auth.listSessions, requires: [.tenant, .principal]) { (request: Rampart_V1_ListSessionsRequest, call) in
                    try await signIn.get().listSessions(request, call: call)
                }
                router.register(Subjects.Auth.revokeSessions, requires: [.tenant, .principal]) { (request: Rampart_V1_RevokeSessionsRequest, call) in
                    try await signIn.get().revokeSessions(request, call: call)
                }
                router.register(Subjects.Auth.changePassword, requires: [.tenant, .principal]) { (request: Rampart_V1_ChangePasswordRequest, call) in
                    try await signIn.get().changePassword(request, call: call)
                }
                router.register(Subjects.Auth.requestPasswordReset) { (request: Rampart_V1_RequestPasswordResetRequest, call) in
                    try await signIn.get().requestPasswordReset(request, call: call)
                }
                router.register(Subjects.Auth.confirmPasswordReset) { (request: Rampart_V1_ConfirmPasswordResetRequest, call) in
                    try await signIn.get().confirmPasswordReset(request, call: call)
                }
                router.register(Subjects.Auth.verifyEmail) { (request: Rampart_V1_VerifyEmailRequest, call) in
                    try await signIn.get().verifyEmail(request, call: call)
                }
                router.register(Subjects.Auth.loginMFA) { (request: Rampart_V1_LoginMfaRequest, call) in
                    try await signIn.get().loginMFA(request, call: call)
                }
                router.register(Subjects.Auth.loginMFAEnroll) { (request: Rampart_V1_LoginMfaEnrollRequest, call) in
                    try await signIn.get().enrollAtSignIn(request, call: call)
                }
                router.register(Subjects.Auth.mfaEnroll, requires: [.tenant, .principal]) { (request: Rampart_V1_MfaEnrollRequest, call) in
                    try await signIn.get().enrollTOTP(request, call: call)
                }
                router.register(Subjects.Auth.mfaConfirm, requires: [.tenant, .principal]) { (request: Rampart_V1_MfaConfirmRequest, call) in
                    try await signIn.get().confirmTOTP(request, call: call)
                }
                router.register(Subjects.Auth.mfaStatus, requires: [.tenant, .principal]) { (request: Rampart_V1_MfaStatusRequest, call) in
                    try await signIn.get().mfaStatus(request, call: call)
                }
                router.register(Subjects.Auth.mfaRegenerateBackupCodes, requires: [.tenant, .principal]) {
                    (request: Rampart_V1_MfaProofRequest, call) in
                    try await signIn.get().regenerateBackupCodes(request, call: call)
                }
                router.register(Subjects.Auth.mfaDisable, requires: [.tenant, .principal]) { (request: Rampart_V1_MfaProofRequest, call) in
                    try await signIn.get().disableMFA(request, call: call)
                }
                router.register(Subjects.Auth.mfaReset, requires: [.tenant, .principal]) { (request: Rampart_V1_MfaResetRequest, call) in
                    try await signIn.get().resetMFA(request, call: call)
                }
                router.register(Subjects.Auth.revokeCredentials, requires: [.tenant, .principal]) {
                    (request: Rampart_V1_RevokeCredentialsRequest, call) in
                    try await signIn.get().revokeCredentials(request, call: call)
                }
                router.register(Subjects.Auth.isolateUser, requires: .principal) { (request: Rampart_V1_IsolateUserRequest, call) in
                    try await signIn.get().isolateUser(request, call: call)
                }
                router.register(Subjects.Auth.liftUserIsolation, requires: .principal) { (request: Rampart_V1_LiftUserIsolationRequest, call) in
                    try await signIn.get().liftUserIsolation(request, call: call)
                }
                router.register(Subjects.Auth.createAPIKey, requires: [.tenant, .principal]) { (request: Rampart_V1_CreateApiKeyRequest, call) in
                    try await signIn.get().createAPIKey(request, call: call)
                }
                router.register(Subjects.Auth.listAPIKeys, requires: [.tenant, .principal]) { (request: Rampart_V1_ListApiKeysRequest, call) in
                    try await signIn.get().listAPIKeys(request, call: call)
                }
                router.register(Subjects.Auth.revokeAPIKey, requires: [.tenant, .principal]) { (request: Rampart_V1_RevokeApiKeyRequest, call) in
                    try await signIn.get().revokeAPIKey(request, call: call)
                }
                router.register(Subjects.Auth.rotateAPIKey, requires: [.tenant, .principal]) { (request: Rampart_V1_RotateApiKeyRequest, call) in
                    try await signIn.get().rotateAPIKey(request, call: call)
                }
                router.register(Subjects.Auth.verifyAPIKey) { (request: Rampart_V1_VerifyApiKeyRequest, call) in
                    try await signIn.get().verifyAPIKey(request, call: call)
                }
                router.register(Subjects.Auth.jwks) { (_: Rampart_V1_JwksRequest, _) in
                    var reply = Rampart_V1_JwksReply()
                    reply.json = try JWKS.render(try await signIn.get().keys.published())
                    return reply
                }
            },
            services: { context in
                guard context.database != nil else { return [] }
                return [
                    AbandonedRegistrations(registration: try registration(context, try hasher.get()), health: context.health, logger: context.logger),
                    KeyRotation(keys: try signingKeys(context), health: context.health, logger: context.logger),
                    DisabledMembers(sessions: try sessions(context, try hasher.get()), health: context.health),
                    ResetMailSender(queue: resetMails, links: try links(context), health: context.health, logger: context.logger),
                ]
            }
        )
    }
}

/// Gives the super-admin flag (PERM-3) to exactly the configured addresses whose owner has
/// verified them (so nobody gets it by registering the address first), and takes it from
/// everyone else: removing an address from the configuration withdraws the flag at the next
/// start. Each change is logged and audited in the platform log.
func applySuperAdmins(_ emails: Set<String>, _ context: ServiceContext) async throws {
    guard let database = context.database else { return }
    let listed = Array(emails).sorted()
    let rows = try await database.client.query(
        """
        UPDATE users SET super_admin = (email = ANY(\(listed)) AND email_verified_at IS NOT NULL), updated_at = now()
        WHERE super_admin IS DISTINCT FROM (email = ANY(\(listed)) AND email_verified_at IS NOT NULL)
        RETURNING id, email, super_admin
        """,
        logger: context.logger
    )
    let audit = AuditPublisher(jetStream: try context.nats.jetStream(), service: .auth, logger: context.logger)
    for try await (user, email, granted) in rows.decode((UUID, String, Bool).self) {
        context.logger.warning("super-admin \(granted ? "granted" : "withdrawn")", metadata: ["user": "\(user)", "email": "\(email)"])
        var event = Rampart_V1_AuditEvent(
            .permissionChanged,
            tenant: nil,
            target: ("user", user.uuidString.lowercased()),
            call: nil,
            service: .auth
        )
        event.superAdmin = true
        event.details = ["super_admin": granted ? "granted" : "withdrawn", "email": email]
        try await audit.publish(event)
    }
}

/// Makes a new token signing key when the current one is due, checked hourly.
struct KeyRotation: Service {
    let keys: SigningKeys
    let health: HealthChecks
    let logger: Logger

    func run() async throws {
        await repeatEvery(.seconds(3600), "signing key rotation", health: health, logger: logger) { try await keys.rotateIfDue() }
    }
}

/// Removes users a registration left pending, once a minute.
struct AbandonedRegistrations: Service {
    let registration: Registration
    let health: HealthChecks
    let logger: Logger

    func run() async throws {
        await repeatEvery(.seconds(60), "abandoned registrations", health: health, logger: logger) { try await registration.removeAbandoned() }
    }
}
