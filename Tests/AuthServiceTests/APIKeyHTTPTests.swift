import Foundation
import RampartModels
import ServiceKit
import ServicesTestSupport
import TenantsService
import TestSupport
import Testing

/// API keys (KEY-1..4) through the gateway's HTTP API, with the real services.
@Suite("KEY-1..4 end to end: create, use, limit, rotate, revoke, refused")
struct APIKeyHTTPTests {
    @Test("create → use → list (prefix, last use, never the secret) → revoke → refused at once; a key cannot manage keys")
    func lifecycle() async throws {
        let (cluster, port, tenant, access) = try await HTTP.signedIn()
        let created = try await HTTP.send(
            port,
            "POST",
            "/v1/tenants/\(tenant)/api-keys",
            #"{"name":"CI deploys","scopes":["boards:read","items:write"]}"#,
            token: access
        )
        #expect(created.status == 201, "\(created.body)")
        let body = try HTTP.object(created)
        let key = try #require(body["key"] as? String)
        let shown = try #require(body["api_key"] as? [String: Any])
        let id = try #require(shown["api_key_id"] as? String)
        #expect(key.hasPrefix("rk_") && key.count == 54)
        #expect(shown["prefix"] as? String == String(key.prefix(11)))
        #expect(shown["rate_limit_per_minute"] as? Int == 60)
        #expect(shown["scopes"] as? [String] == ["boards:read", "items:write"])

        let used = try await HTTP.send(port, "GET", "/v1/tenants/\(tenant)", token: key)
        #expect(used.status == 200, "\(used.body)")
        let whoami = try HTTP.object(try await HTTP.send(port, "GET", "/v1/auth/whoami", token: key))
        #expect(whoami["principal"] as? String == "api_key:\(id)")
        #expect(whoami["tenant_id"] as? String == tenant)
        #expect(whoami["scopes"] as? [String] == ["boards:read", "items:write"])
        let listed = try await HTTP.send(port, "GET", "/v1/tenants/\(tenant)/api-keys", token: access)
        #expect(listed.status == 200, "\(listed.body)")
        #expect(!listed.body.contains(String(key.dropFirst(11))))
        let keys = try #require(try HTTP.object(listed)["api_keys"] as? [[String: Any]])
        #expect(keys.count == 1)
        #expect(keys.first?["last_used_ip"] as? String == "127.0.0.1")
        #expect((keys.first?["last_used_at_ms"] as? Int ?? 0) > 0)
        #expect(keys.first?["rotation_due"] as? Bool ?? false == false)  // proto3 JSON leaves out false
        // Stored: the prefix and a keyed hash, nothing from which the secret reads back.
        let schema = "t_\(tenant)"
        let database = try #require(cluster.databases[.auth])
        #expect(
            try await TestPostgres.psql(
                "SELECT count(*) FROM \"\(schema)\".api_keys k WHERE k::text LIKE '%\(key.dropFirst(11))%' OR length(secret_hash) <> 32",
                database: database
            ) == "0"
        )

        // A key is for the product's API, not for managing credentials.
        let byKey = try await HTTP.send(port, "POST", "/v1/tenants/\(tenant)/api-keys", #"{"name":"x","scopes":["boards:read"]}"#, token: key)
        #expect(byKey.status == 403)
        #expect(try await HTTP.send(port, "GET", "/v1/auth/sessions", token: key).status == 403)

        let revoked = try await HTTP.send(port, "DELETE", "/v1/tenants/\(tenant)/api-keys/\(id)", token: access)
        #expect(revoked.status == 204, "\(revoked.body)")
        // The gateway's cache held the key as valid for 30 s more; the revocation list ends that.
        #expect(try await eventually(within: .seconds(1)) { try await HTTP.send(port, "GET", "/v1/tenants/\(tenant)", token: key).status == 401 })
        #expect(try await HTTP.send(port, "DELETE", "/v1/tenants/\(tenant)/api-keys/\(id)", token: access).status == 404)
        let forged = try await HTTP.send(port, "GET", "/v1/tenants/\(tenant)", token: String(key.prefix(11)) + String(repeating: "A", count: 43))
        #expect(forged.status == 401)
        #expect(forged.headers["content-type"] == "application/problem+json")
        await cluster.stop()
    }

    @Test("each key within its own rate limit: 429 with Retry-After past it")
    func perKeyLimit() async throws {
        let (cluster, port, tenant, access) = try await HTTP.signedIn()
        let (key, _) = try await HTTP.createAPIKey(port, tenant, access, #"{"name":"slow","scopes":["items:read"],"rate_limit_per_minute":3}"#)
        for _ in 0..<3 { #expect(try await HTTP.send(port, "GET", "/v1/tenants/\(tenant)", token: key).status == 200) }
        let limited = try await HTTP.send(port, "GET", "/v1/tenants/\(tenant)", token: key)
        #expect(limited.status == 429, "\(limited.body)")
        #expect(Int(limited.headers["retry-after"] ?? "") ?? 0 > 0)
        // RL-4: both policies the request met, the key's (the one refusing) in the older fields.
        let policies = limited.headers["ratelimit-policy"] ?? ""
        #expect(policies.hasPrefix("\"api\";q=") && policies.hasSuffix(", \"api_key\";q=3;w=60"), "\(policies)")
        #expect(limited.headers["ratelimit-limit"] == "3" && limited.headers["ratelimit-remaining"] == "0")
        // Another key of the same tenant has its own count.
        let (other, _) = try await HTTP.createAPIKey(port, tenant, access, #"{"name":"fast","scopes":["items:read"]}"#)
        #expect(try await HTTP.send(port, "GET", "/v1/tenants/\(tenant)", token: other).status == 200)
        await cluster.stop()
    }

    @Test("rotation: the new key works, the old one until its grace period ends")
    func rotation() async throws {
        let (cluster, port, tenant, access) = try await HTTP.signedIn()
        let (old, id) = try await HTTP.createAPIKey(port, tenant, access, #"{"name":"nightly","scopes":["boards:read"],"expires_in_days":30}"#)
        #expect(try await HTTP.send(port, "GET", "/v1/tenants/\(tenant)", token: old).status == 200)
        let rotated = try await HTTP.send(port, "POST", "/v1/tenants/\(tenant)/api-keys/\(id)/rotate", #"{"grace_seconds":8}"#, token: access)
        #expect(rotated.status == 201, "\(rotated.body)")
        // Rotated once: its successor is what rotates next. (Checked first: the grace is short.)
        let again = try await HTTP.send(port, "POST", "/v1/tenants/\(tenant)/api-keys/\(id)/rotate", "{}", token: access)
        #expect(again.status == 409, "\(again.body)")
        let body = try HTTP.object(rotated)
        let new = try #require(body["key"] as? String)
        let successor = try #require(body["api_key"] as? [String: Any])
        #expect(successor["name"] as? String == "nightly")
        #expect((successor["expires_at_ms"] as? Int ?? 0) > Int(Date().timeIntervalSince1970 * 1000) + 29 * 86_400_000)
        #expect(try await HTTP.send(port, "GET", "/v1/tenants/\(tenant)", token: new).status == 200)
        #expect(try await HTTP.send(port, "GET", "/v1/tenants/\(tenant)", token: old).status == 200)
        try await Task.sleep(for: .milliseconds(8500))
        #expect(try await HTTP.send(port, "GET", "/v1/tenants/\(tenant)", token: old).status == 401)
        #expect(try await HTTP.send(port, "GET", "/v1/tenants/\(tenant)", token: new).status == 200)
        await cluster.stop()
    }

    @Test("another tenant's keys: neither listed, revoked nor rotated, and a key opens only its own tenant")
    func crossTenant() async throws {
        let (cluster, port, tenant, access) = try await HTTP.signedIn()
        let (key, id) = try await HTTP.createAPIKey(port, tenant, access, #"{"name":"mine","scopes":["boards:read"]}"#)
        let (otherTenant, otherAccess) = try await HTTP.signUp(port, cluster, email: "eve@evil.example", number: "443 061 841 00047")
        // Through the other tenant's own path: the key is not found there.
        #expect(try await HTTP.send(port, "DELETE", "/v1/tenants/\(otherTenant)/api-keys/\(id)", token: otherAccess).status == 404)
        #expect(try await HTTP.send(port, "POST", "/v1/tenants/\(otherTenant)/api-keys/\(id)/rotate", "{}", token: otherAccess).status == 404)
        let theirs = try HTTP.object(try await HTTP.send(port, "GET", "/v1/tenants/\(otherTenant)/api-keys", token: otherAccess))
        #expect((theirs["api_keys"] as? [Any] ?? []).isEmpty)
        // Through the first tenant's path: refused before any service is asked.
        #expect(try await HTTP.send(port, "DELETE", "/v1/tenants/\(tenant)/api-keys/\(id)", token: otherAccess).status == 403)
        #expect(try await HTTP.send(port, "GET", "/v1/tenants/\(otherTenant)", token: key).status == 403)
        #expect(try await HTTP.send(port, "GET", "/v1/tenants/\(tenant)", token: key).status == 200)
        await cluster.stop()
    }

    @Test("hostile input when creating a key: a precise 400 per field, and nothing written")
    func hostileInput() async throws {
        let (cluster, port, tenant, access) = try await HTTP.signedIn()
        let cases: [(String, String)] = [
            (#"{"name":"x","scopes":["boards:delete"]}"#, "scopes"),
            (#"{"name":"x","scopes":["boards:read' OR '1'='1"]}"#, "scopes"),
            (#"{"name":"x","scopes":[]}"#, "scopes"),
            (#"{"name":"x","scopes":["boards:read","boards:read"]}"#, "scopes"),
            (#"{"name":"a\u0000b","scopes":["boards:read"]}"#, "name"),
            // Found by the OpenAPI conformance run: a NUL byte in a scope reached PostgreSQL (500).
            (#"{"name":"x","scopes":["boards:read\u0000"]}"#, "scopes"),
            (#"{"name":"x","scopes":["\u00e9\u202e"]}"#, "scopes"),
            (#"{"name":"\#(String(repeating: "n", count: 10_000))","scopes":["boards:read"]}"#, "name"),
            (#"{"name":"x","scopes":["boards:read"],"rate_limit_per_minute":100000}"#, "rate_limit_per_minute"),
            (#"{"name":"x","scopes":["boards:read"],"expires_in_days":99999}"#, "expires_in_days"),
        ]
        for (json, field) in cases {
            let response = try await HTTP.send(port, "POST", "/v1/tenants/\(tenant)/api-keys", json, token: access)
            #expect(response.status == 400, "\(json.prefix(80)): \(response.status) \(response.body.prefix(200))")
            #expect((try HTTP.object(response)["errors"] as? [String: String])?[field] != nil, "\(json.prefix(80)): \(response.body.prefix(300))")
        }
        for json in [
            #"{"name":"x","scopes":"boards:read"}"#, #"{"name":7,"scopes":["boards:read"]}"#, #"{"name":"x","scopes":["boards:read"],"owner":"me"}"#,
        ] {
            #expect(try await HTTP.send(port, "POST", "/v1/tenants/\(tenant)/api-keys", json, token: access).status == 400, "\(json)")
        }
        for path in ["/v1/tenants/\(tenant)/api-keys/not-a-uuid", "/v1/tenants/\(tenant)/api-keys/\(UUID().uuidString)"] {
            let response = try await HTTP.send(port, "DELETE", path, token: access)
            #expect([400, 404].contains(response.status), "\(path): \(response.status)")
        }
        let badTenant = try await HTTP.send(port, "GET", "/v1/tenants/'%20OR%201=1/api-keys", token: access)
        #expect(badTenant.status == 404)
        for key in ["rk_", "rk_" + String(repeating: "z", count: 51), "rk_ABCDEFGH" + String(repeating: "A", count: 43)] {
            #expect(try await HTTP.send(port, "GET", "/v1/tenants/\(tenant)", token: key).status == 401, "\(key.prefix(12))")
        }
        let database = try #require(cluster.databases[.auth])
        #expect(try await TestPostgres.psql("SELECT count(*) FROM \"t_\(tenant)\".api_keys", database: database) == "0")
        #expect(try await TestPostgres.psql("SELECT count(*) FROM api_key_directory", database: database) == "0")
        await cluster.stop()
    }
}
