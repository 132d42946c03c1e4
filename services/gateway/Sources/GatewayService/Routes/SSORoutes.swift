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
    }
}
