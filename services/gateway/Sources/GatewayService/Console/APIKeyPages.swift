// UUID.
import Foundation
import HTTPTypes
import Hummingbird
import RampartModels
import ServiceKit

/// API keys (KEY-1…4): the person's keys (every key of the organization for an owner or
/// admin), the ones unused for 90 days, a new key with its scopes, shown once, rotation with a
/// grace period, revocation. A new key, and a rotation (which makes one), need a recent proof.
struct APIKeyPages {
    let console: ConsoleRoutes

    static let path = "/console/api-keys"

    static let notices = [
        "revoked": "The key is revoked: requests with it are refused from now on.",
        "confirmed": "Thank you: you can create the key now.",
    ]

    /// The choices of a key's lifetime and a rotation's grace period, as the forms offer them.
    static let lifetimes: [(days: UInt32, label: String)] = [(0, "Never expires"), (30, "30 days"), (90, "90 days"), (365, "1 year")]
    static let graces: [(seconds: UInt32, label: String)] = [(3600, "1 hour"), (86400, "24 hours"), (604_800, "7 days")]

    func add(to router: Router<GatewayRequestContext>) {
        let keys = router.group("/console/api-keys")
        keys.get { request, context in
            try await console.signedInPage(request, context) { call in try await overview(call) }
        }
        keys.post { request, context in
            let form = try await console.checkedForm(request, context)
            return try await console.signedInPage(request, context, returnTo: Self.path) { call in
                var message = Rampart_V1_CreateApiKeyRequest()
                message.name = (form["name"] ?? "").trimmingCharacters(in: .whitespaces)
                message.scopes = form.all("scope")
                message.expiresInDays = UInt32(form["expires_in_days"] ?? "") ?? 0
                var errors: [String: Any] = [:]
                if message.name.isEmpty { errors["error_name"] = "Give the key a name, such as the program that will use it." }
                if message.scopes.isEmpty { errors["error_scopes"] = "Choose at least one scope." }
                guard errors.isEmpty else { return try await overview(call, status: .badRequest, errors.merging(Self.typed(form)) { a, _ in a }) }
                try console.requireRecentProof(call, "Creating an API key")
                do {
                    let created = try await call.send(
                        .post,
                        "/v1/tenants/\(call.caller.tenant.hex)/api-keys",
                        message,
                        as: Rampart_V1_CreateApiKeyReply.self
                    )
                    return try await console.page("api-key-created", call, section: "api", ["key": created.key, "name": created.apiKey.name])
                } catch let refusal as ConsoleRefusal where refusal.status != .unauthorized {
                    let field = refusal.errors["field"] == "name" ? "error_name" : refusal.errors["field"] == "scopes" ? "error_scopes" : "problem"
                    return try await overview(call, status: refusal.status, [field: refusal.detail].merging(Self.typed(form)) { a, _ in a })
                }
            }
        }
        keys.post("rotate") { request, context in
            let form = try await console.checkedForm(request, context)
            return try await console.signedInPage(request, context, returnTo: Self.path) { call in
                guard let id = form["api_key_id"].flatMap(UUID.init(uuidString:)) else {
                    return try await overview(call, status: .badRequest, ["problem": "That is not one of the keys listed here."])
                }
                try console.requireRecentProof(call, "Rotating an API key")
                var message = Rampart_V1_RotateApiKeyRequest()
                message.graceSeconds = UInt32(form["grace_seconds"] ?? "") ?? 0
                do {
                    let path = "/v1/tenants/\(call.caller.tenant.hex)/api-keys/\(id.uuidString.lowercased())/rotate"
                    let created = try await call.send(.post, path, message, as: Rampart_V1_CreateApiKeyReply.self)
                    let grace = Self.graces.first { $0.seconds == message.graceSeconds }?.label ?? "24 hours"
                    return try await console.page(
                        "api-key-created",
                        call,
                        section: "api",
                        ["key": created.key, "name": created.apiKey.name, "rotated": true, "grace": grace]
                    )
                } catch let refusal as ConsoleRefusal where refusal.status != .unauthorized {
                    return try await overview(call, status: refusal.status, ["problem": refusal.detail])
                }
            }
        }
        keys.post("revoke") { request, context in
            let form = try await console.checkedForm(request, context)
            return try await console.signedInPage(request, context, returnTo: Self.path) { call in
                guard let id = form["api_key_id"].flatMap(UUID.init(uuidString:)) else {
                    return try await overview(call, status: .badRequest, ["problem": "That is not one of the keys listed here."])
                }
                do {
                    _ = try await call.send(
                        .delete,
                        "/v1/tenants/\(call.caller.tenant.hex)/api-keys/\(id.uuidString.lowercased())",
                        as: Rampart_V1_RevokeApiKeyReply.self
                    )
                    return ConsoleRoutes.seeOther(Self.path + "?done=revoked")
                } catch let refusal as ConsoleRefusal where refusal.status != .unauthorized {
                    return try await overview(call, status: refusal.status, ["problem": refusal.detail])
                }
            }
        }
    }

    /// The list (all, or those unused for 90 days) and the form of a new key.
    private func overview(_ call: ConsoleCall, status: HTTPResponse.Status = .ok, _ values: [String: Any] = [:]) async throws -> Response {
        let unused = call.request.uri.queryParameters.get("unused") == "90"
        let list = try await call.get(
            "/v1/tenants/\(call.caller.tenant.hex)/api-keys" + (unused ? "?unused_for_days=90" : ""),
            as: Rampart_V1_ListApiKeysReply.self
        )
        let chosen = Set((values["typedScopes"] as? [String]) ?? [])
        let chosenLifetime = (values["typedLifetime"] as? UInt32) ?? 0
        var object: [String: Any] = [
            "unused": unused,
            "hasKeys": !list.apiKeys.isEmpty,
            "keys": list.apiKeys.map { key -> [String: Any] in
                [
                    "id": key.apiKeyID,
                    "name": key.name,
                    "prefix": key.prefix,
                    "scopes": key.scopes.joined(separator: ", "),
                    "created": SecurityPages.time(key.createdAtMs),
                    "lastUsed": key.lastUsedAtMs == 0
                        ? "Never" : SecurityPages.time(key.lastUsedAtMs) + (key.lastUsedIp.isEmpty ? "" : " from \(key.lastUsedIp)"),
                    "expires": key.expiresAtMs == 0 ? "Never" : SecurityPages.time(key.expiresAtMs),
                    "rotationDue": key.rotationDue,
                    "replaced": !key.replacedBy.isEmpty,
                ]
            },
            "scopes": list.scopes.map { ["name": $0.name, "description": $0.description_p, "checked": chosen.contains($0.name)] },
            "lifetimes": Self.lifetimes.map { ["days": Int($0.days), "label": $0.label, "selected": $0.days == chosenLifetime] },
            "graces": Self.graces.map { ["seconds": Int($0.seconds), "label": $0.label, "selected": $0.seconds == 86400] },
        ]
        object["notice"] = call.notice(Self.notices)
        object.merge(values) { _, new in new }
        return try await console.page("api-keys", call, section: "api", status: status, object)
    }

    /// What the person typed into the refused form, shown again.
    private static func typed(_ form: ConsoleForm.Fields) -> [String: Any] {
        ["typedName": form["name"] ?? "", "typedScopes": form.all("scope"), "typedLifetime": UInt32(form["expires_in_days"] ?? "") ?? 0]
    }
}
