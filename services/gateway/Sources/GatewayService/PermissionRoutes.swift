import HTTPTypes
import Hummingbird
import NIOCore
import RampartModels
import ServiceKit

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension APICaller {
    /// SPEC section 14, resource roles and the permission check (PERM-1, PERM-2, PERM-6), and
    /// the access review (PERM-4). A write answers with its revision, in the body and in the
    /// `Rampart-Consistency-Token` header; a request presenting that header is never answered
    /// from an older state.
    func addPermissionRoutes(to router: Router<GatewayRequestContext>) {
        let roles = "/v1/tenants/:tenant_id/resources/:type/:id/roles"
        router.get(RouterPath(roles)) { request, context in
            await tenantRoute(request, context) { _, call in
                var message = Rampart_V1_ListAccessRequest()
                message.resource = pathResource(context)
                message.atLeastRevision = try consistencyToken(request)
                let reply = try await rpc.call(Subjects.Permissions.listAccess, message, context: call)
                return try json(reply)
            }
        }
        router.put(RouterPath(roles + "/:principal_id")) { request, context in
            await tenantRoute(request, context) { _, call in
                let body = try await decode(request, as: Rampart_V1_ResourceRoleBody.self)
                var message = Rampart_V1_SetResourceRoleRequest()
                message.resource = pathResource(context)
                message.principal = try pathPrincipal(context)
                message.role = body.role
                return try written(try await rpc.call(Subjects.Permissions.setResourceRole, message, context: call))
            }
        }
        router.delete(RouterPath(roles + "/:principal_id")) { request, context in
            await tenantRoute(request, context) { _, call in
                var message = Rampart_V1_RemoveResourceRoleRequest()
                message.resource = pathResource(context)
                message.principal = try pathPrincipal(context)
                return try written(try await rpc.call(Subjects.Permissions.removeResourceRole, message, context: call))
            }
        }
        router.post("/v1/tenants/:tenant_id/permissions/check") { request, context in
            await tenantRoute(request, context, accepts: .accessTokenOrAPIKey) { caller, call in
                let body = try await decode(request, as: Rampart_V1_PermissionCheckBody.self)
                // About the caller itself, as its credential says, unless it names a member.
                var check = body.principalID.isEmpty ? Self.question(about: caller) : Rampart_V1_CheckRequest()
                check.action = body.action
                check.resource = body.resource
                check.atLeastRevision = max(body.atLeastRevision, try consistencyToken(request))
                if !body.principalID.isEmpty {
                    guard let user = UUID(uuidString: body.principalID), body.principalID.utf8.count == 36 else {
                        throw Problem(.badRequest, .invalidArgument, "principal_id must be a member's user ID").field("principal_id")
                    }
                    check.principal = Principal(user: user).description
                }
                return try json(try await permissions.check(check, context: call))
            }
        }
        router.get("/v1/tenants/:tenant_id/access-review") { request, context in
            await tenantRoute(request, context, requires: "members.manage") { _, call in
                var message = Rampart_V1_AccessReviewRequest()
                message.format = request.uri.queryParameters.get("format") ?? "json"
                let reply = try await rpc.call(Subjects.Permissions.accessReview, message, context: call)
                guard message.format == "csv" else { return try json(reply) }
                return Response(
                    status: .ok,
                    headers: [.contentType: "text/csv; charset=utf-8", .contentDisposition: "attachment; filename=\"access-review.csv\""],
                    body: .init(byteBuffer: ByteBuffer(string: reply.csv))
                )
            }
        }
        router.post("/v1/tenants/:tenant_id/access-review/complete") { request, context in
            await tenantRoute(request, context, requires: "members.manage") { _, call in
                let message = try await decode(request, as: Rampart_V1_CompleteAccessReviewRequest.self)
                let reply = try await rpc.call(Subjects.Permissions.completeAccessReview, message, context: call)
                return try json(reply)
            }
        }
    }

    /// `<type>/<id>` from the path; permissions validates both parts.
    private func pathResource(_ context: GatewayRequestContext) -> String {
        "\(context.parameters.get("type") ?? "")/\(context.parameters.get("id") ?? "")"
    }

    private func pathPrincipal(_ context: GatewayRequestContext) throws -> String {
        "user:\(try pathUser(context, parameter: "principal_id"))"
    }

    private func written(_ reply: Rampart_V1_PermissionsWriteReply) throws -> Response {
        var response = try json(reply)
        response.headers[.consistencyToken] = String(reply.revision)
        return response
    }
}

extension Problem {
    func field(_ name: String) -> Problem {
        var problem = self
        problem.fields["field"] = name
        return problem
    }
}
