import AsyncHTTPClient
import NIOCore
import ServiceKit

/// HTTP clients for deliveries. A host name's client is told which checked address to connect
/// to (async-http-client's DNS override, which keeps the name for `Host` and TLS SNI), so one
/// client per name and address; kept while used, so connections are reused.
actor DeliveryClients {
    private let timeoutSeconds: Int
    private var clients: [String: (client: HTTPClient, lastUsed: ContinuousClock.Instant)] = [:]
    static let maximumClients = 256

    init(timeoutSeconds: Int) {
        self.timeoutSeconds = timeoutSeconds
    }

    func client(for destination: Destination, address: IPNetwork) -> HTTPClient {
        let key = destination.address == nil ? "\(destination.host) \(address.address)" : ""
        if let found = clients[key] {
            clients[key]?.lastUsed = .now
            return found.client
        }
        if clients.count >= Self.maximumClients, let oldest = clients.min(by: { $0.value.lastUsed < $1.value.lastUsed }) {
            clients[oldest.key] = nil
            Task { try? await oldest.value.client.shutdown() }
        }
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: .init(connect: .seconds(Int64(timeoutSeconds)), read: .seconds(Int64(timeoutSeconds))),
            connectionPool: .init(idleTimeout: .seconds(30)),
            decompression: .disabled
        )
        configuration.httpVersion = .http1Only
        if destination.address == nil { configuration.dnsOverride = [destination.host: address.address] }
        let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
        clients[key] = (client, .now)
        return client
    }

    func shutdown() async {
        for (_, entry) in clients { try? await entry.client.shutdown() }
        clients = [:]
    }
}
