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

/// The request context of the public API: the connection's peer address is the client IP
/// (trusted proxies come with GW-6).
struct GatewayRequestContext: RequestContext, RemoteAddressRequestContext {
    var coreContext: CoreRequestContextStorage
    let remoteAddress: SocketAddress?

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }

    var clientIP: String? { remoteAddress?.ipAddress }
}

/// Turns JSON requests into NATS calls and replies (or errors) into JSON: snake_case field
/// names, bodies of at most 64 KiB, unknown fields and wrong types refused.
struct APICaller: Sendable {
    let rpc: RPCClient
    let tokens: AccessTokenCache
    let logger: Logger

    static let maximumBodyBytes = 64 * 1024

    /// Someone signed in: the verified access token.
    struct Caller {
        var claims: AccessToken
        var tenant: TenantID
        var principal: String { "user:\(claims.sub)" }
    }

    /// Runs `handler`, answering every error as problem+json with the request ID.
    func respond(_ request: Request, _ context: GatewayRequestContext, _ handler: (String) async throws -> Response) async -> Response {
        let requestID = CallContext.newRequestID()
        do {
            var response = try await handler(requestID)
            response.headers[.requestID] = requestID
            return response
        } catch let problem as Problem {
            return problem.response(requestID: requestID)
        } catch let error as RampartError {
            if error.code == .internal { logger.error("call failed", metadata: ["request_id": "\(requestID)", "error": "\(error)"]) }
            return Problem(error).response(requestID: requestID)
        } catch {
            logger.error("request failed", metadata: ["request_id": "\(requestID)", "error": "\(loggable(error))"])
            return Problem(.internalServerError, .internal, "internal error").response(requestID: requestID)
        }
    }

    /// A route for the signed-in only: `body` gets the verified caller and the call context.
    func signedIn(
        _ request: Request,
        _ context: GatewayRequestContext,
        _ body: (Caller, CallContext) async throws -> Response
    ) async -> Response {
        await respond(request, context) { requestID in
            let caller = try await authenticate(request)
            return try await body(caller, self.context(requestID, request, context, caller: caller))
        }
    }

    /// The body as `Message`, from JSON.
    func decode<Message: SwiftProtobuf.Message>(_ request: Request, as _: Message.Type) async throws -> Message {
        guard request.headers[.contentType]?.lowercased().hasPrefix("application/json") == true else {
            throw Problem(.unsupportedMediaType, .malformedRequest, "send the body as application/json")
        }
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: Self.maximumBodyBytes)
        } catch {
            throw Problem(.contentTooLarge, .malformedRequest, "the body must be at most \(Self.maximumBodyBytes / 1024) KiB")
        }
        do {
            var options = JSONDecodingOptions()
            options.messageDepthLimit = 16
            return try Message(jsonUTF8Bytes: Array(buffer: buffer), options: options)
        } catch {
            throw Problem(.badRequest, .malformedRequest, "the body is not the JSON this route takes: \(Self.describe(error))")
        }
    }

    static func describe(_ error: any Error) -> String {
        switch error {
        case JSONDecodingError.unknownField(let name): "unknown field \(name.prefix(64).debugDescription)"
        case JSONDecodingError.malformedString: "a string is not valid UTF-8"
        case is JSONDecodingError: "malformed JSON or a field of the wrong type"
        default: "malformed JSON"
        }
    }

    func context(_ requestID: String, _ request: Request, _ context: GatewayRequestContext, caller: Caller? = nil) -> CallContext {
        CallContext(
            requestID: requestID,
            tenantID: caller?.tenant,
            principal: caller?.principal,
            clientIP: context.clientIP,
            userAgent: request.headers[.userAgent].map { String($0.prefix(512)) },
            timeout: .seconds(10)
        )
    }

    /// The bearer access token, verified, or 401.
    func authenticate(_ request: Request) async throws -> Caller {
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer "), header.utf8.count < 8192 else {
            throw Problem(.unauthorized, .unauthenticated, "sign in: send Authorization: Bearer <access token>")
        }
        let token = String(header.dropFirst(7))
        do {
            let claims = try await tokens.verify(token)
            guard let tenant = TenantID(claims.tenant), UUID(uuidString: claims.sub) != nil else { throw TokenError.malformed }
            return Caller(claims: claims, tenant: tenant)
        } catch let error as TokenError {
            throw Problem(.unauthorized, .unauthenticated, "the access token is not valid: \(error)")
        }
    }

    func json<Reply: SwiftProtobuf.Message>(_ reply: Reply, status: HTTPResponse.Status = .ok) throws -> Response {
        var options = JSONEncodingOptions()
        options.preserveProtoFieldNames = true
        options.alwaysPrintInt64sAsNumbers = true
        let body: [UInt8] = try reply.jsonUTF8Bytes(options: options)
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    /// A route whose body is `Request` and whose answer is `Reply`, called on `subject`.
    func forward<RequestMessage: SwiftProtobuf.Message, Reply: SwiftProtobuf.Message>(
        _ subject: String,
        _ request: Request,
        _ context: GatewayRequestContext,
        _: RequestMessage.Type,
        _: Reply.Type,
        status: HTTPResponse.Status = .ok,
        signedIn: Bool = false,
        adjust: (inout RequestMessage, Caller?) -> Void = { _, _ in }
    ) async -> Response {
        await respond(request, context) { requestID in
            let caller = signedIn ? try await authenticate(request) : nil
            var message = try await decode(request, as: RequestMessage.self)
            adjust(&message, caller)
            let reply: Reply = try await rpc.call(subject, message, context: self.context(requestID, request, context, caller: caller))
            return try json(reply, status: status)
        }
    }
}

/// The public keys access tokens are verified with, fetched from auth's JWKS and fetched
/// again (at most every few seconds) when a token names a key not seen yet: after a rotation.
final class AccessTokenCache: Sendable {
    let rpc: RPCClient
    let issuer: String
    private let state = Mutex<(keys: [String: [UInt8]], fetchedAt: ContinuousClock.Instant?)>(([:], nil))

    init(rpc: RPCClient, issuer: String) {
        self.rpc = rpc
        self.issuer = issuer
    }

    func verify(_ token: String) async throws -> AccessToken {
        let now = WallClock.milliseconds() / 1000
        let (keys, fetchedAt) = state.withLock { ($0.keys, $0.fetchedAt) }
        let result = Result { () throws(TokenError) in try AccessTokenVerifier(issuer: issuer, publicKeys: keys).verify(token, now: now) }
        let mayFetch = fetchedAt.map { ContinuousClock.now - $0 > .seconds(5) } ?? true
        guard case .failure(.unknownKey) = result, mayFetch else { return try result.get() }
        let fresh = try JWKS.parse(try await jwks())
        state.withLock { $0 = (fresh, ContinuousClock.now) }
        return try AccessTokenVerifier(issuer: issuer, publicKeys: fresh).verify(token, now: now)
    }

    func jwks() async throws -> String {
        try await rpc.call(Subjects.Auth.jwks, Rampart_V1_JwksRequest(), context: CallContext(), as: Rampart_V1_JwksReply.self).json
    }
}

extension APICaller {
    /// SPEC section 14, the auth routes.
    func addAuthRoutes(to router: Router<GatewayRequestContext>) {
        router.post("/v1/auth/register") { request, context in
            await forward(Subjects.Auth.register, request, context, Rampart_V1_RegisterRequest.self, Rampart_V1_RegisterReply.self, status: .created)
        }
        router.post("/v1/auth/login") { request, context in
            await forward(Subjects.Auth.login, request, context, Rampart_V1_LoginRequest.self, Rampart_V1_TokenReply.self)
        }
        router.post("/v1/auth/token/refresh") { request, context in
            await forward(Subjects.Auth.refresh, request, context, Rampart_V1_RefreshRequest.self, Rampart_V1_TokenReply.self)
        }
        router.post("/v1/auth/password/reset/request") { request, context in
            await forward(
                Subjects.Auth.requestPasswordReset,
                request,
                context,
                Rampart_V1_RequestPasswordResetRequest.self,
                Rampart_V1_RequestPasswordResetReply.self
            )
        }
        router.post("/v1/auth/password/reset/confirm") { request, context in
            await forward(
                Subjects.Auth.confirmPasswordReset,
                request,
                context,
                Rampart_V1_ConfirmPasswordResetRequest.self,
                Rampart_V1_ConfirmPasswordResetReply.self
            )
        }
        router.post("/v1/auth/email/verify") { request, context in
            await forward(Subjects.Auth.verifyEmail, request, context, Rampart_V1_VerifyEmailRequest.self, Rampart_V1_VerifyEmailReply.self)
        }
        router.post("/v1/auth/password/change") { request, context in
            await forward(
                Subjects.Auth.changePassword,
                request,
                context,
                Rampart_V1_ChangePasswordRequest.self,
                Rampart_V1_ChangePasswordReply.self,
                signedIn: true
            ) { message, caller in message.currentSessionID = caller?.claims.sid ?? "" }
        }
        // Signed-in routes without a body: the session comes from the access token.
        router.post("/v1/auth/logout") { request, context in
            await signedIn(request, context) { caller, call in
                var message = Rampart_V1_LogoutRequest()
                message.sessionID = caller.claims.sid
                let _: Rampart_V1_LogoutReply = try await rpc.call(
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
                message.currentSessionID = caller.claims.sid
                let reply: Rampart_V1_ListSessionsReply = try await rpc.call(
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
                let _: Rampart_V1_LogoutReply = try await rpc.call(
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
                message.exceptSessionID = caller.claims.sid
                let reply: Rampart_V1_RevokeSessionsReply = try await rpc.call(
                    Subjects.Auth.revokeSessions,
                    message,
                    context: call
                )
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
