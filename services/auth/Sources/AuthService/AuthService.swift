import GuardedHTTP
import Logging
import RampartModels
import RateLimitKit
public import ServiceKit
import ServiceLifecycle
import TokenKit

#if canImport(FoundationEssentials)
import FoundationEssentials
import NATSKit
#else
import Foundation
#endif

/// Registration, login, tokens, sessions, MFA, SSO and API keys (SPEC sections 1-4).
///
/// So far: registration (the user, then the tenant through `tenants`), sign-in with EdDSA access
/// tokens and rotating refresh tokens, sign-out, the JWKS, sessions, password change and reset,
/// email verification, API keys and TOTP MFA (enrolment, the sign-in step, backup codes, an
/// admin's reset, the tenant's MFA requirement), and SSO connections (SSO-1, SSO-2).
public enum AuthService {
    public static func descriptor(settings: AuthSettings = AuthSettings()) -> ServiceDescriptor {
        ServiceDescriptor(name: .auth, migrations: AuthMigrations.set) { context in try await build(context, settings: settings) }
    }

    static func build(_ context: ServiceContext, settings: AuthSettings) async throws -> ServiceParts {
        let database = try context.database
        // auth owns the revocations bucket; the streams are audit's and tenants'.
        let revocationsBucket = try await context.jetStream.ensureKeyValue(
            .init(bucket: Subjects.Auth.revocationsBucket, ttl: .seconds(settings.revocationSeconds), maxValueSize: 1024)
        )
        try await context.audit.requireStream()
        try await context.jetStream.requireStream(Subjects.eventsStream)
        let users = UserStore(database: database, logger: context.logger)
        let keys = SigningKeys(
            database: database,
            keyRing: settings.keyEncryption,
            rotationSeconds: settings.signingKeyRotationSeconds,
            overlapSeconds: settings.signingKeyOverlapSeconds,
            logger: context.logger
        )
        // A signing key exists before the first sign-in is served.
        try await keys.rotateIfDue()
        try await applySuperAdmins(settings.superAdmins, users: users, audit: context.audit, logger: context.logger)

        let hasher = try PasswordHasher(algorithm: settings.passwordAlgorithm, threads: settings.hashThreads)
        let rpc = RPCClient(connection: context.nats)
        let links = AccountLinks(database: database, jetStream: context.jetStream, mailTokenKey: settings.mailTokenKey, logger: context.logger)
        let notices = SecurityNotices(database: database, jetStream: context.jetStream, logger: context.logger)
        // Reset requests queue their mail for `ResetMailSender`.
        let resetMails = ResetMailQueue()
        let registration = Registration(
            settings: settings,
            hasher: hasher,
            users: users,
            rpc: rpc,
            audit: context.audit,
            links: links,
            notices: notices,
            logger: context.logger
        )
        let rateLimit = RateLimitClient(connection: context.nats)
        let memberships = Memberships(rpc: rpc)
        let revocations = Revocations(bucket: revocationsBucket, keptSeconds: settings.revocationSeconds)
        let sessionStore = SessionStore(
            database: database,
            sessionSeconds: settings.sessionSeconds,
            refreshReuseSeconds: settings.refreshReuseSeconds,
            logger: context.logger
        )
        let secondFactorStore = SecondFactorStore(
            database: database,
            keyRing: settings.keyEncryption,
            lockRules: settings.secondFactorLock,
            logger: context.logger
        )
        let signInGuard = SignInGuard(rateLimit: rateLimit, audit: context.audit)
        let factors = SecondFactors(
            store: secondFactorStore,
            users: users,
            hasher: hasher,
            signInGuard: signInGuard,
            rateLimit: rateLimit,
            audit: context.audit,
            notices: notices
        )
        let issuer = SessionIssuer(
            settings: settings,
            keys: keys,
            sessions: sessionStore,
            users: users,
            jetStream: context.jetStream,
            audit: context.audit,
            notices: notices
        )
        let apiKeys = APIKeyHandlers(
            store: APIKeyStore(database: database, keyRing: settings.keyEncryption, logger: context.logger),
            keyRing: settings.keyEncryption,
            memberships: memberships,
            users: users,
            sessions: sessionStore,
            revocations: revocations,
            rateLimit: rateLimit,
            audit: context.audit,
            notices: notices,
            logger: context.logger
        )
        let signIn = SignIn(
            settings: settings,
            hasher: hasher,
            users: users,
            memberships: memberships,
            rateLimit: rateLimit,
            signInGuard: signInGuard,
            factors: factors,
            issuer: issuer,
            audit: context.audit
        )
        let sessions = Sessions(
            settings: settings,
            store: sessionStore,
            users: users,
            memberships: memberships,
            signInGuard: signInGuard,
            factors: factors,
            issuer: issuer,
            revocations: revocations,
            audit: context.audit,
            logger: context.logger
        )
        let mfa = MFAHandlers(factors: factors, memberships: memberships, notices: notices)
        let accounts = AccountHandlers(
            settings: settings,
            hasher: hasher,
            users: users,
            links: links,
            resetMails: resetMails,
            factors: factors,
            sessions: sessions,
            apiKeys: apiKeys,
            signInGuard: signInGuard,
            rpc: rpc,
            audit: context.audit,
            notices: notices,
            logger: context.logger
        )
        let isolation = IsolationHandlers(
            users: users,
            sessions: sessions,
            apiKeys: apiKeys,
            challenges: secondFactorStore,
            revocations: revocations,
            audit: context.audit
        )

        if !settings.ssoAllowedNetworks.isEmpty {
            context.logger.warning(
                "SSO providers may be reached on these non-public networks (RAMPART_AUTH_SSO_ALLOWED_NETWORKS)",
                metadata: ["networks": "\(settings.ssoAllowedNetworks.map(\.description).joined(separator: ","))"]
            )
        }
        let providerHTTP = GuardedHTTPClient(
            destinations: DestinationGuard(policy: AddressPolicy(allowlist: settings.ssoAllowedNetworks)),
            timeoutSeconds: settings.ssoTimeoutSeconds,
            retriesConnections: false
        )
        let providers = ProviderDirectory(http: providerHTTP, logger: context.logger)
        let ssoConnections = SSOConnections(
            store: SSOConnectionStore(database: database, keyRing: settings.keyEncryption, logger: context.logger),
            domains: SSODomainStore(database: database, logger: context.logger),
            providers: providers,
            memberships: memberships,
            audit: context.audit,
            redirectURI: settings.ssoRedirectURI
        )

        let ssoDomains = SSODomains(
            store: ssoConnections.domains,
            connections: ssoConnections.store,
            records: TXTRecords(server: settings.dnsServer),
            audit: context.audit
        )
        let relyingParty = RelyingParty(
            providers: providers,
            signIns: SSOSignInStore(database: database, logger: context.logger),
            redirectURI: settings.ssoRedirectURI,
            logger: context.logger
        )
        let googleSignIn = GoogleSignIn(
            client: settings.google.map { RelyingParty.Client(issuer: $0.issuer, clientID: $0.clientID, clientSecret: $0.clientSecret) },
            relyingParty: relyingParty,
            identities: GoogleIdentityStore(database: database),
            connections: ssoConnections.store,
            users: users,
            memberships: memberships,
            signInGuard: signInGuard,
            factors: factors,
            issuer: issuer,
            audit: context.audit
        )
        let ssoSignIn = SSOSignIn(
            connections: ssoConnections.store,
            domains: ssoConnections.domains,
            relyingParty: relyingParty,
            google: googleSignIn,
            users: users,
            memberships: memberships,
            signInGuard: signInGuard,
            factors: factors,
            issuer: issuer,
            audit: context.audit,
            logger: context.logger
        )

        var router = RPCRouter()
        router.register(Subjects.Auth.register) { (request, call) in
            try await registration.register(request, call: call)
        }
        router.register(Subjects.Auth.join) { (request, call) in
            try await registration.join(request, call: call)
        }
        router.register(Subjects.Auth.switchTenant, requires: [.tenant, .principal]) { (request, call) in
            try await sessions.switchTenant(request, call: call)
        }
        router.register(Subjects.Auth.stepUp, requires: [.tenant, .principal]) { (request, call) in
            try await sessions.stepUp(request, call: call)
        }
        router.register(Subjects.Auth.resendEmailVerification, requires: [.tenant, .principal]) {
            (request, call) in
            try await accounts.resendEmailVerification(request, call: call)
        }
        router.register(Subjects.Auth.login) { (request, call) in
            try await signIn.login(request, call: call)
        }
        router.register(Subjects.Auth.refresh) { (request, call) in
            try await sessions.refresh(request, call: call)
        }
        router.register(Subjects.Auth.logout, requires: [.tenant, .principal]) { (request, call) in
            try await sessions.logout(request, call: call)
        }
        router.register(Subjects.Auth.listSessions, requires: [.tenant, .principal]) { (request, call) in
            try await sessions.list(request, call: call)
        }
        router.register(Subjects.Auth.revokeSessions, requires: [.tenant, .principal]) { (request, call) in
            try await sessions.revoke(request, call: call)
        }
        router.register(Subjects.Auth.changePassword, requires: [.tenant, .principal]) { (request, call) in
            try await accounts.change(request, call: call)
        }
        router.register(Subjects.Auth.requestPasswordReset) { (request, call) in
            try await accounts.requestReset(request, call: call)
        }
        router.register(Subjects.Auth.confirmPasswordReset) { (request, call) in
            try await accounts.confirmReset(request, call: call)
        }
        router.register(Subjects.Auth.verifyEmail) { (request, call) in
            try await accounts.verifyEmail(request, call: call)
        }
        router.register(Subjects.Auth.loginMFA) { (request, call) in
            try await signIn.loginMFA(request, call: call)
        }
        router.register(Subjects.Auth.loginMFAEnroll) { (request, call) in
            try await signIn.enrollAtSignIn(request, call: call)
        }
        router.register(Subjects.Auth.mfaEnroll, requires: [.tenant, .principal]) { (request, call) in
            try await mfa.enroll(request, call: call)
        }
        router.register(Subjects.Auth.mfaConfirm, requires: [.tenant, .principal]) { (request, call) in
            try await mfa.confirm(request, call: call)
        }
        router.register(Subjects.Auth.mfaStatus, requires: [.tenant, .principal]) { (request, call) in
            try await mfa.status(request, call: call)
        }
        router.register(Subjects.Auth.mfaRegenerateBackupCodes, requires: [.tenant, .principal]) {
            (request, call) in
            try await mfa.regenerateBackupCodes(request, call: call)
        }
        router.register(Subjects.Auth.mfaDisable, requires: [.tenant, .principal]) { (request, call) in
            try await mfa.disable(request, call: call)
        }
        router.register(Subjects.Auth.mfaReset, requires: [.tenant, .principal]) { (request, call) in
            try await mfa.reset(request, call: call)
        }
        router.register(Subjects.Auth.revokeCredentials, requires: [.tenant, .principal]) {
            (request, call) in
            try await isolation.revokeCredentials(request, call: call)
        }
        router.register(Subjects.Auth.isolateUser, requires: .principal) { (request, call) in
            try await isolation.isolateUser(request, call: call)
        }
        router.register(Subjects.Auth.liftUserIsolation, requires: .principal) { (request, call) in
            try await isolation.liftUserIsolation(request, call: call)
        }
        router.register(Subjects.Auth.createAPIKey, requires: [.tenant, .principal]) { (request, call) in
            try await apiKeys.create(request, call: call)
        }
        router.register(Subjects.Auth.listAPIKeys, requires: [.tenant, .principal]) { (request, call) in
            try await apiKeys.list(request, call: call)
        }
        router.register(Subjects.Auth.revokeAPIKey, requires: [.tenant, .principal]) { (request, call) in
            try await apiKeys.revoke(request, call: call)
        }
        router.register(Subjects.Auth.rotateAPIKey, requires: [.tenant, .principal]) { (request, call) in
            try await apiKeys.rotate(request, call: call)
        }
        router.register(Subjects.Auth.verifyAPIKey) { (request, call) in
            try await apiKeys.verify(request, call: call)
        }
        router.register(Subjects.Auth.createSSOConnection, requires: [.tenant, .principal]) { (request, call) in
            try await ssoConnections.create(request, call: call)
        }
        router.register(Subjects.Auth.listSSOConnections, requires: [.tenant, .principal]) { (request, call) in
            try await ssoConnections.list(request, call: call)
        }
        router.register(Subjects.Auth.getSSOConnection, requires: [.tenant, .principal]) { (request, call) in
            try await ssoConnections.get(request, call: call)
        }
        router.register(Subjects.Auth.updateSSOConnection, requires: [.tenant, .principal]) { (request, call) in
            try await ssoConnections.update(request, call: call)
        }
        router.register(Subjects.Auth.deleteSSOConnection, requires: [.tenant, .principal]) { (request, call) in
            try await ssoConnections.delete(request, call: call)
        }
        router.register(Subjects.Auth.addSSODomain, requires: [.tenant, .principal]) { (request, call) in
            try await ssoDomains.add(request, call: call)
        }
        router.register(Subjects.Auth.listSSODomains, requires: [.tenant, .principal]) { (request, call) in
            try await ssoDomains.list(request, call: call)
        }
        router.register(Subjects.Auth.verifySSODomain, requires: [.tenant, .principal]) { (request, call) in
            try await ssoDomains.verify(request, call: call)
        }
        router.register(Subjects.Auth.removeSSODomain, requires: [.tenant, .principal]) { (request, call) in
            try await ssoDomains.remove(request, call: call)
        }
        router.register(Subjects.Auth.ssoStatus, requires: [.tenant, .principal]) { (request, call) in
            try await ssoConnections.status(request, call: call)
        }
        router.register(Subjects.Auth.ssoStart) { (request, call) in
            try await ssoSignIn.start(request, call: call)
        }
        router.register(Subjects.Auth.ssoCallback) { (request, call) in
            try await ssoSignIn.callback(request, call: call)
        }
        router.register(Subjects.Auth.googleStart) { (request, call) in
            try await googleSignIn.start(request, call: call)
        }
        router.register(Subjects.Auth.linkGoogle, requires: [.tenant, .principal]) { (request, call) in
            try await googleSignIn.startLink(request, call: call)
        }
        router.register(Subjects.Auth.listIdentities, requires: [.tenant, .principal]) { (request, call) in
            try await googleSignIn.list(request, call: call)
        }
        router.register(Subjects.Auth.unlinkGoogle, requires: [.tenant, .principal]) { (request, call) in
            try await googleSignIn.unlink(request, call: call)
        }
        router.register(Subjects.Auth.jwks) { (_, _) in
            var reply = Rampart_V1_JwksReply()
            reply.json = try JWKS.render(try await keys.published())
            return reply
        }
        return ServiceParts(
            routes: router,
            services: [
                AbandonedRegistrations(registration: registration, health: context.health, logger: context.logger),
                KeyRotation(keys: keys, health: context.health, logger: context.logger),
                DisabledMembers(sessions: sessions, apiKeys: apiKeys, jetStream: context.jetStream, health: context.health, logger: context.logger),
                ResetMailSender(
                    queue: resetMails,
                    links: links,
                    withheld: { user in try await ssoEnforced(on: user, users: users, memberships: memberships) },
                    health: context.health,
                    logger: context.logger
                ),
                ClosesAtShutdown { await providerHTTP.shutdown() },
            ]
        )
    }
}

/// Gives the super-admin flag (PERM-3) to exactly the configured addresses whose owner has
/// verified them (so nobody gets it by registering the address first), and takes it from
/// everyone else: removing an address from the configuration withdraws the flag at the next
/// start. Each change is logged and audited in the platform log.
func applySuperAdmins(_ emails: Set<String>, users: UserStore, audit: AuditPublisher, logger: Logger) async throws {
    for (user, email, granted) in try await users.setSuperAdmins(emails) {
        logger.warning("super-admin \(granted ? "granted" : "withdrawn")", metadata: ["user": "\(user)", "email": "\(email)"])
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

/// SSO-2: whether `user`'s home tenant enforces SSO and does not name them a break-glass owner:
/// their password is not theirs to reset there. A person of several tenants keeps the others'.
func ssoEnforced(on user: UUID, users: UserStore, memberships: Memberships) async throws -> Bool {
    guard let home = try await users.homeTenant(of: user).flatMap(TenantID.init),
        let (member, policies) = try await memberships.activeMemberAndPolicies(user, tenant: home)
    else { return false }
    return !policies.admitsWithoutSSO(user, role: member.role)
}

/// Runs `close` when the service group shuts down: for what must be closed, not dropped.
struct ClosesAtShutdown: Service {
    let close: @Sendable () async -> Void

    func run() async throws {
        try? await gracefulShutdown()
        await close()
    }
}
