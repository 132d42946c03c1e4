import HTTPTypes
import Hummingbird
import RampartModels
import ServiceKit

/// Who the client is, as far as the network says (GW-6): the peer's address, or the one a
/// trusted proxy forwarded in `X-Forwarded-For`; and its user agent, for the audit trail.
struct ClientIPMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext

    let trustedProxies: [IPNetwork]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        context.clientIP = Self.clientIP(peer: context.peerIP, forwardedFor: request.headers[values: .xForwardedFor], trustedProxies: trustedProxies)
        context.userAgent = request.headers[.userAgent].map { String($0.prefix(512)) }
        return try await next(request, context)
    }

    /// The peer, unless it is a trusted proxy: then the address that proxy was given, walking
    /// `X-Forwarded-For` from the right past every trusted hop. A malformed hop stops the walk
    /// at the last address known good; from an untrusted peer the header is ignored.
    static func clientIP(peer: String?, forwardedFor: [String], trustedProxies: [IPNetwork]) -> String? {
        guard var client = peer else { return nil }
        let hops = forwardedFor.flatMap { $0.split(separator: ",") }.map { $0.trimmingWhitespace }
        for hop in hops.reversed() {
            guard let current = IPNetwork(address: client), trustedProxies.contains(where: { $0.contains(current) }) else { break }
            guard IPNetwork(address: hop) != nil else { break }
            client = hop
        }
        return client
    }
}

extension HTTPField.Name {
    static let xForwardedFor = Self("X-Forwarded-For")!
}
