public import Hummingbird
import NIOCore
import Prometheus
import RampartModels

/// `/healthz` (the process answers: liveness), `/readyz` (it can serve: readiness, 503 with
/// the failing checks otherwise) and `/metrics` (Prometheus text format).
public func addOpsRoutes<Context: RequestContext>(to router: Router<Context>, health: HealthChecks, includeMetrics: Bool = true) {
    router.get("/healthz") { _, _ in
        Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: #"{"status":"ok"}"#)))
    }
    router.get("/readyz") { _, _ in
        let (ready, results) = await health.evaluate()
        let checks = results.map { #"{"name":"\#($0.name)","healthy":\#($0.healthy)}"# }.joined(separator: ",")
        let body = #"{"status":"\#(ready ? "ready" : "not_ready")","checks":[\#(checks)]}"#
        return Response(
            status: ready ? .ok : .serviceUnavailable,
            headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(string: body))
        )
    }
    if includeMetrics {
        router.get("/metrics") { _, _ in
            Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4"],
                body: .init(byteBuffer: ByteBuffer(bytes: Observability.registry.emitToBuffer()))
            )
        }
    }
}
