import HTTPTypes
import Hummingbird
import NIOCore
import RampartModels
import ServiceKit

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// An error as `application/problem+json` (RFC 9457, GW-5): a stable `type` per error code, the
/// HTTP status the code maps to (here, once), a message safe to show, the request ID, and the
/// per-field details. Never a stack trace or an internal message. The gateway throws
/// `RampartError`, and HTTP's own conditions (a body too large, too slow, not JSON; no such
/// route) as Hummingbird's `HTTPError`; `ProblemMiddleware` renders both through this.
struct Problem: HTTPResponseError {
    var code: RampartError.Code
    var status: HTTPResponse.Status
    var detail: String
    var details: [String: String]
    var requestID: String
    var headers: HTTPFields = [:]

    init(_ error: RampartError, requestID: String) {
        code = error.code
        status = Self.status(error.code)
        // Internal messages stay in the logs of the service that had them.
        detail = error.code == .internal ? "internal error" : error.message
        details = error.details
        self.requestID = requestID
        if let milliseconds = error.details["retry_after_ms"].flatMap(UInt64.init) {
            headers[.retryAfter] = String(max(1, (milliseconds + 999) / 1000))
        }
        // RFC 9470: a 401 for want of a recent proof says so in the challenge, with the age.
        if error.code == .unauthenticated, error.details["reason"] == RecentProofMiddleware.reason, let maxAge = error.details["max_age"] {
            headers[.wwwAuthenticate] =
                "Bearer error=\"insufficient_user_authentication\", error_description=\"a recent proof is needed\", max_age=\(maxAge)"
        }
    }

    /// HTTP's own refusals, which no service has a code for.
    init(_ error: HTTPError, requestID: String) {
        code =
            switch error.status.code {
            case 404: .notFound
            case 405: .unknownOperation
            case 408, 413, 415: .malformedRequest
            case 400..<500: .invalidArgument
            default: .internal
            }
        status = error.status
        detail =
            switch error.status.code {
            case 404: "no such route"
            case 405: "this route does not take that method"
            case 500...: "internal error"
            default: error.body ?? error.status.reasonPhrase
            }
        details = [:]
        self.requestID = requestID
        headers = error.headers
    }

    static func status(_ code: RampartError.Code) -> HTTPResponse.Status {
        switch code {
        case .invalidArgument, .malformedRequest, .missingHeader: .badRequest
        case .unauthenticated: .unauthorized
        case .permissionDenied: .forbidden
        case .notFound, .unknownOperation: .notFound
        case .alreadyExists, .conflict, .failedPrecondition: .conflict
        case .rateLimited: .tooManyRequests
        case .deadlineExceeded: .gatewayTimeout
        case .unavailable: .serviceUnavailable
        default: .internalServerError
        }
    }

    private struct Body: Encodable {
        let type: String
        let title: String
        let status: Int
        let detail: String
        let requestID: String
        let errors: [String: String]?

        enum CodingKeys: String, CodingKey {
            case type, title, status, detail, errors
            case requestID = "request_id"
        }
    }

    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    func response(from request: Request, context: some RequestContext) throws -> Response {
        response()
    }

    func response() -> Response {
        // The wait before a retry is a header; the rest of the details are the errors.
        let errors = details.filter { $0.key != "retry_after_ms" }
        let body = Body(
            type: "https://rampart.dev/problems/" + code.name,
            title: String(code.name.map { $0 == "_" ? " " : $0 }),
            status: Int(status.code),
            detail: detail,
            requestID: requestID,
            errors: errors.isEmpty ? nil : errors
        )
        // Strings and integers only: encoding cannot fail.
        let bytes = (try? Self.encoder.encode(body)) ?? Data()
        var headers = headers
        headers[.contentType] = "application/problem+json"
        headers[.requestID] = requestID
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}

extension HTTPField.Name {
    static let requestID = Self("X-Request-Id")!
    /// PERM-6: the permissions revision a write returned; presented back on a request, no
    /// decision older than it is used.
    static let consistencyToken = Self("Rampart-Consistency-Token")!
}
