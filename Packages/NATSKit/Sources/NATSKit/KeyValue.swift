import CNATS
import Dispatch
import Synchronization

public struct KeyValueEntry: Sendable, Equatable {
    public enum Operation: Sendable, Equatable { case put, delete, purge }

    public var bucket: String
    public var key: String
    public var value: [UInt8]
    public var revision: UInt64
    public var operation: Operation
    /// Unix nanoseconds; 0 when read by `latest`, whose direct get does not carry it.
    public var created: Int64

    public init(bucket: String, key: String, value: [UInt8], revision: UInt64, operation: Operation, created: Int64) {
        self.bucket = bucket
        self.key = key
        self.value = value
        self.revision = revision
        self.operation = operation
        self.created = created
    }

    init(copying entry: OpaquePointer) {
        bucket = String(cString: kvEntry_Bucket(entry))
        key = String(cString: kvEntry_Key(entry))
        let length = Int(kvEntry_ValueLen(entry))
        if length > 0, let bytes = kvEntry_Value(entry) {
            value = Array(UnsafeRawBufferPointer(start: bytes, count: length))
        } else {
            value = []
        }
        revision = kvEntry_Revision(entry)
        created = kvEntry_Created(entry)
        operation =
            switch kvEntry_Operation(entry) {
            case kvOp_Delete: .delete
            case kvOp_Purge: .purge
            default: .put
            }
    }
}

extension KeyValueEntry.Operation {
    /// From a stored message's `KV-Operation` header (none on a put).
    init(header: String?) {
        self =
            switch header {
            case "DEL": .delete
            case "PURGE": .purge
            default: .put
            }
    }
}

public enum KeyValueWatchEvent: Sendable, Equatable {
    case entry(KeyValueEntry)
    /// Every value present when the watch started has been delivered; what follows are updates.
    case caughtUp
}

extension JetStream {
    public struct KeyValueConfiguration: Sendable {
        public var bucket: String
        /// Revisions kept per key (1 to 64).
        public var history: UInt8
        /// 0 keeps entries forever.
        public var ttl: Duration
        public var maxValueSize: Int32
        /// nil: the connection's `jetStreamReplicas`.
        public var replicas: Int?
        public var storage: StreamConfiguration.Storage

        public init(
            bucket: String,
            history: UInt8 = 1,
            ttl: Duration = .zero,
            maxValueSize: Int32 = 64 * 1024,
            replicas: Int? = nil,
            storage: StreamConfiguration.Storage = .file
        ) {
            self.bucket = bucket
            self.history = history
            self.ttl = ttl
            self.maxValueSize = maxValueSize
            self.replicas = replicas
            self.storage = storage
        }
    }

    /// Creates the bucket if it does not exist, or brings an existing one to this configuration
    /// (history, TTL, value size and replicas; storage cannot change), and opens it.
    public func ensureKeyValue(_ configuration: KeyValueConfiguration) async throws -> KeyValueBucket {
        let context = self.context
        let replicas = configuration.replicas ?? connection.configuration.jetStreamReplicas
        let store = try await Blocking.run {
            try configuration.bucket.withCString { bucket in
                var config = kvConfig()
                try check(kvConfig_Init(&config), "init key-value config")
                config.Bucket = bucket
                config.History = configuration.history
                config.TTL = configuration.ttl.nanoseconds
                config.MaxValueSize = configuration.maxValueSize
                config.Replicas = Int32(replicas)
                config.StorageType = configuration.storage == .file ? js_FileStorage : js_MemoryStorage
                var store: OpaquePointer?
                if js_CreateKeyValue(&store, context.raw, &config) != NATS_OK {
                    try Self.updateKeyValueStream(context: context, configuration, replicas: replicas)
                    try check(js_KeyValue(&store, context.raw, bucket), "open key-value bucket \(configuration.bucket)")
                }
                return CPointer(raw: store!)
            }
        }
        return KeyValueBucket(store: store, jetStream: self, name: configuration.bucket)
    }

    /// A bucket is the stream `KV_<bucket>`: its limits are the stream's.
    private static func updateKeyValueStream(context: CPointer, _ configuration: KeyValueConfiguration, replicas: Int) throws {
        let stream = "KV_\(configuration.bucket)"
        var info: UnsafeMutablePointer<jsStreamInfo>?
        var errorCode = jsErrCode(0)
        try check(js_GetStreamInfo(&info, context.raw, stream, nil, &errorCode), errorCode, "create key-value bucket \(configuration.bucket)")
        defer { jsStreamInfo_Destroy(info) }
        guard let config = info?.pointee.Config else { throw NATSError(.notFound, "key-value bucket \(configuration.bucket) has no configuration") }
        config.pointee.MaxMsgsPerSubject = Int64(configuration.history)
        config.pointee.MaxAge = configuration.ttl.nanoseconds
        config.pointee.MaxMsgSize = configuration.maxValueSize
        config.pointee.Replicas = Int64(replicas)
        var updateError = jsErrCode(0)
        try check(js_UpdateStream(nil, context.raw, config, nil, &updateError), updateError, "update key-value bucket \(configuration.bucket)")
    }

    /// Opens an existing bucket.
    public func keyValue(_ bucket: String) async throws -> KeyValueBucket {
        let context = self.context
        let store = try await Blocking.run {
            var store: OpaquePointer?
            try check(js_KeyValue(&store, context.raw, bucket), "open key-value bucket \(bucket)")
            return CPointer(raw: store!)
        }
        return KeyValueBucket(store: store, jetStream: self, name: bucket)
    }

    public func deleteKeyValue(_ bucket: String) async throws {
        let context = self.context
        try await Blocking.run {
            try check(js_DeleteKeyValue(context.raw, bucket), "delete key-value bucket \(bucket)")
        }
    }
}

/// A JetStream key-value bucket. `update` is a compare-and-set on the key's revision: the basis
/// of state that several replicas share without a lock.
public final class KeyValueBucket: Sendable {
    public let name: String
    private let store: CPointer
    // nats.c's store refers to its JetStream context: keep it alive as long as the store.
    let jetStream: JetStream

    init(store: CPointer, jetStream: JetStream, name: String) {
        self.store = store
        self.jetStream = jetStream
        self.name = name
    }

    deinit {
        kvStore_Destroy(store.raw)
    }

    /// The current entry, or nil when the key is absent or deleted.
    public func get(_ key: String) async throws -> KeyValueEntry? {
        guard let entry = try await latest(key), entry.operation == .put else { return nil }
        return entry
    }

    /// The key's latest entry, delete and purge markers included: the revision a compare-and-set
    /// must name after a delete. Nil when the key has never been written (or was purged away).
    ///
    /// A direct get on the connection's inbox (JetStream's `$JS.API.DIRECT.GET`): no thread is
    /// blocked while the server answers, so many reads can be in flight at once.
    public func latest(_ key: String) async throws -> KeyValueEntry? {
        try validateKey(key)
        let subject = "$KV.\(name).\(key)"
        let reply: NATSMessage
        do {
            reply = try await jetStream.connection.request([], to: "$JS.API.DIRECT.GET.KV_\(name).\(subject)", timeout: jetStream.timeout)
        } catch let error as NATSError where error.kind == .noResponders {
            throw NATSError(.notFound, "key-value bucket \(name) does not exist or does not allow direct get")
        }
        if let status = reply.headers["Status"] {
            if status == "404" { return nil }
            throw NATSError(.jetStream(errorCode: 0), "get \(key): status \(status) \(reply.headers["Description"] ?? "")")
        }
        guard let sequence = reply.headers["Nats-Sequence"].flatMap(UInt64.init) else {
            throw NATSError(.jetStream(errorCode: 0), "get \(key): reply without a sequence")
        }
        return KeyValueEntry(
            bucket: name,
            key: key,
            value: reply.payload,
            revision: sequence,
            operation: KeyValueEntry.Operation(header: reply.headers["KV-Operation"]),
            created: 0
        )
    }

    /// Writes whatever is there; returns the new revision.
    @discardableResult
    public func put(_ key: String, _ value: [UInt8]) async throws -> UInt64 {
        try await write(key, value)
    }

    /// Writes only if the key is absent (or deleted); throws `.keyExists` otherwise.
    @discardableResult
    public func create(_ key: String, _ value: [UInt8]) async throws -> UInt64 {
        do {
            return try await write(key, value, expectedRevision: 0)
        } catch let error as NATSError where error.kind == .wrongLastRevision {
            // Deleted keys keep a marker: creating over it is an update of the marker's revision.
            if let marker = try await latest(key), marker.operation != .put {
                do {
                    return try await write(key, value, expectedRevision: marker.revision)
                } catch let error as NATSError where error.kind == .wrongLastRevision {}
            }
            throw NATSError(.keyExists, "key \(key) already exists in \(name)")
        }
    }

    /// Writes only if the key's latest revision is still `expectedRevision`; throws
    /// `.wrongLastRevision` when another writer got there first.
    @discardableResult
    public func update(_ key: String, _ value: [UInt8], expectedRevision: UInt64) async throws -> UInt64 {
        try await write(key, value, expectedRevision: expectedRevision)
    }

    /// Marks the key deleted (its history stays until it ages out).
    public func delete(_ key: String) async throws {
        _ = try await write(key, [], headers: ["KV-Operation": "DEL"])
    }

    /// JetStream's error for a failed expected-last-subject-sequence check.
    private static let wrongLastSequenceCode = 10071

    /// A publish to the bucket's stream awaited on the connection's inbox, like `latest`.
    private func write(
        _ key: String,
        _ value: [UInt8],
        expectedRevision: UInt64? = nil,
        headers: NATSHeaders = [:]
    ) async throws -> UInt64 {
        try validateKey(key)
        var headers = headers
        if let expectedRevision { headers["Nats-Expected-Last-Subject-Sequence"] = String(expectedRevision) }
        do {
            return try await jetStream.publish(value, to: "$KV.\(name).\(key)", headers: headers).sequence
        } catch let error as NATSError where error.kind == .jetStream(errorCode: Self.wrongLastSequenceCode) {
            throw NATSError(.wrongLastRevision, "\(key) in \(name) is no longer at revision \(expectedRevision ?? 0)")
        }
    }

    /// Key-value keys are subject tokens: letters, digits and `-_/=.`, no empty token.
    private func validateKey(_ key: String) throws(NATSError) {
        // One pass, no allocation: this runs on every read and write.
        var previous = UInt8(ascii: ".")
        for byte in key.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "/"), UInt8(ascii: "="):
                break
            case UInt8(ascii: ".") where previous != UInt8(ascii: "."):
                break
            default:
                throw NATSError(.invalidArgument, "invalid key \(key.debugDescription)")
            }
            previous = byte
        }
        guard previous != UInt8(ascii: ".") else { throw NATSError(.invalidArgument, "invalid key \(key.debugDescription)") }
    }

    /// Watches `keys` (a subject pattern, `>` for all): first every current value, then
    /// `.caughtUp`, then each change as it happens. Ends when the consumer stops iterating.
    public func watch(_ keys: String = ">") async throws -> AsyncThrowingStream<KeyValueWatchEvent, any Error> {
        let store = self.store
        // Starting a watch creates a consumer on the server: a blocking round trip.
        let handle = try await Blocking.run {
            var watcher: OpaquePointer?
            try check(kvStore_Watch(&watcher, store.raw, keys, nil), "watch \(keys)")
            return WatchHandle(watcher: CPointer(raw: watcher!))
        }
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: KeyValueWatchEvent.self)
        continuation.onTermination = { _ in handle.stop() }
        // kvWatcher_Next blocks: the watch holds one thread of its own for its lifetime.
        DispatchQueue(label: "natskit.kv-watch").async { [self] in
            withExtendedLifetime(self) {
                handle.run(continuation)
            }
        }
        return stream
    }
}

/// Owns a kvWatcher: stopped from any thread, destroyed exactly once by the thread that reads it.
private final class WatchHandle: Sendable {
    private let watcher: Mutex<CPointer?>

    init(watcher: CPointer) {
        self.watcher = Mutex(watcher)
    }

    func stop() {
        watcher.withLock { watcher in
            if let watcher { _ = kvWatcher_Stop(watcher.raw) }
        }
    }

    func run(_ continuation: AsyncThrowingStream<KeyValueWatchEvent, any Error>.Continuation) {
        defer {
            watcher.withLock { watcher in
                if let current = watcher { kvWatcher_Destroy(current.raw) }
                watcher = nil
            }
        }
        while let pointer = watcher.withLock({ $0 }) {
            var entry: OpaquePointer?
            let status = kvWatcher_Next(&entry, pointer.raw, 500)
            switch status {
            case NATS_OK:
                if let entry {
                    continuation.yield(.entry(KeyValueEntry(copying: entry)))
                    kvEntry_Destroy(entry)
                } else {
                    continuation.yield(.caughtUp)
                }
            case NATS_TIMEOUT:
                continue
            case NATS_ILLEGAL_STATE:
                // Stopped.
                continuation.finish()
                return
            default:
                continuation.finish(throwing: NATSError(status: status, operation: "watch"))
                return
            }
        }
    }
}
