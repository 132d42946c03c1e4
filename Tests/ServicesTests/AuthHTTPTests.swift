import Foundation
import RampartModels
import ServiceKit
import TenantsService
import TestSupport
import Testing

/// The auth routes of SPEC section 14 through the gateway's HTTP API, with the real services.
@Suite("AUTH-1..8 end to end through the gateway: JSON in, problem+json out")
struct AuthHTTPTests {
    static func cluster() async throws -> (TenantsCluster, Int) {
        let cluster = try await TenantsCluster.start(
            settings: TenantsSettings(sagaServices: [.tenants, .auth]),
            without: [.permissions, .audit, .webhooks]
        )
        try await cluster.start(.gateway)
        return (cluster, await cluster.gatewayPort.wait())
    }

    func post(
        _ port: Int,
        _ path: String,
        _ json: String,
        token: String? = nil,
        contentType: String = "application/json"
    ) async throws -> HTTPTestResponse {
        var headers = ["Content-Type": contentType]
        if let token { headers["Authorization"] = "Bearer \(token)" }
        return try await httpRequest(port: port, "POST", path, headers: headers, body: Array(json.utf8))
    }

    func object(_ response: HTTPTestResponse) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any])
    }

    static let registration =
        #"{"email":"ada@lovelace.example","password":"Tr0ub4dor&3xkcd!","name":"Ada","organization":{"name":"Analytical","country":"FR","registration_number":"732 829 320 00074"}}"#

    @Test("register → login → sessions → refresh → reuse detected → logout")
    func flow() async throws {
        let (cluster, port) = try await Self.cluster()
        let registered = try await post(port, "/v1/auth/register", Self.registration)
        #expect(registered.status == 201, "\(registered.body)")
        #expect(registered.headers["x-request-id"]?.count == 32)
        let ids = try object(registered)
        let tenant = try #require(ids["tenant_id"] as? String)
        #expect(try await cluster.waitFor(.active, tenant))

        let login = try await post(port, "/v1/auth/login", #"{"email":"ada@lovelace.example","password":"Tr0ub4dor&3xkcd!"}"#)
        #expect(login.status == 200, "\(login.body)")
        let tokens = try object(login)
        let access = try #require(tokens["access_token"] as? String)
        let refresh = try #require(tokens["refresh_token"] as? String)
        #expect(tokens["token_type"] as? String == "Bearer")
        #expect(tokens["expires_in"] as? Int == 900)

        let sessions = try await httpRequest(port: port, "GET", "/v1/auth/sessions", headers: ["Authorization": "Bearer \(access)"])
        #expect(sessions.status == 200, "\(sessions.body)")
        let listed = try #require(try object(sessions)["sessions"] as? [[String: Any]])
        #expect(listed.count == 1)
        #expect(listed.first?["current"] as? Bool == true)
        #expect(listed.first?["ip"] as? String == "127.0.0.1")
        let unauthenticated = try await httpRequest(port: port, "GET", "/v1/auth/sessions")
        #expect(unauthenticated.status == 401)
        #expect(unauthenticated.headers["content-type"] == "application/problem+json")
        let forged = try await httpRequest(port: port, "GET", "/v1/auth/sessions", headers: ["Authorization": "Bearer \(access.dropLast(3))AAA"])
        #expect(forged.status == 401)

        let refreshed = try await post(port, "/v1/auth/token/refresh", #"{"refresh_token":"\#(refresh)"}"#)
        #expect(refreshed.status == 200, "\(refreshed.body)")
        let reused = try await post(port, "/v1/auth/token/refresh", #"{"refresh_token":"\#(refresh)"}"#)
        #expect(reused.status == 401)
        let problem = try object(reused)
        #expect(problem["type"] as? String == "https://rampart.dev/problems/unauthenticated")
        #expect(problem["status"] as? Int == 401)
        #expect(problem["request_id"] as? String == reused.headers["x-request-id"])

        let fresh = try object(try await post(port, "/v1/auth/login", #"{"email":"ada@lovelace.example","password":"Tr0ub4dor&3xkcd!"}"#))
        let freshAccess = try #require(fresh["access_token"] as? String)
        #expect(try await httpRequest(port: port, "GET", "/v1/auth/sessions", headers: ["Authorization": "Bearer \(freshAccess)"]).status == 200)
        let logout = try await post(port, "/v1/auth/logout", "", token: freshAccess)
        #expect(logout.status == 204)
        // The access token is still within its 15 minutes, but its session ended: refused at once.
        #expect(
            try await eventually(within: .seconds(1)) {
                try await httpRequest(port: port, "GET", "/v1/auth/sessions", headers: ["Authorization": "Bearer \(freshAccess)"]).status == 401
            }
        )
        let afterLogout = try await post(port, "/v1/auth/token/refresh", #"{"refresh_token":"\#(try #require(fresh["refresh_token"] as? String))"}"#)
        #expect(afterLogout.status == 401)
        let jwks = try await httpRequest(port: port, "GET", "/.well-known/jwks.json")
        #expect(jwks.status == 200 && jwks.body.contains(#""crv":"Ed25519""#))
        await cluster.stop()
    }

    @Test("unknown email and wrong password: the same status and body")
    func noEnumeration() async throws {
        let (cluster, port) = try await Self.cluster()
        _ = try await post(port, "/v1/auth/register", Self.registration)
        let unknown = try await post(port, "/v1/auth/login", #"{"email":"nobody@lovelace.example","password":"Tr0ub4dor&3xkcd!"}"#)
        let wrong = try await post(port, "/v1/auth/login", #"{"email":"ada@lovelace.example","password":"Tr0ub4dor&3xkcd?"}"#)
        #expect(unknown.status == 401 && wrong.status == 401)
        func withoutRequestID(_ response: HTTPTestResponse) throws -> NSDictionary {
            var body = try object(response)
            body["request_id"] = nil
            return body as NSDictionary
        }
        #expect(try withoutRequestID(unknown) == withoutRequestID(wrong))
        await cluster.stop()
    }

    @Test("hostile HTTP input: wrong media type, oversized, invalid JSON and UTF-8, wrong types, unknown fields, null bytes, 10 kB email")
    func hostileInput() async throws {
        let (cluster, port) = try await Self.cluster()
        let cases: [(String, [UInt8], String, Int)] = [
            ("/v1/auth/register", Array(Self.registration.utf8), "text/plain", 415),
            ("/v1/auth/register", Array(repeating: UInt8(ascii: " "), count: 70_000), "application/json", 413),
            ("/v1/auth/register", Array("{\"email\":".utf8), "application/json", 400),
            ("/v1/auth/register", [0x7B, 0x22, 0x65, 0x22, 0x3A, 0x22, 0xFF, 0xFE, 0x22, 0x7D], "application/json", 400),
            ("/v1/auth/register", Array(#"{"email":42,"password":["x"]}"#.utf8), "application/json", 400),
            ("/v1/auth/register", Array(#"{"email":"a@b.example","is_admin":true}"#.utf8), "application/json", 400),
            (
                "/v1/auth/register",
                Array(
                    #"{"email":"a\u0000@b.example","password":"Tr0ub4dor&3xkcd!","name":"A","organization":{"name":"A","country":"FR","registration_number":"73282932000074"}}"#
                        .utf8
                ), "application/json", 400
            ),
            (
                "/v1/auth/register",
                Array(
                    #"{"email":"\#(String(repeating: "a", count: 10_000))@b.example","password":"Tr0ub4dor&3xkcd!","name":"A","organization":{"name":"A","country":"FR","registration_number":"73282932000074"}}"#
                        .utf8
                ), "application/json", 400
            ),
            (
                "/v1/auth/register",
                Array(
                    #"{"email":"x@b.example'; DROP TABLE users; --","password":"' OR '1'='1","name":"Robert'); DROP TABLE tenants;--","organization":{"name":"A","country":"FR","registration_number":"1' OR 1=1"}}"#
                        .utf8
                ), "application/json", 400
            ),
            ("/v1/auth/login", Array(#"{"email":{"$ne":null},"password":"x"}"#.utf8), "application/json", 400),
            ("/v1/auth/token/refresh", Array(#"{"refresh_token":"\#(String(repeating: "A", count: 10_000))"}"#.utf8), "application/json", 401),
        ]
        for (path, body, type, status) in cases {
            let response = try await httpRequest(port: port, "POST", path, headers: ["Content-Type": type], body: body)
            #expect(
                response.status == status,
                "\(path) \(String(decoding: body.prefix(60), as: UTF8.self)): \(response.status) \(response.body.prefix(200))"
            )
            #expect(response.headers["content-type"] == "application/problem+json", "\(path)")
            #expect(!response.body.contains("Swift") && !response.body.contains("PSQL"), "\(response.body)")
        }
        #expect(try await TestPostgres.psql("SELECT count(*) FROM users", database: cluster.databases[.auth]!) == "0")
        #expect(try await TestPostgres.psql("SELECT count(*) FROM tenants", database: cluster.databases[.tenants]!) == "0")
        await cluster.stop()
    }
}
