import NATSKit
public import RampartModels
import SwiftProtobuf

/// Subject → typed async handler. Handlers take a decoded protobuf request and the validated
/// call context and return a protobuf reply, or throw a `RampartError`.
public struct RPCRouter: Sendable {
    struct Route: Sendable {
        var subject: String
        var requirements: CallContext.Requirements
        var handle: @Sendable ([UInt8], CallContext) async throws -> [UInt8]
    }

    private(set) var routes: [Route] = []

    public init() {}

    /// Requests larger than this are refused before decoding: no operation takes more, and
    /// decoding cost grows with size.
    public static let maximumRequestBytes = 256 * 1024

    public mutating func register<Request, Reply>(
        _ endpoint: RPCEndpoint<Request, Reply>,
        requires requirements: CallContext.Requirements = [],
        _ handler: @escaping @Sendable (Request, CallContext) async throws -> Reply
    ) {
        precondition(!routes.contains { $0.subject == endpoint.subject }, "two handlers for \(endpoint.subject)")
        routes.append(
            Route(subject: endpoint.subject, requirements: requirements) { payload, context in
                guard payload.count <= Self.maximumRequestBytes else {
                    throw RampartError(.malformedRequest, "request body exceeds \(Self.maximumRequestBytes) bytes")
                }
                let request: Request
                do {
                    request = try Request(serializedBytes: payload)
                } catch {
                    throw RampartError(.malformedRequest, "request body is not a valid \(Request.protoMessageName)")
                }
                let reply = try await handler(request, context)
                return try reply.serializedBytes()
            }
        )
    }

    public var subjects: [String] { routes.map(\.subject) }
}
