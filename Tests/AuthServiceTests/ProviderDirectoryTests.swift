import GuardedHTTP
import ServiceKit
import ServicesTestSupport
import Synchronization
import Testing

@testable import AuthService

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

@Suite("SSO-1's provider calls: discovery and JWK Set from a real provider, through the SSRF guard")
struct ProviderDirectoryTests {
    static let loopback = [IPNetwork(cidr: "127.0.0.0/8")!]

    /// A directory for `body`, its HTTP clients shut down after (async-http-client requires it).
    func withDirectory(
        allowing networks: [IPNetwork] = loopback,
        clock: TestClock = TestClock(),
        _ body: (ProviderDirectory) async throws -> Void
    ) async throws {
        let http = GuardedHTTPClient(
            destinations: DestinationGuard(policy: AddressPolicy(allowlist: networks)),
            timeoutSeconds: 10,
            retriesConnections: false
        )
        let directory = ProviderDirectory(http: http, logger: quietLogger(), now: { clock.now })
        do {
            try await body(directory)
        } catch {
            await http.shutdown()
            throw error
        }
        await http.shutdown()
    }

    @Test("The provider's document is read and checked: endpoints, algorithms, and a JWK Set with its key")
    func readsDiscovery() async throws {
        let provider = try await MockOpenIDProvider.start()
        defer { provider.stop() }
        try await withDirectory { directory in
            let metadata = try await directory.metadata(issuer: provider.issuer)
            #expect(metadata.issuer == provider.issuer)
            #expect(metadata.authorizationEndpoint == provider.issuer + "/oauth2/authorize")
            #expect(metadata.tokenEndpoint == provider.issuer + "/oauth2/token")
            #expect(metadata.signingAlgorithms == [.rs256])
            let keys = try await directory.keys(metadata)
            #expect(!keys.keys.isEmpty)
        }
    }

    @Test("A provider on a private address is refused unless the operator allowed its network")
    func privateIssuerRefused() async throws {
        let provider = try await MockOpenIDProvider.start()
        defer { provider.stop() }
        try await withDirectory(allowing: []) { directory in
            do {
                _ = try await directory.metadata(issuer: provider.issuer)
                Issue.record("a loopback issuer was called")
            } catch {
                #expect("\(error)".contains("not a public address"), "\(error)")
            }
        }
        // Allowed networks let their own addresses through, and no others.
        try await withDirectory(allowing: [IPNetwork(cidr: "10.0.0.0/8")!]) { directory in
            await #expect(throws: ProviderFailure.self) { try await directory.metadata(issuer: provider.issuer) }
        }
    }

    @Test("A document for another issuer, or none, is refused with what to fix")
    func wrongDocuments() async throws {
        let provider = try await MockOpenIDProvider.start()
        defer { provider.stop() }
        try await withDirectory { directory in try await wrongDocuments(provider, directory) }
    }

    func wrongDocuments(_ provider: MockOpenIDProvider, _ directory: ProviderDirectory) async throws {
        // The same server under another spelling: its document names 127.0.0.1, not 127.1.
        let other = "http://127.1:\(provider.peer.port)"
        do {
            _ = try await directory.metadata(issuer: other)
            Issue.record("a document for another issuer was taken")
        } catch {
            #expect(
                error == .badDocument("the discovery document names the issuer \(provider.issuer.debugDescription), not \(other.debugDescription)")
            )
        }
        do {
            _ = try await directory.metadata(issuer: provider.issuer + "/nothing")
            Issue.record("a missing document was taken")
        } catch {
            #expect(error.description.hasSuffix("answered HTTP 404"), "\(error)")
        }
    }

    @Test("The JWK Set is cached, fetched again for an unknown key at most once every ten seconds")
    func keySetCache() async throws {
        let provider = try await MockOpenIDProvider.start()
        defer { provider.stop() }
        let clock = TestClock()
        try await withDirectory(clock: clock) { directory in try await keySetCache(provider, directory, clock) }
    }

    func keySetCache(_ provider: MockOpenIDProvider, _ directory: ProviderDirectory, _ clock: TestClock) async throws {
        let metadata = try await directory.metadata(issuer: provider.issuer)
        func fetches() throws -> Int {
            try String(contentsOf: provider.peer.log, encoding: .utf8).components(separatedBy: "GET /jwks ").count - 1
        }
        _ = try await directory.keys(metadata)
        _ = try await directory.keys(metadata)
        #expect(try fetches() == 1)
        // A token names a key the set does not have: one fetch, then none for ten seconds.
        clock.advance(seconds: 11)
        _ = try await directory.keys(metadata, refresh: true)
        _ = try await directory.keys(metadata, refresh: true)
        #expect(try fetches() == 2)
        clock.advance(seconds: 11)
        _ = try await directory.keys(metadata, refresh: true)
        #expect(try fetches() == 3)
    }
}

/// A clock the test moves forward.
final class TestClock: Sendable {
    private let instant = Mutex(ContinuousClock.now)
    var now: ContinuousClock.Instant { instant.withLock { $0 } }
    func advance(seconds: Int) { instant.withLock { $0 += .seconds(seconds) } }
}
