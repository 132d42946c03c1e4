import HTTPTypes
import Hummingbird
import RampartModels

/// SPEC section 14, SSO (SSO-1, SSO-2): a tenant's connections, managed with `sso.manage`
/// (owners and admins); a change needs a recent proof of the caller's factors, as who signs in
/// to the tenant is at stake.
struct SSORoutes {
    let calls: ServiceCalls

    func add(to scopes: RouteScopes) {
        let connections = scopes.tenant("sso/connections").requiring(scopes.permission("sso.manage"))
        connections.get { request, context in
            _ = try QueryParameters(request, allowed: [])
            return try Response.json(try await calls.call(Subjects.Auth.listSSOConnections, Rampart_V1_ListSsoConnectionsRequest(), context))
        }
        connections.requiring(scopes.recentProof("Adding an SSO connection")).post { request, context in
            try await calls.forward(Subjects.Auth.createSSOConnection, request, context, status: .created)
        }
        connections.get(":connection_id") { _, context in
            var message = Rampart_V1_SsoConnectionRequest()
            message.connectionID = try context.pathID("connection_id")
            return try Response.json(try await calls.call(Subjects.Auth.getSSOConnection, message, context))
        }
        connections.requiring(scopes.recentProof("Changing an SSO connection")).patch(":connection_id") { request, context in
            var message = try await calls.message(request, as: Rampart_V1_UpdateSsoConnectionRequest.self)
            message.connectionID = try sameID(
                message.connectionID,
                as: try context.pathID("connection_id"),
                field: "connection_id",
                naming: "connection"
            )
            return try Response.json(try await calls.call(Subjects.Auth.updateSSOConnection, message, context))
        }
        connections.requiring(scopes.recentProof("Removing an SSO connection")).delete(":connection_id") { _, context in
            var message = Rampart_V1_SsoConnectionRequest()
            message.connectionID = try context.pathID("connection_id")
            return try Response.json(try await calls.call(Subjects.Auth.deleteSSOConnection, message, context))
        }

        // SSO-3: the domains the tenant proves it owns, by a DNS TXT record.
        let domains = scopes.tenant("domains").requiring(scopes.permission("sso.manage"))
        domains.get { request, context in
            _ = try QueryParameters(request, allowed: [])
            return try Response.json(try await calls.call(Subjects.Auth.listSSODomains, Rampart_V1_ListSsoDomainsRequest(), context))
        }
        domains.requiring(scopes.recentProof("Claiming a domain")).post { request, context in
            try await calls.forward(Subjects.Auth.addSSODomain, request, context, status: .created)
        }
        domains.post(":domain/verify") { _, context in
            var message = Rampart_V1_SsoDomainRequest()
            message.domain = context.parameters.get("domain") ?? ""
            return try Response.json(try await calls.call(Subjects.Auth.verifySSODomain, message, context))
        }
        domains.requiring(scopes.recentProof("Removing a domain")).delete(":domain") { _, context in
            var message = Rampart_V1_SsoDomainRequest()
            message.domain = context.parameters.get("domain") ?? ""
            return try Response.json(try await calls.call(Subjects.Auth.removeSSODomain, message, context))
        }
    }
}

/// SPEC section 14, SSO sign-in (SSO-3) and Sign in with Google (SSO-4): a start sends the
/// browser to the provider with a cookie that binds the sign-in to it; the callback, one for
/// every provider, presents the cookie with the provider's answer. The cookie is `__Host-`
/// prefixed, Secure, HttpOnly and SameSite=Lax (sent on the provider's top-level redirect back),
/// except on a plain-HTTP loopback address (`make run`), where browsers would not keep a Secure
/// cookie: there it goes without both, and the gateway says so at start. The signed-in person's
/// links to Google are theirs to list, add (with a recent proof: a new way into the account)
/// and remove.
struct SSOSignInRoutes {
    let calls: ServiceCalls
    let cookie: BrowserCookie
    /// Where a browser's sign-in lands: the console's session, its pages.
    let console: ConsoleRoutes

    func add(to scopes: RouteScopes) {
        let sso = scopes.router.group("/v1/auth/sso")
        sso.get("start") { request, context in
            let query = try QueryParameters(request, allowed: ["connection_id", "email", "return_to"])
            var message = Rampart_V1_SsoStartRequest()
            message.connectionID = try query.text("connection_id", maximumBytes: 64) ?? ""
            message.email = try query.text("email", maximumBytes: 254) ?? ""
            message.returnTo = try query.text("return_to", maximumBytes: 512) ?? ""
            return try await starting(request) { redirect(try await calls.call(Subjects.Auth.ssoStart, message, context)) }
        }
        scopes.router.get("/v1/auth/google/start") { request, context in
            let query = try QueryParameters(request, allowed: ["tenant_id", "return_to"])
            var message = Rampart_V1_GoogleStartRequest()
            message.tenantID = try query.text("tenant_id", maximumBytes: 64) ?? ""
            message.returnTo = try query.text("return_to", maximumBytes: 512) ?? ""
            return try await starting(request) { redirect(try await calls.call(Subjects.Auth.googleStart, message, context)) }
        }
        sso.get("callback") { request, context in
            var message = Rampart_V1_SsoCallbackRequest()
            // Providers add parameters of their own (Google: scope, authuser, hd, prompt): those
            // are ignored; each one read here must come once.
            var seen: Set<String> = []
            for (name, value) in request.uri.queryParameters {
                let name = String(name)
                guard ["state", "code", "iss", "error"].contains(name) else { continue }
                guard seen.insert(name).inserted else { throw RampartError.invalidArgument("\(name) is given twice", field: name) }
                guard value.utf8.count <= 4096 else { throw RampartError.invalidArgument("\(name) is too long", field: name) }
                switch name {
                case "state": message.state = String(value)
                case "code": message.code = String(value)
                case "iss": message.iss = String(value)
                default: message.error = String(value)
                }
            }
            message.browserBinding = cookie.value(in: request.headers) ?? ""
            // A browser (it asks for HTML) gets the console: its session and a 303 to `return_to`
            // (or the MFA step's page), a link's way back, or the refusal on the sign-in page.
            // Any other client gets JSON: the sign-in's tokens, or the Google account a link added.
            let browser = request.headers[.accept]?.contains("text/html") == true
            var response: Response
            do {
                let reply = try await calls.call(Subjects.Auth.ssoCallback, message, context)
                if !browser {
                    response = try reply.hasLinked ? Response.json(reply.linked) : Response.json(reply.tokens)
                } else if reply.hasLinked {
                    response = ConsoleRoutes.seeOther(ConsoleRoutes.consolePath(reply.returnTo))
                } else {
                    response = try await console.signInAnswer(reply.tokens, request, context, returnTo: ConsoleRoutes.consolePath(reply.returnTo))
                }
            } catch let error as RampartError where browser {
                response = try console.page("sign-in", request, status: Problem.status(error.code), ["problem": error.message])
            }
            response.headers.append(HTTPField(name: .setCookie, value: cookie.clear()))
            return response
        }

        let identities = scopes.signedIn("/v1/auth/identities")
        identities.get { request, context in
            _ = try QueryParameters(request, allowed: [])
            return try Response.json(try await calls.call(Subjects.Auth.listIdentities, Rampart_V1_ListIdentitiesRequest(), context))
        }
        // The answer, not a redirect: a script or a form's page sends the browser on, with the
        // cookie this response sets.
        identities.requiring(scopes.recentProof("Linking a Google account")).post("google/link") { request, context in
            let reply = try await calls.call(
                Subjects.Auth.linkGoogle,
                try await calls.message(request, as: Rampart_V1_LinkGoogleRequest.self),
                context
            )
            var answer = Rampart_V1_SsoStartReply()
            answer.authorizationURL = reply.authorizationURL
            answer.expiresIn = reply.expiresIn
            var response = try Response.json(answer)
            response.headers[.setCookie] = cookie.set(reply.browserBinding, seconds: Int(reply.expiresIn))
            return response
        }
        identities.delete("google") { _, context in
            _ = try await calls.call(Subjects.Auth.unlinkGoogle, Rampart_V1_UnlinkGoogleRequest(), context)
            return Response(status: .noContent)
        }
    }

    /// A start's answer; a browser (it asks for HTML) sees a refusal on the console's sign-in
    /// page (no connection for the address, Google not offered here), any other client as JSON.
    private func starting(_ request: Request, _ start: () async throws -> Response) async throws -> Response {
        do {
            return try await start()
        } catch let error as RampartError where request.headers[.accept]?.contains("text/html") == true && error.code != .internal {
            return try console.page("sign-in", request, status: Problem.status(error.code), ["problem": error.message])
        }
    }

    /// To the provider, with the binding in the cookie (never in the URL or the body).
    private func redirect(_ reply: Rampart_V1_SsoStartReply) -> Response {
        var headers = HTTPFields()
        headers[.location] = reply.authorizationURL
        headers[.setCookie] = cookie.set(reply.browserBinding, seconds: Int(reply.expiresIn))
        return Response(status: .found, headers: headers)
    }
}
