import HTTPTypes
import Hummingbird
import Logging
import RampartModels
import ServiceKit

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Any error of a route or of the middleware after this one, as problem+json (GW-5): a 404 and
/// a 405 included. A fault the client cannot act on is logged with the request ID and answered
/// as an opaque 500.
struct ProblemMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext

    let logger: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as RampartError {
            if error.code == .internal { log("call failed", error, context) }
            return Problem(error, requestID: context.requestID).response()
        } catch let error as HTTPError {
            guard error.status == .notFound, let methods = Self.documentedMethods(request.uri.path) else {
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
}
