import Hummingbird
import NIOCore
import RampartModels
import ServiceKit
import TokenKit

/// The request context of the public API. The edge middleware fills it in the request path's
/// order: the request ID, then the client (its address, or the one a trusted proxy forwarded,
/// and its user agent), then the rate-limit record; `AuthenticateMiddleware` adds the caller.
struct GatewayRequestContext: RequestContext, RemoteAddressRequestContext {
    var coreContext: CoreRequestContextStorage
    let remoteAddress: SocketAddress?
    var requestID: String
    var clientIP: String?
    var userAgent: String?
    /// Set by `APIRateLimitMiddleware` for the routes it limits.
    var rateLimits: RateLimitRecord?
    /// Set by `AuthenticateMiddleware`, on the routes behind it.
    var authenticated: Authenticated?
    /// An API call a console page makes in-process (`ConsoleAPI`): the page's own request was
    /// counted by the general limit already, and one page is one request to it.
    var fromConsole = false

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
        requestID = CallContext.newRequestID()
        clientIP = remoteAddress?.ipAddress
    }

    /// The connection's other end: the client, or a proxy in front of the gateway.
    var peerIP: String? { remoteAddress?.ipAddress }

    /// What a service is told of a call made before, or without, authentication.
    func anonymousCall(timeout: Duration) -> CallContext {
        CallContext(requestID: requestID, clientIP: clientIP, userAgent: userAgent, timeout: timeout)
    }
}

/// The caller a credential proved, and the context every service call of the request carries
/// on its behalf (one deadline for the request's calls, counted from authentication).
struct Authenticated: Sendable {
    let caller: Caller
    let call: CallContext
}

/// The context of the routes behind `AuthenticateMiddleware`: the caller is always there.
struct CallerContext: ChildRequestContext {
    var coreContext: CoreRequestContextStorage
    let caller: Caller
    /// What the services are told: the request, the caller's tenant and principal, the client.
    let call: CallContext

    init(context: GatewayRequestContext) throws {
        // The group that makes this context starts with `AuthenticateMiddleware`, which either
        // sets the caller or throws: a route reaching here without one is a wiring fault.
        guard let authenticated = context.authenticated else { throw RampartError(.internal, "a signed-in route without authentication") }
        coreContext = context.coreContext
        caller = authenticated.caller
        call = authenticated.call
    }

    var requestID: String { call.requestID }
    var clientIP: String? { call.clientIP }
}

/// Who is calling: a signed-in user (a verified access token of a live session) or an API key
/// (verified by auth, within its own rate limit).
struct Caller: Sendable {
    enum Credential: Sendable {
        case accessToken(AccessToken)
        case apiKey(Rampart_V1_VerifyApiKeyReply)
    }

    /// Which credentials a route takes. Only people manage sessions, passwords and API keys.
    enum Accepts: Sendable {
        case accessToken, accessTokenOrAPIKey
    }

    var credential: Credential
    var tenant: TenantID
    var principal: Principal
    /// The access token's session; empty for an API key.
    var sessionID: String

    /// PERM-3's flag, from a verified access token (never an API key).
    var isSuperAdmin: Bool {
        if case .accessToken(let claims) = credential { claims.isSuperAdmin } else { false }
    }

    /// A permission check about the caller as its credential presents it: the member, the key
    /// (with its creator and scopes, PERM-2's intersection), or the super-admin flag (PERM-3).
    var permissionQuestion: Rampart_V1_CheckRequest {
        var check = Rampart_V1_CheckRequest()
        check.principal = principal.description
        switch credential {
        case .accessToken(let claims):
            check.superAdmin = claims.isSuperAdmin
        case .apiKey(let key):
            check.apiKeyCreator = Principal.user(key.createdBy).description
            check.apiKeyScopes = key.scopes
        }
        return check
    }
}
