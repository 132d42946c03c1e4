import Hummingbird
import NIOCore
import RampartModels
import ServiceKit

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// SPEC section 14, resource roles and the permission check (PERM-1, PERM-2, PERM-6), and the
/// access review (PERM-4). A write answers with its revision, in the body and in the
/// `Rampart-Consistency-Token` header; a request presenting that header is never answered from
/// an older state.
struct PermissionRoutes {
    let calls: ServiceCalls
    let permissions: PermissionChecker

    func add(to scopes: RouteScopes) {
        let roles = scopes.tenant("resources/:type/:id/roles")
        roles.get { request, context in
            var message = Rampart_V1_ListAccessRequest()
            message.resource = Self.pathResource(context)
            message.atLeastRevision = try request.consistencyToken()
            return try Response.json(try await calls.call(Subjects.Permissions.listAccess, message, context))
        }
        roles.put(":principal_id") { request, context in
            let body = try await calls.message(request, as: Rampart_V1_ResourceRoleBody.self)
            var message = Rampart_V1_SetResourceRoleRequest()
            message.resource = Self.pathResource(context)
            message.principal = try Self.pathPrincipal(context)
            message.role = body.role
            return try Self.written(try await calls.call(Subjects.Permissions.setResourceRole, message, context))
        }
        roles.delete(":principal_id") { _, context in
            var message = Rampart_V1_RemoveResourceRoleRequest()
            message.resource = Self.pathResource(context)
            message.principal = try Self.pathPrincipal(context)
            return try Self.written(try await calls.call(Subjects.Permissions.removeResourceRole, message, context))
        }
        scopes.tenant("permissions/check", accepts: .accessTokenOrAPIKey).post { request, context in
            let body = try await calls.message(request, as: Rampart_V1_PermissionCheckBody.self)
            // About the caller itself, as its credential says, unless it names a member.
            var check = body.principalID.isEmpty ? context.caller.permissionQuestion : Rampart_V1_CheckRequest()
            check.action = body.action
            check.resource = body.resource
            check.atLeastRevision = max(body.atLeastRevision, try request.consistencyToken())
            if !body.principalID.isEmpty {
                guard let user = UUID(uuidString: body.principalID), body.principalID.utf8.count == 36 else {
                    throw RampartError.invalidArgument("principal_id must be a member's user ID", field: "principal_id")
                }
                check.principal = Principal(user: user).description
            }
            return try Response.json(try await permissions.check(check, context: context.call))
        }
        let review = scopes.tenant("access-review").requiring(scopes.permission("members.manage"))
        review.get { request, context in
            var message = Rampart_V1_AccessReviewRequest()
            message.format = request.uri.queryParameters.get("format") ?? "json"
            let reply = try await calls.call(Subjects.Permissions.accessReview, message, context)
            guard message.format == "csv" else { return try Response.json(reply) }
            return Response(
                status: .ok,
                headers: [.contentType: "text/csv; charset=utf-8", .contentDisposition: "attachment; filename=\"access-review.csv\""],
                body: .init(byteBuffer: ByteBuffer(string: reply.csv))
            )
        }
        review.post("complete") { request, context in
            try await calls.forward(Subjects.Permissions.completeAccessReview, request, context)
        }
    }

    /// `<type>/<id>` from the path; permissions validates both parts.
    private static func pathResource(_ context: CallerContext) -> String {
        "\(context.parameters.get("type") ?? "")/\(context.parameters.get("id") ?? "")"
    }

    private static func pathPrincipal(_ context: CallerContext) throws -> String {
        Principal.user(try context.pathUser("principal_id")).description
    }

    private static func written(_ reply: Rampart_V1_PermissionsWriteReply) throws -> Response {
        var response = try Response.json(reply)
        response.headers[.consistencyToken] = String(reply.revision)
        return response
    }
}
