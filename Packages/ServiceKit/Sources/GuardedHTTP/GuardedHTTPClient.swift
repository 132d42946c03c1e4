public import AsyncHTTPClient
public import Logging
import NIOCore
public import NIOHTTP1
public import ServiceKit

/// HTTP to URLs tenants chose (WH-3), for every service that calls them: each call's URL passes
/// the SSRF guard, and the connection goes to the address the guard checked (async-http-client's
/// DNS override, which keeps the name for `Host` and TLS SNI), so no second lookup can answer
/// differently. Redirects are never followed and every call has a deadline. One client per name
/// and address, kept while used, so connections are reused.
public actor GuardedHTTPClient {
    public nonisolated let destinations: DestinationGuard
    private let timeoutSeconds: Int
    private let retriesConnections: Bool
    private var clients: [String: (client: HTTPClient, lastUsed: ContinuousClock.Instant)] = [:]
    static let maximumClients = 256

    /// `retriesConnections`: a refused connection is tried again, with backoff, until the
    /// timeout (async-http-client's default, right for deliveries); off, the call fails at once,
    /// as a person waiting on a sign-in should be told.
    public init(destinations: DestinationGuard, timeoutSeconds: Int, retriesConnections: Bool = true) {
        self.destinations = destinations
        self.timeoutSeconds = timeoutSeconds
        self.retriesConnections = retriesConnections
    }

    /// The client that connects to `address` for `destination`: the caller has had both checked.
    public func client(for destination: Destination, address: IPNetwork) -> HTTPClient {
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
        configuration.connectionPool.retryConnectionEstablishment = retriesConnections
        if destination.address == nil { configuration.dnsOverride = [destination.host: address.address] }
        let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
        clients[key] = (client, .now)
        return client
    }

    public func shutdown() async {
        for (_, entry) in clients { try? await entry.client.shutdown() }
        clients = [:]
    }

    /// One answer, read whole up to `bodyLimit` bytes.
    public struct Answer: Sendable {
        public let status: Int
        public let headers: HTTPHeaders
        public let body: [UInt8]
    }

    public enum Failure: Error, Equatable, CustomStringConvertible {
        /// The guard refused the URL, or what its host resolves to.
        case refused(DestinationError)
        case timedOut(seconds: Int)
        /// The answer's body is longer than the caller takes.
        case tooLarge(limit: Int)
        case unreachable(String)

        public var description: String {
            switch self {
            case .refused(let error): "refused: \(error)"
            case .timedOut(let seconds): "no answer within \(seconds) s"
            case .tooLarge(let limit): "the answer is larger than \(limit / 1024) KiB"
            case .unreachable(let why): "could not connect: \(why)"
            }
        }
    }

    /// `url` checked by the guard and called once, within the timeout; a redirect is answered
    /// as it came (3xx), never followed.
    public func send(
        _ method: HTTPMethod = .GET,
        _ url: String,
        headers: [(String, String)] = [],
        body: [UInt8]? = nil,
        bodyLimit: Int,
        logger: Logger
    ) async throws(Failure) -> Answer {
        let checked: (destination: Destination, address: IPNetwork)
        do {
            checked = try await destinations.check(url)
        } catch {
            throw .refused(error)
        }
        var request = HTTPClientRequest(url: checked.destination.description)
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
        let client = client(for: checked.destination, address: checked.address)
        let deadline = NIODeadline.now() + .seconds(Int64(timeoutSeconds))
        do {
            let response = try await client.execute(request, deadline: deadline, logger: logger)
            var buffer = ByteBuffer()
            for try await chunk in response.body {
                guard buffer.readableBytes + chunk.readableBytes <= bodyLimit else { throw Failure.tooLarge(limit: bodyLimit) }
                guard NIODeadline.now() <= deadline else { throw Failure.timedOut(seconds: timeoutSeconds) }
                var chunk = chunk
                buffer.writeBuffer(&chunk)
            }
            return Answer(status: Int(response.status.code), headers: response.headers, body: Array(buffer: buffer))
        } catch let failure as Failure {
            throw failure
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout || error == .connectTimeout {
            throw .timedOut(seconds: timeoutSeconds)
        } catch {
            throw .unreachable(String(String(describing: error).prefix(200)))
        }
    }
}
