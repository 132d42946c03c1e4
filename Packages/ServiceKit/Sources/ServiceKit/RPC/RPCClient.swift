public import NATSKit
public import RampartModels
import SwiftProtobuf

/// Calls another service over NATS and turns every failure into a `RampartError`: the error the
/// service replied with, `unavailable` when no replica listens, `deadline_exceeded` on timeout.
/// Its own messages name the service, never the subject nor the NATS client's text: the gateway
/// shows a message to whoever called it (issue 26, finding 13).
public struct RPCClient: Sendable {
    public let connection: NATSConnection

    public init(connection: NATSConnection) {
        self.connection = connection
    }

    public func call<Request, Reply>(_ endpoint: RPCEndpoint<Request, Reply>, _ request: Request, context: CallContext) async throws -> Reply {
        let subject = endpoint.subject
        let timeout = context.remaining
        guard timeout > .zero else { throw RampartError(.deadlineExceeded, "deadline passed before the call") }
        let reply: NATSMessage
        do {
            reply = try await connection.request(try request.serializedBytes(), to: subject, headers: context.headers, timeout: timeout)
        } catch let error as NATSError {
            switch error.kind {
            case .noResponders: throw RampartError(.unavailable, "the \(Self.service(of: subject)) service is not answering: try again shortly")
            case .timeout: throw RampartError(.deadlineExceeded, "the \(Self.service(of: subject)) service did not answer in time")
            default: throw RampartError(.unavailable, "the \(Self.service(of: subject)) service cannot be reached: try again shortly")
            }
        }
        if reply.headers[CallHeader.error] != nil {
            guard let error = try? Rampart_V1_Error(serializedBytes: reply.payload) else {
                throw RampartError(.internal, "\(subject) replied with an unreadable error")
            }
            throw RampartError(error)
        }
        do {
            return try Reply(serializedBytes: reply.payload)
        } catch {
            throw RampartError(.internal, "\(subject) replied with an unreadable \(Reply.protoMessageName)")
        }
    }

    /// `auth` of `rampart.v1.auth.login`; "needed" for a subject of another shape.
    static func service(of subject: String) -> String {
        let parts = subject.split(separator: ".")
        return parts.count >= 4 && parts[0] == "rampart" ? String(parts[2]) : "needed"
    }
}
