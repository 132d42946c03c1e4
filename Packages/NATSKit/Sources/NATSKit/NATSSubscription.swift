import CNATS
import Logging

/// A subscription, read as an `AsyncSequence` of messages (one reader).
///
/// nats.c calls back on its delivery thread; the message is copied out and handed to Swift
/// concurrency through an `AsyncStream`. The sequence ends after `unsubscribe()`, `drain()` or the
/// connection's close. When more than `bufferLimit` messages wait unread, newer ones are
/// dropped (and logged), as NATS itself treats a slow consumer.
public final class NATSSubscription: AsyncSequence, Sendable {
    public typealias Element = NATSMessage

    public let subject: String
    public let queue: String?
    private let pointer: CPointer
    private let stream: AsyncStream<NATSMessage>

    init(connection: NATSConnection, subject: String, queue: String?, bufferLimit: Int) throws {
        self.subject = subject
        self.queue = queue
        let (stream, continuation) = AsyncStream.makeStream(of: NATSMessage.self, bufferingPolicy: .bufferingOldest(bufferLimit))
        self.stream = stream
        let sink = SubscriptionSink(continuation: continuation, logger: connection.logger, subject: subject)

        // Retained for nats.c; released by the completion callback, after the last delivery.
        let closure = Unmanaged.passRetained(sink).toOpaque()
        let handler: natsMsgHandler = { _, _, message, closure in
            guard let message else { return }
            defer { natsMsg_Destroy(message) }
            Unmanaged<SubscriptionSink>.fromOpaque(closure!).takeUnretainedValue().deliver(NATSMessage(copying: message))
        }
        var subscription: OpaquePointer?
        let status =
            if let queue {
                natsConnection_QueueSubscribe(&subscription, connection.pointer.raw, subject, queue, handler, closure)
            } else {
                natsConnection_Subscribe(&subscription, connection.pointer.raw, subject, handler, closure)
            }
        guard status == NATS_OK, let subscription else {
            Unmanaged<SubscriptionSink>.fromOpaque(closure).release()
            continuation.finish()
            throw NATSError(status: status, operation: "subscribe to \(subject)")
        }
        let completion: natsOnCompleteCB = { closure in
            let sink = Unmanaged<SubscriptionSink>.fromOpaque(closure!)
            sink.takeUnretainedValue().continuation.finish()
            sink.release()
        }
        if natsSubscription_SetOnCompleteCB(subscription, completion, closure) != NATS_OK {
            completion(closure)
        }
        self.pointer = CPointer(raw: subscription)
    }

    deinit {
        natsSubscription_Destroy(pointer.raw)
    }

    public func makeAsyncIterator() -> AsyncStream<NATSMessage>.Iterator {
        stream.makeAsyncIterator()
    }

    /// Removes interest at once; messages already buffered are still read.
    public func unsubscribe() {
        _ = natsSubscription_Unsubscribe(pointer.raw)
    }

    /// Starts draining without waiting: interest is removed, and the sequence ends once every
    /// message the server had already sent has been delivered.
    public func beginDrain(timeout: Duration = .seconds(10)) {
        _ = natsSubscription_DrainTimeout(pointer.raw, timeout.milliseconds)
    }

    /// Removes interest and waits until every message the server had sent has been delivered.
    public func drain(timeout: Duration = .seconds(10)) async {
        let pointer = self.pointer
        guard natsSubscription_DrainTimeout(pointer.raw, timeout.milliseconds) == NATS_OK else { return }
        _ = try? await Blocking.run {
            natsSubscription_WaitForDrainCompletion(pointer.raw, timeout.milliseconds)
        }
    }
}

final class SubscriptionSink: Sendable {
    let continuation: AsyncStream<NATSMessage>.Continuation
    let logger: Logger
    let subject: String

    init(continuation: AsyncStream<NATSMessage>.Continuation, logger: Logger, subject: String) {
        self.continuation = continuation
        self.logger = logger
        self.subject = subject
    }

    func deliver(_ message: NATSMessage) {
        if case .dropped = continuation.yield(message) {
            logger.warning("slow consumer: message dropped", metadata: ["subject": "\(subject)"])
        }
    }
}
