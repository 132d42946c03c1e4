import Hummingbird
import RampartModels
import ServiceKit

/// SPEC section 14, for platform super-admins (PERM-3's flag, from a verified access token;
/// never an API key): fail2ban's bans (RL-3; rate-limit audits each unban with its actor) and a
/// person isolated everywhere (IR-1; auth checks the flag again in its own table).
struct AdminRoutes {
    let calls: ServiceCalls

    func add(to scopes: RouteScopes) {
        let admin = scopes.signedIn("/v1/admin").requiring(SuperAdminMiddleware())
        admin.get("bans") { _, context in
            try Response.json(try await calls.call(Subjects.RateLimit.listBans, Rampart_V1_ListBansRequest(), context))
        }
        admin.get("bans/:ip") { _, context in
            let address = try Self.pathAddress(context)
            let reply = try await calls.call(Subjects.RateLimit.listBans, Rampart_V1_ListBansRequest(), context)
            guard let ban = reply.bans.first(where: { IPNetwork(cidr: $0.network)?.contains(address) == true }) else {
                throw RampartError(.notFound, "\(address.address) is not banned")
            }
            return try Response.json(ban)
        }
        admin.delete("bans/:ip") { _, context in
            var message = Rampart_V1_UnbanRequest()
            // A bare address: rate-limit lifts the ban on the network it is grouped into.
            message.network = try Self.pathAddress(context).address
            return try Response.json(try await calls.call(Subjects.RateLimit.unban, message, context))
        }
        admin.post("users/:user_id/isolate") { request, context in
            var message = try await calls.message(request, as: Rampart_V1_IsolateUserRequest.self)
            message.userID = try sameID(message.userID, as: try context.pathUser(), field: "user_id", naming: "user")
            return try Response.json(try await calls.call(Subjects.Auth.isolateUser, message, context))
        }
        admin.delete("users/:user_id/isolate") { _, context in
            var message = Rampart_V1_LiftUserIsolationRequest()
            message.userID = try context.pathUser()
            return try Response.json(try await calls.call(Subjects.Auth.liftUserIsolation, message, context))
        }
    }

    private static func pathAddress(_ context: CallerContext) throws -> IPNetwork {
        guard let text = context.parameters.get("ip"), text.utf8.count <= 64, let address = IPNetwork(address: text) else {
            throw RampartError.invalidArgument("ip must be an IPv4 or IPv6 address", field: "ip")
        }
        return address
    }
}
