import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import RampartModels
import RateLimitKit
import ServiceKit

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// What every request goes through first (ARCHITECTURE "Request path"): its request ID (a
/// well-formed incoming `X-Request-Id`, else a new one), the client's address (the peer's, or
/// from `X-Forwarded-For` when the peer is a trusted proxy, GW-6), any error turned into
/// problem+json (a 404 included, GW-5), and the security headers on every response (GW-3).
struct EdgeMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext

    let trustedProxies: [IPNetwork]
    let logger: Logger

    /// GW-3. An API answers JSON, so the content security policy allows nothing to load.
    static let securityHeaders: [(HTTPField.Name, String)] = [
        (.strictTransportSecurity, "max-age=63072000; includeSubDomains; preload"),
        (.contentSecurityPolicy, "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"),
        (.xFrameOptions, "DENY"),
        (.xContentTypeOptions, "nosniff"),
        (.referrerPolicy, "no-referrer"),
        (.crossOriginOpenerPolicy, "same-origin"),
        (.crossOriginResourcePolicy, "same-origin"),
    ]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        context.requestID = request.headers[.requestID].flatMap(Self.acceptedRequestID) ?? CallContext.newRequestID()
        context.clientIP = Self.clientIP(peer: context.peerIP, forwardedFor: request.headers[values: .xForwardedFor], trustedProxies: trustedProxies)
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as HTTPError {
            if error.status == .notFound, let methods = Self.documentedMethods(request.uri.path) {
                // A documented path asked with a method it does not take (TRACE included): 405
                // and the methods it does take (RFC 9110), from the OpenAPI document.
                response = Problem(.methodNotAllowed, .unknownOperation, Self.detail(for: .methodNotAllowed)).response(requestID: context.requestID)
                response.headers[.allow] = methods.joined(separator: ", ")
            } else {
                response = Problem(error.status, Self.code(for: error.status), Self.detail(for: error.status)).response(requestID: context.requestID)
            }
        } catch {
            logger.error("request failed", metadata: ["request_id": "\(context.requestID)", "error": "\(loggable(error))"])
            response = Problem(.internalServerError, .internal, "internal error").response(requestID: context.requestID)
        }
        for (name, value) in Self.securityHeaders { response.headers[name] = value }
        if response.headers[.cacheControl] == nil { response.headers[.cacheControl] = "no-store" }
        response.headers[.requestID] = context.requestID
        return response
    }

    /// The methods api/openapi.json documents for the path template `path` matches, if any.
    static func documentedMethods(_ path: String) -> [String]? {
        let segments = path.split(separator: "/", omittingEmptySubsequences: false)
        return documentedRoutes.first { template, _ in
            template.count == segments.count && zip(template, segments).allSatisfy { $0.hasPrefix("{") || $0 == $1 }
        }?.methods
    }

    private static let documentedRoutes: [(template: [Substring], methods: [String])] = {
        struct Document: Decodable {
            let paths: [String: Operations]
        }
        struct Operations: Decodable {
            let methods: [String]
            init(from decoder: any Decoder) throws {
                let verbs = ["get", "put", "post", "delete", "patch"]
                methods = try decoder.container(keyedBy: Key.self).allKeys.map(\.stringValue).filter(verbs.contains).map { $0.uppercased() }.sorted()
            }
        }
        struct Key: CodingKey {
            let stringValue: String
            var intValue: Int? { nil }
            init(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }
        // The embedded document is checked by a test; were it unreadable, 404 stays 404.
        let paths = (try? JSONDecoder().decode(Document.self, from: Data(OpenAPIDocument.json.utf8)))?.paths ?? [:]
        return paths.map { ($0.key.split(separator: "/", omittingEmptySubsequences: false), $0.value.methods) }
    }()

    /// A client's request ID is kept when it is one the services accept, so a trace can start
    /// at the client.
    static func acceptedRequestID(_ text: String) -> String? {
        CallContext.isValidRequestID(text) ? text : nil
    }

    /// The peer, unless it is a trusted proxy: then the address that proxy was given, walking
    /// `X-Forwarded-For` from the right past every trusted hop. A malformed hop stops the walk
    /// at the last address known good; from an untrusted peer the header is ignored.
    static func clientIP(peer: String?, forwardedFor: [String], trustedProxies: [IPNetwork]) -> String? {
        guard var client = peer else { return nil }
        let hops = forwardedFor.flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }
        for hop in hops.reversed() {
            guard let current = IPNetwork(address: client), trustedProxies.contains(where: { $0.contains(current) }) else { break }
            guard IPNetwork(address: hop) != nil else { break }
            client = hop
        }
        return client
    }

    static func code(for status: HTTPResponse.Status) -> RampartError.Code {
        switch status.code {
        case 404: .notFound
        case 405: .unknownOperation
        case 413: .malformedRequest
        case 400..<500: .invalidArgument
        default: .internal
        }
    }

    static func detail(for status: HTTPResponse.Status) -> String {
        switch status.code {
        case 404: "no such route"
        case 405: "this route does not take that method"
        case 500...: "internal error"
        default: status.reasonPhrase
        }
    }
}

extension HTTPField.Name {
    static let xFrameOptions = Self("X-Frame-Options")!
    static let referrerPolicy = Self("Referrer-Policy")!
    static let crossOriginOpenerPolicy = Self("Cross-Origin-Opener-Policy")!
    static let crossOriginResourcePolicy = Self("Cross-Origin-Resource-Policy")!
    static let xForwardedFor = Self("X-Forwarded-For")!
}

extension APICaller {
    /// GW-7: RFC 9116's security.txt, with the disclosure contact from the settings and an
    /// expiry always half a year ahead; and the API's own description.
    func addWellKnownRoutes(to router: Router<GatewayRequestContext>, contact: String, publicURL: String) {
        // The public API's OpenAPI 3.1 document (api/openapi.json).
        let openAPI = ByteBuffer(string: OpenAPIDocument.json)
        router.get("/openapi.json") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: openAPI))
        }
        // IR-3: the disclosure policy (SECURITY.md), which security.txt's Policy: names.
        let policy = ByteBuffer(string: SecurityPolicyDocument.markdown)
        router.get("/security-policy") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/markdown; charset=utf-8"], body: .init(byteBuffer: policy))
        }
        let fields =
            "Contact: \(contact)\nPolicy: \(publicURL)/security-policy\nCanonical: \(publicURL)/.well-known/security.txt\nPreferred-Languages: en\n"
        router.get("/.well-known/security.txt") { _, _ in
            let expires = Date(timeIntervalSinceNow: 182 * 86_400)
            let text = fields + "Expires: \(CSVText.utcTimestamp(milliseconds: Int64(expires.timeIntervalSince1970 * 1000)))\n"
            return Response(status: .ok, headers: [.contentType: "text/plain; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: text)))
        }
    }
}
