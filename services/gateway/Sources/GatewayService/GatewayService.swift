import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import RampartModels
import RateLimitKit
public import ServiceKit
import ServiceLifecycle
import TokenKit

/// The only public REST surface (SPEC section 10): the routes of SPEC section 14 on the public
/// listener (8080 by default; TLS when a certificate is configured, with plain HTTP redirected),
/// each request through the edge (request ID, client IP, security headers, problem+json), the
/// caller's credential, the tenant's IP allowlist, the rate limits and the route's permission,
/// then a NATS call to the owning service. Metrics stay on the ops port, never public.
public enum GatewayService {
    /// `publicPort` learns the bound port (tests listen on port 0).
    public static func descriptor(
        settings: GatewaySettings = GatewaySettings(),
        publicPort: ListeningPort = ListeningPort(),
        redirectPort: ListeningPort = ListeningPort()
    ) -> ServiceDescriptor {
        ServiceDescriptor(name: .gateway) { context in
            try await build(context, settings: settings, publicPort: publicPort, redirectPort: redirectPort)
        }
    }

    static func build(
        _ context: ServiceContext,
        settings: GatewaySettings,
        publicPort: ListeningPort,
        redirectPort: ListeningPort
    ) async throws -> ServiceParts {
        // The gateway records refusals (IP allowlist): not ready before audit's stream exists.
        try await context.audit.requireStream()
        guard let listener = context.configuration.publicHTTP else { return ServiceParts() }
        let document = try OpenAPIDocument.bundled()
        let pages = try await ConsolePages.load()
        let revocations = RevocationList(connection: context.nats, logger: context.logger)
        let permissions = PermissionChecker(rpc: RPCClient(connection: context.nats), connection: context.nats, logger: context.logger)
        var services: [any Service] = [
            revocations,
            permissions,
            try buildPublicApplication(
                listener: listener,
                context: context,
                settings: settings,
                revocations: revocations,
                permissions: permissions,
                document: document,
                pages: pages,
                publicPort: publicPort
            ),
        ]
        if let tls = settings.tls {
            services.append(
                buildRedirectApplication(
                    listener: listener,
                    tls: tls,
                    settings: settings,
                    context: context,
                    document: document,
                    publicPort: publicPort,
                    port: redirectPort
                )
            )
        }
        // Credentials are refused with 503 until the revocations are read: not ready till then.
        // Added last, once nothing here can throw: a retried build must not leave the check of
        // a list that never runs.
        context.health.add(HealthChecks.Check(name: "revocations") { revocations.isCaughtUp })
        return ServiceParts(services: services)
    }

    /// The public HTTP application, in the request path's order (ARCHITECTURE): the edge's
    /// middleware on every request, then the route areas, each on the groups that authenticate
    /// the caller, check the path's tenant and the allowlist (`RouteScopes`).
    static func buildPublicApplication(
        listener: ServiceConfiguration.HTTP,
        context: ServiceContext,
        settings: GatewaySettings,
        revocations: RevocationList,
        permissions: PermissionChecker,
        document: OpenAPIDocument,
        pages: ConsolePages,
        publicPort: ListeningPort
    ) throws -> some ApplicationProtocol {
        // One client, so one batcher gathers every check of this replica. Only the general API
        // policy may fail open: each key's own limit (api_key) never does.
        let rateLimit = RateLimitClient(connection: context.nats, failOpen: settings.apiLimitFailsOpen ? [APIRateLimitMiddleware.policy] : [])
        let router = Router(context: GatewayRequestContext.self)
        router.addMiddleware {
            SecurityHeadersMiddleware()
            RequestIDMiddleware()
            ClientIPMiddleware(trustedProxies: settings.trustedProxies)
            // Outside the problem rendering: a refusal is a response, and carries the fields.
            APIRateLimitMiddleware(rateLimit: rateLimit)
            ProblemMiddleware(logger: context.logger, document: document)
        }
        addOpsRoutes(to: router, health: context.health, includeMetrics: false)

        let rpc = RPCClient(connection: context.nats)
        let calls = ServiceCalls(rpc: rpc, bodyTimeout: .seconds(settings.bodySeconds), callTimeout: .seconds(settings.callTimeoutSeconds))
        let tokens = AccessTokenCache(rpc: rpc, issuer: settings.issuer, leewaySeconds: Int64(settings.clockLeewaySeconds))
        let authenticator = Authenticator(
            tokens: tokens,
            apiKeys: APIKeyCache(rpc: rpc, revocations: revocations, lifetime: .seconds(settings.apiKeyCacheSeconds)),
            revocations: revocations,
            rateLimit: rateLimit,
            callTimeout: calls.callTimeout
        )
        let allowlists = TenantAllowlists(rpc: rpc, audit: context.audit, lifetime: .seconds(settings.allowlistCacheSeconds), logger: context.logger)
        let scopes = RouteScopes(
            router: router,
            authenticator: authenticator,
            allowlists: allowlists,
            permissions: permissions,
            stepUpSeconds: Int64(settings.stepUpSeconds)
        )
        SignInRoutes(calls: calls, authenticator: authenticator, allowlists: allowlists, tokens: tokens).add(to: router)
        AccountRoutes(calls: calls).add(to: scopes)
        APIKeyRoutes(calls: calls).add(to: scopes)
        TenantRoutes(calls: calls).add(to: scopes)
        MemberRoutes(calls: calls).add(to: scopes)
        PermissionRoutes(calls: calls, permissions: permissions).add(to: scopes)
        AllowlistRoutes(calls: calls, allowlists: allowlists).add(to: scopes)
        AuditRoutes(calls: calls).add(to: scopes)
        WebhookRoutes(calls: calls).add(to: scopes)
        SSORoutes(calls: calls).add(to: scopes)
        let ssoCookie = BrowserCookie("rampart_sso", publicURL: settings.publicURL)
        if !ssoCookie.secure {
            context.logger.warning(
                "plain HTTP on loopback: the SSO sign-in and console cookies go without Secure and the __Host- prefix (RAMPART_GATEWAY_PUBLIC_URL)",
                metadata: ["public_url": "\(settings.publicURL)"]
            )
        }
        let api = ConsoleAPI()
        let console = ConsoleRoutes(
            calls: calls,
            api: api,
            permissions: permissions,
            recentProof: scopes.recentProof("This change"),
            authenticator: authenticator,
            allowlists: allowlists,
            pages: pages,
            cookies: ConsoleCookies(publicURL: settings.publicURL)
        )
        console.add(to: router)
        SecurityPages(console: console).add(to: router)
        APIKeyPages(console: console).add(to: router)
        AccountPages(console: console).add(to: router)
        MemberPages(console: console).add(to: router)
        OrganizationPages(console: console).add(to: router)
        AuditPages(console: console).add(to: router)
        WebhookPages(console: console).add(to: router)
        SSOPages(console: console).add(to: router)
        SSOSignInRoutes(calls: calls, cookie: ssoCookie, console: console).add(to: scopes)
        InboundRoutes(calls: calls).add(to: router)
        AdminRoutes(calls: calls).add(to: scopes)
        WellKnownRoutes(contact: settings.securityContact, publicURL: settings.publicURL, document: document).add(to: router)

        // Slow clients (slowloris): a connection that sends nothing for the idle time, even in the
        // middle of a request's head or body, is closed; a body must be complete in its own time.
        let http1 = HTTPServerBuilder.http1(configuration: .init(idleTimeout: .seconds(Int64(settings.idleTimeoutSeconds))))
        let responder = router.buildResponder()
        api.connect(responder)
        return Application(
            responder: responder,
            server: try settings.tls.map { try .tls(http1, tlsConfiguration: try $0.configuration()) } ?? http1,
            configuration: .init(address: .hostname(listener.host, port: listener.port), serverName: nil),
            onServerRunning: { channel in publicPort.set(channel.localAddress?.port ?? 0) },
            logger: context.logger
        )
    }
}

extension GatewayService {
    /// GW-2: with TLS on, plain HTTP on the redirect port only points at HTTPS.
    static func buildRedirectApplication(
        listener: ServiceConfiguration.HTTP,
        tls: GatewayTLS,
        settings: GatewaySettings,
        context: ServiceContext,
        document: OpenAPIDocument,
        publicPort: ListeningPort,
        port: ListeningPort
    ) -> some ApplicationProtocol {
        let router = Router(context: GatewayRequestContext.self)
        router.addMiddleware {
            SecurityHeadersMiddleware()
            RequestIDMiddleware()
            ClientIPMiddleware(trustedProxies: settings.trustedProxies)
            ProblemMiddleware(logger: context.logger, document: document)
        }
        let advertised = tls.advertisedPort
        router.add(middleware: HTTPSRedirectMiddleware { if let advertised { advertised } else { await publicPort.wait() } })
        // No routes: every request falls through to the not-found responder, which the
        // middleware wraps.
        return Application(
            router: router,
            server: .http1(configuration: .init(idleTimeout: .seconds(Int64(settings.idleTimeoutSeconds)))),
            configuration: .init(address: .hostname(listener.host, port: tls.redirectPort), serverName: nil),
            onServerRunning: { channel in port.set(channel.localAddress?.port ?? 0) },
            logger: context.logger
        )
    }
}
