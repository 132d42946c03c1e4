import HTTPTypes
import Hummingbird
import RampartModels
import RateLimitKit
import ServiceKit

extension APICaller {
    /// SPEC section 14: fail2ban's bans (RL-3) for platform super-admins (PERM-3's flag, from a
    /// verified access token; never an API key). rate-limit audits each unban with its actor.
    func addAdminRoutes(to router: Router<GatewayRequestContext>) {
        router.get("/v1/admin/bans") { request, context in
            await superAdminRoute(request, context) { call in
                let reply = try await rpc.call(Subjects.RateLimit.listBans, Rampart_V1_ListBansRequest(), context: call)
                return try json(reply)
            }
        }
        router.get("/v1/admin/bans/:ip") { request, context in
            await superAdminRoute(request, context) { call in
                let address = try pathAddress(context)
                let reply = try await rpc.call(Subjects.RateLimit.listBans, Rampart_V1_ListBansRequest(), context: call)
                guard let ban = reply.bans.first(where: { IPNetwork(cidr: $0.network)?.contains(address) == true }) else {
                    throw Problem(.notFound, .notFound, "\(address.address) is not banned")
                }
                return try json(ban)
            }
        }
        // IR-1: a person, everywhere; auth checks the flag again in its own table.
        router.post("/v1/admin/users/:user_id/isolate") { request, context in
            await superAdminRoute(request, context) { call in
                var message = try await decode(request, as: Rampart_V1_IsolateUserRequest.self)
                let user = try pathUser(context)
                guard message.userID.isEmpty || message.userID.lowercased() == user else {
                    throw Problem(.badRequest, .invalidArgument, "user_id in the body names another user than the path").field("user_id")
                }
                message.userID = user
                let reply = try await rpc.call(Subjects.Auth.isolateUser, message, context: call)
                return try json(reply)
            }
        }
        router.delete("/v1/admin/users/:user_id/isolate") { request, context in
            await superAdminRoute(request, context) { call in
                var message = Rampart_V1_LiftUserIsolationRequest()
                message.userID = try pathUser(context)
                let reply = try await rpc.call(Subjects.Auth.liftUserIsolation, message, context: call)
                return try json(reply)
            }
        }
        router.delete("/v1/admin/bans/:ip") { request, context in
            await superAdminRoute(request, context) { call in
                var message = Rampart_V1_UnbanRequest()
                // A bare address: rate-limit lifts the ban on the network it is grouped into.
                message.network = try pathAddress(context).address
                let reply = try await rpc.call(Subjects.RateLimit.unban, message, context: call)
                return try json(reply)
            }
        }
    }

    private func superAdminRoute(
        _ request: Request,
        _ context: GatewayRequestContext,
        _ body: (CallContext) async throws -> Response
    ) async -> Response {
        await signedIn(request, context) { caller, call in
            guard Self.isSuperAdmin(caller) else { throw Problem(.forbidden, .permissionDenied, "only a platform super-admin may do this") }
            return try await body(call)
        }
    }

    private func pathAddress(_ context: GatewayRequestContext) throws -> IPNetwork {
        guard let text = context.parameters.get("ip"), text.utf8.count <= 64, let address = IPNetwork(address: text) else {
            throw Problem(.badRequest, .invalidArgument, "ip must be an IPv4 or IPv6 address").field("ip")
        }
        return address
    }
}
