import Dispatch
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public enum Ports {
    /// A TCP port free on 127.0.0.1 right now, for a server another process will bind. Taken
    /// below the kernel's ephemeral range (32768 and up): a port from that range can become the
    /// local end of an outgoing connection before the server binds it, or connect to itself
    /// when probed, and the test then talks to nobody or to something else.
    public static func free() -> Int {
        for _ in 0..<200 {
            let port = Int.random(in: 20_000..<32_768)
            if canBind(port) { return port }
        }
        preconditionFailure("no free port below 32768")
    }

    private static func canBind(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        precondition(fd >= 0, "socket failed")
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let length = socklen_t(MemoryLayout<sockaddr_in>.size)
        return withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } } == 0
    }

    /// True when something accepts TCP connections on 127.0.0.1:`port`.
    public static func isListening(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}

/// A minimal HTTP/1.1 GET: enough to probe health endpoints without an HTTP client dependency in
/// tests. The blocking socket work runs off Swift's cooperative pool, which the server under
/// test needs.
public func httpGet(port: Int, path: String, host: String = "127.0.0.1") async throws -> (status: Int, body: String) {
    let response = try await httpRequest(port: port, "GET", path, host: host)
    return (response.status, response.body)
}

/// What an HTTP request got back: status, header fields (names lower-cased), body.
public struct HTTPTestResponse: Sendable {
    public var status: Int
    public var headers: [String: String]
    public var body: String
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`), with a body as given:
/// tests send exactly the bytes they mean, malformed ones included.
public func httpRequest(
    port: Int,
    _ method: String,
    _ path: String,
    headers: [String: String] = [:],
    body: [UInt8] = [],
    host: String = "127.0.0.1"
) async throws -> HTTPTestResponse {
    try await offloaded { try blockingHTTPRequest(port: port, method: method, path: path, headers: headers, body: body, host: host) }
}

private func blockingHTTPRequest(
    port: Int,
    method: String,
    path: String,
    headers: [String: String],
    body: [UInt8],
    host: String
) throws -> HTTPTestResponse {
    let fd = try connectedSocket(host: host, port: port)
    defer { close(fd) }
    var head = "\(method) \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nConnection: close\r\n"
    for (name, value) in headers { head += "\(name): \(value)\r\n" }
    if !body.isEmpty || method == "POST" || method == "PUT" || method == "PATCH" { head += "Content-Length: \(body.count)\r\n" }
    let request = Array((head + "\r\n").utf8) + body
    var sent = 0
    while sent < request.count {
        let count = request[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        if count <= 0 { break }  // the server may answer (413) and close before reading everything
        sent += count
    }
    var response: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let count = recv(fd, &buffer, buffer.count, 0)
        if count <= 0 { break }
        response.append(contentsOf: buffer[0..<count])
    }
    let text = String(decoding: response, as: UTF8.self)
    guard let split = text.range(of: "\r\n\r\n") else { throw TestInfrastructureError("no HTTP response (\(response.count) bytes)") }
    let lines = text[..<split.lowerBound].split(separator: "\r\n")
    let parts = lines.first?.split(separator: " ") ?? []
    guard parts.count >= 2, let status = Int(parts[1]) else { throw TestInfrastructureError("bad status line \(lines.first ?? "")") }
    var fields: [String: String] = [:]
    for line in lines.dropFirst() {
        guard let colon = line.firstIndex(of: ":") else { continue }
        let name = line[..<colon].lowercased()
        let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        // A repeated field keeps every value: Set-Cookie's one a line (they may hold commas).
        fields[name] = fields[name].map { $0 + (name == "set-cookie" ? "\n" : ", ") + value } ?? value
    }
    var body = Array(response[(text[..<split.upperBound].utf8.count)...])
    if fields["transfer-encoding"]?.lowercased() == "chunked" { body = try dechunked(body) }
    return HTTPTestResponse(status: status, headers: fields, body: String(decoding: body, as: UTF8.self))
}

/// A chunked body's data (RFC 9112 section 7.1), without the sizes and trailers.
private func dechunked(_ bytes: [UInt8]) throws -> [UInt8] {
    var data: [UInt8] = []
    var index = 0
    while true {
        guard let lineEnd = (index..<max(index, bytes.count - 1)).first(where: { bytes[$0] == 13 && bytes[$0 + 1] == 10 }) else {
            throw TestInfrastructureError("a chunked body ends without its last chunk")
        }
        let sizeText = String(decoding: bytes[index..<lineEnd], as: UTF8.self).split(separator: ";").first ?? ""
        guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16) else {
            throw TestInfrastructureError("bad chunk size \(sizeText)")
        }
        if size == 0 { return data }
        let start = lineEnd + 2
        guard start + size <= bytes.count else { throw TestInfrastructureError("a chunk is cut short") }
        data += bytes[start..<(start + size)]
        index = start + size + 2
    }
}

public struct TestInfrastructureError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Runs blocking work (sockets, child processes) on a Dispatch thread. Swift's cooperative pool
/// has one thread per core: a test that blocks one starves the services it is testing.
public func offloaded<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        // A queue of its own runs on GCD's overcommitting pool: never queued behind other blocked work.
        DispatchQueue(label: "testsupport.offloaded").async { continuation.resume(with: Result { try body() }) }
    }
}

/// True when the NATS server called `name` answers on 127.0.0.1:`port` (a server greets every
/// connection with `INFO {…"server_name":…}`): a port can be taken by something else, another
/// test's server included, between `Ports.free()` and a server binding it.
func speaksNATS(port: Int, name: String) -> Bool {
    guard let fd = try? connectedSocket(host: "127.0.0.1", port: port, timeoutSeconds: 1) else { return false }
    defer { close(fd) }
    var greeting: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while greeting.count < 16_384, !greeting.suffix(2).elementsEqual("\r\n".utf8) {
        let count = recv(fd, &chunk, chunk.count, 0)
        guard count > 0 else { return false }
        greeting += chunk[..<count]
    }
    let text = String(decoding: greeting, as: UTF8.self)
    return text.hasPrefix("INFO ") && text.contains("\"server_name\":\"\(name)\"")
}

/// A TCP socket connected to `host:port`, with send and receive timeouts (10 s by default): a
/// server that answers early (413) stops reading, and sending must then give up, not block.
private func connectedSocket(host: String, port: Int, timeoutSeconds: Int = 10) throws -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TestInfrastructureError("socket failed") }
    var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr(host)
    address.sin_port = UInt16(port).bigEndian
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else {
        close(fd)
        throw TestInfrastructureError("connect to \(host):\(port) failed")
    }
    return fd
}

/// One HTTP/1.1 connection kept open for a series of requests (benchmarks: a client that
/// reconnects for every request measures TCP set-up, not the server). Blocking; one request at
/// a time; answers must carry Content-Length, as Hummingbird's do.
public final class KeepAliveHTTPConnection {
    private let fd: Int32
    private let host: String
    private let port: Int
    private var pending: [UInt8] = []

    public init(port: Int, host: String = "127.0.0.1") throws {
        self.host = host
        self.port = port
        fd = try connectedSocket(host: host, port: port)
        var noDelay: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &noDelay, socklen_t(MemoryLayout<Int32>.size))
    }

    deinit { close(fd) }

    /// A GET; returns the status.
    public func get(_ path: String, headers: [String: String] = [:]) throws -> Int {
        var head = "GET \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        let request = Array((head + "\r\n").utf8)
        var sent = 0
        while sent < request.count {
            let count = request[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard count > 0 else { throw TestInfrastructureError("send failed") }
            sent += count
        }
        let separator: [UInt8] = [13, 10, 13, 10]
        var headEnd: Int?
        while headEnd == nil {
            headEnd = pending.indices.dropLast(3).first { pending[$0..<($0 + 4)].elementsEqual(separator) }
            if headEnd == nil { try receive() }
        }
        let text = String(decoding: pending[..<headEnd!], as: UTF8.self)
        let lines = text.split(separator: "\r\n")
        let parts = lines.first?.split(separator: " ") ?? []
        guard parts.count >= 2, let status = Int(parts[1]) else { throw TestInfrastructureError("bad status line") }
        let length =
            lines.dropFirst().compactMap { line -> Int? in
                guard line.lowercased().hasPrefix("content-length:") else { return nil }
                return Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces))
            }.first ?? 0
        let total = headEnd! + 4 + length
        while pending.count < total { try receive() }
        pending.removeFirst(total)
        return status
    }

    private func receive() throws {
        var buffer = [UInt8](repeating: 0, count: 16_384)
        let count = recv(fd, &buffer, buffer.count, 0)
        guard count > 0 else { throw TestInfrastructureError("connection closed") }
        pending.append(contentsOf: buffer[0..<count])
    }
}
