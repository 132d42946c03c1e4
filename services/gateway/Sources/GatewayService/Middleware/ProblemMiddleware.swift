import HTTPTypes
import Hummingbird
import Logging
import RampartModels
import ServiceKit

/// Any error of a route or of the middleware after this one, as problem+json (GW-5): a 404 and
/// a 405 included. A fault the client cannot act on is logged with the request ID and answered
/// as an opaque 500.
struct ProblemMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext

    let logger: Logger
    /// The methods each path takes, for a 405.
    let document: OpenAPIDocument

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as RampartError {
            if error.code == .internal { log("call failed", error, context) }
            return Problem(error, requestID: context.requestID).response()
        } catch let error as HTTPError {
            guard error.status == .notFound, let methods = document.methods(documentedFor: request.uri.path) else {
                return Problem(error, requestID: context.requestID).response()
            }
            // A documented path asked with a method it does not take (TRACE included): 405 and
            // the methods it does take (RFC 9110), from the OpenAPI document.
            return Problem(HTTPError(.methodNotAllowed, headers: [.allow: methods.joined(separator: ", ")]), requestID: context.requestID).response()
        } catch let problem as Problem {
            return problem.response()
        } catch {
            log("request failed", error, context)
            return Problem(RampartError.internalError(), requestID: context.requestID).response()
        }
    }

    private func log(_ message: Logger.Message, _ error: any Error, _ context: Context) {
        logger.error(message, metadata: ["request_id": "\(context.requestID)", "error": "\(loggable(error))"])
    }
}
