import Foundation
import Hummingbird
import NIOCore
import ServiceKit
import Synchronization

/// A local HTTP server standing in for a tenant's webhook endpoint. The path says how it
/// answers: `/ok` 200; `/status/<code>` that status (with `Retry-After: <retry_after>` when the
/// query gives one); `/redirect` a 302 to `/ok`; `/slow` 200 after 30 seconds; `/huge` 200 with
/// a 256 MiB body. Every request is kept, with its headers and body.
final class WebhookReceiver: Sendable {
    struct Received: Sendable {
        let path: String
        let headers: [String: String]
        let body: [UInt8]
    }

    /// What arrived, shared with the server's handler.
    final class Log: Sendable {
        let entries = Mutex<[Received]>([])
    }

    let port: Int
    private let log: Log
    private let task: Task<Void, any Error>

    var received: [Received] { log.entries.withLock { $0 } }
    func received(at path: String) -> [Received] { received.filter { $0.path == path } }

    private init(port: Int, log: Log, task: Task<Void, any Error>) {
        self.port = port
        self.log = log
        self.task = task
    }

    deinit { task.cancel() }

    static func start() async throws -> WebhookReceiver {
        let log = Log()
        let listening = ListeningPort()
        let router = Router()
        router.post("/**") { request, context -> Response in
            let body = try await request.body.collect(upTo: 1 << 20)
            var headers: [String: String] = [:]
            for field in request.headers { headers[field.name.canonicalName] = field.value }
            headers["host"] = request.head.authority  // HTTPTypes keeps Host apart from the fields
            let path = request.uri.path
            log.entries.withLock { $0.append(Received(path: path, headers: headers, body: Array(buffer: body))) }
            let port = await listening.wait()
            switch path {
            case "/redirect":
                return Response(status: .found, headers: [.location: "http://127.0.0.1:\(port)/ok"])
            case "/slow":
                try await Task.sleep(for: .seconds(30))
                return Response(status: .ok)
            case "/huge":
                let chunk = ByteBuffer(repeating: UInt8(ascii: "x"), count: 65536)
                return Response(
                    status: .ok,
                    body: ResponseBody { writer in
                        for _ in 0..<4096 { try await writer.write(chunk) }
                        try await writer.finish(nil)
                    }
                )
            case let status where status.hasPrefix("/status/"):
                var headers = HTTPFields()
                if let retryAfter = request.uri.queryParameters["retry_after"] { headers[.retryAfter] = String(retryAfter) }
                return Response(status: .init(code: Int(status.dropFirst(8)) ?? 500), headers: headers)
            default:
                return Response(status: .ok)
            }
        }
        let app = Application(
            router: router,
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in listening.set(channel.localAddress?.port ?? 0) }
        )
        let task = Task { try await app.runService() }
        return WebhookReceiver(port: await listening.wait(), log: log, task: task)
    }
}
