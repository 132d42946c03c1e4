import HTTPTypes
import Hummingbird
import RampartModels
import ServiceKit

/// GW-2: plain HTTP answers every request with a permanent redirect to the same path over HTTPS
/// (308 keeps the method), and serves nothing else.
struct HTTPSRedirectMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext

    /// The advertised HTTPS port, or the one the public listener bound.
    let httpsPort: @Sendable () async -> Int

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let host = request.head.authority.flatMap(Self.hostName) else {
            throw RampartError(.malformedRequest, "send a Host header, or use https:// directly")
        }
        let httpsPort = await httpsPort()
        let port = httpsPort == 443 ? "" : ":\(httpsPort)"
        let path = request.uri.string.hasPrefix("/") ? request.uri.string : "/"
        return Response(status: .permanentRedirect, headers: [.location: "https://\(host)\(port)\(path)"])
    }

    /// The host part of a `Host` header, if it is a plain DNS name or IP literal: whatever else
    /// a client sent does not go into a Location header.
    static func hostName(_ authority: String) -> String? {
        var host = Substring(authority)
        if host.hasPrefix("[") {
            guard let end = host.firstIndex(of: "]") else { return nil }
            host = host[...end]
            let inner = host.dropFirst().dropLast()
            return IPNetwork(address: String(inner)) != nil ? String(host) : nil
        }
        if let colon = host.firstIndex(of: ":") { host = host[..<colon] }
        let allowed = host.utf8.allSatisfy { byte in
            (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x30 && byte <= 0x39) || byte == 0x2D || byte == 0x2E
        }
        return allowed && !host.isEmpty && host.utf8.count <= 253 ? String(host) : nil
    }
}
