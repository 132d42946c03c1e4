import Logging
import RampartModels
import ServiceKit

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Sign-in through a tenant's OpenID provider (SSO-3), by `RelyingParty`'s code flow; then the
/// person signed in to the connection's tenant as a password sign-in would be: the allowlist,
/// and the tenant's MFA unless the connection trusts the provider's. Every refusal is audited
/// as `sso.login_failed` with its reason.
struct SSOSignIn: Sendable {
    let connections: SSOConnectionStore
    let domains: SSODomainStore
    let relyingParty: RelyingParty
    let google: GoogleSignIn
    let users: UserStore
    let memberships: Memberships
    let signInGuard: SignInGuard
    let factors: SecondFactors
    let issuer: SessionIssuer
    let audit: AuditPublisher
    let logger: Logger

    static let noConnection = RampartError(.notFound, "no SSO connection serves this sign-in", details: ["field": "connection_id"])
    /// What the provider's `amr` must name for the connection to count it as the tenant's MFA.
    static let multiFactorMethods: Set<String> = ["mfa", "otp", "hwk", "swk", "sc"]

    // MARK: The start

    func start(_ request: Rampart_V1_SsoStartRequest, call: CallContext) async throws -> Rampart_V1_SsoStartReply {
        try await signInGuard.limit("login", key: try signInGuard.clientAddress(call), call: call)
        let returnTo = try RelyingParty.checkedReturnTo(request.returnTo)
        let (tenant, connection, email) = try await connection(for: request)
        // Google's `hd`: the Workspace domain to show accounts of (the ID token's `hd` is checked).
        var extra: [(String, String)] = []
        if connection.preset == .google, let domain = email?.domain ?? connection.domains.first { extra.append(("hd", domain)) }
        return try await relyingParty.begin(
            .connection(connection.id, tenant: tenant),
            client: RelyingParty.Client(issuer: connection.issuer, clientID: connection.clientID, clientSecret: ""),
            emailHint: email?.description,
            returnTo: returnTo,
            extra: extra
        )
    }

    /// The connection a start names, or the one serving the address's verified domain.
    private func connection(
        for request: Rampart_V1_SsoStartRequest
    ) async throws -> (tenant: TenantID, connection: SSOConnection, email: EmailAddress?) {
        switch (request.connectionID.isEmpty, request.email.isEmpty) {
        case (false, true):
            guard request.connectionID.utf8.count == 36, let id = UUID(uuidString: request.connectionID) else {
                throw RampartError.invalidArgument("connection_id must be a connection's ID", field: "connection_id")
            }
            // A draft serves nobody: it is answered as no connection at all.
            guard let (tenant, connection) = try await connections.find(id), connection.state != .draft else { throw Self.noConnection }
            return (tenant, connection, nil)
        case (true, false):
            guard request.email.utf8.count <= 254, let email = EmailAddress(request.email) else {
                throw RampartError.invalidArgument("email must be an email address", field: "email")
            }
            guard let tenant = try await domains.verifiedTenant(email.domain), try await connections.database.isProvisioned(tenant),
                let connection = try await connections.serving(email.domain, in: tenant)
            else { throw RampartError(.notFound, "no SSO connection serves this address", details: ["field": "email"]) }
            return (tenant, connection, email)
        default:
            throw RampartError.invalidArgument("give connection_id or email, one of them", field: "connection_id")
        }
    }

    // MARK: The callback

    /// Every provider's answer comes here: a connection's sign-in is finished here, Sign in with
    /// Google and its link by `google`. Every refusal is audited as `sso.login_failed`.
    func callback(_ request: Rampart_V1_SsoCallbackRequest, call: CallContext) async throws -> Rampart_V1_SsoCallbackReply {
        try await signInGuard.limit("login", key: try signInGuard.clientAddress(call), call: call)
        let pending: SSOSignInStore.Pending
        switch try await relyingParty.spend(request) {
        case .success(let found):
            pending = found
        case .failure(let refusal):
            await failed(refusal, connection: nil, call: call)
            throw refusal.problem
        }
        var connectionID: UUID?
        do {
            switch pending.purpose {
            case .connection(let id, let tenant):
                connectionID = id
                return try await finish(request, pending, connection: id, tenant: tenant, call: call)
            case .google, .linkGoogle:
                return try await google.finish(request, pending, call: call)
            }
        } catch var refusal as OpenIDRefusal {
            refusal.tenant = refusal.tenant ?? pending.purpose.tenant
            await failed(refusal, connection: connectionID, call: call)
            throw refusal.problem
        }
    }

    private func finish(
        _ request: Rampart_V1_SsoCallbackRequest,
        _ pending: SSOSignInStore.Pending,
        connection id: UUID,
        tenant: TenantID,
        call: CallContext
    ) async throws -> Rampart_V1_SsoCallbackReply {
        guard let connection = try await connections.find(id, in: tenant), connection.state != .draft else {
            throw OpenIDRefusal(reason: "connection_inactive", message: "this SSO connection is not open for sign-in", code: .permissionDenied)
        }
        let client = RelyingParty.Client(
            issuer: connection.issuer,
            clientID: connection.clientID,
            clientSecret: try await connections.clientSecret(connection.id, in: tenant) ?? "",
            extraAlgorithms: connection.idTokenAlgorithms
        )
        let token = try await relyingParty.idToken(request, pending, client: client)
        return try await signIn(token, connection: connection, tenant: tenant, returnTo: pending.returnTo, call: call)
    }

    /// The person the token names, signed in to the connection's tenant: a member already
    /// (while testing, one of the test users), matched by verified address and, once linked,
    /// by the provider's subject.
    private func signIn(
        _ token: IDToken,
        connection: SSOConnection,
        tenant: TenantID,
        returnTo: String,
        call: CallContext
    ) async throws -> Rampart_V1_SsoCallbackReply {
        let claim = connection.claimMapping["email"] ?? "email"
        guard let address = token.claims[claim]?.string, let email = EmailAddress(address) else {
            throw OpenIDRefusal(reason: "email_missing", message: "the ID token has no email address (claim \(claim))", code: .permissionDenied)
        }
        guard token.emailVerified else {
            throw OpenIDRefusal(
                reason: "email_unverified",
                message: "the identity provider has not verified this address",
                code: .permissionDenied,
                email: email.description
            )
        }
        // Google's Workspace domain, when the connection names its domains: a consumer account
        // with the same address is not the organization's.
        if connection.preset == .google, !connection.domains.isEmpty, !connection.domains.contains(token.claims["hd"]?.string ?? "") {
            throw OpenIDRefusal(
                reason: "hosted_domain_mismatch",
                message: "this Google account is not one of the organization's",
                code: .permissionDenied,
                email: email.description
            )
        }
        if connection.state == .testing, !connection.testUsers.contains(email.description) {
            throw OpenIDRefusal(
                reason: "not_a_test_user",
                message: "this connection is being tested: only its test users may sign in through it",
                code: .permissionDenied,
                email: email.description
            )
        }
        let notMember = OpenIDRefusal(
            reason: "not_a_member",
            message: "this address is not a member of the organization",
            code: .permissionDenied,
            email: email.description
        )
        var user = try await users.find(email)
        var standing: (member: Rampart_V1_Member, policies: Rampart_V1_TenantPolicies)?
        if let user, user.status == "active" { standing = try await memberships.activeMemberAndPolicies(user.id, tenant: tenant) }
        if standing == nil {
            // Just in time (SSO-3): a person of a domain this tenant verified, which the
            // connection serves, joins as a member; anyone else must be one already.
            guard connection.domains.contains(email.domain), try await domains.verifiedTenant(email.domain) == tenant,
                user == nil || user?.status == "active"
            else { throw notMember }
            let id = try await provision(
                email,
                name: token.claims[connection.claimMapping["name"] ?? "name"]?.string,
                existing: user,
                connection: connection,
                tenant: tenant,
                call: call
            )
            user = try await users.find(email)
            standing = try await memberships.activeMemberAndPolicies(id, tenant: tenant)
        }
        guard let user, let (member, policies) = standing else { throw notMember }
        guard try await connections.link(token.subject, to: user.id, connection: connection.id, in: tenant) else {
            throw OpenIDRefusal(
                reason: "subject_mismatch",
                message: "this address signed in through this connection as another identity before",
                code: .permissionDenied,
                email: email.description
            )
        }
        try await signInGuard.admitAddress(
            policies,
            tenant: tenant,
            user: user.id,
            call: call,
            refusal: RampartError(.permissionDenied, "sign-in is not allowed from this address")
        )
        let trustedMFA = connection.trustProviderMFA && !Self.multiFactorMethods.isDisjoint(with: token.methods)
        var reply = Rampart_V1_SsoCallbackReply()
        reply.returnTo = returnTo
        if !trustedMFA, let step = try await factors.nextStep(for: user.id, role: member.role, tenant: tenant, policies: policies) {
            reply.tokens = step
        } else {
            reply.tokens = try await issuer.open(
                user: user.id,
                email: email,
                tenant: tenant,
                role: member.role,
                amr: trustedMFA ? ["sso", "mfa"] : ["sso"],
                facts: user.tokenFacts,
                call: call
            )
        }
        return reply
    }

    /// The member made (SSO-3): for a new person, the account first (the provider verified the
    /// address; no password, so none signs in until one is set by a reset), then the membership
    /// by tenants; nothing half-made stays when tenants refuses.
    private func provision(
        _ email: EmailAddress,
        name claimed: String?,
        existing: UserStore.User?,
        connection: SSOConnection,
        tenant: TenantID,
        call: CallContext
    ) async throws -> UUID {
        if let existing {
            _ = try await memberships.provision(existing.id, email: email, tenant: tenant, connection: connection.id)
            return existing.id
        }
        let name =
            claimed.flatMap { text -> String? in
                let trimmed = String(text.prefix(200)).trimmingWhitespace
                return trimmed.isEmpty || trimmed.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) ? nil : trimmed
            } ?? email.localPart
        let user = UUID()
        try await users.insertPending(
            user,
            email: email,
            name: name,
            passwordHash: Self.noPassword,
            verified: true,
            taken: RampartError(.conflict, "this account is being made by another sign-in: try again")
        )
        do {
            _ = try await memberships.provision(user, email: email, tenant: tenant, connection: connection.id)
        } catch {
            await users.removePending(user)
            throw error
        }
        try await users.activate(user, homeTenant: tenant.hex)
        var actor = Rampart_V1_AuditActor(principal: Principal(user: user))
        actor.email = email.description
        actor.name = name
        var event = Rampart_V1_AuditEvent(
            .signup,
            tenant: tenant,
            target: ("user", user.uuidString.lowercased()),
            call: call,
            actor: actor,
            service: .auth
        )
        event.details = ["via": "sso", "sso_connection": connection.id.uuidString.lowercased()]
        await audit.record(event)
        return user
    }

    /// The password hash of an account made by SSO: no password matches it (not a bcrypt or
    /// argon2id hash), so password sign-in fails as for a wrong password until a reset sets one.
    static let noPassword = "!sso"

    private func failed(_ refusal: OpenIDRefusal, connection: UUID?, call: CallContext) async {
        let target = ("sso_connection", connection?.uuidString.lowercased() ?? "")
        await signInGuard.failed(
            .ssoLoginFailed,
            email: refusal.email ?? "",
            tenant: refusal.tenant,
            target: target,
            reason: refusal.reason,
            call: call
        )
    }
}
