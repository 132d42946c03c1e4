import HTTPTypes
import Hummingbird

/// GW-3: the security headers on every response, errors included, and `no-store` unless a
/// route chose its own caching.
struct SecurityHeadersMiddleware<Context: RequestContext>: RouterMiddleware {
    /// An API answers JSON, so the content security policy allows nothing to load.
    static var headers: [(HTTPField.Name, String)] {
        [
            (.strictTransportSecurity, "max-age=63072000; includeSubDomains; preload"),
            (.contentSecurityPolicy, "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"),
            (.xFrameOptions, "DENY"),
            (.xContentTypeOptions, "nosniff"),
            (.referrerPolicy, "no-referrer"),
            (.crossOriginOpenerPolicy, "same-origin"),
            (.crossOriginResourcePolicy, "same-origin"),
        ]
    }

    /// The console's pages (UI-1) load their own stylesheet and scripts, images inline, and post
    /// forms to themselves; nothing inline runs, and no one frames them.
    static var consolePolicy: String {
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response = try await next(request, context)
        for (name, value) in Self.headers { response.headers[name] = value }
        if request.uri.path == "/console" || request.uri.path.hasPrefix("/console/") { response.headers[.contentSecurityPolicy] = Self.consolePolicy }
        if response.headers[.cacheControl] == nil { response.headers[.cacheControl] = "no-store" }
        return response
    }
}

extension HTTPField.Name {
    static let xFrameOptions = Self("X-Frame-Options")!
    static let referrerPolicy = Self("Referrer-Policy")!
    static let crossOriginOpenerPolicy = Self("Cross-Origin-Opener-Policy")!
    static let crossOriginResourcePolicy = Self("Cross-Origin-Resource-Policy")!
}
