/// What a test starts and must stop before it ends: clusters, services, gateways.
package protocol Stoppable {
    func stop() async
}

/// `body`, then `resource` stopped, awaited whether `body` returned or threw: no test's servers
/// outlive it into the next test, and a stop that hangs shows in the test that caused it.
package func stopping<Resource: Stoppable, Result>(_ resource: Resource, _ body: () async throws -> Result) async throws -> Result {
    do {
        let result = try await body()
        await resource.stop()
        return result
    } catch {
        await resource.stop()
        throw error
    }
}

extension TenantsCluster: Stoppable {}
extension RunningService: Stoppable {}
