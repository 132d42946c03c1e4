import Foundation
import Hummingbird
import NIOCore
import ServiceKit
import SodiumKit
import Synchronization
import TestSupport

/// A local HTTP server standing in for a tenant's webhook endpoint. The path says how it
/// answers: `/ok` 200; `/status/<code>` that status (with `Retry-After: <retry_after>` when the
/// query gives one); `/redirect` a 302 to `/ok`; `/slow` 200 after 30 seconds; `/huge` 200 with
/// a 256 MiB body. Every request is kept, with its headers and body.
package final class WebhookReceiver: Sendable {
    package struct Received: Sendable {
        package let path: String
        package let headers: [String: String]
        package let body: [UInt8]
    }

    /// What arrived, shared with the server's handler.
    package final class Log: Sendable {
        let entries = Mutex<[Received]>([])
    }

    package let port: Int
    private let log: Log
    private let task: Task<Void, any Error>

    package var received: [Received] { log.entries.withLock { $0 } }
    package func received(at path: String) -> [Received] { received.filter { $0.path == path } }

    private init(port: Int, log: Log, task: Task<Void, any Error>) {
        self.port = port
        self.log = log
        self.task = task
    }

    deinit { task.cancel() }

    /// `v1,<signature>` as a receiver using Python's standard library computes it: an
    /// implementation of its own, to check ours against.
    package static func pythonSignature(secret: String, id: String, timestamp: Int64, body: [UInt8]) throws -> String {
        let script = """
            import base64, hashlib, hmac, sys
            key = base64.b64decode(sys.argv[1].removeprefix("whsec_"))
            signed = (sys.argv[2] + "." + sys.argv[3] + ".").encode() + base64.b64decode(sys.argv[4])
            print("v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode(), end="")
            """
        let run = try ChildProcess.run(
            URL(fileURLWithPath: "/usr/bin/python3"),
            ["-c", script, secret, id, String(timestamp), Base64.encode(body)]
        )
        guard run.status == 0 else { throw TestInfrastructureError("python3: \(run.errors)") }
        return run.output
    }

    package static func start() async throws -> WebhookReceiver {
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
