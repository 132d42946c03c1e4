import Foundation
import TestSupport
import Testing

/// What a browser does in an SSO sign-in, step by step, so tests can stop, replay or tamper at
/// any step: the gateway's start (its redirect and cookie), the provider's sign-in form, and
/// the callback to the gateway with the cookie.
package struct SSOBrowser {
    package let gatewayPort: Int
    /// The binding cookie the start set (`name=value`), sent with the callback.
    package var cookie: String?

    package init(gatewayPort: Int) {
        self.gatewayPort = gatewayPort
    }

    /// The gateway's start (SSO's, or `/v1/auth/google/start`): the provider's authorization URL
    /// it redirects to.
    package mutating func start(_ query: String, at path: String = "/v1/auth/sso/start") async throws -> String {
        let started = try await httpRequest(port: gatewayPort, "GET", path + "?" + query)
        #expect(started.status == 302, "\(started.body)")
        let setCookie = try #require(started.headers["set-cookie"], "no cookie: \(started.headers)")
        cookie = String(setCookie.split(separator: ";")[0])
        return try #require(started.headers["location"])
    }

    /// A signed-in person's link of Google from their settings: the authorization URL the
    /// gateway answers, its cookie kept as a start's.
    package mutating func startLink(token: String, body: String = "{}") async throws -> HTTPTestResponse {
        let started = try await httpRequest(
            port: gatewayPort,
            "POST",
            "/v1/auth/identities/google/link",
            headers: ["Authorization": "Bearer \(token)", "Content-Type": "application/json"],
            body: Array(body.utf8)
        )
        if let setCookie = started.headers["set-cookie"] { cookie = String(setCookie.split(separator: ";")[0]) }
        return started
    }

    /// oidc-provider-mock's form, answered as `subject`: the callback's path and query, as the
    /// provider redirects the browser to it.
    package static func signInAtMock(_ authorizationURL: String, as subject: String) async throws -> String {
        let (port, path) = try split(authorizationURL)
        let answered = try await httpRequest(
            port: port,
            "POST",
            path,
            headers: ["Content-Type": "application/x-www-form-urlencoded"],
            body: Array("sub=\(subject.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? subject)".utf8)
        )
        #expect(answered.status == 302, "\(answered.body)")
        return try split(try #require(answered.headers["location"], "\(answered.body)")).path
    }

    /// The callback as the provider sent it, with this browser's cookie (or `cookie`).
    package func callback(
        _ pathAndQuery: String,
        cookie: String? = nil,
        extra: String = "",
        accept: String = "application/json"
    ) async throws -> HTTPTestResponse {
        var headers = ["Accept": accept]
        if let cookie = cookie ?? self.cookie { headers["Cookie"] = cookie }
        return try await httpRequest(port: gatewayPort, "GET", pathAndQuery + extra, headers: headers)
    }

    /// Port and path-with-query of an http://127.0.0.1:<port>/… URL.
    package static func split(_ url: String) throws -> (port: Int, path: String) {
        let rest = try #require(url.hasPrefix("http://127.0.0.1:") ? url.dropFirst("http://127.0.0.1:".count) : nil, "\(url)")
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        return (try #require(Int(rest[..<slash])), String(rest[slash...]))
    }

    /// One query parameter of a URL, decoded.
    package static func parameter(_ name: String, of url: String) -> String? {
        URLComponents(string: url)?.queryItems?.first { $0.name == name }?.value
    }
}

extension MockOpenIDProvider {
    /// The claims the mock puts in `subject`'s ID token (its `PUT /users/<sub>`).
    package func setUser(_ subject: String, claims: [String: Any]) async throws {
        let body = try JSONSerialization.data(withJSONObject: claims)
        let answer = try await httpRequest(
            port: peer.port,
            "PUT",
            "/users/\(subject.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? subject)",
            headers: ["Content-Type": "application/json"],
            body: Array(body)
        )
        #expect(answer.status == 204, "\(answer.body)")
    }
}
