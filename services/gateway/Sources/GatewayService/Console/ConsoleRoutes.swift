// Bundle.module and percent-decoding.
import Foundation
import HTTPTypes
import Hummingbird
import Mustache
import NIOCore
import RampartModels
import ServiceKit
import SodiumKit
import TokenKit

/// The console (UI-1) at /console/: pages rendered here from the same calls the REST routes
/// make, working without JavaScript. Its session is the person's auth session, held in two
/// cookies no script can read: the refresh token (`rampart_session`) and the current access
/// token (`rampart_access`), refreshed here when it expires. Every form that changes something
/// carries a token equal to the `rampart_csrf` cookie, and a browser's `Sec-Fetch-Site` must say
/// the form is the console's own (a cross-site post is refused).
struct ConsoleRoutes {
    let calls: ServiceCalls
    /// What a signed-in page asks or changes, it asks the REST API.
    let api: ConsoleAPI
    /// Which pages the menu offers: those whose permission the person has.
    let permissions: PermissionChecker
    /// How recent the proof of a change that needs one must be (as the API's step-up).
    let recentProof: RecentProofMiddleware
    let authenticator: Authenticator
    let allowlists: TenantAllowlists
    let pages: ConsolePages
    let cookies: ConsoleCookies

    func add(to router: Router<GatewayRequestContext>) {
        // Hummingbird matches /console and /console/ alike: one home.
        let console = router.group("/console").add(middleware: ErrorPages(routes: self))
        console.get("assets/console.css") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/css; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: pages.stylesheet)))
        }
        console.get { request, context in
            try await signedInPage(request, context) { call in
                async let mfa = call.get("/v1/auth/mfa", as: Rampart_V1_MfaStatusReply.self)
                async let members = call.get("/v1/tenants/\(call.caller.tenant.hex)/members", as: Rampart_V1_ListMembersReply.self)
                let (status, list) = try await (mfa, members)
                let me = list.members.first { "user:\($0.userID)" == call.caller.principal.description }
                var role = ""
                if case .accessToken(let claims) = call.caller.credential { role = claims.roles.first ?? "" }
                return try await page("home", call, ["email": me?.email ?? "", "role": role, "mfaOff": !status.enabled])
            }
        }
        console.get("sign-in") { request, _ in
            let returnTo = Self.consolePath(request.uri.queryParameters.get("return_to"))
            var values: [String: Any] = ["returnTo": returnTo]
            values["notice"] = request.uri.queryParameters.get("done").flatMap { Self.signInNotices[$0] }
            return try page("sign-in", request, values)
        }
        // SSO by the person's address (SSO-3). A form's redirect to another site is blocked by
        // the CSP's form-action: this page sends the browser on by a refresh (and a link).
        console.get("sign-in/sso") { request, _ in
            let returnTo = Self.consolePath(request.uri.queryParameters.get("return_to"))
            let email = request.uri.queryParameters.get("email").map { String($0) } ?? ""
            guard !email.isEmpty, email.utf8.count <= 254, email.contains("@") else {
                return try page(
                    "sign-in",
                    request,
                    status: .badRequest,
                    ["returnTo": returnTo, "ssoEmail": email, "ssoEmailError": "Enter your work email address."]
                )
            }
            let start = "/v1/auth/sso/start?email=\(ConsoleForm.encode(email))&return_to=\(ConsoleForm.encode(returnTo))"
            return try page("sso-continue", request, ["start": start])
        }
        // The tenant switcher (TEN-10): a session in another organization of the person's.
        console.post("switch") { request, context in
            let form = try await checkedForm(request, context)
            return try await signedInPage(request, context, returnTo: "/console/") { call in
                guard let tenant = form["tenant_id"], TenantID(tenant) != nil else {
                    return try await page("home", call, status: .badRequest, ["problem": "Choose one of your organizations."])
                }
                return try await switchTenant(to: tenant, call)
            }
        }
        console.post("sign-in") { request, context in
            let form = try await checkedForm(request, context)
            let returnTo = Self.consolePath(form["return_to"])
            var message = Rampart_V1_LoginRequest()
            message.email = form["email"] ?? ""
            message.password = form["password"] ?? ""
            // What the page can say before asking auth (which answers any other refusal as a
            // wrong password, so as not to tell whether the account exists).
            var missing: [String: String] = [:]
            if message.email.isEmpty { missing["emailError"] = "Enter your email address." }
            if message.password.isEmpty { missing["passwordError"] = "Enter your password." }
            guard missing.isEmpty else {
                return try page(
                    "sign-in",
                    request,
                    status: .badRequest,
                    missing.merging(["returnTo": returnTo, "email": message.email]) { a, _ in a }
                )
            }
            do {
                let tokens = try await calls.call(Subjects.Auth.login, message, context)
                return try await signInAnswer(tokens, request, context, returnTo: returnTo)
            } catch let error as RampartError {
                // Next to the field it concerns, when the problem names one.
                var values = ["returnTo": returnTo, "email": message.email]
                switch error.details["field"] {
                case "email": values["emailError"] = error.message
                case "password": values["passwordError"] = error.message
                default: values["problem"] = error.message
                }
                return try page("sign-in", request, status: Self.status(error), values)
            }
        }
        console.post("sign-in/mfa") { request, context in
            let form = try await checkedForm(request, context)
            let returnTo = Self.consolePath(form["return_to"])
            var message = Rampart_V1_LoginMfaRequest()
            message.mfaToken = form["mfa_token"] ?? ""
            message.code = form["code"] ?? ""
            do {
                let tokens = try await calls.call(Subjects.Auth.loginMFA, message, context)
                return try await signInAnswer(tokens, request, context, returnTo: returnTo)
            } catch let error as RampartError {
                // An enrolment's code page again, without the QR code (the app has the secret).
                let enrolling = form["enrolling"] == "1"
                return try page(
                    enrolling ? "mfa-enroll" : "mfa",
                    request,
                    status: Self.status(error),
                    ["returnTo": returnTo, "mfaToken": message.mfaToken, "codeError": error.message, "signingIn": enrolling]
                )
            }
        }
        // Re-authentication: a code (or, without MFA, the password) again, for what needs a
        // recent proof; back to the page after.
        console.get("confirm") { request, context in
            let returnTo = Self.consolePath(request.uri.queryParameters.get("return_to"))
            return try await signedInPage(request, context, returnTo: returnTo) { call in
                try await confirmPage(call, returnTo: returnTo)
            }
        }
        console.post("confirm") { request, context in
            let form = try await checkedForm(request, context)
            let returnTo = Self.consolePath(form["return_to"])
            return try await signedInPage(request, context, returnTo: returnTo) { call in
                var message = Rampart_V1_StepUpRequest()
                message.code = form["code"] ?? ""
                message.password = form["password"] ?? ""
                do {
                    let tokens = try await call.send(.post, "/v1/auth/step-up", message, as: Rampart_V1_TokenReply.self)
                    var response = Self.seeOther(returnTo + (returnTo.contains("?") ? "&" : "?") + "done=confirmed")
                    cookies.keep(tokens, in: &response)
                    return response
                } catch let refusal as ConsoleRefusal where refusal.status != .unauthorized || refusal.errors["field"] != nil {
                    return try await confirmPage(call, returnTo: returnTo, status: refusal.status, error: refusal.detail)
                }
            }
        }
        console.post("sign-out") { request, context in
            _ = try await checkedForm(request, context)
            // The session ends at auth, not only in this browser; from outside the allowlist too.
            if let session = try? await held(request, context) {
                var message = Rampart_V1_LogoutRequest()
                message.sessionID = session.authenticated.caller.sessionID
                _ = try await calls.rpc.call(Subjects.Auth.logout, message, context: session.authenticated.call)
            }
            var response = Self.seeOther("/console/sign-in")
            cookies.forget(in: &response)
            return response
        }
    }

    // MARK: Pages

    /// A page, with the CSRF token its forms carry (the cookie set when the browser has none).
    func page(
        _ name: String,
        _ request: Request,
        status: HTTPResponse.Status = .ok,
        signedIn: Bool = false,
        _ values: [String: Any] = [:]
    ) throws -> Response {
        let existing = cookies.csrf.value(in: request.headers).flatMap { ConsoleCookies.isToken($0) ? $0 : nil }
        let csrf = existing ?? ConsoleCookies.newToken()
        var object: [String: Any] = values
        object["csrf"] = csrf
        if let returnTo = values["returnTo"] as? String { object["returnToQuery"] = ConsoleForm.encode(returnTo) }
        object["signedIn"] = signedIn
        var response = Response(
            status: status,
            headers: [.contentType: "text/html; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: try pages.render(name, object)))
        )
        if existing == nil { response.headers[.setCookie] = cookies.csrf.set(csrf) }
        return response
    }

    static let signInNotices = [
        "password": "Your password is changed: sign in with the new one.",
        "joined": "Your account is ready: sign in.",
    ]

    /// A session in `tenant` for the signed-in person, as at sign-in there (its MFA step, its
    /// rules); the browser keeps it, and the console's home opens in it.
    func switchTenant(to tenant: String, _ call: ConsoleCall) async throws -> Response {
        var message = Rampart_V1_SwitchTenantRequest()
        message.tenantID = tenant
        let tokens = try await call.send(.post, "/v1/auth/token/switch", message, as: Rampart_V1_TokenReply.self)
        return try await signInAnswer(tokens, call.request, call.context, returnTo: "/console/")
    }

    /// The re-authentication page: the code field with MFA on, else the password's.
    func confirmPage(_ call: ConsoleCall, returnTo: String, status: HTTPResponse.Status = .ok, error: String? = nil) async throws -> Response {
        let mfa = try await call.get("/v1/auth/mfa", as: Rampart_V1_MfaStatusReply.self)
        var values: [String: Any] = ["returnTo": returnTo, "mfaOn": mfa.enabled]
        if let error { values["fieldError"] = error }
        return try await page("confirm", call, status: status, values)
    }

    /// A signed-in page, with the menu of what the person's role opens.
    /// `section` is the menu's entry it is under (the page's name by default).
    func page(
        _ name: String,
        _ call: ConsoleCall,
        section: String? = nil,
        status: HTTPResponse.Status = .ok,
        _ values: [String: Any] = [:]
    ) async throws -> Response {
        var values = values
        values["menu"] = try await menu(call.session.authenticated)
        let memberships = try await call.get("/v1/auth/tenants", as: Rampart_V1_ListMembershipsReply.self).memberships
        let current = call.caller.tenant.hex
        values["organization"] = memberships.first { $0.tenantID == current }?.tenantName ?? ""
        // The switcher lists the others the person may enter.
        let others = memberships.filter { $0.tenantID != current && $0.status == .active }
        values["hasOthers"] = !others.isEmpty
        values["otherOrganizations"] = others.map { ["id": $0.tenantID, "name": $0.tenantName] }
        values["at"] = [section ?? name: true]
        return try page(name, call.request, status: status, signedIn: true, values)
    }

    /// The console's sections and the permission each needs (the REST routes' own).
    static let sections = [
        ("members", "members.manage"), ("sso", "sso.manage"), ("webhooks", "webhooks.manage"), ("audit", "audit.read"),
        ("organization", "settings.manage"),
    ]

    private func menu(_ authenticated: Authenticated) async throws -> [String: Bool] {
        try await withThrowingTaskGroup(of: (String, Bool).self) { group in
            for (section, action) in Self.sections {
                group.addTask {
                    var question = authenticated.caller.permissionQuestion
                    question.action = action
                    return (section, try await permissions.check(question, context: authenticated.call).allowed)
                }
            }
            var menu: [String: Bool] = [:]
            for try await (section, allowed) in group { menu[section] = allowed }
            return menu
        }
    }

    /// A change that needs a recent proof in the console even where the API does not ask one
    /// (an API key, a member's role): the re-authentication page when the proof is older.
    func requireRecentProof(_ call: ConsoleCall, _ doing: String) throws {
        do {
            try recentProof.requireRecentProof(call.caller)
        } catch let error as RampartError {
            throw ConsoleRefusal(status: .unauthorized, detail: error.message, errors: error.details)
        }
    }

    /// The answer of a sign-in step: the session's cookies and the way on, or the MFA step.
    func signInAnswer(
        _ tokens: Rampart_V1_TokenReply,
        _ request: Request,
        _ context: GatewayRequestContext,
        returnTo: String
    ) async throws -> Response {
        if tokens.mfaRequired && tokens.mfaEnrollmentRequired {
            // MFA-7: the organization requires MFA and the person has none yet: set it up now,
            // with the sign-in's token; the first code opens the session.
            var message = Rampart_V1_LoginMfaEnrollRequest()
            message.mfaToken = tokens.mfaToken
            let enrolment = try await calls.call(Subjects.Auth.loginMFAEnroll, message, context)
            var values = SecurityPages.enrolment(enrolment)
            values.merge(["signingIn": true, "mfaToken": tokens.mfaToken, "returnTo": returnTo]) { _, new in new }
            return try page("mfa-enroll", request, values)
        }
        if tokens.mfaRequired {
            return try page("mfa", request, ["returnTo": returnTo, "mfaToken": tokens.mfaToken])
        }
        guard !tokens.accessToken.isEmpty else { throw RampartError(.internal, "a sign-in answered neither a session nor its next step") }
        var response: Response
        if tokens.backupCodes.isEmpty {
            response = Self.seeOther(returnTo)
        } else {
            // An enrolment completed at sign-in: its backup codes, this once, then on.
            var values = SecurityPages.backupCodes(tokens.backupCodes, first: true)
            values["continue"] = returnTo
            response = try page("backup-codes", request, signedIn: true, values)
        }
        cookies.keep(tokens, in: &response)
        return response
    }

    // MARK: The session

    struct Session {
        var authenticated: Authenticated
        var accessToken: String
        /// New tokens when the access token had expired: the response keeps them.
        var refreshed: Rampart_V1_TokenReply?
    }

    /// A signed-in page: `respond` with the browser's session, or the sign-in page (back here
    /// after it) when it holds none or its session ended meanwhile. An action that needs a
    /// recent proof gets the page that asks for it, back to `returnTo` after.
    func signedInPage(
        _ request: Request,
        _ context: GatewayRequestContext,
        returnTo: String? = nil,
        _ respond: (ConsoleCall) async throws -> Response
    ) async throws -> Response {
        let here = returnTo ?? Self.consolePath(request.uri.path)
        guard let session = try await signedIn(request, context) else { return Self.seeOther(Self.signInPath(returnTo: here)) }
        var response: Response
        do {
            response = try await respond(ConsoleCall(api: api, session: session, request: request, context: context))
        } catch let refusal as ConsoleRefusal where refusal.reason == RecentProofMiddleware.reason {
            response = try await confirmPage(
                ConsoleCall(api: api, session: session, request: request, context: context),
                returnTo: here,
                status: .unauthorized
            )
        } catch let refusal as ConsoleRefusal where refusal.status == .unauthorized {
            // The session ended meanwhile (signed out elsewhere, revoked): sign in again.
            response = Self.seeOther(Self.signInPath(returnTo: here))
            cookies.forget(in: &response)
            return response
        } catch let refusal as ConsoleRefusal {
            // What the page was not let do or see (a permission the role lacks): said, as the
            // API said it.
            let call = ConsoleCall(api: api, session: session, request: request, context: context)
            response = try await page("error", call, section: "home", status: refusal.status, ["problem": refusal.detail])
        }
        session.refreshed.map { cookies.keep($0, in: &response) }
        return response
    }

    /// The signed-in person, from the access cookie or, once it expired, by a refresh; nil
    /// when the browser holds no live session. The tenant's allowlist applies as to the API.
    func signedIn(_ request: Request, _ context: GatewayRequestContext) async throws -> Session? {
        let session = try await held(request, context)
        if let session { try await allowlists.admit(session.authenticated.caller, from: context.clientIP, call: session.authenticated.call) }
        return session
    }

    /// The live session the browser's cookies hold, wherever the browser is.
    private func held(_ request: Request, _ context: GatewayRequestContext) async throws -> Session? {
        var session: Session?
        if let token = cookies.access.value(in: request.headers), let found = try? await authenticator.authenticate(accessToken: token, context) {
            session = Session(authenticated: found, accessToken: token)
        } else if let refreshToken = cookies.session.value(in: request.headers) {
            var message = Rampart_V1_RefreshRequest()
            message.refreshToken = refreshToken
            guard let tokens = try? await calls.call(Subjects.Auth.refresh, message, context), !tokens.accessToken.isEmpty else { return nil }
            session = Session(
                authenticated: try await authenticator.authenticate(accessToken: tokens.accessToken, context),
                accessToken: tokens.accessToken,
                refreshed: tokens
            )
        }
        return session
    }

    /// The form of a state-changing post, once it is the console's own: the CSRF token equal
    /// to the browser's cookie, and no browser saying the post came from another site.
    func checkedForm(_ request: Request, _ context: GatewayRequestContext) async throws -> ConsoleForm.Fields {
        if let site = request.headers[.secFetchSite], !["same-origin", "none"].contains(site) {
            throw RampartError(.permissionDenied, "this form was sent from another site", details: ["reason": "cross_site"])
        }
        guard request.headers[.contentType]?.hasPrefix("application/x-www-form-urlencoded") == true else {
            throw RampartError(.malformedRequest, "the console's forms are sent as application/x-www-form-urlencoded")
        }
        let body = try await request.body.collect(upTo: 16 * 1024)
        let form = ConsoleForm.parse(String(buffer: body))
        guard let cookie = cookies.csrf.value(in: request.headers), let sent = form["csrf"], ConsoleCookies.isToken(cookie),
            constantTimeEquals(Array(cookie.utf8), Array(sent.utf8))
        else {
            throw RampartError(.permissionDenied, "this form has expired: reload the page and try again", details: ["reason": "csrf"])
        }
        return form
    }

    // MARK: Helpers

    /// A refusal a browser sees as a page of the console, not as the API's problem+json.
    struct ErrorPages: RouterMiddleware {
        typealias Context = GatewayRequestContext
        let routes: ConsoleRoutes

        func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
            do {
                return try await next(request, context)
            } catch let error as RampartError where error.code != .internal && request.headers[.accept]?.contains("text/html") == true {
                return try routes.page("error", request, status: ConsoleRoutes.status(error), ["problem": error.message])
            }
        }
    }

    static func seeOther(_ location: String) -> Response {
        Response(status: .seeOther, headers: [.location: location])
    }

    /// Only the console's own paths (no open redirect): anything else is the console's home.
    static func consolePath(_ text: String?) -> String {
        guard let text, text.utf8.count <= 512, text.hasPrefix("/console/"), !text.contains("//"), !text.contains("\\"),
            !text.contains(".."), text.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F })
        else { return "/console/" }
        return text
    }

    /// A token from a mail's link, as it may be: base64url and dots, at most 512 characters;
    /// anything else is no token.
    static func token(_ text: String?) -> String {
        guard let text, text.utf8.count <= 512,
            text.utf8.allSatisfy({
                $0 == 0x2D || $0 == 0x2E || $0 == 0x5F || (0x30...0x39).contains($0) || (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0)
            })
        else { return "" }
        return text
    }

    static func signInPath(returnTo: String) -> String {
        returnTo == "/console/" ? "/console/sign-in" : "/console/sign-in?return_to=\(ConsoleForm.encode(returnTo))"
    }

    static func status(_ error: RampartError) -> HTTPResponse.Status {
        Problem.status(error.code)
    }
}

/// The console's cookies: the session (the refresh token), the access token, and the CSRF
/// token forms repeat.
struct ConsoleCookies: Sendable {
    let session: BrowserCookie
    let access: BrowserCookie
    let csrf: BrowserCookie

    init(publicURL: String) {
        session = BrowserCookie("rampart_session", publicURL: publicURL)
        access = BrowserCookie("rampart_access", publicURL: publicURL)
        csrf = BrowserCookie("rampart_csrf", publicURL: publicURL)
    }

    /// The session's new tokens, in the browser's cookies.
    func keep(_ tokens: Rampart_V1_TokenReply, in response: inout Response) {
        if !tokens.refreshToken.isEmpty { response.headers.append(HTTPField(name: .setCookie, value: session.set(tokens.refreshToken))) }
        response.headers.append(HTTPField(name: .setCookie, value: access.set(tokens.accessToken, seconds: Int(tokens.expiresIn))))
    }

    func forget(in response: inout Response) {
        for cookie in [session, access] { response.headers.append(HTTPField(name: .setCookie, value: cookie.clear())) }
    }

    static func newToken() -> String { Base64.encode(randomBytes(32), variant: Base64.urlSafeNoPadding) }

    /// A token this console made: 43 base64url characters.
    static func isToken(_ text: String) -> Bool {
        text.utf8.count == 43
            && text.utf8.allSatisfy {
                $0 == 0x2D || $0 == 0x5F || (0x30...0x39).contains($0) || (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0)
            }
    }
}

/// An application/x-www-form-urlencoded body.
enum ConsoleForm {
    /// A form's fields: a name's first value, or all of them (a group of checkboxes).
    struct Fields {
        var pairs: [(name: String, value: String)] = []

        subscript(name: String) -> String? { pairs.first { $0.name == name }?.value }

        func all(_ name: String) -> [String] { pairs.filter { $0.name == name }.map(\.value) }
    }

    static func parse(_ body: String) -> Fields {
        var form = Fields()
        for pair in body.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = decode(parts[0]) else { continue }
            form.pairs.append((name, parts.count == 2 ? decode(parts[1]) ?? "" : ""))
        }
        return form
    }

    /// A value for a query or a form.
    static func encode(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: unreserved) ?? ""
    }

    private static let unreserved = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")

    private static func decode(_ text: Substring) -> String? {
        String(text.replacingOccurrences(of: "+", with: " ")).removingPercentEncoding
    }
}

/// The console's templates (Resources/console, swift-mustache) and its stylesheet, read once.
struct ConsolePages: Sendable {
    let library: MustacheLibrary
    let stylesheet: String

    static func load() async throws -> ConsolePages {
        guard let folder = Bundle.module.url(forResource: "console", withExtension: nil) else {
            throw RampartError(.internal, "the console's templates are missing from the gateway's resources")
        }
        let library = try await MustacheLibrary(directory: folder.path)
        let stylesheet = try String(contentsOf: folder.appendingPathComponent("console.css"), encoding: .utf8)
        return ConsolePages(library: library, stylesheet: stylesheet)
    }

    func render(_ name: String, _ object: [String: Any]) throws -> String {
        guard let html = library.render(Self.withoutEmptyText(object), withTemplate: name) else {
            throw RampartError(.internal, "the console has no page \(name)")
        }
        return html
    }
}

extension ConsolePages {
    /// Mustache takes any string, the empty one too, as a value a section shows: an empty
    /// text is dropped, so that `{{#token}}` means a token is there.
    static func withoutEmptyText(_ value: Any) -> Any {
        switch value {
        case let object as [String: Any]: object.filter { ($0.value as? String)?.isEmpty != true }.mapValues(withoutEmptyText)
        case let list as [[String: Any]]: list.map { withoutEmptyText($0) }
        case let list as [Any]: list.map(withoutEmptyText)
        default: value
        }
    }
}

extension HTTPField.Name {
    static let secFetchSite = Self("Sec-Fetch-Site")!
}
