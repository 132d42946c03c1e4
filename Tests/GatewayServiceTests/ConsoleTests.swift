import GatewayService
import RateLimitService
import ServiceKit
import ServicesTestSupport
import TestSupport
import Testing

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A browser's part in the console over plain HTTP: its cookie jar, and forms posted as a
/// browser posts them (same-origin, with the page's CSRF token). The browser suite drives a
/// real Chromium; these tests pin the security properties down request by request.
struct ConsoleBrowser {
    let port: Int
    /// Sent with every request (a proxy's X-Forwarded-For).
    var headers: [String: String] = [:]
    var cookies: [String: String] = [:]

    var cookieHeader: String { cookies.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "; ") }

    mutating func get(_ path: String) async throws -> HTTPTestResponse {
        let answer = try await httpRequest(
            port: port,
            "GET",
            path,
            headers: headers.merging(cookies.isEmpty ? [:] : ["Cookie": cookieHeader]) { _, new in new }
        )
        keep(answer)
        return answer
    }

    mutating func post(_ path: String, _ form: [(String, String)], site: String? = "same-origin") async throws -> HTTPTestResponse {
        var headers = self.headers.merging(["Content-Type": "application/x-www-form-urlencoded"]) { _, new in new }
        if !cookies.isEmpty { headers["Cookie"] = cookieHeader }
        if let site { headers["Sec-Fetch-Site"] = site }
        let body = form.map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? $0.1)" }.joined(separator: "&")
        let answer = try await httpRequest(port: port, "POST", path, headers: headers, body: Array(body.utf8))
        keep(answer)
        return answer
    }

    /// The CSRF token the page's forms carry.
    var csrf: String { cookies["rampart_csrf"] ?? "" }

    private mutating func keep(_ answer: HTTPTestResponse) {
        for line in (answer.headers["set-cookie"] ?? "").split(separator: "\n") {
            let pair = line.split(separator: ";")[0].split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard pair.count == 2 else { continue }
            if pair[1].isEmpty || line.contains("Max-Age=0") { cookies[String(pair[0])] = nil } else { cookies[String(pair[0])] = String(pair[1]) }
        }
    }

    /// The attributes the response set `name` with.
    static func attributes(of name: String, in answer: HTTPTestResponse) -> [String] {
        let line = (answer.headers["set-cookie"] ?? "").split(separator: "\n").first { $0.hasPrefix(name + "=") } ?? ""
        return line.split(separator: ";").dropFirst().map { $0.trimmingCharacters(in: .whitespaces) }
    }
}

@Suite("UI-1 console: security headers, the session's cookies, CSRF, sign-in and sign-out over HTTP", .serialized)
struct ConsoleTests {
    static let policy =
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

    @Test("Console responses carry its CSP, no-store and no framing; the sign-in page labels its fields for password managers and screen readers")
    func headersAndPage() async throws {
        let world = try await GatewayWorld.start()
        try await stopping(world.cluster) {
            var browser = ConsoleBrowser(port: world.port)
            let page = try await browser.get("/console/sign-in")
            #expect(page.status == 200 && page.headers["content-type"]?.hasPrefix("text/html") == true, "\(page.body)")
            for answer in [page, try await browser.get("/console/"), try await browser.get("/console/assets/console.css")] {
                #expect(answer.headers["content-security-policy"] == Self.policy)
                #expect(answer.headers["cache-control"] == "no-store" && answer.headers["x-frame-options"] == "DENY")
            }
            #expect(try await browser.get("/console/").headers["location"] == "/console/sign-in", "no session: to the sign-in")
            for needle in [
                #"<label for="email">"#, #"autocomplete="username""#, #"<label for="password">"#, #"autocomplete="current-password""#,
                "<main", #"<html lang="en">"#, #"<link rel="stylesheet" href="/console/assets/console.css">"#,
            ] {
                #expect(page.body.contains(needle), "\(needle)")
            }
            #expect(!page.body.contains("<script") && !page.body.contains("style="), "nothing inline")
            #expect(ConsoleBrowser.attributes(of: "rampart_csrf", in: page) == ["Path=/", "HttpOnly", "SameSite=Lax"], "plain-HTTP loopback")
            // The API keeps its own policy.
            let api = try await HTTP.send(world.port, "GET", "/openapi.json")
            #expect(api.headers["content-security-policy"]?.contains("form-action 'none'") == true)
        }
    }

    @Test("A console page is one request to the API's general limit, however many API calls it makes")
    func onePageOneRequest() async throws {
        // Behind a trusted proxy: the console's browser has an address of its own, apart from
        // the requests that set the world up.
        var limits = TenantsCluster.liftedSignInLimits()
        limits.policies["api"] = RateLimitPolicy(name: "api", key: .ip, limit: 40, windowSeconds: 60)
        let gateway = GatewaySettings(trustedProxies: [IPNetwork(cidr: "127.0.0.1/32")!])
        let world = try await GatewayWorld.start(rateLimitSettings: limits, gateway: gateway)
        try await stopping(world.cluster) {
            let elsewhere = ["X-Forwarded-For": "198.51.100.7"]
            var browser = ConsoleBrowser(port: world.port, headers: elsewhere)
            _ = try await browser.get("/console/sign-in")
            let signedIn = try await browser.post(
                "/console/sign-in",
                [("csrf", browser.csrf), ("email", "ada@lovelace.example"), ("password", HTTP.password)]
            )
            #expect(signedIn.status == 303, "\(signedIn.body)")
            // 30 pages: each asks the API three or four times, which would pass 40 if counted.
            for _ in 0..<30 {
                let home = try await browser.get("/console/")
                #expect(home.status == 200, "\(home.status) \(home.body)")
                guard home.status == 200 else { break }
            }
            #expect(try await browser.get("/console/").headers["ratelimit-remaining"] == "7")
        }
    }

    @Test("A member sees what their role opens: no menu entry for the audit log, and its page says the permission is missing")
    func memberRole() async throws {
        let world = try await GatewayWorld.start()
        try await stopping(world.cluster) {
            // Bob is a member of Ada's organization; the console takes his access token as its session.
            var browser = ConsoleBrowser(port: world.port)
            browser.cookies["rampart_access"] = world.bobToken
            let home = try await browser.get("/console/")
            #expect(home.status == 200 && home.body.contains("with the role member"), "\(home.body)")
            for section in ["/console/audit", "/console/members", "/console/sso", "/console/webhooks", "/console/organization"] {
                #expect(!home.body.contains(#"href="\#(section)""#), "\(section) is not offered to a member")
            }
            #expect(home.body.contains(#"href="/console/api-keys""#))
            let audit = try await browser.get("/console/audit")
            #expect(
                audit.status == 403 && audit.body.contains("audit.read") && audit.body.contains(#"role="alert""#),
                "\(audit.status) \(audit.body)"
            )
        }
    }

    @Test("Served at an https address, the console's cookies are __Host- prefixed, Secure, HttpOnly and SameSite=Lax")
    func secureCookies() async throws {
        let world = try await GatewayWorld.start(gateway: GatewaySettings(publicURL: "https://console.example"))
        try await stopping(world.cluster) {
            let page = try await httpRequest(port: world.port, "GET", "/console/sign-in")
            let csrfLine = try #require(page.headers["set-cookie"])
            #expect(csrfLine.hasPrefix("__Host-rampart_csrf="), "\(csrfLine)")
            #expect(ConsoleBrowser.attributes(of: "__Host-rampart_csrf", in: page) == ["Path=/", "HttpOnly", "SameSite=Lax", "Secure"])
            let csrf = String(csrfLine.split(separator: ";")[0].dropFirst("__Host-rampart_csrf=".count))
            let body =
                "csrf=\(csrf)&email=ada%40lovelace.example&password=\(HTTP.password.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")"
            let signedIn = try await httpRequest(
                port: world.port,
                "POST",
                "/console/sign-in",
                headers: [
                    "Content-Type": "application/x-www-form-urlencoded", "Cookie": "__Host-rampart_csrf=\(csrf)", "Sec-Fetch-Site": "same-origin",
                ],
                body: Array(body.utf8)
            )
            #expect(signedIn.status == 303, "\(signedIn.body)")
            for name in ["__Host-rampart_session", "__Host-rampart_access"] {
                let attributes = ConsoleBrowser.attributes(of: name, in: signedIn)
                #expect(
                    attributes.first == "Path=/" && ["HttpOnly", "SameSite=Lax", "Secure"].allSatisfy(attributes.contains),
                    "\(name): \(attributes)"
                )
            }
        }
    }

    @Test("A sign-in sets HttpOnly session cookies and opens the console; a wrong password says so; sign-out ends the session at auth")
    func signInAndOut() async throws {
        let world = try await GatewayWorld.start()
        try await stopping(world.cluster) {
            var browser = ConsoleBrowser(port: world.port)
            _ = try await browser.get("/console/sign-in")
            let wrong = try await browser.post(
                "/console/sign-in",
                [("csrf", browser.csrf), ("email", "ada@lovelace.example"), ("password", "wrong")]
            )
            #expect(wrong.status == 401 && wrong.body.contains("ada@lovelace.example") && wrong.body.contains(#"role="alert""#), "\(wrong.body)")
            #expect(browser.cookies["rampart_session"] == nil)
            // What the page repeats is escaped: an address that closes the attribute runs nothing.
            let hostile = try await browser.post(
                "/console/sign-in",
                [("csrf", browser.csrf), ("email", #""><script>alert(1)</script>"#), ("password", "x")]
            )
            #expect(!hostile.body.contains("<script>") && hostile.body.contains("&quot;&gt;&lt;script&gt;"), "\(hostile.body)")
            let empty = try await browser.post("/console/sign-in", [("csrf", browser.csrf), ("email", ""), ("password", "")])
            #expect(empty.status == 400 && empty.body.contains(#"id="email-error""#) && empty.body.contains(#"id="password-error""#), "\(empty.body)")

            // return_to elsewhere than the console is not followed.
            let signedIn = try await browser.post(
                "/console/sign-in",
                [("csrf", browser.csrf), ("email", "ada@lovelace.example"), ("password", HTTP.password), ("return_to", "https://evil.example/")]
            )
            #expect(signedIn.status == 303 && signedIn.headers["location"] == "/console/", "\(signedIn.body)")
            for name in ["rampart_session", "rampart_access"] {
                let attributes = ConsoleBrowser.attributes(of: name, in: signedIn)
                #expect(attributes.contains("HttpOnly") && attributes.contains("SameSite=Lax"), "\(name): \(attributes)")
            }
            let home = try await browser.get("/console/")
            #expect(
                home.status == 200
                    && home.body.contains("signed in as ada@lovelace.example to <strong>Org 732 829 320 00074</strong>, with the role owner"),
                "\(home.body)"
            )
            // The access token expired (the browser dropped it): the refresh token, rotated, opens a new one.
            let firstSession = browser.cookies["rampart_session"]
            browser.cookies["rampart_access"] = nil
            let refreshed = try await browser.get("/console/")
            #expect(refreshed.status == 200 && browser.cookies["rampart_access"] != nil, "\(refreshed.body)")
            #expect(browser.cookies["rampart_session"] != nil && browser.cookies["rampart_session"] != firstSession)
            let access = try #require(browser.cookies["rampart_access"])
            #expect(try await HTTP.send(world.port, "GET", "/v1/auth/whoami", token: access).status == 200)

            let out = try await browser.post("/console/sign-out", [("csrf", browser.csrf)])
            #expect(out.status == 303 && out.headers["location"] == "/console/sign-in")
            #expect(browser.cookies["rampart_session"] == nil && browser.cookies["rampart_access"] == nil)
            // Ended at auth: the access token a thief copied stops working too.
            #expect(
                try await eventually(within: .seconds(5)) {
                    try await HTTP.send(world.port, "GET", "/v1/auth/whoami", token: access).status == 401
                }
            )
        }
    }

    @Test("With MFA on, the password earns the code page (one-time-code, numeric); a wrong code says so by the field; the right one signs in")
    func mfaStep() async throws {
        let world = try await GatewayWorld.start(rateLimitSettings: TenantsCluster.liftedSignInLimits())
        try await stopping(world.cluster) {
            let (secret, _, _) = try await HTTP.enrolMFA(world.port, world.adaToken)
            var browser = ConsoleBrowser(port: world.port)
            _ = try await browser.get("/console/sign-in")
            let step = try await browser.post(
                "/console/sign-in",
                [("csrf", browser.csrf), ("email", "ada@lovelace.example"), ("password", HTTP.password)]
            )
            #expect(step.status == 200 && step.body.contains(#"autocomplete="one-time-code""#) && step.body.contains(#"inputmode="numeric""#))
            #expect(browser.cookies["rampart_session"] == nil, "no session before the second factor")
            let token = try #require(step.body.firstMatch(of: /name="mfa_token" value="([^"]+)"/).map { String($0.1) })
            let wrong = try await browser.post("/console/sign-in/mfa", [("csrf", browser.csrf), ("mfa_token", token), ("code", "000000")])
            #expect(wrong.status == 401 && wrong.body.contains(#"id="code-error""#) && wrong.body.contains(#"aria-invalid="true""#), "\(wrong.body)")
            // (Enrolment spent the current step: the next one, which a code one step ahead is accepted as.)
            let code = try HTTP.totpCode(secret, offset: 1)
            let signedIn = try await browser.post("/console/sign-in/mfa", [("csrf", browser.csrf), ("mfa_token", token), ("code", code)])
            #expect(signedIn.status == 303 && browser.cookies["rampart_session"] != nil, "\(signedIn.body)")
        }
    }

    @Test("Sign in with SSO by address: a page that sends the browser on to the start; a start refused shows on the sign-in page for a browser")
    func ssoEntry() async throws {
        let world = try await GatewayWorld.start()
        try await stopping(world.cluster) {
            var browser = ConsoleBrowser(port: world.port)
            let empty = try await browser.get("/console/sign-in/sso?email=")
            #expect(empty.status == 400 && empty.body.contains(#"id="sso-email-error""#), "\(empty.body)")
            let on = try await browser.get("/console/sign-in/sso?email=grace%40nowhere.example&return_to=/console/api-keys")
            let start = "/v1/auth/sso/start?email=grace%40nowhere.example&amp;return_to=%2Fconsole%2Fapi-keys"
            #expect(on.status == 200 && on.body.contains(#"<meta http-equiv="refresh" content="0;url=\#(start)">"#), "\(on.body)")
            #expect(on.body.contains(#"<a href="\#(start)">"#))
            // No connection serves the address: a browser sees why on the sign-in page, a
            // program gets the problem.
            let path = "/v1/auth/sso/start?email=grace%40nowhere.example"
            let page = try await httpRequest(port: world.port, "GET", path, headers: ["Accept": "text/html"])
            #expect(page.status == 404 && page.body.contains(#"role="alert""#) && page.body.contains("<h1>Sign in</h1>"), "\(page.body)")
            let program = try await httpRequest(port: world.port, "GET", path, headers: ["Accept": "application/json"])
            #expect(program.status == 404 && program.headers["content-type"] == "application/problem+json", "\(program.body)")
        }
    }

    @Test("A mail's landing without its token offers nothing to spend: the reset asks for the address, the verification and the invitation explain")
    func landingsWithoutToken() async throws {
        let world = try await GatewayWorld.start()
        try await stopping(world.cluster) {
            var browser = ConsoleBrowser(port: world.port)
            let reset = try await browser.get("/console/reset-password")
            #expect(reset.status == 200 && reset.body.contains(#"name="email""#) && !reset.body.contains(#"name="new_password""#), "\(reset.body)")
            let withToken = try await browser.get("/console/reset-password?token=abc.DEF_123")
            #expect(withToken.body.contains(#"name="new_password""#) && withToken.body.contains(#"value="abc.DEF_123""#), "\(withToken.body)")
            // A token that is not one (markup, a quote) is no token.
            let hostile = try await browser.get("/console/reset-password?token=%22%3E%3Cscript%3E")
            #expect(!hostile.body.contains(#"name="new_password""#) && !hostile.body.contains("<script>"), "\(hostile.body)")
            let verify = try await browser.get("/console/verify-email")
            #expect(verify.status == 200 && !verify.body.contains("Confirm my address"), "\(verify.body)")
            let invitation = try await browser.get("/console/invitations/accept")
            #expect(invitation.status == 200 && !invitation.body.contains(#"name="token""#), "\(invitation.body)")
        }
    }

    @Test("Cross-site and token-less posts are refused: no CSRF token, another token, another site; the session stays")
    func crossSite() async throws {
        let world = try await GatewayWorld.start()
        try await stopping(world.cluster) {
            var browser = ConsoleBrowser(port: world.port)
            _ = try await browser.get("/console/sign-in")
            let credentials = [("email", "ada@lovelace.example"), ("password", HTTP.password)]
            let none = try await browser.post("/console/sign-in", credentials)
            #expect(none.status == 403 && HTTP.errors(none)["reason"] == "csrf", "\(none.body)")
            let other = try await browser.post("/console/sign-in", [("csrf", String(repeating: "A", count: 43))] + credentials)
            #expect(other.status == 403 && HTTP.errors(other)["reason"] == "csrf", "\(other.body)")
            let crossSite = try await browser.post("/console/sign-in", [("csrf", browser.csrf)] + credentials, site: "cross-site")
            #expect(crossSite.status == 403 && HTTP.errors(crossSite)["reason"] == "cross_site", "\(crossSite.body)")
            #expect(browser.cookies["rampart_session"] == nil)

            #expect(try await browser.post("/console/sign-in", [("csrf", browser.csrf)] + credentials).status == 303)
            // A forged sign-out from another site does not end the session.
            #expect(try await browser.post("/console/sign-out", [("csrf", browser.csrf)], site: "cross-site").status == 403)
            #expect(try await browser.get("/console/").status == 200)
        }
    }
}
