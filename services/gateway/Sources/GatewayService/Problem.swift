import HTTPTypes
import Hummingbird
import NIOCore
import RampartModels
import ServiceKit

/// Errors as `application/problem+json` (RFC 9457, GW-5): a stable `type` per error code, the
/// HTTP status it maps to once, a message safe to show, the request ID, and per-field details.
/// Never a stack trace or an internal message.
struct Problem: Error {
    var code: RampartError.Code
    var status: HTTPResponse.Status
    var detail: String
    var fields: [String: String]
    var retryAfterSeconds: UInt64?
    /// `WWW-Authenticate`, for a 401 that tells the client what would do (RFC 9470's step-up).
    var challenge: String?

    init(_ error: RampartError) {
        code = error.code
        status = Self.status(error.code)
        // Internal messages stay in the logs of the service that had them.
        detail = error.code == .internal ? "internal error" : error.message
        fields = error.details
        retryAfterSeconds = error.details["retry_after_ms"].flatMap(UInt64.init).map { max(1, ($0 + 999) / 1000) }
    }

    init(_ status: HTTPResponse.Status, _ code: RampartError.Code, _ detail: String) {
        self.code = code
        self.status = status
        self.detail = detail
        fields = [:]
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

    func response(requestID: String) -> Response {
        var body =
            "{\"type\":\(JSONText.quote("https://rampart.dev/problems/" + code.name)),\"title\":\(JSONText.quote(code.name.replacingOccurrences(of: "_", with: " ")))"
        body += ",\"status\":\(status.code),\"detail\":\(JSONText.quote(detail)),\"request_id\":\(JSONText.quote(requestID))"
        let visible = fields.filter { $0.key != "retry_after_ms" }
        if !visible.isEmpty {
            body +=
                ",\"errors\":{"
                + visible.sorted { $0.key < $1.key }.map { "\(JSONText.quote($0.key)):\(JSONText.quote($0.value))" }.joined(separator: ",") + "}"
        }
        body += "}"
        var headers: HTTPFields = [.contentType: "application/problem+json", .requestID: requestID]
        if let retryAfterSeconds { headers[.retryAfter] = String(retryAfterSeconds) }
        if let challenge { headers[.wwwAuthenticate] = challenge }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
    }
}

extension HTTPField.Name {
    static let requestID = Self("X-Request-Id")!
    /// PERM-6: the permissions revision a write returned; presented back on a request, no
    /// decision older than it is used.
    static let consistencyToken = Self("Rampart-Consistency-Token")!
}
