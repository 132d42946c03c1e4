import Foundation
import RampartModels
import RateLimitKit
import ServiceKit
import ServicesTestSupport
import SodiumKit
import TenantsService
import TestSupport
import Testing
import TokenKit

@testable import GatewayService

@Suite("GW-3, GW-5, GW-6, GW-7 the gateway's edge: security headers, request IDs, client IPs, security.txt")
struct GatewayEdgeTests {
    static let securityHeaders = [
        "strict-transport-security": "max-age=63072000; includeSubDomains; preload",
        "x-frame-options": "DENY",
        "x-content-type-options": "nosniff",
        "referrer-policy": "no-referrer",
    ]

    @Test("every response carries the security headers and a request ID: success, error, 404 and 405")
    func headersEverywhere() async throws {
        let (cluster, port) = try await HTTP.authCluster()
        try await stopping(cluster) {
            let responses = [
                try await httpRequest(port: port, "GET", "/healthz"),
                try await httpRequest(port: port, "GET", "/v1/auth/whoami"),
                try await httpRequest(port: port, "GET", "/v1/no/such/route"),
                try await httpRequest(port: port, "POST", "/v1/auth/login", headers: ["Content-Type": "text/plain"], body: Array("x".utf8)),
                try await httpRequest(port: port, "GET", "/.well-known/security.txt"),
            ]
            #expect(responses.map(\.status) == [200, 401, 404, 415, 200])
            for response in responses {
                for (name, value) in Self.securityHeaders { #expect(response.headers[name] == value, "\(name) on \(response.status)") }
                #expect(response.headers["content-security-policy"]?.contains("default-src 'none'") == true)
                #expect(response.headers["cache-control"] == "no-store")
                #expect(RequestIDMiddleware.accepted(response.headers["x-request-id"] ?? "") != nil, "\(response.status)")
            }
            // The 404 is problem+json like every other error, and names the same request ID.
            let missing = responses[2]
            #expect(missing.headers["content-type"] == "application/problem+json")
            let body = try #require(try JSONSerialization.jsonObject(with: Data(missing.body.utf8)) as? [String: Any])
            #expect(body["request_id"] as? String == missing.headers["x-request-id"])
            #expect(body["status"] as? Int == 404)
        }
    }

    @Test("a well-formed incoming request ID is kept, anything else replaced")
    func requestIDs() async throws {
        let (cluster, port) = try await HTTP.authCluster()
        try await stopping(cluster) {
            let kept = try await httpRequest(port: port, "GET", "/v1/auth/whoami", headers: ["X-Request-Id": "client-trace:42.a_b"])
            #expect(kept.headers["x-request-id"] == "client-trace:42.a_b")
            #expect(kept.body.contains("client-trace:42.a_b"))
            for hostile in ["has space", String(repeating: "a", count: 129), "semi;colon", "<script>", "x\u{202E}y"] {
                let replaced = try await httpRequest(port: port, "GET", "/healthz", headers: ["X-Request-Id": hostile])
                let id = try #require(replaced.headers["x-request-id"])
                #expect(id != hostile && RequestIDMiddleware.accepted(id) != nil, "\(hostile)")
            }
        }
    }

    @Test("X-Forwarded-For counts only from a trusted proxy, walked from the right")
    func clientIPs() {
        let proxies = [IPNetwork(cidr: "10.0.0.0/8")!, IPNetwork(cidr: "2001:db8::/32")!]
        func client(_ peer: String, _ header: [String]) -> String? {
            ClientIPMiddleware.clientIP(peer: peer, forwardedFor: header, trustedProxies: proxies)
        }
        // From an untrusted peer the header is ignored, whatever it claims.
        #expect(client("198.51.100.7", ["1.2.3.4"]) == "198.51.100.7")
        #expect(client("198.51.100.7", ["10.0.0.1"]) == "198.51.100.7")
        // Through trusted proxies: the first address from the right that is not one of them.
        #expect(client("10.0.0.2", ["203.0.113.9"]) == "203.0.113.9")
        #expect(client("10.0.0.2", ["6.6.6.6, 203.0.113.9, 10.1.1.1"]) == "203.0.113.9")
        #expect(client("10.0.0.2", ["6.6.6.6", "203.0.113.9, 10.1.1.1"]) == "203.0.113.9")
        #expect(client("2001:db8::1", ["2001:db8::2, 2a00:1450::1"]) == "2a00:1450::1")
        // A malformed hop stops the walk at the last good address.
        #expect(client("10.0.0.2", ["203.0.113.9, not-an-ip"]) == "10.0.0.2")
        #expect(client("10.0.0.2", ["203.0.113.9, 10.1.1.1, ' OR 1=1"]) == "10.0.0.2")
        #expect(client("10.0.0.2", []) == "10.0.0.2")
        // Only trusted hops: the leftmost.
        #expect(client("10.0.0.2", ["10.3.3.3, 10.1.1.1"]) == "10.3.3.3")
    }

    @Test("the gateway uses X-Forwarded-For only when configured to trust the peer (seen in an API key's last-used IP)")
    func forwardedForEndToEnd() async throws {
        let (cluster, port) = try await HTTP.authCluster()
        try await stopping(cluster) {
            let (tenant, access) = try await HTTP.signUp(port, cluster, email: "ada@lovelace.example", number: "732 829 320 00074")
            func lastUsedIP(trusting proxies: [IPNetwork]) async throws -> String? {
                await cluster.stop(.gateway)
                cluster.gatewaySettings.trustedProxies = proxies
                try await cluster.start(.gateway)
                let port = await cluster.gatewayPort.wait()
                // The restarted gateway serves the tenant's credentials before the key is made (its
                // readiness, which start(.gateway) waits for, already covers the revocations).
                let serving = await eventually(within: .seconds(30)) {
                    (try? await HTTP.send(port, "GET", "/v1/tenants/\(tenant)", token: access))?.status == 200
                }
                #expect(serving)
                let (key, id) = try await HTTP.createAPIKey(port, tenant, access, #"{"name":"k\#(proxies.count)","scopes":["boards:read"]}"#)
                let used = try await httpRequest(
                    port: port,
                    "GET",
                    "/v1/tenants/\(tenant)",
                    headers: ["Authorization": "Bearer \(key)", "X-Forwarded-For": "203.0.113.77"]
                )
                #expect(used.status == 200, "\(used.body)")
                let listed = try HTTP.object(try await HTTP.send(port, "GET", "/v1/tenants/\(tenant)/api-keys", token: access))
                let keys = try #require(listed["api_keys"] as? [[String: Any]])
                return keys.first { $0["api_key_id"] as? String == id }?["last_used_ip"] as? String
            }
            #expect(try await lastUsedIP(trusting: []) == "127.0.0.1")
            #expect(try await lastUsedIP(trusting: [IPNetwork(cidr: "127.0.0.1/32")!]) == "203.0.113.77")
            _ = port
        }
    }

    @Test("the OpenAPI document served is api/openapi.json; a documented path asked with another method gets 405 and Allow")
    func openAPI() async throws {
        let file = try Data(contentsOf: repositoryRoot.appendingPathComponent("api/openapi.json"))
        let onDisk = try #require(try JSONSerialization.jsonObject(with: file) as? NSDictionary)
        let (cluster, port) = try await HTTP.authCluster()
        try await stopping(cluster) {
            let served = try await httpRequest(port: port, "GET", "/openapi.json")
            #expect(served.status == 200)
            #expect(served.headers["content-type"] == "application/json")
            #expect(try JSONSerialization.jsonObject(with: Data(served.body.utf8)) as? NSDictionary == onDisk, "run `make openapi`")
            #expect((onDisk["openapi"] as? String) == "3.1.0")

            let document = try OpenAPIDocument.bundled()
            #expect(document.methods(documentedFor: "/v1/tenants/0123/members/abc") == ["DELETE", "PATCH"])
            #expect(document.methods(documentedFor: "/v1/no/such/thing") == nil)
            for method in ["TRACE", "PUT", "OPTIONS"] {
                let refused = try await httpRequest(port: port, method, "/v1/auth/sessions")
                #expect(refused.status == 405, "\(method)")
                #expect(refused.headers["allow"] == "DELETE, GET")
                #expect(refused.headers["content-type"] == "application/problem+json")
            }
            #expect(try await httpRequest(port: port, "TRACE", "/v1/no/such/thing").status == 404)
        }
    }

    @Test("GW-7, IR-3: security.txt names the contact, the disclosure policy (served as SECURITY.md says it) and an expiry ahead")
    func securityTxt() async throws {
        let (cluster, port) = try await HTTP.authCluster()
        try await stopping(cluster) {
            let response = try await httpRequest(port: port, "GET", "/.well-known/security.txt")
            #expect(response.headers["content-type"] == "text/plain; charset=utf-8")
            let lines = response.body.split(separator: "\n").map(String.init)
            #expect(lines.contains("Contact: mailto:security@example.com"))
            #expect(lines.contains("Policy: http://127.0.0.1:8080/security-policy"))
            #expect(lines.contains("Canonical: http://127.0.0.1:8080/.well-known/security.txt"))
            let policy = try await httpRequest(port: port, "GET", "/security-policy")
            #expect(policy.status == 200 && policy.headers["content-type"] == "text/markdown; charset=utf-8")
            // The served copy is SECURITY.md as committed (`make security-policy` after an edit).
            let committed = try String(contentsOf: repositoryRoot.appendingPathComponent("SECURITY.md"), encoding: .utf8)
            #expect(policy.body == committed)
            #expect(committed.contains("72 hours") && committed.contains("7 days") && committed.contains("90 days"))
            let expires = try #require(lines.first { $0.hasPrefix("Expires: ") }?.dropFirst(9))
            let date = try #require(ISO8601DateFormatter().date(from: String(expires.prefix(19)) + "Z"))
            #expect(date > Date().addingTimeInterval(90 * 86_400) && date < Date().addingTimeInterval(366 * 86_400))
        }
    }

    @Test("TEN-11: a caller outside the tenant's IP allowlist is refused with 403 and audited; inside, let in")
    func allowlist() async throws {
        // permissions too: changing the list needs settings.manage.
        let cluster = try await TenantsCluster.start(
            settings: TenantsSettings(sagaServices: [.tenants, .auth, .permissions]),
            without: [.audit, .webhooks]
        )
        try await stopping(cluster) {
            // The test talks through "a proxy" (itself) so that it can come from several addresses.
            cluster.gatewaySettings.trustedProxies = [IPNetwork(cidr: "127.0.0.1/32")!]
            try await cluster.start(.gateway)
            let port = await cluster.gatewayPort.wait()
            let (tenant, access) = try await HTTP.signUp(port, cluster, email: "ada@lovelace.example", number: "732 829 320 00074")
            func get(from address: String?, token: String = access) async throws -> HTTPTestResponse {
                var headers = ["Authorization": "Bearer \(token)"]
                if let address { headers["X-Forwarded-For"] = address }
                return try await httpRequest(port: port, "GET", "/v1/tenants/\(tenant)", headers: headers)
            }
            #expect(try await get(from: "198.51.100.9").status == 200)  // no list: anyone
            let (key, _) = try await HTTP.createAPIKey(port, tenant, access, #"{"name":"k","scopes":["boards:read"]}"#)

            // An admin must stay inside the list they set.
            let lockout = try await httpRequest(
                port: port,
                "PUT",
                "/v1/tenants/\(tenant)/ip-allowlist",
                headers: ["Authorization": "Bearer \(access)", "Content-Type": "application/json", "X-Forwarded-For": "198.51.100.9"],
                body: Array(#"{"cidrs":["203.0.113.0/24"]}"#.utf8)
            )
            #expect(lockout.status == 409, "\(lockout.body)")
            let set = try await httpRequest(
                port: port,
                "PUT",
                "/v1/tenants/\(tenant)/ip-allowlist",
                headers: ["Authorization": "Bearer \(access)", "Content-Type": "application/json", "X-Forwarded-For": "203.0.113.5"],
                body: Array(#"{"cidrs":["203.0.113.0/24","2001:db8::/48"]}"#.utf8)
            )
            #expect(set.status == 200, "\(set.body)")

            // At once on this replica: outside refused (also the proxy itself, and an API key), inside let in.
            let refused = try await get(from: "198.51.100.9")
            #expect(refused.status == 403)
            #expect(refused.headers["content-type"] == "application/problem+json")
            #expect(try await get(from: nil).status == 403)
            #expect(try await get(from: "203.0.113.77").status == 200)
            #expect(try await get(from: "2001:db8::7").status == 200)
            #expect(try await get(from: "2001:db9::7").status == 403)
            #expect(try await get(from: "198.51.100.9", token: key).status == 403)
            #expect(try await get(from: "203.0.113.8", token: key).status == 200)

            let denials = try await cluster.events(
                Subjects.audit(tenant: TenantID(tenant)),
                as: Rampart_V1_AuditEvent.self,
                stream: Subjects.auditStream
            )
            .filter { $0.action == AuditAction.ipAllowlistDenied.rawValue }
            #expect(denials.count == 4)
            #expect(denials.contains { $0.origin.ip == "198.51.100.9" && $0.outcome == .failure })
        }
    }

    @Test("GW-4: a tampered, unsigned, HMAC, wrong-kid or foreign-signed access token is refused with 401 problem+json")
    func forgedTokens() async throws {
        let (cluster, port) = try await HTTP.authCluster()
        try await stopping(cluster) {
            let (_, access) = try await HTTP.signUp(port, cluster, email: "ada@lovelace.example", number: "732 829 320 00074")
            func status(_ token: String) async throws -> HTTPTestResponse {
                try await httpRequest(port: port, "GET", "/v1/auth/whoami", headers: ["Authorization": "Bearer \(token)"])
            }
            #expect(try await status(access).status == 200)

            let parts = access.split(separator: ".").map(String.init)
            func encoded(_ json: String) -> String { Base64.encode(Array(json.utf8), variant: Base64.urlSafeNoPadding) }
            func decoded(_ part: String) throws -> String {
                String(decoding: try #require(Base64.decode(part, variant: Base64.urlSafeNoPadding)), as: UTF8.self)
            }
            let header = try decoded(parts[0])
            let payload = try decoded(parts[1])
            let claims = try JSONDecoder().decode(AccessToken.self, from: Data(payload.utf8))
            let headerFields = try #require(try JSONSerialization.jsonObject(with: Data(header.utf8)) as? [String: Any])
            let kid = try #require(headerFields["kid"] as? String)

            var elevated = claims
            elevated.roles = ["owner", "admin"]
            elevated.sa = true
            let forgedPayload = encoded(String(decoding: try JSONEncoder().encode(elevated), as: UTF8.self))
            let foreign = try AccessTokenSigner(keyID: kid, key: .generate()).sign(elevated)
            let forged = [
                "tampered payload": "\(parts[0]).\(forgedPayload).\(parts[2])",
                "alg none": "\(encoded(#"{"alg":"none","typ":"JWT","kid":"\#(kid)"}"#)).\(forgedPayload).",
                "HS256": "\(encoded(#"{"alg":"HS256","typ":"JWT","kid":"\#(kid)"}"#)).\(forgedPayload).\(parts[2])",
                "unknown kid": "\(encoded(#"{"alg":"EdDSA","typ":"JWT","kid":"no-such-key"}"#)).\(parts[1]).\(parts[2])",
                "signed by another key under our kid": foreign,
                "signature cut": "\(parts[0]).\(parts[1]).",
                "garbage": "not.a.jwt",
            ]
            for (name, token) in forged {
                let response = try await status(token)
                #expect(response.status == 401, "\(name): \(response.body)")
                #expect(response.headers["content-type"] == "application/problem+json", "\(name)")
            }
        }
    }

    @Test("GW-4: an expired access token, and one whose session has ended, are refused with 401")
    func expiredAndRevokedTokens() async throws {
        var authSettings = TenantsCluster.testAuthSettings
        authSettings.accessTokenSeconds = 5
        let cluster = try await TenantsCluster.start(
            settings: TenantsSettings(sagaServices: [.tenants, .auth]),
            authSettings: authSettings,
            without: [.permissions, .audit, .webhooks]
        )
        try await stopping(cluster) {
            cluster.gatewaySettings.clockLeewaySeconds = 0
            try await cluster.start(.gateway)
            let port = await cluster.gatewayPort.wait()
            let (_, access) = try await HTTP.signUp(port, cluster, email: "ada@lovelace.example", number: "732 829 320 00074")
            func whoami(_ token: String) async throws -> HTTPTestResponse {
                try await httpRequest(port: port, "GET", "/v1/auth/whoami", headers: ["Authorization": "Bearer \(token)"])
            }
            #expect(try await whoami(access).status == 200)

            // A second session, ended: its token is refused at once, long before it expires.
            let login = try await HTTP.send(
                port,
                "POST",
                "/v1/auth/login",
                #"{"email":"ada@lovelace.example","password":"\#(HTTP.password)"}"#
            )
            let second = try #require(try HTTP.object(login)["access_token"] as? String)
            #expect(try await whoami(second).status == 200)
            #expect(try await HTTP.send(port, "POST", "/v1/auth/logout", token: second).status == 204)
            let ended = try await whoami(second)
            #expect(ended.status == 401)
            #expect(ended.body.contains("the session has ended"))

            try await Task.sleep(for: .seconds(6))
            let expired = try await whoami(access)
            #expect(expired.status == 401)
            #expect(expired.headers["content-type"] == "application/problem+json")
            #expect(expired.body.contains("expired"), "\(expired.body)")
        }
    }

    @Test("slow clients: a connection silent in the middle of a request is closed; a body that trickles gets 408")
    func slowClients() async throws {
        let cluster = try await TenantsCluster.start(
            settings: TenantsSettings(sagaServices: [.tenants, .auth]),
            without: [.permissions, .audit, .webhooks]
        )
        try await stopping(cluster) {
            cluster.gatewaySettings.idleTimeoutSeconds = 1
            cluster.gatewaySettings.bodySeconds = 1
            try await cluster.start(.gateway)
            let port = await cluster.gatewayPort.wait()

            // Half a request head, then nothing: closed within the idle time (and a margin).
            let closed = try await offloaded { () -> (Bool, Double) in
                let fd = try Self.connect(port)
                defer { close(fd) }
                Self.send(fd, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
                let start = Date()
                var byte: UInt8 = 0
                return (recv(fd, &byte, 1, 0) == 0, Date().timeIntervalSince(start))
            }
            #expect(closed.0, "the server kept a half-sent request open")
            #expect(closed.1 < 5, "closed after \(closed.1) s")

            // A body that keeps trickling (never idle) but never completes: 408.
            let answer = try await offloaded { () -> String in
                let fd = try Self.connect(port)
                defer { close(fd) }
                Self.send(fd, "POST /v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
                for _ in 0..<10 {
                    usleep(300_000)
                    Self.send(fd, " ")
                }
                var buffer = [UInt8](repeating: 0, count: 4096)
                let count = recv(fd, &buffer, buffer.count, 0)
                return count > 0 ? String(decoding: buffer[..<count], as: UTF8.self) : ""
            }
            #expect(answer.hasPrefix("HTTP/1.1 408"), "\(answer.prefix(200))")
        }
    }

    static func connect(_ port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw TestInfrastructureError("connect failed") }
        return fd
    }

    static func send(_ fd: Int32, _ text: String) {
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, bytes.count, Int32(MSG_NOSIGNAL)) }
    }
}
