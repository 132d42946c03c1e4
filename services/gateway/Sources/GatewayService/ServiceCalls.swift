import HTTPTypes
import Hummingbird
import NIOCore
import RampartModels
import ServiceKit
import SwiftProtobuf

/// How a route reaches the service that owns its data: a JSON body decoded into the operation's
/// request (snake_case field names, at most 64 KiB, unknown fields and wrong types refused), the
/// NATS call, and the reply encoded back as JSON.
struct ServiceCalls: Sendable {
    let rpc: RPCClient
    /// How long a request body may take to arrive in full.
    let bodyTimeout: Duration
    /// How long a service has to answer a call made without a caller (a signed-in caller's
    /// calls share the deadline set at authentication).
    let callTimeout: Duration

    static let maximumBodyBytes = 64 * 1024

    /// The call, as the signed-in caller.
    func call<Message, Reply>(_ endpoint: RPCEndpoint<Message, Reply>, _ message: Message, _ context: CallerContext) async throws -> Reply {
        try await rpc.call(endpoint, message, context: context.call)
    }

    /// The call, for a route open to anyone (sign-in, registration, a provider's event).
    func call<Message, Reply>(
        _ endpoint: RPCEndpoint<Message, Reply>,
        _ message: Message,
        _ context: GatewayRequestContext
    ) async throws -> Reply {
        try await rpc.call(endpoint, message, context: context.anonymousCall(timeout: callTimeout))
    }

    /// A route whose body is the operation's request and whose answer is its reply.
    func forward<Message, Reply>(
        _ endpoint: RPCEndpoint<Message, Reply>,
        _ request: Request,
        _ context: GatewayRequestContext,
        status: HTTPResponse.Status = .ok
    ) async throws -> Response {
        try .json(try await call(endpoint, try await message(request), context), status: status)
    }

    /// As `forward`, for the signed-in caller; `adjust` adds what the credential says.
    func forward<Message, Reply>(
        _ endpoint: RPCEndpoint<Message, Reply>,
        _ request: Request,
        _ context: CallerContext,
        status: HTTPResponse.Status = .ok,
        adjust: (inout Message, Caller) -> Void = { _, _ in }
    ) async throws -> Response {
        var message = try await message(request, as: Message.self)
        adjust(&message, context.caller)
        return try .json(try await call(endpoint, message, context), status: status)
    }

    /// The body as `Message`, from JSON.
    func message<Message: SwiftProtobuf.Message>(_ request: Request, as _: Message.Type = Message.self) async throws -> Message {
        let buffer = try await jsonBody(request)
        do {
            var options = JSONDecodingOptions()
            options.messageDepthLimit = 16
            return try Message(jsonUTF8Bytes: Array(buffer: buffer), options: options)
        } catch {
            throw RampartError(.malformedRequest, "the body is not the JSON this route takes: \(Self.describe(error))")
        }
    }

    /// The body's bytes as sent, once it is declared JSON, complete in time and within the limit.
    func jsonBody(_ request: Request) async throws -> ByteBuffer {
        guard request.headers[.contentType]?.lowercased().hasPrefix("application/json") == true else {
            throw HTTPError(.unsupportedMediaType, message: "send the body as application/json")
        }
        let body = request.body
        let buffer: ByteBuffer? = try await withThrowingTaskGroup(of: ByteBuffer?.self) { group in
            group.addTask {
                do {
                    return try await body.collect(upTo: Self.maximumBodyBytes)
                } catch {
                    throw HTTPError(.contentTooLarge, message: "the body must be at most \(Self.maximumBodyBytes / 1024) KiB")
                }
            }
            group.addTask { [bodyTimeout] in
                try await Task.sleep(for: bodyTimeout)
                return nil
            }
            defer { group.cancelAll() }
            return try await group.next() ?? nil
        }
        guard let buffer else { throw HTTPError(.requestTimeout, message: "the body did not arrive in time") }
        return buffer
    }

    static func describe(_ error: any Error) -> String {
        switch error {
        case JSONDecodingError.unknownField(let name): "unknown field \(name.prefix(64).debugDescription)"
        case JSONDecodingError.malformedString: "a string is not valid UTF-8"
        case is JSONDecodingError: "malformed JSON or a field of the wrong type"
        default: "malformed JSON"
        }
    }
}

extension Response {
    /// `message` in proto3's JSON mapping, with the field names of the .proto (snake_case) and
    /// 64-bit integers as numbers, as api/openapi.json describes them.
    static func json(_ message: some SwiftProtobuf.Message, status: HTTPResponse.Status = .ok) throws -> Response {
        var options = JSONEncodingOptions()
        options.preserveProtoFieldNames = true
        options.alwaysPrintInt64sAsNumbers = true
        let body: [UInt8] = try message.jsonUTF8Bytes(options: options)
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}
