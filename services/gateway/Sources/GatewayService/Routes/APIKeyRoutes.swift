import Hummingbird
import RampartModels

/// SPEC section 14, API keys (KEY-1..4): managed by signed-in members, never by a key.
struct APIKeyRoutes {
    let calls: ServiceCalls

    func add(to scopes: RouteScopes) {
        let keys = scopes.tenant("api-keys")
        keys.get { request, context in
            var message = Rampart_V1_ListApiKeysRequest()
            if let days = request.uri.queryParameters.get("unused_for_days") {
                guard let value = UInt32(days), value <= 3650 else {
                    throw RampartError(.invalidArgument, "unused_for_days must be a whole number of days, at most 3650")
                }
                message.unusedForDays = value
            }
            return try Response.json(try await calls.call(Subjects.Auth.listAPIKeys, message, context))
        }
        keys.post { request, context in
            try await calls.forward(Subjects.Auth.createAPIKey, request, context, status: .created) { message, caller in
                message.sessionID = caller.sessionID
            }
        }
        keys.delete(":id") { _, context in
            var message = Rampart_V1_RevokeApiKeyRequest()
            message.apiKeyID = context.parameters.get("id") ?? ""
            _ = try await calls.call(Subjects.Auth.revokeAPIKey, message, context)
            return Response(status: .noContent)
        }
        keys.post(":id/rotate") { request, context in
            try await calls.forward(Subjects.Auth.rotateAPIKey, request, context, status: .created) { message, caller in
                message.apiKeyID = context.parameters.get("id") ?? ""
                message.sessionID = caller.sessionID
            }
        }
    }
}
