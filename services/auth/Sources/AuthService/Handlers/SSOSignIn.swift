import GuardedHTTP
import Logging
import NIOHTTP1
import RampartModels
import RateLimitKit
import ServiceKit
import SodiumKit

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Sign-in through a tenant's OpenID provider (SSO-3): the authorization code flow with PKCE
/// S256, a single-use state bound to the browser, a nonce, RFC 9207's `iss`; the ID token
/// verified (`IDToken`), then the person signed in to the connection's tenant as a password
/// sign-in would be: the allowlist, and the tenant's MFA unless the connection trusts the
/// provider's. Every refusal is audited as `sso.login_failed` with its reason.
struct SSOSignIn: Sendable {
    let connections: SSOConnectionStore
    let domains: SSODomainStore
    let signIns: SSOSignInStore
    let providers: ProviderDirectory
    let users: UserStore
    let memberships: Memberships
    let rateLimit: RateLimitClient
    let signInGuard: SignInGuard
    let factors: SecondFactors
    let issuer: SessionIssuer
    let audit: AuditPublisher
    let redirectURI: String
    let logger: Logger

    static let noConnection = RampartError(.notFound, "no SSO connection serves this sign-in", details: ["field": "connection_id"])
    /// What the provider's `amr` must name for the connection to count it as the tenant's MFA.
    static let multiFactorMethods: Set<String> = ["mfa", "otp", "hwk", "swk", "sc"]

    // MARK: The start

    func start(_ request: Rampart_V1_SsoStartRequest, call: CallContext) async throws -> Rampart_V1_SsoStartReply {
        try await signInGuard.limit("login", key: try signInGuard.clientAddress(call), call: call)
        let returnTo = try Self.checkedReturnTo(request.returnTo)
        let (tenant, connection, email) = try await connection(for: request)
        let metadata: ProviderMetadata
        do {
            metadata = try await providers.metadata(issuer: connection.issuer)
        } catch {
            throw RampartError(.unavailable, "the identity provider could not be reached: \(error)")
        }
        let state = Self.randomToken()
        let nonce = Self.randomToken()
        let verifier = Self.randomToken()
        let binding = Self.randomToken()
        try await signIns.begin(
            SSOSignInStore.Pending(
                tenant: tenant,
                connection: connection.id,
                nonce: nonce,
                codeVerifier: verifier,
                emailHint: email?.description,
                returnTo: returnTo
            ),
            stateHash: sha256(Array(state.utf8)),
            browserHash: sha256(Array(binding.utf8))
        )
        var parameters: [(String, String)] = [
            ("response_type", "code"), ("client_id", connection.clientID), ("redirect_uri", redirectURI),
            ("scope", "openid email profile"), ("state", state), ("nonce", nonce),
            ("code_challenge", Self.challenge(verifier)), ("code_challenge_method", "S256"),
        ]
        if let email { parameters.append(("login_hint", email.description)) }
        // Google's `hd`: the Workspace domain to show accounts of (the ID token's `hd` is checked).
        if connection.preset == .google, let domain = email?.domain ?? connection.domains.first { parameters.append(("hd", domain)) }
        let separator = metadata.authorizationEndpoint.contains("?") ? "&" : "?"
        var reply = Rampart_V1_SsoStartReply()
        reply.authorizationURL = metadata.authorizationEndpoint + separator + PercentEncoding.query(parameters)
        reply.browserBinding = binding
        reply.expiresIn = Int32(SSOSignInStore.lifetimeSeconds)
        return reply
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

    /// Only the console's own paths: anything else would make the callback an open redirect.
    static func checkedReturnTo(_ text: String) throws -> String {
        guard !text.isEmpty else { return "/console/" }
        let allowed = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~/%?=&".utf8)
        guard text.utf8.count <= 512, text.hasPrefix("/console/") || text == "/console", text.utf8.allSatisfy(allowed.contains),
            !text.contains("//"), !text.contains("/../"), !text.hasSuffix("/..")
        else {
            throw RampartError.invalidArgument("return_to must be a path of the console, such as /console/settings", field: "return_to")
        }
        return text
    }

    static func randomToken() -> String { Base64.encode(randomBytes(32), variant: Base64.urlSafeNoPadding) }

    /// RFC 7636 4.2: BASE64URL(SHA256(ASCII(code_verifier))).
    static func challenge(_ verifier: String) -> String { Base64.encode(sha256(Array(verifier.utf8)), variant: Base64.urlSafeNoPadding) }

    // MARK: The callback

    /// A refused callback: its reason, recorded and answered.
    struct Refusal: Error {
        var reason: String
        var message: String
        var code: RampartError.Code = .unauthenticated
        var email: String?
    }

    func callback(_ request: Rampart_V1_SsoCallbackRequest, call: CallContext) async throws -> Rampart_V1_SsoCallbackReply {
        try await signInGuard.limit("login", key: try signInGuard.clientAddress(call), call: call)
        guard (1...128).contains(request.state.utf8.count) else {
            throw RampartError.invalidArgument("state is missing: start the sign-in again", field: "state")
        }
        let stateHash = sha256(Array(request.state.utf8))
        let pending: SSOSignInStore.Pending
        switch try await signIns.spend(stateHash: stateHash, browserHash: sha256(Array(request.browserBinding.prefix(128).utf8))) {
        case .success(let found):
            pending = found
        case .failure(let refusal):
            let tenant = try await signIns.tenant(stateHash: stateHash)
            let message =
                switch refusal {
                case .unknown: "this sign-in is unknown: start it again"
                case .replayed: "this sign-in was used already: start it again"
                case .expired: "this sign-in took longer than \(SSOSignInStore.lifetimeSeconds / 60) minutes: start it again"
                case .otherBrowser: "this sign-in was started in another browser: start it again here"
                }
            await failed(Refusal(reason: refusal.rawValue, message: message), tenant: tenant, connection: nil, call: call)
            throw RampartError(.unauthenticated, message, details: ["reason": refusal.rawValue])
        }
        do {
            return try await finish(request, pending, call: call)
        } catch let refusal as Refusal {
            await failed(refusal, tenant: pending.tenant, connection: pending.connection, call: call)
            throw RampartError(refusal.code, refusal.message, details: ["reason": refusal.reason])
        }
    }

    private func finish(
        _ request: Rampart_V1_SsoCallbackRequest,
        _ pending: SSOSignInStore.Pending,
        call: CallContext
    ) async throws -> Rampart_V1_SsoCallbackReply {
        guard request.error.isEmpty else {
            let code = String(request.error.prefix(64).filter { $0.isASCII && ($0.isLetter || $0 == "_") })
            throw Refusal(reason: "provider_error", message: "the identity provider refused the sign-in (\(code))")
        }
        guard (1...2048).contains(request.code.utf8.count) else {
            throw Refusal(reason: "code_missing", message: "the identity provider's answer has no code", code: .invalidArgument)
        }
        guard let connection = try await connections.find(pending.connection, in: pending.tenant), connection.state != .draft else {
            throw Refusal(reason: "connection_inactive", message: "this SSO connection is not open for sign-in", code: .permissionDenied)
        }
        let metadata: ProviderMetadata
        do {
            metadata = try await providers.metadata(issuer: connection.issuer)
        } catch {
            throw Refusal(reason: "provider_unreachable", message: "the identity provider could not be reached: \(error)", code: .unavailable)
        }
        // RFC 9207: an answer that names another issuer came from a mix-up; one that names none,
        // from a provider that says it always names itself, too.
        if !request.iss.isEmpty, request.iss != connection.issuer {
            throw Refusal(reason: "issuer_mismatch", message: "the answer names another identity provider")
        }
        if request.iss.isEmpty, metadata.sendsIssuerInAnswer {
            throw Refusal(reason: "issuer_missing", message: "the answer does not name its identity provider, which it always does")
        }
        let secret = try await connections.clientSecret(connection.id, in: pending.tenant) ?? ""
        let idToken = try await exchange(request.code, verifier: pending.codeVerifier, connection: connection, secret: secret, metadata: metadata)
        var algorithms = metadata.signingAlgorithms
        for name in connection.idTokenAlgorithms { if let algorithm = SigningAlgorithm(rawValue: name) { algorithms.insert(algorithm) } }
        let expectation = IDTokenExpectation(
            issuer: connection.issuer,
            clientID: connection.clientID,
            nonce: pending.nonce,
            algorithms: algorithms,
            clientSecret: connection.idTokenAlgorithms.contains(SigningAlgorithm.hs256.rawValue) ? Array(secret.utf8) : nil,
            now: Date()
        )
        let token = try await verify(idToken, metadata: metadata, expectation: expectation)
        return try await signIn(token, connection: connection, pending: pending, call: call)
    }

    /// RFC 6749 4.1.3 with RFC 7636's verifier: the code for tokens, the client authenticated
    /// with its secret (HTTP Basic, 2.3.1). The ID token is all Rampart keeps of the answer.
    private func exchange(
        _ code: String,
        verifier: String,
        connection: SSOConnection,
        secret: String,
        metadata: ProviderMetadata
    ) async throws -> String {
        let body = PercentEncoding.query([
            ("grant_type", "authorization_code"), ("code", code), ("redirect_uri", redirectURI), ("code_verifier", verifier),
        ])
        let credentials = PercentEncoding.encode(connection.clientID) + ":" + PercentEncoding.encode(secret)
        let answer: GuardedHTTPClient.Answer
        do {
            try await providers.requireSecure(metadata.tokenEndpoint)
            answer = try await providers.http.send(
                .POST,
                metadata.tokenEndpoint,
                headers: [
                    ("Content-Type", "application/x-www-form-urlencoded"), ("Accept", "application/json"),
                    ("Authorization", "Basic " + Base64.encode(Array(credentials.utf8), variant: Base64.standard)),
                ],
                body: Array(body.utf8),
                bodyLimit: ProviderDirectory.bodyLimit,
                logger: logger
            )
        } catch {
            throw Refusal(reason: "token_request_failed", message: "the identity provider could not be reached: \(error)", code: .unavailable)
        }
        let fields = try? JSONDecoder().decode([String: ClaimValue].self, from: Data(answer.body))
        guard answer.status == 200, let idToken = fields?["id_token"]?.string else {
            let error = fields?["error"]?.string.map { String($0.prefix(64).filter { $0.isASCII && ($0.isLetter || $0 == "_") }) }
            throw Refusal(
                reason: "token_request_refused",
                message: "the identity provider refused the code (\(error ?? "HTTP \(answer.status)"))"
            )
        }
        return idToken
    }

    /// The token against the provider's keys, fetched again once for a key the set lacks.
    private func verify(_ idToken: String, metadata: ProviderMetadata, expectation: IDTokenExpectation) async throws -> IDToken {
        for refresh in [false, true] {
            let keys: ProviderKeySet
            do {
                keys = try await providers.keys(metadata, refresh: refresh)
            } catch {
                throw Refusal(reason: "provider_unreachable", message: "the identity provider's keys could not be read: \(error)", code: .unavailable)
            }
            do {
                return try IDToken.verify(idToken, keys: keys, expecting: expectation)
            } catch .unknownKey where !refresh {
                continue
            } catch {
                throw Refusal(reason: error.rawValue, message: "the identity provider's ID token is not valid (\(error.rawValue))")
            }
        }
        throw Refusal(reason: IDTokenRejection.unknownKey.rawValue, message: "the ID token is signed with a key the provider does not publish")
    }

    /// The person the token names, signed in to the connection's tenant: a member already
    /// (while testing, one of the test users), matched by verified address and, once linked,
    /// by the provider's subject.
    private func signIn(
        _ token: IDToken,
        connection: SSOConnection,
        pending: SSOSignInStore.Pending,
        call: CallContext
    ) async throws -> Rampart_V1_SsoCallbackReply {
        let claim = connection.claimMapping["email"] ?? "email"
        guard let address = token.claims[claim]?.string, let email = EmailAddress(address) else {
            throw Refusal(reason: "email_missing", message: "the ID token has no email address (claim \(claim))", code: .permissionDenied)
        }
        guard token.emailVerified else {
            throw Refusal(
                reason: "email_unverified",
                message: "the identity provider has not verified this address",
                code: .permissionDenied,
                email: email.description
            )
        }
        // Google's Workspace domain, when the connection names its domains: a consumer account
        // with the same address is not the organisation's.
        if connection.preset == .google, !connection.domains.isEmpty, !connection.domains.contains(token.claims["hd"]?.string ?? "") {
            throw Refusal(
                reason: "hosted_domain_mismatch",
                message: "this Google account is not one of the organisation's",
                code: .permissionDenied,
                email: email.description
            )
        }
        if connection.state == .testing, !connection.testUsers.contains(email.description) {
            throw Refusal(
                reason: "not_a_test_user",
                message: "this connection is being tested: only its test users may sign in through it",
                code: .permissionDenied,
                email: email.description
            )
        }
        let notMember = Refusal(
            reason: "not_a_member",
            message: "this address is not a member of the organisation",
            code: .permissionDenied,
            email: email.description
        )
        var user = try await users.find(email)
        var standing: (member: Rampart_V1_Member, policies: Rampart_V1_TenantPolicies)?
        if let user, user.status == "active" { standing = try await memberships.activeMemberAndPolicies(user.id, tenant: pending.tenant) }
        if standing == nil {
            // Just in time (SSO-3): a person of a domain this tenant verified, which the
            // connection serves, joins as a member; anyone else must be one already.
            guard connection.domains.contains(email.domain), try await domains.verifiedTenant(email.domain) == pending.tenant,
                user == nil || user?.status == "active"
            else { throw notMember }
            let id = try await provision(
                email,
                name: token.claims[connection.claimMapping["name"] ?? "name"]?.string,
                existing: user,
                connection: connection,
                tenant: pending.tenant,
                call: call
            )
            user = try await users.find(email)
            standing = try await memberships.activeMemberAndPolicies(id, tenant: pending.tenant)
        }
        guard let user, let (member, policies) = standing else { throw notMember }
        guard try await connections.link(token.subject, to: user.id, connection: connection.id, in: pending.tenant) else {
            throw Refusal(
                reason: "subject_mismatch",
                message: "this address signed in through this connection as another identity before",
                code: .permissionDenied,
                email: email.description
            )
        }
        try await signInGuard.admitAddress(
            policies,
            tenant: pending.tenant,
            user: user.id,
            call: call,
            refusal: RampartError(.permissionDenied, "sign-in is not allowed from this address")
        )
        let trustedMFA = connection.trustProviderMFA && !Self.multiFactorMethods.isDisjoint(with: token.methods)
        var reply = Rampart_V1_SsoCallbackReply()
        reply.returnTo = pending.returnTo
        if !trustedMFA, try await factors.store.isEnabled(for: user.id) {
            reply.tokens = try await factors.challenge(.verify, user: user.id, tenant: pending.tenant)
        } else if !trustedMFA, policies.mfaRequirement.covers(member.role) {
            reply.tokens = try await factors.challenge(.enroll, user: user.id, tenant: pending.tenant)
        } else {
            reply.tokens = try await issuer.open(
                user: user.id,
                email: email,
                tenant: pending.tenant,
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

    private func failed(_ refusal: Refusal, tenant: TenantID?, connection: UUID?, call: CallContext) async {
        let target = ("sso_connection", connection?.uuidString.lowercased() ?? "")
        await signInGuard.failed(.ssoLoginFailed, email: refusal.email ?? "", tenant: tenant, target: target, reason: refusal.reason, call: call)
    }
}
