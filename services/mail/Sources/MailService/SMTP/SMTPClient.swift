import NIOCore
import NIOPosix
import NIOSSL

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// How the client reaches its relay: RFC 5321 on a plain connection upgraded with STARTTLS
/// (RFC 3207), or TLS from the first byte (RFC 8314 "implicit TLS", smtps).
public struct SMTPServer: Sendable, Equatable {
    public enum Security: String, Sendable, Equatable {
        /// TLS before anything is said (smtps://, usually port 465).
        case implicitTLS = "tls"
        /// STARTTLS, and nothing is sent if the server does not offer it (smtp://).
        case startTLS = "starttls"
        /// Plain text throughout: only for a relay on the same host, chosen explicitly.
        case none
    }

    public var host: String
    public var port: Int
    public var security: Security
    public var user: String?
    public var password: String?
    /// PEM file of the certificate authorities to trust; nil: the system's.
    public var trustedCAFile: String?

    public init(host: String, port: Int, security: Security, user: String? = nil, password: String? = nil, trustedCAFile: String? = nil) {
        self.host = host
        self.port = port
        self.security = security
        self.user = user
        self.password = password
        self.trustedCAFile = trustedCAFile
    }
}

/// A failed delivery. `transient` (a 4xx reply, a connection or TLS failure, a timeout) is worth
/// trying again later; otherwise (a 5xx reply, a policy refusal) it never will succeed as it is.
public struct SMTPError: Error, Sendable, CustomStringConvertible {
    public var code: Int?
    public var message: String
    public var transient: Bool

    public var description: String { code.map { "\($0) \(message)" } ?? message }
}

/// One SMTP transaction per call: connect, EHLO, STARTTLS and EHLO again, AUTH (PLAIN or LOGIN,
/// never before TLS), MAIL, RCPT, DATA (dot-stuffed), QUIT. Replies are read as RFC 5321 §4.2
/// says (multi-line `250-` continuations), each line and each reply bounded, the whole
/// transaction within `timeout`.
public struct SMTPClient: Sendable {
    public let server: SMTPServer
    /// The name this client gives in EHLO.
    public let heloName: String
    public let timeout: Duration
    private let tls: NIOSSLContext?

    public init(server: SMTPServer, heloName: String, timeout: Duration = .seconds(60)) throws {
        self.server = server
        self.heloName = heloName
        self.timeout = timeout
        if server.security == .none {
            tls = nil
        } else {
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.minimumTLSVersion = .tlsv12
            if let file = server.trustedCAFile { configuration.trustRoots = .file(file) }
            tls = try NIOSSLContext(configuration: configuration)
        }
    }

    /// Sends `message` (the whole RFC 5322 text, CRLF line ends) from `sender` to `recipient`.
    public func send(_ message: String, from sender: String, to recipient: String) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await transaction(message, from: sender, to: recipient) }
            group.addTask { [timeout] in
                try await Task.sleep(for: timeout)
                throw SMTPError(message: "the mail server did not finish within \(timeout)", transient: true)
            }
            defer { group.cancelAll() }
            try await group.next()
        }
    }

    private func transaction(_ message: String, from sender: String, to recipient: String) async throws {
        let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
        do {
            channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.seconds(10))
                .connect(host: server.host, port: server.port) { [tls, server] channel in
                    channel.eventLoop.makeCompletedFuture {
                        if server.security == .implicitTLS, let tls {
                            try channel.pipeline.syncOperations.addHandler(
                                try NIOSSLClientHandler(context: tls, serverHostname: Self.sniName(server.host))
                            )
                        }
                        return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            throw SMTPError(message: "cannot connect to the mail server \(server.host):\(server.port): \(error)", transient: true)
        }
        try await channel.executeThenClose { inbound, outbound in
            var session = Session(replies: ReplyReader(inbound.makeAsyncIterator()), outbound: outbound)
            try await session.expect(220, "greeting")
            var extensions = try await session.ehlo(heloName)
            var secure = server.security == .implicitTLS
            if server.security == .startTLS {
                // RFC 3207 §4: a client that requires TLS stops here rather than send in clear.
                guard extensions.contains("STARTTLS") else {
                    try? await session.command("QUIT")
                    throw SMTPError(message: "the mail server does not offer STARTTLS, and this client sends nothing in clear", transient: true)
                }
                try await session.command("STARTTLS", expect: 220)
                guard let tls else { throw SMTPError(message: "no TLS context", transient: false) }
                do {
                    // Made and added on the channel's event loop: the TLS handler is not Sendable.
                    let hostname = Self.sniName(server.host)
                    let pipeline = channel.channel.pipeline
                    try await channel.channel.eventLoop.submit {
                        try pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls, serverHostname: hostname), position: .first)
                    }.get()
                } catch {
                    throw SMTPError(message: "TLS with the mail server failed: \(error)", transient: true)
                }
                secure = true
                // RFC 3207 §4.2: what the server said before TLS is forgotten.
                extensions = try await session.ehlo(heloName)
            }
            if let user = server.user {
                guard secure else { throw SMTPError(message: "refusing to send a password over a connection without TLS", transient: false) }
                try await session.authenticate(user: user, password: server.password ?? "", offered: extensions)
            }
            try await session.command("MAIL FROM:<\(sender)>", expect: 250)
            try await session.command("RCPT TO:<\(recipient)>", expect: 250, or: 251)
            try await session.command("DATA", expect: 354)
            try await session.data(message)
            try? await session.command("QUIT")
        }
    }

    /// SNI carries host names only (RFC 6066 §3): none for an address literal.
    static func sniName(_ host: String) -> String? {
        host.contains(":") || host.allSatisfy({ $0.isNumber || $0 == "." }) ? nil : host
    }

    // MARK: The conversation

    private struct Session {
        var replies: ReplyReader
        let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>

        mutating func expect(_ code: Int, _ what: String) async throws {
            let reply = try await replies.next()
            guard reply.code == code else { throw reply.error(expecting: what) }
        }

        mutating func command(_ line: String, expect code: Int = 221, or other: Int? = nil) async throws {
            try await outbound.write(ByteBuffer(string: line + "\r\n"))
            let reply = try await replies.next()
            guard reply.code == code || reply.code == other else {
                throw reply.error(expecting: line.split(separator: " ").first.map(String.init) ?? line)
            }
        }

        /// EHLO's answer: the extension keywords the server offers (upper-cased), e.g. STARTTLS,
        /// `AUTH PLAIN LOGIN`.
        mutating func ehlo(_ name: String) async throws -> [String] {
            try await outbound.write(ByteBuffer(string: "EHLO \(name)\r\n"))
            let reply = try await replies.next()
            guard reply.code == 250 else { throw reply.error(expecting: "EHLO") }
            return reply.lines.dropFirst().map { $0.uppercased() }
        }

        mutating func authenticate(user: String, password: String, offered: [String]) async throws {
            let mechanisms = Set(
                offered.first { $0.hasPrefix("AUTH ") || $0.hasPrefix("AUTH=") }?.dropFirst(5).split(separator: " ").map(String.init) ?? []
            )
            if mechanisms.contains("PLAIN") {
                // RFC 4616: authorization identity (empty), NUL, user, NUL, password.
                let credentials = Data([0] + Array(user.utf8) + [0] + Array(password.utf8)).base64EncodedString()
                try await secret("AUTH PLAIN \(credentials)", expect: 235)
            } else if mechanisms.contains("LOGIN") {
                try await command("AUTH LOGIN", expect: 334)
                try await command(Data(user.utf8).base64EncodedString(), expect: 334)
                try await secret(Data(password.utf8).base64EncodedString(), expect: 235)
            } else {
                throw SMTPError(message: "the mail server offers neither AUTH PLAIN nor AUTH LOGIN", transient: false)
            }
        }

        /// A command carrying a credential: its failure never repeats the line.
        mutating func secret(_ line: String, expect code: Int) async throws {
            try await outbound.write(ByteBuffer(string: line + "\r\n"))
            let reply = try await replies.next()
            guard reply.code == code else { throw reply.error(expecting: "AUTH") }
        }

        /// The message, dot-stuffed (RFC 5321 §4.5.2), then the lone dot. Bytes, not
        /// Characters: to Swift "\r\n" is one Character.
        mutating func data(_ message: String) async throws {
            var bytes: [UInt8] = []
            bytes.reserveCapacity(message.utf8.count + 64)
            var lineStart = true
            for byte in message.utf8 {
                if lineStart, byte == UInt8(ascii: ".") { bytes.append(byte) }
                bytes.append(byte)
                lineStart = byte == 10
            }
            if !lineStart { bytes += [13, 10] }
            bytes += Array(".\r\n".utf8)
            try await outbound.write(ByteBuffer(bytes: bytes))
            let reply = try await replies.next()
            guard reply.code == 250 else { throw reply.error(expecting: "the message") }
        }
    }
}

/// One reply: its code and every line's text after the code.
struct SMTPReply {
    var code: Int
    var lines: [String]

    func error(expecting what: String) -> SMTPError {
        // What a hostile server says is shortened and kept to printable characters for the logs.
        let said = String(lines.joined(separator: " ").unicodeScalars.filter { $0.value >= 0x20 && $0.value < 0x7F }.prefix(200).map(Character.init))
        return SMTPError(code: code, message: "the mail server refused \(what): \(said)", transient: (400..<500).contains(code))
    }
}

/// Reads CRLF-terminated lines and assembles them into replies, bounded: a server cannot make
/// the client hold a line longer than 4 KiB or a reply of more than 100 lines.
struct ReplyReader {
    private var iterator: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    private var buffer: [UInt8] = []

    init(_ iterator: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator) {
        self.iterator = iterator
    }

    static let maximumLine = 4096
    static let maximumLines = 100

    mutating func next() async throws -> SMTPReply {
        var lines: [String] = []
        var code: Int?
        while lines.count < Self.maximumLines {
            let line = try await nextLine()
            let bytes = Array(line.utf8)
            guard bytes.count >= 3, let value = Int(String(line.prefix(3))), (200..<600).contains(value), code == nil || code == value else {
                throw SMTPError(message: "the mail server's answer is not SMTP", transient: true)
            }
            code = value
            lines.append(bytes.count > 4 ? String(line.dropFirst(4)) : "")
            // "250-" continues, "250 " (or a bare "250") ends the reply.
            if bytes.count == 3 || bytes[3] == UInt8(ascii: " ") { return SMTPReply(code: value, lines: lines) }
            guard bytes[3] == UInt8(ascii: "-") else { throw SMTPError(message: "the mail server's answer is not SMTP", transient: true) }
        }
        throw SMTPError(message: "the mail server's answer is too long", transient: true)
    }

    private mutating func nextLine() async throws -> String {
        while true {
            if let end = buffer.indices.dropLast().first(where: { buffer[$0] == 13 && buffer[$0 + 1] == 10 }) {
                let line = String(decoding: buffer[..<end], as: UTF8.self)
                buffer.removeFirst(end + 2)
                return line
            }
            guard buffer.count <= Self.maximumLine else { throw SMTPError(message: "the mail server sent a line too long", transient: true) }
            guard var chunk = try await iterator.next() else {
                throw SMTPError(message: "the mail server closed the connection", transient: true)
            }
            buffer += chunk.readBytes(length: chunk.readableBytes) ?? []
        }
    }
}
