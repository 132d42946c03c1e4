import HTTPTypes
import Hummingbird
import ServiceKit

/// Every request's ID: a well-formed incoming `X-Request-Id` (so a trace can start at the
/// client), else a new one; carried to every service called and answered on every response.
struct RequestIDMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        // The context was made with a new ID: a client's well-formed one replaces it.
        if let accepted = request.headers[.requestID].flatMap(Self.accepted) { context.requestID = accepted }
        var response = try await next(request, context)
        response.headers[.requestID] = context.requestID
        return response
    }

    /// A client's request ID, when it is one the services accept.
    static func accepted(_ text: String) -> String? {
        CallContext.isValidRequestID(text) ? text : nil
    }
}
