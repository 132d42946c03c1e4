public import Logging
import Metrics
public import Prometheus
public import RampartModels
import Synchronization

/// Process-wide logging and metrics. swift-log and swift-metrics accept one bootstrap per
/// process, so this runs once however many services a process hosts (tests host several).
public enum Observability {
    /// The registry `/metrics` renders.
    public static let registry = PrometheusCollectorRegistry()

    private static let bootstrapped = Mutex((logging: false, metrics: false))

    public static func bootstrapLogging(service: ServiceName, level: Logger.Level) {
        let first = bootstrapped.withLock { state in
            defer { state.logging = true }
            return !state.logging
        }
        if first {
            LoggingSystem.bootstrap { label in JSONLogHandler(label: label, service: service.rawValue, level: level) }
        }
    }

    public static func bootstrapMetrics() {
        let first = bootstrapped.withLock { state in
            defer { state.metrics = true }
            return !state.metrics
        }
        if first {
            MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        }
    }
}
