import Hummingbird
import RampartModels
import ServiceKit
import ServiceLifecycle

/// The only public REST surface (SPEC section 10).
///
/// So far: the public listener (port 8080 by default) answers `GET /healthz` and `GET /readyz`,
/// and the auth routes of SPEC section 14 (JSON in, problem+json errors out, bearer access tokens
/// verified against auth's JWKS). TLS, security headers, the revocation set, rate limits,
/// permissions and the other routes arrive with the gateway issue. Metrics stay on the ops port,
/// never public.
public enum GatewayService {
    /// `publicPort` learns the bound port (tests listen on port 0).
    public static func descriptor(publicPort: ListeningPort = ListeningPort()) -> ServiceDescriptor {
        ServiceDescriptor(
            name: .gateway,
            services: { context in
                guard let listener = context.configuration.publicHTTP else { return [] }
                return [buildPublicApplication(listener: listener, context: context, publicPort: publicPort)]
            }
        )
    }

    /// The public HTTP application, assembled in one visible place.
    static func buildPublicApplication(
        listener: ServiceConfiguration.HTTP,
        context: ServiceContext,
        publicPort: ListeningPort
    ) -> some ApplicationProtocol {
        let router = Router(context: GatewayRequestContext.self)
        addOpsRoutes(to: router, health: context.health, includeMetrics: false)
        let rpc = RPCClient(connection: context.nats)
        let api = APICaller(rpc: rpc, tokens: AccessTokenCache(rpc: rpc, issuer: "rampart"), logger: context.logger)
        api.addAuthRoutes(to: router)
        return Application(
            router: router,
            configuration: .init(address: .hostname(listener.host, port: listener.port), serverName: nil),
            onServerRunning: { channel in publicPort.set(channel.localAddress?.port ?? 0) },
            logger: context.logger
        )
    }
}
