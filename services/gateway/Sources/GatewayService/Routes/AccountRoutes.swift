import Hummingbird
import RampartModels
import ServiceKit
import TokenKit

/// SPEC section 14, the signed-in person's own account: password, sessions, MFA (MFA-1, MFA-2),
/// email verification (AUTH-8), their tenants and a session in another (TEN-10), step-up, and
/// who the credential is. Only `whoami` takes an API key: a key does not manage a person.
struct AccountRoutes {
    let calls: ServiceCalls

    func add(to scopes: RouteScopes) {
        let account = scopes.signedIn("/v1/auth")
        account.post("password/change") { request, context in
            try await calls.forward(Subjects.Auth.changePassword, request, context) { message, caller in
                message.currentSessionID = caller.sessionID
            }
        }
        account.post("logout") { _, context in
            var message = Rampart_V1_LogoutRequest()
            message.sessionID = context.caller.sessionID
            _ = try await calls.call(Subjects.Auth.logout, message, context)
            return Response(status: .noContent)
        }
        account.get("sessions") { _, context in
            var message = Rampart_V1_ListSessionsRequest()
            message.currentSessionID = context.caller.sessionID
            return try Response.json(try await calls.call(Subjects.Auth.listSessions, message, context))
        }
        account.delete("sessions/:id") { _, context in
            var message = Rampart_V1_LogoutRequest()
            message.sessionID = context.parameters.get("id") ?? ""
            _ = try await calls.call(Subjects.Auth.logout, message, context)
            return Response(status: .noContent)
        }
        account.delete("sessions") { _, context in
            var message = Rampart_V1_RevokeSessionsRequest()
            message.exceptSessionID = context.caller.sessionID
            return try Response.json(try await calls.call(Subjects.Auth.revokeSessions, message, context))
        }
        account.post("mfa/totp/enroll") { request, context in
            try await calls.forward(Subjects.Auth.mfaEnroll, request, context)
        }
        account.post("mfa/totp/confirm") { request, context in
            try await calls.forward(Subjects.Auth.mfaConfirm, request, context)
        }
        account.get("mfa") { _, context in
            try Response.json(try await calls.call(Subjects.Auth.mfaStatus, Rampart_V1_MfaStatusRequest(), context))
        }
        account.post("mfa/backup-codes/regenerate") { request, context in
            try await calls.forward(Subjects.Auth.mfaRegenerateBackupCodes, request, context)
        }
        account.delete("mfa") { request, context in
            try await calls.forward(Subjects.Auth.mfaDisable, request, context)
        }
        // AUTH-8: another verification mail while the address is unverified.
        account.post("email/verification/resend") { _, context in
            let reply = try await calls.call(Subjects.Auth.resendEmailVerification, Rampart_V1_ResendEmailVerificationRequest(), context)
            return try Response.json(reply, status: .accepted)
        }
        account.get("tenants") { _, context in
            try Response.json(try await calls.call(Subjects.Tenants.listMemberships, Rampart_V1_ListMembershipsRequest(), context))
        }
        // Step-up: a proof again, for the routes that need a recent one.
        account.post("step-up") { request, context in
            try await calls.forward(Subjects.Auth.stepUp, request, context) { message, caller in message.sessionID = caller.sessionID }
        }
        account.post("token/switch") { request, context in
            try await calls.forward(Subjects.Auth.switchTenant, request, context) { message, caller in message.sessionID = caller.sessionID }
        }
        scopes.signedIn("/v1/auth", accepts: .accessTokenOrAPIKey).get("whoami") { _, context in
            var reply = Rampart_V1_WhoAmIReply()
            reply.principal = context.caller.principal.description
            reply.tenantID = context.caller.tenant.hex
            switch context.caller.credential {
            case .accessToken(let claims):
                reply.sessionID = claims.sid
                reply.roles = claims.roles
            case .apiKey(let key):
                reply.scopes = key.scopes
                reply.createdBy = key.createdBy
            }
            return try Response.json(reply)
        }
    }
}
