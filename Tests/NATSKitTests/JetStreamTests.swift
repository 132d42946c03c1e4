import Logging
import NATSKit
import TestSupport
import Testing

func uniqueName(_ base: String) -> String {
    "\(base)_\(UInt32.random(in: 0...UInt32.max))"
}

@Suite("NATSKit JetStream against a real nats-server")
struct JetStreamTests {
    @Test("publish waits for the stream's ack; a retried message ID is stored once")
    func publishAck() async throws {
        let connection = try await connect(try await TestNATS.url())
        let jetStream = try connection.jetStream()
        let stream = uniqueName("ACK")
        try await jetStream.ensureStream(.init(name: stream, subjects: ["\(stream.lowercased()).>"], storage: .memory))
        defer { Task { try? await jetStream.deleteStream(stream) } }

        let first = try await jetStream.publish([1], to: "\(stream.lowercased()).a", messageID: "event-1")
        #expect(first.stream == stream)
        #expect(first.sequence == 1)
        #expect(!first.duplicate)
        let retry = try await jetStream.publish([1], to: "\(stream.lowercased()).a", messageID: "event-1")
        #expect(retry.duplicate)
        #expect(retry.sequence == 1)
        let second = try await jetStream.publish([2], to: "\(stream.lowercased()).a", messageID: "event-2")
        #expect(second.sequence == 2)
        // ensureStream is idempotent.
        try await jetStream.ensureStream(.init(name: stream, subjects: ["\(stream.lowercased()).>"], storage: .memory))
    }

    @Test("streams and buckets take the connection's replicas unless they name their own")
    func replicas() async throws {
        var logger = Logger(label: "test.nats")
        logger.logLevel = .critical
        // One server: three replicas cannot be placed, so the server's refusal shows the
        // connection's setting reached it.
        let clustered = try await NATSConnection.connect(
            NATSConfiguration(servers: [try await TestNATS.url()], name: "replicas", jetStreamReplicas: 3),
            logger: logger
        )
        let jetStream = try clustered.jetStream()
        let stream = uniqueName("REPLICAS")
        await #expect(throws: NATSError.self) {
            try await jetStream.ensureStream(.init(name: stream, subjects: ["\(stream.lowercased()).>"], storage: .memory))
        }
        try await jetStream.ensureStream(.init(name: stream, subjects: ["\(stream.lowercased()).>"], storage: .memory, replicas: 1))
        try await jetStream.deleteStream(stream)
        let bucket = uniqueName("replicas")
        await #expect(throws: NATSError.self) { _ = try await jetStream.ensureKeyValue(.init(bucket: bucket, storage: .memory)) }
        _ = try await jetStream.ensureKeyValue(.init(bucket: bucket, replicas: 1, storage: .memory))
        try await jetStream.deleteKeyValue(bucket)
        await clustered.drain()
    }

    @Test("publishing where no stream listens fails clearly")
    func publishWithoutStream() async throws {
        let connection = try await connect(try await TestNATS.url())
        let jetStream = try connection.jetStream()
        do {
            _ = try await jetStream.publish([1], to: uniqueSubject("nostream"), timeout: .seconds(10))
            Issue.record("expected an error")
        } catch let error as NATSError {
            #expect(error.kind == .noResponders)
        }
    }

    @Test("a durable consumer redelivers, after a restart, what was delivered but not acknowledged")
    func durableRedelivery() async throws {
        let url = try await TestNATS.url()
        let stream = uniqueName("DUR")
        let subjects = "\(stream.lowercased()).>"
        let config = JetStream.ConsumerConfiguration(durableName: "worker", filterSubject: subjects, ackWait: .seconds(1))
        do {
            let connection = try await connect(url)
            let jetStream = try connection.jetStream()
            try await jetStream.ensureStream(.init(name: stream, subjects: [subjects]))
            for index in 1...3 {
                _ = try await jetStream.publish([UInt8(index)], to: "\(stream.lowercased()).e", messageID: "m\(index)")
            }
            let consumer = try await jetStream.durableConsumer(stream: stream, config)
            let batch = try await consumer.fetch(batch: 3, timeout: .seconds(10))
            #expect(batch.map(\.payload) == [[1], [2], [3]])
            // Acknowledge the first only, then "crash": close without acking the rest.
            try await batch[0].ack()
            #expect(batch[0].deliveryCount == 1)
            await connection.close()
        }

        // A new process binds the same durable consumer.
        let connection = try await connect(url)
        let jetStream = try connection.jetStream()
        defer { Task { try? await jetStream.deleteStream(stream) } }
        let consumer = try await jetStream.durableConsumer(stream: stream, config)
        var redelivered: [JetStreamMessage] = []
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(10)
        while redelivered.count < 2, clock.now < deadline {
            redelivered += try await consumer.fetch(batch: 10, timeout: .seconds(1))
        }
        #expect(redelivered.map(\.payload) == [[2], [3]])
        #expect(redelivered.allSatisfy { $0.deliveryCount == 2 })
        for message in redelivered { try await message.ack() }
        // Everything acknowledged: nothing more comes.
        #expect(try await consumer.fetch(batch: 10, timeout: .milliseconds(1500)).isEmpty)
    }

    @Test("a nak asks for redelivery at once")
    func nak() async throws {
        let connection = try await connect(try await TestNATS.url())
        let jetStream = try connection.jetStream()
        let stream = uniqueName("NAK")
        let subjects = "\(stream.lowercased()).>"
        try await jetStream.ensureStream(.init(name: stream, subjects: [subjects], storage: .memory))
        defer { Task { try? await jetStream.deleteStream(stream) } }
        _ = try await jetStream.publish([9], to: "\(stream.lowercased()).x")
        let consumer = try await jetStream.durableConsumer(stream: stream, .init(durableName: "c", filterSubject: subjects, ackWait: .seconds(30)))
        let first = try await consumer.fetch(batch: 1, timeout: .seconds(10))
        try #require(first.count == 1)
        try first[0].nak()
        let again = try await consumer.fetch(batch: 1, timeout: .seconds(10))
        #expect(again.first?.payload == [9])
        #expect(again.first?.deliveryCount == 2)
        try await again[0].ack()
    }
}

@Suite("NATSKit key-value buckets against a real nats-server")
struct KeyValueTests {
    @Test("put, get, create, compare-and-set update with a stale revision refused, delete")
    func compareAndSet() async throws {
        let connection = try await connect(try await TestNATS.url())
        let jetStream = try connection.jetStream()
        let bucketName = uniqueName("kv")
        let bucket = try await jetStream.ensureKeyValue(.init(bucket: bucketName, history: 5, storage: .memory))
        defer { Task { try? await jetStream.deleteKeyValue(bucketName) } }

        #expect(try await bucket.get("absent") == nil)
        let created = try await bucket.create("counter", [1])
        do {
            try await bucket.create("counter", [9])
            Issue.record("create of an existing key must fail")
        } catch let error as NATSError {
            #expect(error.kind == .keyExists)
        }
        let updated = try await bucket.update("counter", [2], expectedRevision: created)
        #expect(updated > created)
        // A writer that read revision `created` lost the race: its update is refused.
        do {
            try await bucket.update("counter", [3], expectedRevision: created)
            Issue.record("a stale revision must be refused")
        } catch let error as NATSError {
            #expect(error.kind == .wrongLastRevision)
        }
        let entry = try #require(try await bucket.get("counter"))
        #expect(entry.value == [2])
        #expect(entry.revision == updated)

        try await bucket.delete("counter")
        #expect(try await bucket.get("counter") == nil)
        // A deleted key can be created again.
        try await bucket.create("counter", [4])
        #expect(try await bucket.get("counter")?.value == [4])
        #expect(try await bucket.put("other", [5]) > 0)
    }

    @Test("invalid keys are refused before they reach the server")
    func invalidKeys() async throws {
        let connection = try await connect(try await TestNATS.url())
        let jetStream = try connection.jetStream()
        let bucketName = uniqueName("kvbad")
        let bucket = try await jetStream.ensureKeyValue(.init(bucket: bucketName, storage: .memory))
        defer { Task { try? await jetStream.deleteKeyValue(bucketName) } }
        for key in ["", "a b", "a..b", ".a", "a.", "a*", "a>", "a:b", "ключ"] {
            await #expect(throws: NATSError.self) { try await bucket.put(key, [1]) }
        }
        #expect(try await bucket.put("a-z_A/Z=0.9", [1]) > 0)
    }

    @Test("a watch sees current values, then caught-up, then changes")
    func watch() async throws {
        let connection = try await connect(try await TestNATS.url())
        let jetStream = try connection.jetStream()
        let bucketName = uniqueName("kvwatch")
        let bucket = try await jetStream.ensureKeyValue(.init(bucket: bucketName, storage: .memory))
        defer { Task { try? await jetStream.deleteKeyValue(bucketName) } }
        try await bucket.put("bans.a", [1])

        var events = try await bucket.watch("bans.>").makeAsyncIterator()
        guard case .entry(let initial) = try await events.next() else {
            Issue.record("expected the initial value")
            return
        }
        #expect(initial.key == "bans.a")
        #expect(try await events.next() == .caughtUp)

        try await bucket.put("bans.b", [2])
        guard case .entry(let update) = try await events.next() else {
            Issue.record("expected an update")
            return
        }
        #expect(update.key == "bans.b")
        #expect(update.value == [2])

        try await bucket.delete("bans.a")
        guard case .entry(let deletion) = try await events.next() else {
            Issue.record("expected a delete")
            return
        }
        #expect(deletion.operation == .delete)
    }

    @Test("updates: only what is written after they start, in order, with each write's revision")
    func updates() async throws {
        let connection = try await connect(try await TestNATS.url())
        let jetStream = try connection.jetStream()
        let bucketName = uniqueName("kvupdates")
        let bucket = try await jetStream.ensureKeyValue(.init(bucket: bucketName, storage: .memory))
        defer { Task { try? await jetStream.deleteKeyValue(bucketName) } }
        try await bucket.put("before", [0])

        var updates = try await bucket.updates().makeAsyncIterator()
        let first = try await bucket.create("a.b", [1])
        let second = try await bucket.update("a.b", [2], expectedRevision: first)
        // A refused compare-and-set stores nothing, so it is no update.
        await #expect(throws: NATSError.self) { try await bucket.update("a.b", [9], expectedRevision: first) }
        try await bucket.delete("a.b")
        var seen: [KeyValueEntry] = []
        for _ in 0..<3 {
            guard let entry = await updates.next() else { break }
            seen.append(entry)
        }
        #expect(seen.map(\.key) == ["a.b", "a.b", "a.b"])
        #expect(seen.map(\.revision).prefix(2) == [first, second])
        #expect(seen.map(\.value).prefix(2) == [[1], [2]])
        #expect(seen.map(\.operation) == [.put, .put, .delete])
        #expect(seen.allSatisfy { $0.bucket == bucketName && $0.created > 0 })
    }
}
