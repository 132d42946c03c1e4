public import Logging
import ServiceLifecycle

/// Runs `body` again and again until graceful shutdown (or cancellation), pausing after each
/// failure with a backoff from 100 ms to 5 s: for consumers and watches that must outlive a NATS
/// or database restart. Failures `isExpected` says are normal are logged at debug level only.
public func repeatUntilShutdown(
    _ what: String,
    logger: Logger,
    isExpected: @escaping @Sendable (any Error) -> Bool = { _ in false },
    _ body: @escaping @Sendable () async throws -> Void
) async {
    await cancelWhenGracefulShutdown {
        var pause = Duration.milliseconds(100)
        while !Task.isCancelled {
            do {
                try await body()
                pause = .milliseconds(100)
            } catch {
                if Task.isCancelled { return }
                if isExpected(error) {
                    logger.debug("\(what) waiting", metadata: ["error": "\(loggable(error))"])
                } else {
                    logger.warning("\(what) interrupted, retrying", metadata: ["error": "\(loggable(error))"])
                }
                try? await Task.sleep(for: pause)
                pause = min(pause * 2, .seconds(5))
            }
        }
    }
}

/// Runs `body` every `interval`, from when the service has started (its migrations applied)
/// until shutdown; a failed run is logged and retried with backoff, then the schedule resumes.
public func repeatEvery(
    _ interval: Duration,
    _ what: String,
    health: HealthChecks,
    logger: Logger,
    _ body: @escaping @Sendable () async throws -> Void
) async {
    await repeatUntilShutdown(what, logger: logger) {
        await health.waitUntilStarted()
        while !Task.isCancelled {
            try await body()
            try await Task.sleep(for: interval)
        }
    }
}
