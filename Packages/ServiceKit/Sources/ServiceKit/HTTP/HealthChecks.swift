import NATSKit
public import RampartModels
import Synchronization

/// Liveness and readiness of one service instance. Ready means: started (migrations applied,
/// handlers listening), not shutting down, and every dependency answering now.
public final class HealthChecks: Sendable {
    public struct Check: Sendable {
        public var name: String
        public var probe: @Sendable () async -> Bool

        public init(name: String, probe: @escaping @Sendable () async -> Bool) {
            self.name = name
            self.probe = probe
        }
    }

    private let state = Mutex((started: false, stopping: false))
    private let checks: Mutex<[Check]>

    public init(checks: [Check]) {
        self.checks = Mutex(checks)
    }

    /// A readiness condition of the service's own (a watch that has caught up, say), added while
    /// it assembles its parts.
    public func add(_ check: Check) {
        checks.withLock { $0.append(check) }
    }

    public func markStarted() {
        state.withLock { $0.started = true }
        started.signal()
    }

    private let started = OneTimeSignal()

    /// Returns once the service has started (migrated, prepared and listening), or the task is
    /// cancelled (shutdown before start): work of its own that needs the migrated database waits
    /// here.
    public func waitUntilStarted() async {
        await started.wait()
    }

    public func markStopping() { state.withLock { $0.stopping = true } }

    public func evaluate() async -> (ready: Bool, results: [Rampart_V1_HealthCheck]) {
        let (started, stopping) = state.withLock { ($0.started, $0.stopping) }
        var results: [Rampart_V1_HealthCheck] = []
        var lifecycle = Rampart_V1_HealthCheck()
        lifecycle.name = "lifecycle"
        lifecycle.healthy = started && !stopping
        lifecycle.detail = stopping ? "shutting down" : (started ? "serving" : "starting")
        results.append(lifecycle)
        let checks = self.checks.withLock { $0 }
        await withTaskGroup(of: Rampart_V1_HealthCheck.self) { group in
            for check in checks {
                group.addTask {
                    var result = Rampart_V1_HealthCheck()
                    result.name = check.name
                    result.healthy = await check.probe()
                    return result
                }
            }
            for await result in group { results.append(result) }
        }
        results.sort { $0.name < $1.name }
        return (results.allSatisfy(\.healthy), results)
    }
}
