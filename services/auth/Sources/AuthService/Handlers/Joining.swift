import PostgresNIO
import RampartModels
import ServiceKit

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// TEN-10, the invitee's side: accepting an invitation as a new person (an account with the
/// invited address, verified by the token that reached it; no organization, no Starter claim)
/// or as a signed-in user whose address is the invited one. tenants checks the token and adds
/// the member; auth vouches for the user and the address.
extension Registration {
    func join(_ request: Rampart_V1_JoinRequest, call: CallContext) async throws -> Rampart_V1_JoinReply {
        if let user = call.userID { return try await join(as: user, request, call: call) }
        guard call.principal == nil else { throw RampartError(.permissionDenied, "only a person accepts an invitation") }

        // The token first: nothing is hashed or written for one that cannot be used.
        let invitation = try await invitation(request.token, call: call)
        guard let email = EmailAddress(invitation.email) else { throw RampartError.internalError() }
        let (name, problems) = newAccount(name: request.name, password: request.password, email: email)
        if !problems.isEmpty { throw RampartError.invalidFields(problems) }
        guard let name else { throw RampartError.internalError() }

        let user = UUID()
        try await users.insertPending(
            user,
            email: email,
            name: name,
            passwordHash: try await hasher.hash(request.password),
            verified: true,
            taken: RampartError(
                .alreadyExists,
                "an account with this address exists already: sign in, then accept the invitation signed in",
                details: ["field": "token"]
            )
        )
        let tenant: String
        do {
            tenant = try await accept(request.token, user: user, email: email, call: call).tenantID
        } catch {
            // Nothing half-made stays: the pending user goes (or the abandoned-registration sweep takes it).
            await users.removePending(user)
            throw error
        }
        try await users.activate(user, homeTenant: tenant)
        var actor = Rampart_V1_AuditActor(principal: Principal(user: user))
        actor.email = email.description
        actor.name = name
        var event = Rampart_V1_AuditEvent(
            .signup,
            tenant: TenantID(tenant),
            target: ("user", user.uuidString.lowercased()),
            call: call,
            actor: actor,
            service: .auth
        )
        event.details = ["via": "invitation"]
        await audit.record(event)

        var reply = Rampart_V1_JoinReply()
        reply.tenantID = tenant
        reply.userID = user.uuidString.lowercased()
        return reply
    }

    /// A signed-in user joins with their own address; accepting proves that mailbox too.
    private func join(as user: UUID, _ request: Rampart_V1_JoinRequest, call: CallContext) async throws -> Rampart_V1_JoinReply {
        guard request.name.isEmpty, request.password.isEmpty else {
            throw RampartError.invalidArgument("signed in, send only the token: a name and a password are for a new account", field: "password")
        }
        guard let email = try await users.activeAccount(user).flatMap({ EmailAddress($0.email) }) else {
            throw RampartError(.unauthenticated, "sign in first")
        }
        let accepted = try await accept(request.token, user: user, email: email, call: call)
        try await users.database.transaction { connection in
            try await proveMailbox(user, call: call, rpc: rpc, users: users, on: connection)
        }
        var reply = Rampart_V1_JoinReply()
        reply.tenantID = accepted.tenantID
        reply.userID = user.uuidString.lowercased()
        return reply
    }

    private func invitation(_ token: String, call: CallContext) async throws -> Rampart_V1_InvitationPreview {
        var request = Rampart_V1_GetInvitationRequest()
        request.token = token
        return try await rpc.call(Subjects.Tenants.getInvitation, request, context: asAuth(call))
    }

    private func accept(_ token: String, user: UUID, email: EmailAddress, call: CallContext) async throws -> Rampart_V1_AcceptInvitationReply {
        var request = Rampart_V1_AcceptInvitationRequest()
        request.token = token
        request.userID = user.uuidString.lowercased()
        request.email = email.description
        return try await rpc.call(Subjects.Tenants.acceptInvitation, request, context: asAuth(call))
    }

    /// The call as auth makes it on the person's behalf: same request, client and deadline.
    private func asAuth(_ call: CallContext) -> CallContext {
        var context = call
        context.tenantID = nil
        context.principal = Principal(service: .auth)
        return context
    }
}
