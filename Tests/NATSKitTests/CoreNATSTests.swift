import Logging
import NATSKit
import TestSupport
import Testing

func connect(_ url: String, name: String = "test") async throws -> NATSConnection {
    var logger = Logger(label: "test.nats")
    logger.logLevel = .warning
    return try await NATSConnection.connect(NATSConfiguration(servers: [url], name: name), logger: logger)
}

func uniqueSubject(_ base: String) -> String {
    "\(base).\(UInt64.random(in: 0...UInt64.max))"
}

/// Serves `subject` on `connection` until the task is cancelled, echoing payload and headers.
func echo(on connection: NATSConnection, subject: String, queue: String? = nil, tag: String = "") throws -> Task<Void, Never> {
    let subscription = try connection.subscribe(to: subject, queue: queue)
    return Task {
        for await message in subscription {
            guard let reply = message.replySubject else { continue }
            var headers = message.headers
            headers["Served-By"] = tag
            try? connection.publish(message.payload, to: reply, headers: headers)
        }
    }
}

@Suite("NATSKit core NATS against a real nats-server")
struct CoreNATSTests {
    @Test("request/reply round trip")
    func requestReply() async throws {
        let connection = try await connect(try await TestNATS.url())
        let subject = uniqueSubject("test.echo")
        let server = try echo(on: connection, subject: subject)
        defer { server.cancel() }
        try await connection.flush()
        let reply = try await connection.request(Array("ping".utf8), to: subject, timeout: .seconds(10))
        #expect(reply.payload == Array("ping".utf8))
    }

    @Test("headers round trip, repeated names and all")
    func headers() async throws {
        let connection = try await connect(try await TestNATS.url())
        let subject = uniqueSubject("test.headers")
        let server = try echo(on: connection, subject: subject)
        defer { server.cancel() }
        try await connection.flush()
        var headers: NATSHeaders = ["Rampart-Request-Id": "req-1", "X-Empty-Body": "yes"]
        headers.add("Multi", "one")
        headers.add("Multi", "two")
        let reply = try await connection.request([], to: subject, headers: headers, timeout: .seconds(10))
        #expect(reply.headers["Rampart-Request-Id"] == "req-1")
        #expect(reply.headers["X-Empty-Body"] == "yes")
        #expect(reply.headers.values("Multi") == ["one", "two"])
        #expect(reply.payload.isEmpty)
    }

    @Test("a queue group spreads requests over its two members")
    func queueGroup() async throws {
        let url = try await TestNATS.url()
        let first = try await connect(url)
        let second = try await connect(url)
        let client = try await connect(url)
        let subject = uniqueSubject("test.queue")
        let servers = [
            try echo(on: first, subject: subject, queue: "workers", tag: "first"),
            try echo(on: second, subject: subject, queue: "workers", tag: "second"),
        ]
        defer { for server in servers { server.cancel() } }
        try await first.flush()
        try await second.flush()
        var counts: [String: Int] = [:]
        for _ in 0..<200 {
            let reply = try await client.request([1], to: subject, timeout: .seconds(10))
            counts[reply.headers["Served-By"] ?? "?", default: 0] += 1
        }
        // Each request went to exactly one member, and both members served.
        #expect(counts.values.reduce(0, +) == 200)
        #expect(counts["first", default: 0] > 20)
        #expect(counts["second", default: 0] > 20)
    }

    @Test("a request nobody serves fails at once with no responders")
    func noResponders() async throws {
        let connection = try await connect(try await TestNATS.url())
        let clock = ContinuousClock()
        let started = clock.now
        // Well before the 30-second timeout, even on a machine busy starting every suite at once
        // (2.3 s was seen for what takes milliseconds alone).
        await #expect(throws: NATSError.self) {
            _ = try await connection.request([1], to: uniqueSubject("test.nobody"), timeout: .seconds(30))
        }
        #expect(clock.now - started < .seconds(10))
        do {
            _ = try await connection.request([1], to: uniqueSubject("test.nobody"), timeout: .seconds(5))
        } catch let error as NATSError {
            #expect(error.kind == .noResponders)
        }
    }

    @Test("a request whose responder never answers times out")
    func timeout() async throws {
        let connection = try await connect(try await TestNATS.url())
        let subject = uniqueSubject("test.silent")
        let silent = try connection.subscribe(to: subject)  // receives, never replies
        try await connection.flush()
        do {
            _ = try await connection.request([1], to: subject, timeout: .milliseconds(200))
            Issue.record("expected a timeout")
        } catch let error as NATSError {
            #expect(error.kind == .timeout)
        }
        silent.unsubscribe()
    }

    @Test("a cancelled request ends at once with CancellationError")
    func cancellation() async throws {
        let connection = try await connect(try await TestNATS.url())
        let subject = uniqueSubject("test.cancel")
        let silent = try connection.subscribe(to: subject)
        try await connection.flush()
        let task = Task { try await connection.request([1], to: subject, timeout: .seconds(30)) }
        try await Task.sleep(for: .milliseconds(50))
        task.cancel()
        await #expect(throws: CancellationError.self) { _ = try await task.value }
        silent.unsubscribe()
    }

    @Test("subjects and headers that would corrupt the protocol are refused")
    func hostileInput() async throws {
        let connection = try await connect(try await TestNATS.url())
        for subject in ["", "a b", "a\tb", "a\u{7F}b", "a\r\nPUB x 1", "a..b", ".a", "a.", "*", "a.*", "a.>", String(repeating: "a", count: 1025)] {
            #expect(throws: NATSError.self) { try connection.publish([1], to: subject) }
        }
        try connection.publish([1], to: "a.b*.c>.\(String(repeating: "z", count: 1010))")  // wildcards only as whole tokens
        #expect(throws: NATSError.self) {
            try connection.publish([1], to: "test.ok", headers: ["User-Agent": "evil\r\nRampart-Tenant-Id: other"])
        }
        #expect(throws: NATSError.self) { try connection.publish([1], to: "test.ok", headers: ["Bad Name": "x"]) }
        #expect(throws: NATSError.self) { try connection.publish([1], to: "test.ok", headers: ["Bad:Name": "x"]) }
    }

    @Test("a subscription drains: the sequence ends after what was sent")
    func drainSubscription() async throws {
        let connection = try await connect(try await TestNATS.url())
        let subject = uniqueSubject("test.drain")
        let subscription = try connection.subscribe(to: subject)
        try await connection.flush()
        for index in 0..<10 { try connection.publish([UInt8(index)], to: subject) }
        try await connection.flush()
        await subscription.drain()
        var received: [UInt8] = []
        for await message in subscription { received.append(contentsOf: message.payload) }
        #expect(received == Array(0..<10))
    }

    @Test("a client reconnects and resumes after nats-server restarts")
    func reconnect() async throws {
        let server = try await NATSServer.start()
        let responder = try await connect(server.url, name: "responder")
        let client = try await connect(server.url, name: "client")
        let subject = uniqueSubject("test.reconnect")
        let echoTask = try echo(on: responder, subject: subject)
        defer { echoTask.cancel() }
        try await responder.flush()
        #expect(try await client.request([1], to: subject, timeout: .seconds(10)).payload == [1])

        try await server.stop()
        try await Task.sleep(for: .milliseconds(200))
        #expect(!client.isConnected)
        try await server.restart()

        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(15)
        while !(client.isConnected && responder.isConnected), clock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(client.isConnected && responder.isConnected)
        // The responder's subscription was restored by the reconnect: no new subscribe call.
        var answered = false
        while !answered, clock.now < deadline {
            answered = (try? await client.request([2], to: subject, timeout: .seconds(1)))?.payload == [2]
        }
        #expect(answered)
        await client.close()
        await responder.close()
    }
}
