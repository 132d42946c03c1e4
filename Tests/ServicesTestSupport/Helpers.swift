import Foundation
import Logging
import RampartModels
import Testing

/// Critical only, unless RAMPART_TEST_LOG_LEVEL asks for more (e.g. `debug` while chasing a failure).
package func quietLogger() -> Logger {
    var logger = Logger(label: "test.services")
    logger.logLevel = ProcessInfo.processInfo.environment["RAMPART_TEST_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .critical
    return logger
}

/// Polls `condition` until it holds or `limit` passes: for what crosses NATS asynchronously,
/// such as a ban reaching another replica's watch.
package func eventually(within limit: Duration = .seconds(1), _ condition: () async throws -> Bool) async rethrows -> Bool {
    let clock = ContinuousClock()
    let deadline = clock.now + limit
    while clock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return try await condition()
}

/// Expects `body` to fail with `code`; returns the error for a closer look.
@discardableResult
package func expectError(
    _ code: RampartError.Code,
    _ body: () async throws -> Void,
    sourceLocation: SourceLocation = #_sourceLocation
) async -> RampartError? {
    do {
        try await body()
        Issue.record("expected \(code.name)", sourceLocation: sourceLocation)
    } catch let error as RampartError {
        #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
        return error
    } catch {
        Issue.record("expected \(code.name), got \(error)", sourceLocation: sourceLocation)
    }
    return nil
}
