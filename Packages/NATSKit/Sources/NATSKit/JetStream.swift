import CNATS

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// JetStream on one connection: publish with an ack, streams, durable pull consumers and
/// key-value buckets.
public final class JetStream: Sendable {
    public let connection: NATSConnection
    let context: CPointer
    let timeout: Duration

    init(connection: NATSConnection, timeout: Duration) throws {
        var options = jsOptions()
        try check(jsOptions_Init(&options), "init JetStream options")
        options.Wait = timeout.milliseconds
        var context: OpaquePointer?
        try check(natsConnection_JetStream(&context, connection.pointer.raw, &options), "open JetStream context")
        self.context = CPointer(raw: context!)
        self.connection = connection
        self.timeout = timeout
    }

    deinit {
        jsCtx_Destroy(context.raw)
    }

    // MARK: Publish

    public struct PublishAck: Sendable, Equatable, Decodable {
        public var stream: String
        public var sequence: UInt64
        /// True when the server had already stored a message with the same message ID within the
        /// stream's duplicate window: the retry was deduplicated.
        public var duplicate: Bool

        enum CodingKeys: String, CodingKey {
            case stream
            case sequence = "seq"
            case duplicate
        }

        init(stream: String, sequence: UInt64, duplicate: Bool) {
            self.stream = stream
            self.sequence = sequence
            self.duplicate = duplicate
        }

        /// The usual acknowledgement, `{"stream":"S","seq":N}` with perhaps `"duplicate":true`,
        /// read without a JSON decoder (it costs more than the rest of a key-value write); nil
        /// for anything else, which goes to the decoder.
        init?(fastParsing payload: [UInt8]) {
            guard payload.first == UInt8(ascii: "{"), payload.last == UInt8(ascii: "}"),
                let stream = Self.stringValue(of: Array(#""stream":""#.utf8), in: payload),
                let sequence = Self.integerValue(of: Array(#""seq":"#.utf8), in: payload)
            else { return nil }
            let fields = payload.reduce(0) { $0 + ($1 == UInt8(ascii: ":") ? 1 : 0) }
            let duplicate = Self.range(of: Array(#""duplicate":true"#.utf8), in: payload) != nil
            // Only the fields named above: anything more (an error, a domain) is left to the decoder.
            guard fields == (duplicate ? 3 : 2) else { return nil }
            self.init(stream: stream, sequence: sequence, duplicate: duplicate)
        }

        private static func range(of needle: [UInt8], in haystack: [UInt8]) -> Range<Int>? {
            guard haystack.count >= needle.count else { return nil }
            for start in 0...(haystack.count - needle.count) where haystack[start] == needle[0] {
                if haystack[start..<(start + needle.count)].elementsEqual(needle) { return start..<(start + needle.count) }
            }
            return nil
        }

        private static func stringValue(of key: [UInt8], in payload: [UInt8]) -> String? {
            guard let found = range(of: key, in: payload),
                let end = payload[found.upperBound...].firstIndex(of: UInt8(ascii: "\""))
            else { return nil }
            let value = payload[found.upperBound..<end]
            guard !value.contains(UInt8(ascii: "\\")) else { return nil }
            return String(decoding: value, as: UTF8.self)
        }

        private static func integerValue(of key: [UInt8], in payload: [UInt8]) -> UInt64? {
            guard let found = range(of: key, in: payload) else { return nil }
            let digits = payload[found.upperBound...].prefix { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }
            guard !digits.isEmpty, digits.count <= 19 else { return nil }
            return UInt64(String(decoding: digits, as: UTF8.self))
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            stream = try container.decode(String.self, forKey: .stream)
            sequence = try container.decode(UInt64.self, forKey: .sequence)
            duplicate = try container.decodeIfPresent(Bool.self, forKey: .duplicate) ?? false
        }
    }

    private struct APIErrorReply: Decodable {
        struct Detail: Decodable {
            var code: Int
            var errCode: Int?
            var description: String?

            enum CodingKeys: String, CodingKey {
                case code
                case errCode = "err_code"
                case description
            }
        }
        var error: Detail
    }

    /// Publishes and waits for the stream's acknowledgement: when this returns the message is
    /// stored. `messageID` (header `Nats-Msg-Id`) makes a retry idempotent.
    ///
    /// This is a request on the connection's inbox rather than nats.c's blocking `js_PublishMsg`,
    /// so that many publishes can be in flight without a thread each.
    public func publish(
        _ payload: [UInt8],
        to subject: String,
        headers: NATSHeaders = [:],
        messageID: String? = nil,
        timeout: Duration? = nil
    ) async throws -> PublishAck {
        var headers = headers
        if let messageID { headers["Nats-Msg-Id"] = messageID }
        let reply: NATSMessage
        do {
            reply = try await connection.request(payload, to: subject, headers: headers, timeout: timeout ?? self.timeout)
        } catch let error as NATSError where error.kind == .noResponders {
            throw NATSError(.noResponders, "no stream stores \(subject)")
        }
        if let ack = PublishAck(fastParsing: reply.payload) { return ack }
        let decoder = JSONDecoder()
        if let failure = try? decoder.decode(APIErrorReply.self, from: Data(reply.payload)) {
            throw NATSError(
                .jetStream(errorCode: failure.error.errCode ?? 0),
                "publish to \(subject): \(failure.error.description ?? "error \(failure.error.code)")"
            )
        }
        do {
            return try decoder.decode(PublishAck.self, from: Data(reply.payload))
        } catch {
            throw NATSError(.jetStream(errorCode: 0), "publish to \(subject): unreadable acknowledgement")
        }
    }

    // MARK: Streams

    public struct StreamConfiguration: Sendable {
        public enum Retention: Sendable { case limits, interest, workQueue }
        public enum Storage: Sendable { case file, memory }

        public var name: String
        public var subjects: [String]
        public var retention: Retention
        public var storage: Storage
        /// nil: the connection's `jetStreamReplicas`.
        public var replicas: Int?
        /// 0 keeps messages forever (within the other limits).
        public var maxAge: Duration
        /// Window within which a repeated message ID is dropped as a duplicate.
        public var duplicateWindow: Duration
        public var maxMessageSize: Int32
        /// 0: no limit. Past it, the subject's oldest message goes.
        public var maxMessagesPerSubject: Int64
        /// No single message may be deleted, nor the stream purged, through the API: what it
        /// holds goes only by its limits (an append-only record).
        public var appendOnly: Bool

        public init(
            name: String,
            subjects: [String],
            retention: Retention = .limits,
            storage: Storage = .file,
            replicas: Int? = nil,
            maxAge: Duration = .zero,
            duplicateWindow: Duration = .seconds(120),
            maxMessageSize: Int32 = 1 << 20,
            maxMessagesPerSubject: Int64 = 0,
            appendOnly: Bool = false
        ) {
            self.name = name
            self.subjects = subjects
            self.retention = retention
            self.storage = storage
            self.replicas = replicas
            self.maxAge = maxAge
            self.duplicateWindow = duplicateWindow
            self.maxMessageSize = maxMessageSize
            self.maxMessagesPerSubject = maxMessagesPerSubject
            self.appendOnly = appendOnly
        }
    }

    /// Creates the stream, or brings an existing one to this configuration.
    public func ensureStream(_ configuration: StreamConfiguration) async throws {
        let context = self.context
        let replicas = configuration.replicas ?? connection.configuration.jetStreamReplicas
        try await Blocking.run {
            let name = strdup(configuration.name)
            let subjects = configuration.subjects.map { UnsafePointer<CChar>(strdup($0)) }
            defer {
                free(name)
                for subject in subjects { free(UnsafeMutablePointer(mutating: subject)) }
            }
            var subjectPointers: [UnsafePointer<CChar>?] = subjects
            return try subjectPointers.withUnsafeMutableBufferPointer { subjectBuffer in
                var config = jsStreamConfig()
                try check(jsStreamConfig_Init(&config), "init stream config")
                config.Name = UnsafePointer(name)
                config.Subjects = subjectBuffer.baseAddress
                config.SubjectsLen = Int32(subjectBuffer.count)
                config.Retention =
                    switch configuration.retention {
                    case .limits: js_LimitsPolicy
                    case .interest: js_InterestPolicy
                    case .workQueue: js_WorkQueuePolicy
                    }
                config.Storage = configuration.storage == .file ? js_FileStorage : js_MemoryStorage
                config.Replicas = Int64(replicas)
                config.MaxAge = configuration.maxAge.nanoseconds
                config.Duplicates = configuration.duplicateWindow.nanoseconds
                config.MaxMsgSize = configuration.maxMessageSize
                if configuration.maxMessagesPerSubject > 0 { config.MaxMsgsPerSubject = configuration.maxMessagesPerSubject }
                config.DenyDelete = configuration.appendOnly
                config.DenyPurge = configuration.appendOnly
                var errorCode = jsErrCode(0)
                let status = js_AddStream(nil, context.raw, &config, nil, &errorCode)
                if status == NATS_OK { return }
                if errorCode == JSStreamNameExistErr {
                    var updateError = jsErrCode(0)
                    try check(js_UpdateStream(nil, context.raw, &config, nil, &updateError), updateError, "update stream \(configuration.name)")
                    return
                }
                try check(status, errorCode, "add stream \(configuration.name)")
            }
        }
    }

    /// Throws unless the stream `name` exists. For a service that publishes to or reads a stream
    /// another service owns: only the owner may create or change it (OPS-4), so the others wait
    /// for it at start.
    public func requireStream(_ name: String) async throws {
        let context = self.context
        try await Blocking.run {
            var info: UnsafeMutablePointer<jsStreamInfo>?
            var errorCode = jsErrCode(0)
            try check(js_GetStreamInfo(&info, context.raw, name, nil, &errorCode), errorCode, "find stream \(name)")
            jsStreamInfo_Destroy(info)
        }
    }

    /// The newest message of `stream` on `subject`, nil when there is none.
    public func lastMessage(stream: String, subject: String) async throws -> NATSMessage? {
        let context = self.context
        return try await Blocking.run {
            var message: OpaquePointer?
            var errorCode = jsErrCode(0)
            let status = js_GetLastMsg(&message, context.raw, stream, subject, nil, &errorCode)
            if status == NATS_NOT_FOUND { return nil }
            try check(status, errorCode, "get the last message of \(stream) on \(subject)")
            defer { natsMsg_Destroy(message) }
            return message.map { NATSMessage(copying: $0) }
        }
    }

    public func deleteStream(_ name: String) async throws {
        let context = self.context
        try await Blocking.run {
            var errorCode = jsErrCode(0)
            try check(js_DeleteStream(context.raw, name, nil, &errorCode), errorCode, "delete stream \(name)")
        }
    }

    // MARK: Consumers

    public struct ConsumerConfiguration: Sendable {
        public var durableName: String
        public var filterSubject: String
        /// How long the server waits for an ack before it redelivers.
        public var ackWait: Duration
        /// -1: no limit.
        public var maxDeliver: Int
        public var maxAckPending: Int

        public init(durableName: String, filterSubject: String, ackWait: Duration = .seconds(30), maxDeliver: Int = -1, maxAckPending: Int = 1000) {
            self.durableName = durableName
            self.filterSubject = filterSubject
            self.ackWait = ackWait
            self.maxDeliver = maxDeliver
            self.maxAckPending = maxAckPending
        }
    }

    /// A durable pull consumer on `stream`, created on the server if it is not there yet and
    /// bound to. It outlives this process: a restarted consumer resumes where the last stopped,
    /// and what was delivered but never acknowledged comes again after `ackWait`.
    public func durableConsumer(stream: String, _ configuration: ConsumerConfiguration) async throws -> JetStreamConsumer {
        let context = self.context
        let subscription = try await Blocking.run {
            try configuration.durableName.withCString { durable in
                try configuration.filterSubject.withCString { filter in
                    var config = jsConsumerConfig()
                    try check(jsConsumerConfig_Init(&config), "init consumer config")
                    config.Durable = durable
                    config.FilterSubject = filter
                    config.AckPolicy = js_AckExplicit
                    config.DeliverPolicy = js_DeliverAll
                    config.AckWait = configuration.ackWait.nanoseconds
                    config.MaxDeliver = Int64(configuration.maxDeliver)
                    config.MaxAckPending = Int64(configuration.maxAckPending)
                    var errorCode = jsErrCode(0)
                    if js_AddConsumer(nil, context.raw, stream, &config, nil, &errorCode) != NATS_OK {
                        var updateError = jsErrCode(0)
                        try check(
                            js_UpdateConsumer(nil, context.raw, stream, &config, nil, &updateError),
                            updateError,
                            "create consumer \(configuration.durableName) on \(stream)"
                        )
                    }
                    return try stream.withCString { streamName in
                        var options = jsSubOptions()
                        try check(jsSubOptions_Init(&options), "init subscribe options")
                        options.Stream = streamName
                        options.Consumer = durable
                        options.ManualAck = true
                        var subscription: OpaquePointer?
                        var subscribeError = jsErrCode(0)
                        try check(
                            js_PullSubscribe(&subscription, context.raw, filter, durable, nil, &options, &subscribeError),
                            subscribeError,
                            "bind consumer \(configuration.durableName)"
                        )
                        return CPointer(raw: subscription!)
                    }
                }
            }
        }
        return JetStreamConsumer(subscription: subscription, jetStream: self, name: configuration.durableName)
    }

    public func deleteConsumer(stream: String, name: String) async throws {
        let context = self.context
        try await Blocking.run {
            var errorCode = jsErrCode(0)
            try check(js_DeleteConsumer(context.raw, stream, name, nil, &errorCode), errorCode, "delete consumer \(name)")
        }
    }
}
