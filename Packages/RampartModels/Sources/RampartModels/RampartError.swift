/// The one error type that crosses service boundaries. Its `code` travels on the wire as
/// `Rampart_V1_ErrorCode`; the gateway maps it once to an HTTP status and a problem+json type.
/// `message` must be safe to show to the caller.
public struct RampartError: Error, Sendable, Equatable, CustomStringConvertible {
    public typealias Code = Rampart_V1_ErrorCode

    public var code: Code
    public var message: String
    public var details: [String: String]

    public init(_ code: Code, _ message: String, details: [String: String] = [:]) {
        self.code = code
        self.message = message
        self.details = details
    }

    public init(_ proto: Rampart_V1_Error) {
        self.init(proto.code, proto.message, details: proto.details)
    }

    public func proto(requestID: String? = nil) -> Rampart_V1_Error {
        var error = Rampart_V1_Error()
        error.code = code
        error.message = message
        error.details = details
        error.requestID = requestID ?? ""
        return error
    }

    public var description: String { "\(code.name): \(message)" }

    public static func invalidArgument(_ message: String, field: String? = nil) -> RampartError {
        RampartError(.invalidArgument, message, details: field.map { ["field": $0] } ?? [:])
    }

    /// Every failed field of a request at once: the messages joined, one detail per field, and
    /// `field` naming the first, as every invalid_argument error has.
    public static func invalidFields(_ problems: [(field: String, message: String)]) -> RampartError {
        var details = Dictionary(problems.map { ($0.field, $0.message) }) { earlier, _ in earlier }
        details["field"] = problems.first?.field
        return RampartError(.invalidArgument, problems.map(\.message).joined(separator: "; "), details: details)
    }

    /// AUTH-11: `action` needs proof of the mailbox, and the caller's address is not verified.
    public static func emailUnverified(_ action: String) -> RampartError {
        RampartError(
            .permissionDenied,
            "\(action) needs a verified email address: open the link in the verification mail "
                + "(POST /v1/auth/email/verification/resend sends another), then refresh your token",
            details: ["reason": "email_unverified"]
        )
    }

    /// A tenant that is not there: never created, deleted, or not yet provisioned here.
    public static let noSuchTenant = RampartError(.notFound, "no such tenant")

    public static func internalError() -> RampartError {
        RampartError(.internal, "internal error")
    }
}

extension Rampart_V1_ErrorCode {
    /// The stable wire name (`invalid_argument`), used in the `Rampart-Error` header and in
    /// problem+json types.
    public var name: String {
        switch self {
        case .unspecified: "unspecified"
        case .invalidArgument: "invalid_argument"
        case .malformedRequest: "malformed_request"
        case .missingHeader: "missing_header"
        case .unauthenticated: "unauthenticated"
        case .permissionDenied: "permission_denied"
        case .notFound: "not_found"
        case .alreadyExists: "already_exists"
        case .conflict: "conflict"
        case .failedPrecondition: "failed_precondition"
        case .rateLimited: "rate_limited"
        case .deadlineExceeded: "deadline_exceeded"
        case .unavailable: "unavailable"
        case .internal: "internal"
        case .unknownOperation: "unknown_operation"
        case .UNRECOGNIZED(let value): "unrecognized_\(value)"
        }
    }
}

extension Rampart_V1_Isolation {
    /// IR-1: why an isolation is made, as the audit log keeps it: required, 1 to 500 characters
    /// once trimmed, no control characters.
    public static func reason(_ text: String) throws(RampartError) -> String {
        let reason = text.prefix(600).trimmingWhitespace
        guard (1...500).contains(reason.count), !reason.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw RampartError.invalidArgument("a reason is required: 1 to 500 characters, without control characters", field: "reason")
        }
        return reason
    }
}

/// `catch RampartError.noSuchTenant { … }`: an error that is this very one.
public func ~= (pattern: RampartError, error: any Error) -> Bool {
    (error as? RampartError) == pattern
}

extension Optional {
    /// The value, or `error` when there is none: for a lookup whose miss is the caller's answer.
    public func orThrow(_ error: RampartError) throws(RampartError) -> Wrapped {
        guard let self else { throw error }
        return self
    }
}
