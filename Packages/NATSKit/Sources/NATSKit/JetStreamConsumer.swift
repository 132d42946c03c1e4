import CNATS
import Synchronization

/// A durable pull consumer. `fetch` asks for up to `batch` messages and waits at most `timeout`
/// for the first; each message is acknowledged on its own, after its effect is committed.
public final class JetStreamConsumer: Sendable {
    public let name: String
    private let subscription: CPointer
    private let jetStream: JetStream
    private let fetching = Mutex(false)

    init(subscription: CPointer, jetStream: JetStream, name: String) {
        self.subscription = subscription
        self.jetStream = jetStream
        self.name = name
    }

    deinit {
        // The consumer was created apart from this subscription, so destroying the subscription
        // leaves the durable consumer (and its position) on the server.
        natsSubscription_Destroy(subscription.raw)
    }

    /// Stops this subscription (the durable consumer stays on the server). A connection drains
    /// only once its subscriptions have: call this before draining, or the drain waits out its
    /// timeout.
    public func unsubscribe() {
        _ = natsSubscription_Unsubscribe(subscription.raw)
    }

    /// Returns the messages available within `timeout`, possibly none. One fetch at a time.
    public func fetch(batch: Int = 64, timeout: Duration = .seconds(1)) async throws -> [JetStreamMessage] {
        let alreadyFetching = fetching.withLock { fetching in
            defer { fetching = true }
            return fetching
        }
        guard !alreadyFetching else { throw NATSError(.invalidArgument, "consumer \(name): one fetch at a time") }
        defer { fetching.withLock { $0 = false } }

        let subscription = self.subscription
        let connection = jetStream.connection
        return try await Blocking.run {
            var list = natsMsgList()
            var errorCode = jsErrCode(0)
            let status = natsSubscription_Fetch(&list, subscription.raw, Int32(batch), timeout.milliseconds, &errorCode)
            defer { natsMsgList_Destroy(&list) }
            if status == NATS_TIMEOUT { return [] }
            try check(status, errorCode, "fetch")
            return (0..<Int(list.Count)).compactMap { index in
                list.Msgs[index].flatMap { JetStreamMessage(copying: $0, connection: connection) }
            }
        }
    }
}

/// A message delivered by a JetStream consumer, with what is needed to acknowledge it.
public struct JetStreamMessage: Sendable {
    public let subject: String
    public let headers: NATSHeaders
    public let payload: [UInt8]
    public let streamSequence: UInt64
    public let consumerSequence: UInt64
    /// 1 on the first delivery, more on redeliveries.
    public let deliveryCount: UInt64
    /// Messages still waiting for this consumer after this one.
    public let pending: UInt64
    /// Unix nanoseconds at which the stream stored the message.
    public let timestamp: Int64
    private let ackSubject: String
    private let connection: NATSConnection

    init?(copying message: OpaquePointer, connection: NATSConnection) {
        var metadata: UnsafeMutablePointer<jsMsgMetaData>?
        guard natsMsg_GetMetaData(&metadata, message) == NATS_OK, let metadata, let reply = natsMsg_GetReply(message) else {
            return nil
        }
        defer { jsMsgMetaData_Destroy(metadata) }
        let copy = NATSMessage(copying: message)
        subject = copy.subject
        headers = copy.headers
        payload = copy.payload
        streamSequence = metadata.pointee.Sequence.Stream
        consumerSequence = metadata.pointee.Sequence.Consumer
        deliveryCount = metadata.pointee.NumDelivered
        pending = metadata.pointee.NumPending
        timestamp = metadata.pointee.Timestamp
        ackSubject = String(cString: reply)
        self.connection = connection
    }

    /// Acknowledges and waits for the server to confirm it (a double ack): when this returns the
    /// message will not be delivered again.
    public func ack(timeout: Duration = .seconds(5)) async throws {
        _ = try await connection.request(Array("+ACK".utf8), to: ackSubject, timeout: timeout)
    }

    /// Asks for redelivery, after `delay` when given.
    public func nak(delay: Duration? = nil) throws {
        let body = delay.map { "-NAK {\"delay\": \($0.nanoseconds)}" } ?? "-NAK"
        try connection.publish(Array(body.utf8), to: ackSubject)
    }

    /// Resets the ack timer: the work is still going on.
    public func inProgress() throws {
        try connection.publish(Array("+WPI".utf8), to: ackSubject)
    }

    /// Never deliver this message again (it can never succeed).
    public func terminate() throws {
        try connection.publish(Array("+TERM".utf8), to: ackSubject)
    }
}
