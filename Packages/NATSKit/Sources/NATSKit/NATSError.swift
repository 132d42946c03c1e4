import CNATS

/// An error from NATS, turned into Swift at the C boundary.
public struct NATSError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// A `natsStatus` other than the ones named below (its raw value).
        case status(UInt32)
        case timeout
        case noResponders
        case connectionClosed
        case notFound
        case invalidArgument
        /// The JetStream API answered with an error (`err_code` from the server, 0 when unknown).
        case jetStream(errorCode: Int)
        /// A key-value `create` found the key already present.
        case keyExists
        /// A key-value `update` named a revision that is no longer the latest.
        case wrongLastRevision
    }

    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    /// Builds an error from a failed status, with nats.c's thread-local detail when it has one.
    init(status: natsStatus, operation: String) {
        let text = String(cString: natsStatus_GetText(status))
        var detail = ""
        if let last = nats_GetLastError(nil) {
            detail = String(cString: last)
        }
        let message = detail.isEmpty || detail == text ? "\(operation): \(text)" : "\(operation): \(text) (\(detail))"
        switch status {
        case NATS_TIMEOUT: self.init(.timeout, message)
        case NATS_NO_RESPONDERS: self.init(.noResponders, message)
        case NATS_CONNECTION_CLOSED: self.init(.connectionClosed, message)
        case NATS_NOT_FOUND: self.init(.notFound, message)
        case NATS_INVALID_ARG, NATS_INVALID_SUBJECT: self.init(.invalidArgument, message)
        default:
            // nats.c reports a failed compare-and-set only in the text of its last error.
            if detail.contains("wrong last sequence") {
                self.init(.wrongLastRevision, message)
            } else {
                self.init(.status(status.rawValue), message)
            }
        }
    }

    public var description: String { message }
}

/// Throws when a nats.c call did not return `NATS_OK`.
@inline(__always)
func check(_ status: natsStatus, _ operation: @autoclosure () -> String) throws(NATSError) {
    guard status == NATS_OK else {
        throw NATSError(status: status, operation: operation())
    }
}

/// Thrown by nats.c calls that also fill a `jsErrCode`.
@inline(__always)
func check(_ status: natsStatus, _ errorCode: jsErrCode, _ operation: @autoclosure () -> String) throws(NATSError) {
    guard status == NATS_OK else {
        let base = NATSError(status: status, operation: operation())
        if errorCode.rawValue != 0 {
            throw NATSError(.jetStream(errorCode: Int(errorCode.rawValue)), base.message)
        }
        throw base
    }
}

extension NATSError {
    /// Whether `error` says a stream, bucket or consumer does not exist (yet).
    public static func isNotFound(_ error: any Error) -> Bool {
        (error as? NATSError)?.kind == .notFound
    }
}
