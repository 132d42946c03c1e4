import Hummingbird
import NIOCore
import RampartModels
import ServiceKit

/// SPEC section 14, the routes before a session (AUTH-1..8): registration, sign-in and its MFA
/// step, token refresh, password reset, email verification, an invitation accepted, and the
/// keys access tokens are verified with.
struct SignInRoutes {
    let calls: ServiceCalls
    let authenticator: Authenticator
    let allowlists: TenantAllowlists
    let tokens: AccessTokenCache

    func add(to router: Router<GatewayRequestContext>) {
        let auth = router.group("/v1/auth")
        auth.post("register") { request, context in
            try await calls.forward(Subjects.Auth.register, request, context, status: .created)
        }
        auth.post("login") { request, context in
            try await calls.forward(Subjects.Auth.login, request, context)
        }
        auth.post("login/mfa") { request, context in
            try await calls.forward(Subjects.Auth.loginMFA, request, context)
        }
        auth.post("login/mfa/enroll") { request, context in
            try await calls.forward(Subjects.Auth.loginMFAEnroll, request, context)
        }
        auth.post("token/refresh") { request, context in
            try await calls.forward(Subjects.Auth.refresh, request, context)
        }
        auth.post("password/reset/request") { request, context in
            try await calls.forward(Subjects.Auth.requestPasswordReset, request, context)
        }
        auth.post("password/reset/confirm") { request, context in
            try await calls.forward(Subjects.Auth.confirmPasswordReset, request, context)
        }
        auth.post("email/verify") { request, context in
            try await calls.forward(Subjects.Auth.verifyEmail, request, context)
        }
        // TEN-10: accepting an invitation, as a new person (no credential) or signed in: then as
        // any signed-in route, from an address the caller's tenant allows.
        router.post("/v1/invitations/accept") { request, context in
            guard request.headers[.authorization] != nil else { return try await calls.forward(Subjects.Auth.join, request, context) }
            let authenticated = try await authenticator.authenticate(request, context, accepts: .accessToken)
            try await allowlists.admit(authenticated.caller, from: context.clientIP, call: authenticated.call)
            let message = try await calls.message(request, as: Rampart_V1_JoinRequest.self)
            return try Response.json(try await calls.rpc.call(Subjects.Auth.join, message, context: authenticated.call))
        }
        router.get("/.well-known/jwks.json") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: try await tokens.jwks())))
        }
    }
}
