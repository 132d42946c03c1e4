// JSONSerialization, for a problem.
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import RampartModels
import ServiceKit
import SwiftProtobuf
import Synchronization

/// The REST API, as the console calls it: in-process, through the gateway's own router, so a
/// page's call meets the same authentication, tenant and allowlist checks, permissions,
/// step-up and rate limits as any client's. The console never goes around them.
final class ConsoleAPI: Sendable {
    private let responder = Mutex<(any HTTPResponder<GatewayRequestContext>)?>(nil)

    /// The router's responder, once it is built (it holds the console's routes too).
    func connect(_ responder: any HTTPResponder<GatewayRequestContext>) {
        self.responder.withLock { $0 = responder }
    }

    /// `method path` with `body` as JSON, as the holder of `accessToken` (without one, as anyone),
    /// from the client of `request`; the reply decoded, or the API's refusal thrown as a
    /// `ConsoleRefusal`.
    func call<Reply: SwiftProtobuf.Message>(
        _ method: HTTPRequest.Method,
        _ path: String,
        _ body: (any SwiftProtobuf.Message)? = nil,
        as _: Reply.Type = Reply.self,
        accessToken: String?,
        request: Request,
        context: GatewayRequestContext
    ) async throws -> Reply {
        var json: [UInt8]?
        if let body {
            var options = JSONEncodingOptions()
            options.preserveProtoFieldNames = true
            json = try body.jsonUTF8Bytes(options: options)
        }
        let response = try await respond(method, path, json: json, accessToken: accessToken, request: request, context: context)
        let bytes = try await Self.bytes(of: response)
        guard (200..<300).contains(response.status.code) else { throw ConsoleRefusal(status: response.status, problem: bytes) }
        var options = JSONDecodingOptions()
        options.ignoreUnknownFields = true
        return bytes.isEmpty ? Reply() : try Reply(jsonUTF8Bytes: bytes, options: options)
    }

    /// A GET's answer as the API gives it, for the browser to keep as it comes (an export): its
    /// status, type, disposition and body, streamed; or the refusal, thrown.
    func download(_ path: String, accessToken: String, request: Request, context: GatewayRequestContext) async throws -> Response {
        let response = try await respond(.get, path, json: nil, accessToken: accessToken, request: request, context: context)
        guard (200..<300).contains(response.status.code) else {
            throw ConsoleRefusal(status: response.status, problem: try await Self.bytes(of: response))
        }
        var answer = Response(status: response.status, body: response.body)
        for name in [HTTPField.Name.contentType, .contentDisposition] { answer.headers[name] = response.headers[name] }
        return answer
    }

    /// The request through the router, as the API's client: the console's address (as a
    /// trusted proxy forwarded it) and user agent, its request ID.
    private func respond(
        _ method: HTTPRequest.Method,
        _ path: String,
        json: [UInt8]?,
        accessToken: String?,
        request: Request,
        context: GatewayRequestContext
    ) async throws -> Response {
        guard let responder = responder.withLock({ $0 }) else { throw RampartError(.unavailable, "the console is starting: try again shortly") }
        var headers: HTTPFields = [.requestID: context.requestID]
        if let accessToken { headers[.authorization] = "Bearer \(accessToken)" }
        for name in [HTTPField.Name.userAgent, .xForwardedFor] { if let value = request.headers[name] { headers[name] = value } }
        if json != nil { headers[.contentType] = "application/json" }
        var inner = context
        inner.authenticated = nil
        inner.rateLimits = nil
        inner.fromConsole = true
        let head = HTTPRequest(method: method, scheme: nil, authority: nil, path: path, headerFields: headers)
        return try await responder.respond(to: Request(head: head, body: .init(buffer: ByteBuffer(bytes: json ?? []))), context: inner)
    }

    private static func bytes(of response: Response) async throws -> [UInt8] {
        let collector = BodyCollector()
        try await response.body.write(collector.writer)
        return collector.bytes()
    }
}

/// A refusal of the REST API, as its problem+json said it: the detail, and the `errors`
/// (the field concerned, the reason).
struct ConsoleRefusal: Error {
    let status: HTTPResponse.Status
    let detail: String
    let errors: [String: String]

    init(status: HTTPResponse.Status, detail: String, errors: [String: String]) {
        self.status = status
        self.detail = detail
        self.errors = errors
    }

    init(status: HTTPResponse.Status, problem: [UInt8]) {
        self.status = status
        let object = (try? JSONSerialization.jsonObject(with: Data(problem))) as? [String: Any]
        detail = object?["detail"] as? String ?? object?["title"] as? String ?? "the request was refused (\(status.code))"
        errors = (object?["errors"] as? [String: Any])?.compactMapValues { $0 as? String } ?? [:]
    }

    var reason: String? { errors["reason"] }

    /// What a page shows of it: each of `fields` the problem names, next to that field
    /// (`error_<field>`); else the detail above the form (`problem`).
    func shown(_ fields: [String]) -> [String: Any] {
        var values: [String: Any] = [:]
        for field in fields {
            if let message = errors[field] {
                values["error_" + field] = message
            } else if errors["field"] == field {
                values["error_" + field] = detail
            }
        }
        return values.isEmpty ? ["problem": detail] : values
    }
}

/// A response body's bytes, written in-process.
private final class BodyCollector: Sendable {
    private let buffer = Mutex<[UInt8]>([])

    var writer: Writer { Writer(collector: self) }

    func bytes() -> [UInt8] { buffer.withLock { $0 } }

    struct Writer: ResponseBodyWriter {
        let collector: BodyCollector

        mutating func write(_ buffer: ByteBuffer) async throws {
            collector.buffer.withLock { $0 += buffer.readableBytesView }
        }

        consuming func finish(_ trailingHeaders: HTTPFields?) async throws {}
    }
}

/// A signed-in page's calls to the API: as the person, from their browser.
struct ConsoleCall {
    let api: ConsoleAPI
    let session: ConsoleRoutes.Session
    let request: Request
    let context: GatewayRequestContext

    var caller: Caller { session.authenticated.caller }

    /// What the page says after a change: the notice its `?done=` names among `notices` (the
    /// query names a notice, never carries its text).
    func notice(_ notices: [String: String]) -> String? {
        request.uri.queryParameters.get("done").flatMap { notices[String($0)] }
    }

    func get<Reply: SwiftProtobuf.Message>(_ path: String, as _: Reply.Type = Reply.self) async throws -> Reply {
        try await api.call(.get, path, accessToken: session.accessToken, request: request, context: context)
    }

    func send<Reply: SwiftProtobuf.Message>(
        _ method: HTTPRequest.Method,
        _ path: String,
        _ body: (any SwiftProtobuf.Message)? = nil,
        as _: Reply.Type = Reply.self
    ) async throws -> Reply {
        try await api.call(method, path, body, accessToken: session.accessToken, request: request, context: context)
    }
}
