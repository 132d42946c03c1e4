import Logging
import PostgresNIO
import RampartModels
import ServiceKit
import SwiftProtobuf

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// AUTH-1, AUTH-2 and the user's side of sign-up, in an order that gives nothing away: the
/// checks that need no state (auth's fields, then tenants' of the organization), then the per-IP
/// limits (tenants charges them), and only then the address, so that whether it has an account
/// is learnt at most as often as the limits allow, and a refused sign-up costs no hash. The user
/// is written `pending` (the address's uniqueness decides before anything else is created), then
/// `tenants` creates the tenant, then the user becomes active. A failure at any step removes the
/// pending user: nothing half-created is left to log in with.
struct Registration: Sendable {
    let settings: AuthSettings
    let hasher: PasswordHasher
    let users: UserStore
    let rpc: RPCClient
    let audit: AuditPublisher
    let links: AccountLinks
    let notices: SecurityNotices
    let logger: Logger

    func register(_ request: Rampart_V1_RegisterRequest, call: CallContext) async throws -> Rampart_V1_RegisterReply {
        var problems: [(field: String, message: String)] = []
        let email = request.email.utf8.count <= 254 ? EmailAddress(request.email) : nil
        if email == nil { problems.append(("email", "the email must be a valid address")) }
        let (name, accountProblems) = newAccount(name: request.name, password: request.password, email: email)
        problems += accountProblems
        if request.organization.name.isEmpty || request.organization.country.isEmpty || request.organization.registrationNumber.isEmpty {
            problems.append(("organization", "the organization's name, country and registration number are required"))
        }
        if !problems.isEmpty { throw RampartError.invalidFields(problems) }
        guard let email, let name, call.clientIP != nil else {
            throw RampartError(.invalidArgument, "the client's IP address is required to register", details: ["field": "client_ip"])
        }

        var context = call
        context.principal = Principal(service: .auth)
        var admission = Rampart_V1_AdmitRegistrationRequest()
        admission.organization = request.organization
        admission.ownerEmail = email.description
        _ = try await tenantsCall(Subjects.Tenants.admitRegistration, admission, context: context)

        let taken = RampartError(
            .alreadyExists,
            "an account with this email already exists: sign in, or reset your password",
            details: ["field": "email"]
        )
        if let owner = try await users.activeAccount(email) {
            await notices.send(.registrationAttempted, to: owner, call: call)
            throw taken
        }
        let user = UUID()
        let hash = try await hasher.hashForSignUp(request.password)
        do {
            try await users.insertPending(user, email: email, name: name, passwordHash: hash, verified: false, taken: taken)
        } catch let error as RampartError where error.code == .alreadyExists {
            // Registered a moment ago, by a sign-up racing this one.
            if let owner = try await users.activeAccount(email) { await notices.send(.registrationAttempted, to: owner, call: call) }
            throw error
        }

        let tenant: Rampart_V1_Tenant
        do {
            var signup = Rampart_V1_RegisterTenantRequest()
            signup.organization = request.organization
            signup.ownerUserID = user.uuidString.lowercased()
            signup.ownerEmail = email.description
            tenant = try await tenantsCall(Subjects.Tenants.register, signup, context: context).tenant
        } catch {
            // If this fails too, the sweep of abandoned registrations removes the user later.
            await users.removePending(user)
            throw error
        }
        try await users.activate(user, homeTenant: tenant.tenantID)
        // AUTH-8: a failure here leaves an account that can ask again; it does not undo the sign-up.
        do {
            try await links.send(.emailVerification, user: user, email: email.description)
        } catch {
            logger.warning("verification link not sent", metadata: ["user": "\(user)", "error": "\(loggable(error))"])
        }

        var actor = Rampart_V1_AuditActor(principal: Principal(user: user))
        actor.email = email.description
        actor.name = name
        let event = Rampart_V1_AuditEvent(
            .signup,
            tenant: TenantID(tenant.tenantID),
            target: ("user", user.uuidString.lowercased()),
            call: call,
            actor: actor,
            service: .auth
        )
        await audit.record(event)

        var reply = Rampart_V1_RegisterReply()
        reply.userID = user.uuidString.lowercased()
        reply.tenantID = tenant.tenantID
        return reply
    }

    /// A new account's name and password, checked together: the display name, and AUTH-2's
    /// policy against the account's address. The name as it will be stored, and every problem.
    func newAccount(name text: String, password: String, email: EmailAddress?) -> (name: String?, problems: [(field: String, message: String)]) {
        var problems: [(field: String, message: String)] = []
        let name = displayName(text, maximum: 200)
        if name == nil { problems.append(("name", "the name must be 1 to 200 characters, without control characters or direction overrides")) }
        let violations = settings.passwordPolicy.violations(password, email: email)
        if !violations.isEmpty { problems.append(("password", "the password needs " + violations.joined(separator: ", "))) }
        return (name, problems)
    }

    /// tenants' answer to a sign-up step: its own error (which rule failed, the per-IP limit) is
    /// the caller's answer; anything else, that sign-up is unavailable for now.
    private func tenantsCall<Request, Reply>(_ endpoint: RPCEndpoint<Request, Reply>, _ request: Request, context: CallContext) async throws -> Reply
    {
        do {
            return try await rpc.call(endpoint, request, context: context)
        } catch let error as RampartError {
            throw error
        } catch {
            throw RampartError(.unavailable, "registration is unavailable right now: try again shortly")
        }
    }

    /// Users left pending by a registration that stopped half-way (auth killed mid-call).
    func removeAbandoned() async throws {
        try await users.removeAbandoned(olderThan: settings.pendingRegistrationSeconds)
    }
}
