import HTTPTypes
import Hummingbird
import RampartModels
import ServiceKit
import SwiftProtobuf

/// The pages a person reaches before or without a session: sign-up (AUTH-1), the landing of
/// the verification mail (AUTH-8), the password reset (AUTH-7) and an invitation (TEN-10, as a
/// new person or signed in). A mail's link opens a page whose button spends the token: a GET
/// never does, so a mail scanner that follows links spends nothing.
struct AccountPages {
    let console: ConsoleRoutes

    /// A POST of the API's routes open to anyone, from this browser.
    private func post<Reply: SwiftProtobuf.Message>(
        _ path: String,
        _ message: some SwiftProtobuf.Message,
        as _: Reply.Type,
        _ request: Request,
        _ context: GatewayRequestContext
    ) async throws -> Reply {
        try await console.api.call(.post, path, message, as: Reply.self, accessToken: nil, request: request, context: context)
    }

    func add(to router: Router<GatewayRequestContext>) {
        let pages = router.group("/console")
        pages.get("sign-up") { request, _ in
            try console.page("sign-up", request)
        }
        pages.post("sign-up") { request, context in
            let form = try await console.checkedForm(request, context)
            var message = Rampart_V1_RegisterRequest()
            message.name = form["name"] ?? ""
            message.email = form["email"] ?? ""
            message.password = form["password"] ?? ""
            message.organization.name = form["organization"] ?? ""
            message.organization.country = (form["country"] ?? "").uppercased()
            message.organization.registrationNumber = form["registration_number"] ?? ""
            do {
                _ = try await post("/v1/auth/register", message, as: Rampart_V1_RegisterReply.self, request, context)
                return try console.page("signed-up", request, ["email": message.email])
            } catch let refusal as ConsoleRefusal {
                var values = refusal.shown(["name", "email", "password", "organization"])
                values["typed"] = [
                    "name": message.name, "email": message.email, "organization": message.organization.name,
                    "country": message.organization.country, "registration_number": message.organization.registrationNumber,
                ]
                return try console.page("sign-up", request, status: refusal.status, values)
            }
        }

        pages.get("verify-email") { request, _ in
            try console.page("verify-email", request, ["token": ConsoleRoutes.token(request.uri.queryParameters.get("token"))])
        }
        pages.post("verify-email") { request, context in
            let form = try await console.checkedForm(request, context)
            var message = Rampart_V1_VerifyEmailRequest()
            message.token = form["token"] ?? ""
            do {
                _ = try await post("/v1/auth/email/verify", message, as: Rampart_V1_VerifyEmailReply.self, request, context)
                return try console.page("verify-email", request, ["verified": true])
            } catch let refusal as ConsoleRefusal {
                return try console.page("verify-email", request, status: refusal.status, ["problem": refusal.detail])
            }
        }

        pages.get("reset-password") { request, _ in
            try console.page("reset-password", request, ["token": ConsoleRoutes.token(request.uri.queryParameters.get("token"))])
        }
        pages.post("reset-password") { request, context in
            let form = try await console.checkedForm(request, context)
            if let token = form["token"], !token.isEmpty {
                var message = Rampart_V1_ConfirmPasswordResetRequest()
                message.token = token
                message.newPassword = form["new_password"] ?? ""
                do {
                    _ = try await post("/v1/auth/password/reset/confirm", message, as: Rampart_V1_ConfirmPasswordResetReply.self, request, context)
                    return ConsoleRoutes.seeOther("/console/sign-in?done=password")
                } catch let refusal as ConsoleRefusal {
                    var values = refusal.shown(["new_password"])
                    values["token"] = token
                    return try console.page("reset-password", request, status: refusal.status, values)
                }
            }
            var message = Rampart_V1_RequestPasswordResetRequest()
            message.email = form["email"] ?? ""
            do {
                _ = try await post("/v1/auth/password/reset/request", message, as: Rampart_V1_RequestPasswordResetReply.self, request, context)
                // The same answer whether or not the address has an account (AUTH-5).
                return try console.page("reset-password", request, ["sent": true, "email": message.email])
            } catch let refusal as ConsoleRefusal {
                var values = refusal.shown(["email"])
                values["email"] = message.email
                return try console.page("reset-password", request, status: refusal.status, values)
            }
        }

        pages.get("invitations/accept") { request, context in
            let token = ConsoleRoutes.token(request.uri.queryParameters.get("token"))
            let signedIn = try await console.signedIn(request, context) != nil
            let here = "/console/invitations/accept" + (token.isEmpty ? "" : "?token=\(token)")
            return try console.page(
                "invitation",
                request,
                signedIn: signedIn,
                ["token": token, "signedInPerson": signedIn, "signIn": ConsoleRoutes.signInPath(returnTo: here)]
            )
        }
        pages.post("invitations/accept") { request, context in
            let form = try await console.checkedForm(request, context)
            var message = Rampart_V1_JoinRequest()
            message.token = form["token"] ?? ""
            if form["as"] == "member" {
                // A signed-in person joins, then works in the organization they joined.
                return try await console.signedInPage(request, context, returnTo: "/console/") { call in
                    do {
                        let joined = try await call.send(.post, "/v1/invitations/accept", message, as: Rampart_V1_JoinReply.self)
                        return try await console.switchTenant(to: joined.tenantID, call)
                    } catch let refusal as ConsoleRefusal where refusal.status != .unauthorized {
                        return try await console.page(
                            "invitation",
                            call,
                            section: "home",
                            status: refusal.status,
                            ["token": message.token, "signedInPerson": true, "problem": refusal.detail]
                        )
                    }
                }
            }
            message.name = form["name"] ?? ""
            message.password = form["password"] ?? ""
            do {
                _ = try await post("/v1/invitations/accept", message, as: Rampart_V1_JoinReply.self, request, context)
                return ConsoleRoutes.seeOther("/console/sign-in?done=joined")
            } catch let refusal as ConsoleRefusal {
                var values = refusal.shown(["name", "password"])
                values["token"] = message.token
                values["typedName"] = message.name
                return try console.page("invitation", request, status: refusal.status, values)
            }
        }
    }
}
