import RampartModels
import ServiceKit
import TestSupport
import Testing

@Suite("OPS-3 health, readiness and metrics")
struct HealthTests {
    @Test("/healthz, /readyz and /metrics answer; health over NATS names the instance")
    func endpoints() async throws {
        let nats = try await NATSServer.start()
        let service = try await ServiceRuntime.assemble(
            probeService(calls: CallCounter()),
            configuration: try await testConfiguration(.permissions, nats: nats),
            logger: quietLogger()
        )
        try await whileRunning(service) {
            try await waitUntilReady(service)
            let port = await service.opsListeningPort()
            #expect(try await httpGet(port: port, path: "/healthz").status == 200)
            let ready = try await httpGet(port: port, path: "/readyz")
            #expect(ready.status == 200)
            #expect(ready.body.contains(#""name":"database","healthy":true"#))
            #expect(ready.body.contains(#""name":"nats","healthy":true"#))

            let health = try await RPCClient(connection: service.context.nats).call(
                Subjects.health(.permissions),
                Rampart_V1_HealthRequest(),
                context: CallContext()
            )
            #expect(health.service == "permissions")
            #expect(health.healthy)
            #expect(health.instanceID == "permissions-test")

            let metrics = try await httpGet(port: port, path: "/metrics")
            #expect(metrics.status == 200)
            #expect(metrics.body.contains("rampart_rpc_requests_total"))
            #expect(metrics.body.contains(#"rampart_service_info{service="permissions",version="0.1.0"} 1"#))
        }
    }

    @Test("/readyz is 503 while the database is unreachable, and names it")
    func notReadyWithoutDatabase() async throws {
        let nats = try await NATSServer.start()
        var configuration = try await testConfiguration(.permissions, nats: nats)
        configuration.postgres?.port = Ports.free()  // nothing listens there
        let service = try await ServiceRuntime.assemble(probeService(calls: CallCounter()), configuration: configuration, logger: quietLogger())
        try await whileRunning(service) {
            let port = await service.opsListeningPort()
            #expect(try await httpGet(port: port, path: "/healthz").status == 200)  // alive, just not ready
            let ready = try await httpGet(port: port, path: "/readyz")
            #expect(ready.status == 503)
            #expect(ready.body.contains(#""name":"database","healthy":false"#))
        }
    }
}
