import Hummingbird
import RampartModels
import ServiceKit
import ServiceLifecycle

/// The only public REST surface (SPEC section 10).
///
/// Foundation only so far: the public listener (port 8080 by default) answers `GET /healthz`
/// and `GET /readyz`; the `/v1` API, TLS, security headers, authentication and the rest of the
/// request path arrive with the gateway issue. Metrics stay on the ops port, never public.
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
        let router = Router()
        addOpsRoutes(to: router, health: context.health, includeMetrics: false)
        return Application(
            router: router,
            configuration: .init(address: .hostname(listener.host, port: listener.port), serverName: nil),
            onServerRunning: { channel in publicPort.set(channel.localAddress?.port ?? 0) },
            logger: context.logger
        )
    }
}
