import CNATS
import Logging

/// Every change written to a key-value bucket after it starts, and nothing from before (`watch`
/// is for reading the current values first): a replica that keeps copies of some keys learns
/// of the other replicas' writes without asking.
///
/// An ordered push consumer on the bucket's stream: nats.c checks the sequence of what it
/// delivers and recreates the consumer where a gap appears (after a reconnect, say), so changes
/// come in revision order. Delivered on nats.c's thread into an `AsyncStream`, like a
/// subscription; when more than `bufferLimit` wait unread, newer ones are dropped (and logged).
/// So what a reader keeps from here is a hint it must be able to check, as the rate limiter's
/// compare-and-set checks the revision it remembers.
public final class KeyValueUpdates: AsyncSequence, Sendable {
    public typealias Element = KeyValueEntry

    private let pointer: CPointer
    private let stream: AsyncStream<KeyValueEntry>
    // The consumer refers to the JetStream context: keep it alive as long as the subscription.
    private let jetStream: JetStream

    init(bucket: String, jetStream: JetStream, bufferLimit: Int) async throws {
        let (stream, continuation) = AsyncStream.makeStream(of: KeyValueEntry.self, bufferingPolicy: .bufferingOldest(bufferLimit))
        self.stream = stream
        self.jetStream = jetStream
        let sink = KeyValueUpdateSink(bucket: bucket, continuation: continuation, logger: jetStream.connection.logger)
        // Retained for nats.c; released by the completion callback, after the last delivery.
        nonisolated(unsafe) let closure = Unmanaged.passRetained(sink).toOpaque()
        let context = jetStream.context
        let raw: CPointer
        do {
            // Creating the consumer is a round trip nats.c waits for.
            raw = try await Blocking.run {
                var options = jsSubOptions()
                try check(jsSubOptions_Init(&options), "init subscription options")
                options.Ordered = true
                options.Config.DeliverPolicy = js_DeliverNew
                var subscription: OpaquePointer?
                var errorCode = jsErrCode(0)
                let status = "KV_\(bucket)".withCString { stream in
                    options.Stream = stream
                    return js_Subscribe(
                        &subscription,
                        context.raw,
                        "$KV.\(bucket).>",
                        { _, _, message, closure in
                            guard let message else { return }
                            defer { natsMsg_Destroy(message) }
                            Unmanaged<KeyValueUpdateSink>.fromOpaque(closure!).takeUnretainedValue().deliver(message)
                        },
                        closure,
                        nil,
                        &options,
                        &errorCode
                    )
                }
                try check(status, errorCode, "follow the updates of \(bucket)")
                return CPointer(raw: subscription!)
            }
        } catch {
            Unmanaged<KeyValueUpdateSink>.fromOpaque(closure).release()
            continuation.finish()
            throw error
        }
        let completion: natsOnCompleteCB = { closure in
            let sink = Unmanaged<KeyValueUpdateSink>.fromOpaque(closure!)
            sink.takeUnretainedValue().continuation.finish()
            sink.release()
        }
        if natsSubscription_SetOnCompleteCB(raw.raw, completion, closure) != NATS_OK {
            completion(closure)
        }
        pointer = raw
    }

    deinit {
        natsSubscription_Destroy(pointer.raw)
    }

    /// The iterator keeps the consumer alive: `for await entry in try await bucket.updates()`
    /// holds nothing else.
    public struct AsyncIterator: AsyncIteratorProtocol {
        let owner: KeyValueUpdates
        var entries: AsyncStream<KeyValueEntry>.Iterator

        public mutating func next() async -> KeyValueEntry? {
            await entries.next()
        }

        public mutating func next(isolation actor: isolated (any Actor)?) async -> KeyValueEntry? {
            await entries.next(isolation: actor)
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(owner: self, entries: stream.makeAsyncIterator())
    }

    /// Stops: the sequence ends once what was already delivered is read. A connection drains only
    /// once its subscriptions have, so call this before draining.
    public func stop() {
        _ = natsSubscription_Unsubscribe(pointer.raw)
    }
}

private final class KeyValueUpdateSink: Sendable {
    let prefix: String
    let bucket: String
    let continuation: AsyncStream<KeyValueEntry>.Continuation
    let logger: Logger

    init(bucket: String, continuation: AsyncStream<KeyValueEntry>.Continuation, logger: Logger) {
        self.bucket = bucket
        self.prefix = "$KV.\(bucket)."
        self.continuation = continuation
        self.logger = logger
    }

    func deliver(_ message: OpaquePointer) {
        var metadata: UnsafeMutablePointer<jsMsgMetaData>?
        guard natsMsg_GetMetaData(&metadata, message) == NATS_OK, let metadata else { return }
        defer { jsMsgMetaData_Destroy(metadata) }
        let copy = NATSMessage(copying: message)
        guard copy.subject.hasPrefix(prefix) else { return }
        let entry = KeyValueEntry(
            bucket: bucket,
            key: String(copy.subject.dropFirst(prefix.count)),
            value: copy.payload,
            revision: metadata.pointee.Sequence.Stream,
            operation: KeyValueEntry.Operation(header: copy.headers["KV-Operation"]),
            created: metadata.pointee.Timestamp
        )
        if case .dropped = continuation.yield(entry) {
            logger.warning("slow reader: key-value update dropped", metadata: ["bucket": "\(bucket)"])
        }
    }
}

extension KeyValueBucket {
    /// Changes from now on; see `KeyValueUpdates`.
    public func updates(bufferLimit: Int = 65_536) async throws -> KeyValueUpdates {
        try await KeyValueUpdates(bucket: name, jetStream: jetStream, bufferLimit: bufferLimit)
    }
}
