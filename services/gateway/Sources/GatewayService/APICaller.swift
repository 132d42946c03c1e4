import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import RampartModels
import RateLimitKit
import ServiceKit
import SwiftProtobuf
import Synchronization
import TokenKit

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The request context of the public API. `EdgeMiddleware` sets the request ID and the client
/// IP (the peer's address, or the one a trusted proxy forwarded) before any route runs.
struct GatewayRequestContext: RequestContext, RemoteAddressRequestContext {
    var coreContext: CoreRequestContextStorage
    let remoteAddress: SocketAddress?
    var requestID: String
    var clientIP: String?
    /// Set by `APIRateLimitMiddleware` for the routes it limits.
    var rateLimits: RateLimitRecord?

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
        requestID = CallContext.newRequestID()
        clientIP = remoteAddress?.ipAddress
    }

    /// The connection's other end: the client, or a proxy in front of the gateway.
    var peerIP: String? { remoteAddress?.ipAddress }
}

/// Turns JSON requests into NATS calls and replies (or errors) into JSON: snake_case field
/// names, bodies of at most 64 KiB, unknown fields and wrong types refused.
struct APICaller: Sendable {
    let rpc: RPCClient
    let tokens: AccessTokenCache
    let apiKeys: APIKeyCache
    let revocations: RevocationList
    let rateLimit: RateLimitClient
    /// How long a request body may take to arrive in full.
    let bodyTimeout: Duration
    /// How long a service has to answer: past it 504.
    let callTimeout: Duration
    /// How recent the proof of `needsRecentProof` routes must be.
    let stepUpSeconds: Int64
    let permissions: PermissionChecker
    let allowlists: TenantAllowlists
    let logger: Logger

    static let maximumBodyBytes = 64 * 1024

    /// Who is calling: a signed-in user (a verified access token of a live session) or an API
    /// key (verified by auth, within its own rate limit).
    struct Caller {
        enum Credential {
            case accessToken(AccessToken)
            case apiKey(Rampart_V1_VerifyApiKeyReply)
        }
        var credential: Credential
        var tenant: TenantID
        var principal: Principal
        /// The access token's session; empty for an API key.
        var sessionID: String
    }

    /// Which credentials a route takes. Only people manage sessions, passwords and API keys.
    enum Accepts {
        case accessToken, accessTokenOrAPIKey
    }

    /// Runs `handler`, answering every error as problem+json with the request ID.
    func respond(_ request: Request, _ context: GatewayRequestContext, _ handler: (String) async throws -> Response) async -> Response {
        let requestID = context.requestID
        do {
            return try await handler(requestID)
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
        accepts: Accepts = .accessToken,
        _ body: (Caller, CallContext) async throws -> Response
    ) async -> Response {
        await respond(request, context) { requestID in
            let caller = try await authenticate(request, context, requestID: requestID, accepts: accepts)
            return try await body(caller, self.context(requestID, request, context, caller: caller))
        }
    }

    /// A route under `/v1/tenants/{tenant_id}/`: the caller's own tenant only, and, when the
    /// route names one, the permission its action needs (PERM-2) before the owning service is
    /// called. The owning service checks again with its own data. A route that gives power
    /// beyond the caller's own account names what it does in `needsVerifiedEmail` (AUTH-11);
    /// one that cannot be undone or sheds a defence, in `needsRecentProof` (step-up).
    func tenantRoute(
        _ request: Request,
        _ context: GatewayRequestContext,
        accepts: Accepts = .accessToken,
        requires action: String? = nil,
        needsVerifiedEmail doing: String? = nil,
        needsRecentProof proving: String? = nil,
        _ body: (Caller, CallContext) async throws -> Response
    ) async -> Response {
        await respond(request, context) { requestID in
            // The path's tenant is the credential's, checked before anything is asked of another
            // service (the allowlist comes from tenants).
            let caller = try await verifiedCaller(request, context, requestID: requestID, accepts: accepts)
            _ = try pathTenant(context, caller)
            let call = self.context(requestID, request, context, caller: caller)
            try await allowlists.admit(caller, from: context.clientIP, call: call)
            if let action { try await authorize(caller, action, request, call) }
            if let doing { try Self.requireVerifiedEmail(caller, doing) }
            if let proving { try requireRecentProof(caller, proving) }
            return try await body(caller, call)
        }
    }

    /// Step-up (RFC 9470's challenge): a session alone, stolen or left open, must not do what
    /// `doing` names. The access token's `auth_time` says when the person last proved every
    /// factor their account has (at sign-in, or by `POST /v1/auth/step-up`); older than
    /// `stepUpSeconds`, 401 with `insufficient_user_authentication`.
    func requireRecentProof(_ caller: Caller, _ doing: String, now: Int64 = WallClock.milliseconds() / 1000) throws {
        if case .accessToken(let claims) = caller.credential, let authTime = claims.auth_time, now - authTime <= stepUpSeconds { return }
        var problem = Problem(
            .unauthorized,
            .unauthenticated,
            "\(doing) needs a recent proof that it is you: POST /v1/auth/step-up with a code from your app (or your password, without MFA), then retry with the access token it answers"
        )
        problem.fields = ["reason": "step_up_required", "max_age": String(stepUpSeconds)]
        problem.challenge =
            "Bearer error=\"insufficient_user_authentication\", error_description=\"a recent proof is needed\", max_age=\(stepUpSeconds)"
        throw problem
    }

    /// AUTH-11 as the access token says (auth sets the claim from its table at every issue).
    /// An API key passes: auth makes keys only for verified accounts.
    static func requireVerifiedEmail(_ caller: Caller, _ doing: String) throws {
        guard case .accessToken(let claims) = caller.credential, !claims.isEmailVerified else { return }
        throw Problem(RampartError.emailUnverified(doing))
    }

    /// PERM-2 for the caller as its credential says: a member by their roles, an API key by its
    /// scopes and its creator's roles, a super-admin by the audited bypass. Cached per policy
    /// revision; a presented consistency token is honoured. Permissions unreachable: 503.
    func authorize(_ caller: Caller, _ action: String, _ request: Request, _ call: CallContext) async throws {
        var check = Self.question(about: caller)
        check.action = action
        check.atLeastRevision = try consistencyToken(request)
        let decision = try await permissions.check(check, context: call)
        guard decision.allowed else {
            var problem = Problem(.forbidden, .permissionDenied, "this needs the \(action) permission, which you do not have here")
            problem.fields["reason"] = decision.reason
            throw problem
        }
    }

    /// A check about the caller as its credential presents it: the member, the key (with its
    /// creator and scopes, PERM-2's intersection), or the super-admin flag (PERM-3).
    static func question(about caller: Caller) -> Rampart_V1_CheckRequest {
        var check = Rampart_V1_CheckRequest()
        check.principal = caller.principal.description
        switch caller.credential {
        case .accessToken(let claims):
            check.superAdmin = claims.isSuperAdmin
        case .apiKey(let key):
            check.apiKeyCreator = "user:\(key.createdBy)"
            check.apiKeyScopes = key.scopes
        }
        return check
    }

    /// The `Rampart-Consistency-Token` a client presents (0 without one).
    func consistencyToken(_ request: Request) throws -> UInt64 {
        guard let text = request.headers[.consistencyToken] else { return 0 }
        guard text.utf8.count <= 20, let revision = UInt64(text) else {
            throw Problem(.badRequest, .invalidArgument, "Rampart-Consistency-Token must be a revision a write returned")
        }
        return revision
    }

    /// The body as `Message`, from JSON.
    func decode<Message: SwiftProtobuf.Message>(_ request: Request, as _: Message.Type) async throws -> Message {
        let buffer = try await jsonBody(request)
        do {
            var options = JSONDecodingOptions()
            options.messageDepthLimit = 16
            return try Message(jsonUTF8Bytes: Array(buffer: buffer), options: options)
        } catch {
            throw Problem(.badRequest, .malformedRequest, "the body is not the JSON this route takes: \(Self.describe(error))")
        }
    }

    /// The body's bytes as sent, once it is declared JSON, complete in time and within the limit.
    func jsonBody(_ request: Request) async throws -> ByteBuffer {
        guard request.headers[.contentType]?.lowercased().hasPrefix("application/json") == true else {
            throw Problem(.unsupportedMediaType, .malformedRequest, "send the body as application/json")
        }
        let body = request.body
        let buffer: ByteBuffer? = try await withThrowingTaskGroup(of: ByteBuffer?.self) { group in
            group.addTask {
                do {
                    return try await body.collect(upTo: Self.maximumBodyBytes)
                } catch {
                    throw Problem(.contentTooLarge, .malformedRequest, "the body must be at most \(Self.maximumBodyBytes / 1024) KiB")
                }
            }
            group.addTask { [bodyTimeout] in
                try await Task.sleep(for: bodyTimeout)
                return nil
            }
            defer { group.cancelAll() }
            return try await group.next() ?? nil
        }
        guard let buffer else { throw Problem(.requestTimeout, .malformedRequest, "the body did not arrive in time") }
        return buffer
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
            timeout: callTimeout
        )
    }

    /// The bearer credential, verified (401, or 429 for an API key over its limit), calling from
    /// an address its tenant allows (TEN-11: 403, audited).
    func authenticate(_ request: Request, _ context: GatewayRequestContext, requestID: String, accepts: Accepts) async throws -> Caller {
        let caller = try await verifiedCaller(request, context, requestID: requestID, accepts: accepts)
        try await allowlists.admit(caller, from: context.clientIP, call: self.context(requestID, request, context, caller: caller))
        return caller
    }

    private func verifiedCaller(_ request: Request, _ context: GatewayRequestContext, requestID: String, accepts: Accepts) async throws -> Caller {
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer "), header.utf8.count < 8192 else {
            throw Problem(.unauthorized, .unauthenticated, "sign in: send Authorization: Bearer <access token or API key>")
        }
        // Until the revocation list is loaded, nothing is let in that might have been revoked.
        guard revocations.isCaughtUp else { throw Problem(.serviceUnavailable, .unavailable, "the gateway is starting: try again shortly") }
        let credential = String(header.dropFirst(7))
        if credential.hasPrefix("rk_") {
            guard accepts == .accessTokenOrAPIKey else {
                throw Problem(.forbidden, .permissionDenied, "API keys cannot do this: sign in as a member")
            }
            return try await apiKeyCaller(credential, self.context(requestID, request, context), record: context.rateLimits)
        }
        do {
            let claims = try await tokens.verify(credential)
            guard let tenant = TenantID(claims.tenant), UUID(uuidString: claims.sub) != nil else { throw TokenError.malformed }
            guard !revocations.isRevoked(.session, tenant: tenant, id: claims.sid) else {
                throw Problem(.unauthorized, .unauthenticated, "the session has ended: sign in again")
            }
            return Caller(credential: .accessToken(claims), tenant: tenant, principal: .user(claims.sub), sessionID: claims.sid)
        } catch let error as TokenError {
            throw Problem(.unauthorized, .unauthenticated, "the access token is not valid: \(error)")
        }
    }

    func apiKeyCaller(_ key: String, _ call: CallContext, record: RateLimitRecord?) async throws -> Caller {
        let verified = try await apiKeys.verify(key, context: call)
        guard let tenant = TenantID(verified.tenantID) else { throw RampartError(.unauthenticated, "the API key is not valid") }
        // KEY-3: each key within its own limit.
        switch await rateLimit.check(policy: "api_key", key: verified.apiKeyID, limit: verified.rateLimitPerMinute, context: call) {
        case .allowed(let decision):
            record?.add(decision)
            return Caller(credential: .apiKey(verified), tenant: tenant, principal: .apiKey(verified.apiKeyID), sessionID: "")
        case .allowedUnchecked:
            return Caller(credential: .apiKey(verified), tenant: tenant, principal: .apiKey(verified.apiKeyID), sessionID: "")
        case .refused(let decision):
            record?.add(decision)
            throw RampartError(
                .rateLimited,
                "this API key is over its limit of \(decision.limit) requests a minute",
                details: ["retry_after_ms": String(decision.retryAfterMs)]
            )
        case .unavailable(let error):
            throw RampartError(.unavailable, "the rate limiter is unavailable: try again shortly (\(error.code.name))")
        }
    }

    /// The tenant a `/v1/tenants/{tenant_id}/…` path names, which must be the caller's.
    func pathTenant(_ context: GatewayRequestContext, _ caller: Caller) throws -> TenantID {
        guard let text = context.parameters.get("tenant_id"), let tenant = TenantID(text), tenant.hex == text else {
            throw Problem(.notFound, .notFound, "no such tenant")
        }
        guard tenant == caller.tenant else { throw Problem(.forbidden, .permissionDenied, "your credentials are for another tenant") }
        return tenant
    }

    func json<Reply: SwiftProtobuf.Message>(_ reply: Reply, status: HTTPResponse.Status = .ok) throws -> Response {
        var options = JSONEncodingOptions()
        options.preserveProtoFieldNames = true
        options.alwaysPrintInt64sAsNumbers = true
        let body: [UInt8] = try reply.jsonUTF8Bytes(options: options)
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    /// A route whose body is the endpoint's request and whose answer is its reply.
    func forward<RequestMessage, Reply>(
        _ endpoint: RPCEndpoint<RequestMessage, Reply>,
        _ request: Request,
        _ context: GatewayRequestContext,
        status: HTTPResponse.Status = .ok,
        signedIn: Bool = false,
        adjust: (inout RequestMessage, Caller?) -> Void = { _, _ in }
    ) async -> Response {
        await respond(request, context) { requestID in
            let caller = signedIn ? try await authenticate(request, context, requestID: requestID, accepts: .accessToken) : nil
            var message = try await decode(request, as: RequestMessage.self)
            adjust(&message, caller)
            let reply = try await rpc.call(endpoint, message, context: self.context(requestID, request, context, caller: caller))
            return try json(reply, status: status)
        }
    }
}
