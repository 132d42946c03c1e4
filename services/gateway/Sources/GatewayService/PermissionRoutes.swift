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
            await signedIn(request, context) { caller, call in
                _ = try pathTenant(context, caller)
                var message = Rampart_V1_ListAccessRequest()
                message.resource = pathResource(context)
                message.atLeastRevision = try consistencyToken(request)
                let reply: Rampart_V1_ListAccessReply = try await rpc.call(Subjects.Permissions.listAccess, message, context: call)
                return try json(reply)
            }
        }
        router.put(RouterPath(roles + "/:principal_id")) { request, context in
            await signedIn(request, context) { caller, call in
                _ = try pathTenant(context, caller)
                let body = try await decode(request, as: Rampart_V1_ResourceRoleBody.self)
                var message = Rampart_V1_SetResourceRoleRequest()
                message.resource = pathResource(context)
                message.principal = try pathPrincipal(context)
                message.role = body.role
                return try written(try await rpc.call(Subjects.Permissions.setResourceRole, message, context: call))
            }
        }
        router.delete(RouterPath(roles + "/:principal_id")) { request, context in
            await signedIn(request, context) { caller, call in
                _ = try pathTenant(context, caller)
                var message = Rampart_V1_RemoveResourceRoleRequest()
                message.resource = pathResource(context)
                message.principal = try pathPrincipal(context)
                return try written(try await rpc.call(Subjects.Permissions.removeResourceRole, message, context: call))
            }
        }
        router.post("/v1/tenants/:tenant_id/permissions/check") { request, context in
            await signedIn(request, context, accepts: .accessTokenOrAPIKey) { caller, call in
                _ = try pathTenant(context, caller)
                let body = try await decode(request, as: Rampart_V1_PermissionCheckBody.self)
                var check = Rampart_V1_CheckRequest()
                check.action = body.action
                check.resource = body.resource
                check.atLeastRevision = max(body.atLeastRevision, try consistencyToken(request))
                if body.principalID.isEmpty {
                    // About the caller itself, as its credential says.
                    check.principal = caller.principal
                    switch caller.credential {
                    case .accessToken(let claims):
                        check.superAdmin = claims.isSuperAdmin
                    case .apiKey(let key):
                        check.apiKeyCreator = "user:\(key.createdBy)"
                        check.apiKeyScopes = key.scopes
                    }
                } else {
                    guard let user = UUID(uuidString: body.principalID), body.principalID.utf8.count == 36 else {
                        throw Problem(.badRequest, .invalidArgument, "principal_id must be a member's user ID").field("principal_id")
                    }
                    check.principal = "user:\(user.uuidString.lowercased())"
                }
                return try json(try await permissions.check(check, context: call))
            }
        }
        router.get("/v1/tenants/:tenant_id/access-review") { request, context in
            await signedIn(request, context) { caller, call in
                _ = try pathTenant(context, caller)
                var message = Rampart_V1_AccessReviewRequest()
                message.format = request.uri.queryParameters.get("format") ?? "json"
                let reply: Rampart_V1_AccessReviewReply = try await rpc.call(Subjects.Permissions.accessReview, message, context: call)
                guard message.format == "csv" else { return try json(reply) }
                return Response(
                    status: .ok,
                    headers: [.contentType: "text/csv; charset=utf-8", .contentDisposition: "attachment; filename=\"access-review.csv\""],
                    body: .init(byteBuffer: ByteBuffer(string: reply.csv))
                )
            }
        }
        router.post("/v1/tenants/:tenant_id/access-review/complete") { request, context in
            await signedIn(request, context) { caller, call in
                _ = try pathTenant(context, caller)
                let message = try await decode(request, as: Rampart_V1_CompleteAccessReviewRequest.self)
                let reply: Rampart_V1_AccessReviewReply = try await rpc.call(Subjects.Permissions.completeAccessReview, message, context: call)
                return try json(reply)
            }
        }
    }

    /// `<type>/<id>` from the path; permissions validates both parts.
    private func pathResource(_ context: GatewayRequestContext) -> String {
        "\(context.parameters.get("type") ?? "")/\(context.parameters.get("id") ?? "")"
    }

    private func pathPrincipal(_ context: GatewayRequestContext) throws -> String {
        guard let text = context.parameters.get("principal_id"), text.utf8.count == 36, let user = UUID(uuidString: text) else {
            throw Problem(.badRequest, .invalidArgument, "principal_id must be a member's user ID").field("principal_id")
        }
        return "user:\(user.uuidString.lowercased())"
    }

    /// The `Rampart-Consistency-Token` a client presents (0 without one).
    private func consistencyToken(_ request: Request) throws -> UInt64 {
        guard let text = request.headers[.consistencyToken] else { return 0 }
        guard text.utf8.count <= 20, let revision = UInt64(text) else {
            throw Problem(.badRequest, .invalidArgument, "Rampart-Consistency-Token must be a revision a write returned")
        }
        return revision
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
