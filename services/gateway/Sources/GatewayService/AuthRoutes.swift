import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import RampartModels
import ServiceKit
import SwiftProtobuf
import Synchronization
import TokenKit

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension APICaller {
    /// SPEC section 14, the auth routes.
    func addAuthRoutes(to router: Router<GatewayRequestContext>) {
        router.post("/v1/auth/register") { request, context in
            await forward(Subjects.Auth.register, request, context, status: .created)
        }
        router.post("/v1/auth/login") { request, context in
            await forward(Subjects.Auth.login, request, context)
        }
        router.post("/v1/auth/login/mfa") { request, context in
            await forward(Subjects.Auth.loginMFA, request, context)
        }
        router.post("/v1/auth/login/mfa/enroll") { request, context in
            await forward(Subjects.Auth.loginMFAEnroll, request, context)
        }
        router.post("/v1/auth/token/refresh") { request, context in
            await forward(Subjects.Auth.refresh, request, context)
        }
        router.post("/v1/auth/password/reset/request") { request, context in
            await forward(
                Subjects.Auth.requestPasswordReset,
                request,
                context
            )
        }
        router.post("/v1/auth/password/reset/confirm") { request, context in
            await forward(
                Subjects.Auth.confirmPasswordReset,
                request,
                context
            )
        }
        router.post("/v1/auth/email/verify") { request, context in
            await forward(Subjects.Auth.verifyEmail, request, context)
        }
        router.post("/v1/auth/password/change") { request, context in
            await forward(
                Subjects.Auth.changePassword,
                request,
                context,
                signedIn: true
            ) { message, caller in message.currentSessionID = caller?.sessionID ?? "" }
        }
        // Signed-in routes without a body: the session comes from the access token.
        router.post("/v1/auth/logout") { request, context in
            await signedIn(request, context) { caller, call in
                var message = Rampart_V1_LogoutRequest()
                message.sessionID = caller.sessionID
                _ = try await rpc.call(
                    Subjects.Auth.logout,
                    message,
                    context: call
                )
                return Response(status: .noContent)
            }
        }
        router.get("/v1/auth/sessions") { request, context in
            await signedIn(request, context) { caller, call in
                var message = Rampart_V1_ListSessionsRequest()
                message.currentSessionID = caller.sessionID
                let reply = try await rpc.call(
                    Subjects.Auth.listSessions,
                    message,
                    context: call
                )
                return try json(reply)
            }
        }
        router.delete("/v1/auth/sessions/:id") { request, context in
            await signedIn(request, context) { caller, call in
                var message = Rampart_V1_LogoutRequest()
                message.sessionID = context.parameters.get("id") ?? ""
                _ = try await rpc.call(
                    Subjects.Auth.logout,
                    message,
                    context: call
                )
                return Response(status: .noContent)
            }
        }
        router.delete("/v1/auth/sessions") { request, context in
            await signedIn(request, context) { caller, call in
                var message = Rampart_V1_RevokeSessionsRequest()
                message.exceptSessionID = caller.sessionID
                let reply = try await rpc.call(
                    Subjects.Auth.revokeSessions,
                    message,
                    context: call
                )
                return try json(reply)
            }
        }
        // MFA-1, MFA-2: TOTP enrolment for the signed-in user (a person, never an API key).
        router.post("/v1/auth/mfa/totp/enroll") { request, context in
            await forward(
                Subjects.Auth.mfaEnroll,
                request,
                context,
                signedIn: true
            )
        }
        router.post("/v1/auth/mfa/totp/confirm") { request, context in
            await forward(
                Subjects.Auth.mfaConfirm,
                request,
                context,
                signedIn: true
            )
        }
        router.get("/v1/auth/mfa") { request, context in
            await signedIn(request, context) { _, call in
                let reply = try await rpc.call(Subjects.Auth.mfaStatus, Rampart_V1_MfaStatusRequest(), context: call)
                return try json(reply)
            }
        }
        router.post("/v1/auth/mfa/backup-codes/regenerate") { request, context in
            await forward(
                Subjects.Auth.mfaRegenerateBackupCodes,
                request,
                context,
                signedIn: true
            )
        }
        router.delete("/v1/auth/mfa") { request, context in
            await forward(
                Subjects.Auth.mfaDisable,
                request,
                context,
                signedIn: true
            )
        }
        // AUTH-8: another verification mail while the address is unverified.
        router.post("/v1/auth/email/verification/resend") { request, context in
            await signedIn(request, context) { _, call in
                let reply = try await rpc.call(
                    Subjects.Auth.resendEmailVerification,
                    Rampart_V1_ResendEmailVerificationRequest(),
                    context: call
                )
                return try json(reply, status: .accepted)
            }
        }
        // TEN-10: a person in several tenants: where they belong, and a session in another.
        router.get("/v1/auth/tenants") { request, context in
            await signedIn(request, context) { _, call in
                let reply = try await rpc.call(
                    Subjects.Tenants.listMemberships,
                    Rampart_V1_ListMembershipsRequest(),
                    context: call
                )
                return try json(reply)
            }
        }
        // Step-up: a proof again, for the routes that need a recent one.
        router.post("/v1/auth/step-up") { request, context in
            await forward(
                Subjects.Auth.stepUp,
                request,
                context,
                signedIn: true
            ) { message, caller in message.sessionID = caller?.sessionID ?? "" }
        }
        router.post("/v1/auth/token/switch") { request, context in
            await forward(
                Subjects.Auth.switchTenant,
                request,
                context,
                signedIn: true
            ) { message, caller in message.sessionID = caller?.sessionID ?? "" }
        }
        // TEN-10: accepting an invitation, as a new person (no credential) or signed in.
        router.post("/v1/invitations/accept") { request, context in
            let signedIn = request.headers[.authorization] != nil
            return await forward(Subjects.Auth.join, request, context, signedIn: signedIn)
        }
        router.get("/v1/auth/whoami") { request, context in
            await signedIn(request, context, accepts: .accessTokenOrAPIKey) { caller, _ in
                var reply = Rampart_V1_WhoAmIReply()
                reply.principal = caller.principal.description
                reply.tenantID = caller.tenant.hex
                switch caller.credential {
                case .accessToken(let claims):
                    reply.sessionID = claims.sid
                    reply.roles = claims.roles
                case .apiKey(let key):
                    reply.scopes = key.scopes
                    reply.createdBy = key.createdBy
                }
                return try json(reply)
            }
        }
        router.get("/.well-known/jwks.json") { request, context in
            await respond(request, context) { _ in
                Response(
                    status: .ok,
                    headers: [.contentType: "application/json"],
                    body: .init(byteBuffer: ByteBuffer(string: try await tokens.jwks()))
                )
            }
        }
    }
}

extension APICaller {
    /// SPEC section 14, API keys (KEY-1..4): managed by signed-in members, never by a key.
    func addAPIKeyRoutes(to router: Router<GatewayRequestContext>) {
        router.get("/v1/tenants/:tenant_id/api-keys") { request, context in
            await tenantRoute(request, context) { _, call in
                var message = Rampart_V1_ListApiKeysRequest()
                if let days = request.uri.queryParameters.get("unused_for_days") {
                    guard let value = UInt32(days), value <= 3650 else {
                        throw Problem(.badRequest, .invalidArgument, "unused_for_days must be a whole number of days, at most 3650")
                    }
                    message.unusedForDays = value
                }
                let reply = try await rpc.call(Subjects.Auth.listAPIKeys, message, context: call)
                return try json(reply)
            }
        }
        router.post("/v1/tenants/:tenant_id/api-keys") { request, context in
            await tenantRoute(request, context) { _, call in
                let message = try await decode(request, as: Rampart_V1_CreateApiKeyRequest.self)
                let reply = try await rpc.call(Subjects.Auth.createAPIKey, message, context: call)
                return try json(reply, status: .created)
            }
        }
        router.delete("/v1/tenants/:tenant_id/api-keys/:id") { request, context in
            await tenantRoute(request, context) { _, call in
                var message = Rampart_V1_RevokeApiKeyRequest()
                message.apiKeyID = context.parameters.get("id") ?? ""
                _ = try await rpc.call(Subjects.Auth.revokeAPIKey, message, context: call)
                return Response(status: .noContent)
            }
        }
        router.post("/v1/tenants/:tenant_id/api-keys/:id/rotate") { request, context in
            await tenantRoute(request, context) { _, call in
                var message = try await decode(request, as: Rampart_V1_RotateApiKeyRequest.self)
                message.apiKeyID = context.parameters.get("id") ?? ""
                let reply = try await rpc.call(Subjects.Auth.rotateAPIKey, message, context: call)
                return try json(reply, status: .created)
            }
        }
    }
}
