import Logging
import RampartModels
import ServiceKit

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Sign in with Google (SSO-4): a way in a person chooses for their own account, with the
/// platform's Google client. Google's subject finds the account once linked. The first time,
/// only an account whose own address is verified and equals the address Google verified is
/// linked (an address, never a name); anyone else links from their settings while signed in.
/// The organization's rules then apply as to a password: its allowlist, its MFA, and its SSO
/// enforcement (a way in other than the organization's SSO).
struct GoogleSignIn: Sendable {
    /// nil: the platform offers no Sign in with Google.
    let client: RelyingParty.Client?
    let relyingParty: RelyingParty
    let identities: GoogleIdentityStore
    let connections: SSOConnectionStore
    let users: UserStore
    let memberships: Memberships
    let signInGuard: SignInGuard
    let factors: SecondFactors
    let issuer: SessionIssuer
    let audit: AuditPublisher

    static let notOffered = RampartError(.notFound, "Sign in with Google is not offered here", details: ["reason": "google_not_configured"])
    static let linkHint = "sign in with your password, then link Google from your settings"

    // MARK: The starts

    func start(_ request: Rampart_V1_GoogleStartRequest, call: CallContext) async throws -> Rampart_V1_SsoStartReply {
        try await signInGuard.limit("login", key: try signInGuard.clientAddress(call), call: call)
        guard let client else { throw Self.notOffered }
        let returnTo = try RelyingParty.checkedReturnTo(request.returnTo)
        var tenant: TenantID?
        if !request.tenantID.isEmpty {
            guard let chosen = TenantID(request.tenantID), chosen.hex == request.tenantID else {
                throw RampartError.invalidArgument("tenant_id must be a tenant ID (32 hex digits)", field: "tenant_id")
            }
            tenant = chosen
        }
        return try await relyingParty.begin(.google(tenant: tenant), client: client, returnTo: returnTo)
    }

    /// The signed-in person's link: the callback links whichever Google account signs in.
    func startLink(_ request: Rampart_V1_LinkGoogleRequest, call: CallContext) async throws -> Rampart_V1_SsoStartReply {
        let (tenant, user) = try call.signedIn()
        guard let client else { throw Self.notOffered }
        let returnTo = try RelyingParty.checkedReturnTo(request.returnTo)
        guard try await users.activeAccount(user) != nil else { throw RampartError(.unauthenticated, "sign in first") }
        return try await relyingParty.begin(.linkGoogle(user: user, tenant: tenant), client: client, returnTo: returnTo)
    }

    // MARK: The answer

    func finish(
        _ request: Rampart_V1_SsoCallbackRequest,
        _ pending: SSOSignInStore.Pending,
        call: CallContext
    ) async throws -> Rampart_V1_SsoCallbackReply {
        guard let client else { throw OpenIDRefusal(reason: "google_not_configured", message: Self.notOffered.message, code: .notFound) }
        let token = try await relyingParty.idToken(request, pending, client: client)
        guard let address = token.claims["email"]?.string, let email = EmailAddress(address) else {
            throw OpenIDRefusal(reason: "email_missing", message: "Google's answer has no email address", code: .permissionDenied)
        }
        guard token.emailVerified else {
            throw OpenIDRefusal(
                reason: "email_unverified",
                message: "Google has not verified this address",
                code: .permissionDenied,
                email: email.description
            )
        }
        var reply: Rampart_V1_SsoCallbackReply
        switch pending.purpose {
        case .linkGoogle(let user, let tenant):
            reply = try await link(token.subject, email: email, to: user, tenant: tenant, call: call)
        case .google(let tenant):
            reply = try await signIn(token.subject, email: email, tenant: tenant, call: call)
        case .connection:
            throw OpenIDRefusal(reason: "state_unknown", message: "this sign-in is unknown: start it again")
        }
        reply.returnTo = pending.returnTo
        return reply
    }

    private func signIn(
        _ subject: String,
        email: EmailAddress,
        tenant chosen: TenantID?,
        call: CallContext
    ) async throws -> Rampart_V1_SsoCallbackReply {
        let (user, address) = try await account(subject, email: email, call: call)
        let notMember = OpenIDRefusal(
            reason: "not_a_member",
            message: "you are not an active member of that organization",
            code: .permissionDenied,
            email: email.description
        )
        guard let tenant = chosen ?? user.defaultTenant,
            let (member, policies) = try await memberships.activeMemberAndPolicies(user.id, tenant: tenant)
        else { throw notMember }
        try await signInGuard.admitAddress(
            policies,
            tenant: tenant,
            user: user.id,
            call: call,
            refusal: RampartError(.permissionDenied, "sign-in is not allowed from this address")
        )
        guard await signInGuard.admitWithoutSSO(policies, role: member.role, tenant: tenant, user: user.id, email: email.description, call: call)
        else {
            throw OpenIDRefusal(
                reason: "sso_required",
                message: "this organization signs its members in through its SSO: sign in with SSO",
                code: .permissionDenied,
                email: email.description,
                tenant: tenant
            )
        }
        try await identities.used(subject)
        // As the password step: the account's MFA, or enrolment where the tenant requires it.
        var reply = Rampart_V1_SsoCallbackReply()
        if let step = try await factors.nextStep(for: user.id, role: member.role, tenant: tenant, policies: policies) {
            reply.tokens = step
        } else {
            reply.tokens = try await issuer.open(
                user: user.id,
                email: address,
                tenant: tenant,
                role: member.role,
                amr: ["google"],
                facts: user.tokenFacts,
                call: call
            )
        }
        return reply
    }

    /// The active account Google's subject is linked to; the first time, the one whose own
    /// verified address is Google's verified address, linked now; with the account's own address.
    private func account(_ subject: String, email: EmailAddress, call: CallContext) async throws -> (UserStore.User, EmailAddress) {
        let inactive = OpenIDRefusal(
            reason: "account_inactive",
            message: "the account this Google account is linked to is not active",
            code: .permissionDenied,
            email: email.description
        )
        if let linked = try await identities.user(subject: subject) {
            guard let address = try await users.activeAccount(linked).flatMap({ EmailAddress($0.email) }),
                let user = try await users.find(address), user.id == linked, user.status == "active"
            else { throw inactive }
            return (user, address)
        }
        guard let user = try await users.find(email), user.status == "active" else {
            throw OpenIDRefusal(
                reason: "no_account",
                message: "no account has this address: sign up first, or \(Self.linkHint)",
                code: .permissionDenied,
                email: email.description
            )
        }
        // An account whose address nobody proved may be someone else's claim to it.
        guard user.emailVerified else {
            throw OpenIDRefusal(
                reason: "account_unverified",
                message: "the account with this address has not verified it: \(Self.linkHint)",
                code: .permissionDenied,
                email: email.description
            )
        }
        switch try await identities.link(subject, to: user.id, email: email) {
        case .linked:
            await linked(user.id, email: email, tenant: user.defaultTenant, via: "sign_in", call: call)
        case .already:
            break
        case .subjectTaken, .userHasAnother:
            throw OpenIDRefusal(
                reason: "another_google_account",
                message: "the account with this address is linked to another Google account: \(Self.linkHint)",
                code: .permissionDenied,
                email: email.description
            )
        }
        return (user, email)
    }

    private func link(
        _ subject: String,
        email: EmailAddress,
        to user: UUID,
        tenant: TenantID,
        call: CallContext
    ) async throws -> Rampart_V1_SsoCallbackReply {
        guard try await users.activeAccount(user) != nil else {
            throw OpenIDRefusal(reason: "account_inactive", message: "the account is not active", code: .permissionDenied)
        }
        switch try await identities.link(subject, to: user, email: email) {
        case .linked:
            await linked(user, email: email, tenant: tenant, via: "settings", call: call)
        case .already:
            break
        case .subjectTaken:
            throw OpenIDRefusal(
                reason: "google_account_taken",
                message: "this Google account is linked to another account",
                code: .alreadyExists,
                email: email.description
            )
        case .userHasAnother:
            throw OpenIDRefusal(
                reason: "another_google_account",
                message: "your account is linked to another Google account: unlink it first",
                code: .alreadyExists,
                email: email.description
            )
        }
        var reply = Rampart_V1_SsoCallbackReply()
        reply.linked = try await identities.identities(of: user).first ?? Rampart_V1_LinkedIdentity()
        return reply
    }

    private func linked(_ user: UUID, email: EmailAddress, tenant: TenantID?, via: String, call: CallContext) async {
        var event = Rampart_V1_AuditEvent(
            .identityLinked,
            tenant: tenant,
            target: ("user", user.uuidString.lowercased()),
            call: call,
            actor: Rampart_V1_AuditActor(principal: Principal(user: user)),
            service: .auth
        )
        event.details = ["provider": "google", "email": email.description, "via": via]
        await audit.record(event)
    }

    // MARK: The person's links

    func list(_: Rampart_V1_ListIdentitiesRequest, call: CallContext) async throws -> Rampart_V1_ListIdentitiesReply {
        let (_, user) = try call.signedIn()
        var reply = Rampart_V1_ListIdentitiesReply()
        reply.identities = try await identities.identities(of: user)
        return reply
    }

    /// Refused while Google is the account's only way in: no password, and no SSO connection of
    /// its home organization it signed in through.
    func unlink(_: Rampart_V1_UnlinkGoogleRequest, call: CallContext) async throws -> Rampart_V1_UnlinkGoogleReply {
        let (tenant, user) = try call.signedIn()
        guard let account = try await users.activeAccount(user) else { throw RampartError(.unauthenticated, "sign in first") }
        if account.passwordHash == SSOSignIn.noPassword {
            let home = try await users.homeTenant(of: user).flatMap(TenantID.init)
            guard let home, try await connections.database.isProvisioned(home), try await connections.signsIn(user, in: home) else {
                throw RampartError(
                    .failedPrecondition,
                    "Google is your account's only way in: set a password first (a password reset mails a link)",
                    details: ["reason": "last_way_in"]
                )
            }
        }
        guard let email = try await identities.unlink(user) else { throw RampartError(.notFound, "no Google account is linked to yours") }
        var event = Rampart_V1_AuditEvent(
            .identityUnlinked,
            tenant: tenant,
            target: ("user", user.uuidString.lowercased()),
            call: call,
            service: .auth
        )
        event.details = ["provider": "google", "email": email]
        await audit.record(event)
        return Rampart_V1_UnlinkGoogleReply()
    }
}
