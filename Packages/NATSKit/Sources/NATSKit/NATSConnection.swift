import CNATS
import Dispatch
public import Logging
public import ServiceLifecycle
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// nats.c's process-wide state, opened once.
private let libraryOpened: Bool = nats_Open(-1) == NATS_OK

/// A connection to NATS: publish, subscribe, request/reply, and the way into JetStream.
///
/// It is a `Service`: run it in the service group so that graceful shutdown drains it (pending
/// messages are delivered and published before the connection closes).
public final class NATSConnection: Sendable, Service {
    let pointer: CPointer
    let events: ConnectionEvents
    let responses: ResponseMux
    public let logger: Logger
    public let configuration: NATSConfiguration

    private init(pointer: CPointer, events: ConnectionEvents, responses: ResponseMux, configuration: NATSConfiguration, logger: Logger) {
        self.pointer = pointer
        self.events = events
        self.responses = responses
        self.configuration = configuration
        self.logger = logger
    }

    deinit {
        responses.destroy()
        natsConnection_Destroy(pointer.raw)
    }

    /// Connects. With `retryOnFailedConnect` the call returns while the first connection is still
    /// being attempted in the background; `isConnected` tells when it is up.
    public static func connect(_ configuration: NATSConfiguration, logger: Logger) async throws -> NATSConnection {
        guard libraryOpened else { throw NATSError(.status(0), "nats.c failed to initialise") }
        guard !configuration.servers.isEmpty else { throw NATSError(.invalidArgument, "no NATS server given") }
        let events = ConnectionEvents(logger: logger, reconnect: configuration.reconnect)
        let pointer = try await Blocking.run { try Self.makeConnection(configuration, events: events) }
        do {
            let responses = try ResponseMux(connection: pointer)
            return NATSConnection(pointer: pointer, events: events, responses: responses, configuration: configuration, logger: logger)
        } catch {
            natsConnection_Destroy(pointer.raw)
            throw error
        }
    }

    private static func makeConnection(_ configuration: NATSConfiguration, events: ConnectionEvents) throws -> CPointer {
        var options: OpaquePointer?
        try check(natsOptions_Create(&options), "create NATS options")
        guard let options else { throw NATSError(.status(0), "create NATS options") }
        defer { natsOptions_Destroy(options) }

        let servers = configuration.servers.map { strdup($0) }
        defer { for server in servers { free(server) } }
        var serverPointers = servers.map { UnsafePointer<CChar>($0) }
        try check(natsOptions_SetServers(options, &serverPointers, Int32(serverPointers.count)), "set NATS servers")
        if let name = configuration.name {
            try check(natsOptions_SetName(options, name), "set connection name")
        }
        if configuration.user != nil || configuration.password != nil {
            try check(natsOptions_SetUserInfo(options, configuration.user, configuration.password), "set NATS user")
        }
        if let credentialsFile = configuration.credentialsFile {
            try check(natsOptions_SetUserCredentialsFromFiles(options, credentialsFile, nil), "load NATS credentials \(credentialsFile)")
        }
        if let tls = configuration.tls {
            try check(natsOptions_SetSecure(options, true), "enable TLS")
            if let caFile = tls.caFile {
                try check(natsOptions_LoadCATrustedCertificates(options, caFile), "load CA \(caFile)")
            }
            if let certificate = tls.certificateFile, let key = tls.keyFile {
                try check(natsOptions_LoadCertificatesChain(options, certificate, key), "load client certificate")
            }
            if let hostname = tls.expectedHostname {
                try check(natsOptions_SetExpectedHostname(options, hostname), "set expected TLS hostname")
            }
        }
        try check(natsOptions_SetTimeout(options, configuration.connectTimeout.milliseconds), "set connect timeout")
        try check(natsOptions_SetSendAsap(options, configuration.sendAsap), "set send-asap")
        // One delivery thread for every subscription instead of one each: a request and the
        // replies it waits for are then handed over by one thread rather than woken on several.
        // Every callback NATSKit gives nats.c only hands the message on, so none holds up another.
        try check(natsOptions_UseGlobalMessageDelivery(options, true), "use global message delivery")
        try check(natsOptions_SetMaxReconnect(options, Int32(configuration.reconnect.maxAttempts)), "set max reconnect")

        // The closure is retained for nats.c and released by the closed callback, the last
        // callback nats.c makes for a connection.
        let closure = Unmanaged.passRetained(events).toOpaque()
        try check(
            natsOptions_SetCustomReconnectDelay(
                options,
                { _, attempts, closure in
                    let events = Unmanaged<ConnectionEvents>.fromOpaque(closure!).takeUnretainedValue()
                    return events.reconnect.delay(beforeAttempt: Int(attempts)).milliseconds
                },
                closure
            ),
            "set reconnect delay"
        )
        try check(
            natsOptions_SetDisconnectedCB(
                options,
                { connection, closure in
                    // Why, when nats.c knows: a stale connection, a slow consumer, the server going away.
                    var text: UnsafePointer<CChar>?
                    let status = natsConnection_GetLastError(connection, &text)
                    let reason =
                        status == NATS_OK ? "closed by the server or the network" : text.map { String(cString: $0) } ?? "status \(status.rawValue)"
                    Unmanaged<ConnectionEvents>.fromOpaque(closure!).takeUnretainedValue().logger.warning(
                        "NATS disconnected",
                        metadata: ["reason": "\(reason)"]
                    )
                },
                closure
            ),
            "set disconnected callback"
        )
        try check(
            natsOptions_SetReconnectedCB(
                options,
                { _, closure in
                    Unmanaged<ConnectionEvents>.fromOpaque(closure!).takeUnretainedValue().logger.info("NATS reconnected")
                },
                closure
            ),
            "set reconnected callback"
        )
        try check(
            natsOptions_SetClosedCB(
                options,
                { _, closure in
                    let events = Unmanaged<ConnectionEvents>.fromOpaque(closure!)
                    events.takeUnretainedValue().markClosed()
                    events.release()
                },
                closure
            ),
            "set closed callback"
        )
        try check(
            natsOptions_SetErrorHandler(
                options,
                { _, subscription, status, closure in
                    let events = Unmanaged<ConnectionEvents>.fromOpaque(closure!).takeUnretainedValue()
                    events.logger.error("NATS asynchronous error", metadata: ["status": "\(String(cString: natsStatus_GetText(status)))"])
                },
                closure
            ),
            "set error handler"
        )
        if configuration.retryOnFailedConnect {
            try check(natsOptions_SetRetryOnFailedConnect(options, true, nil, nil), "set retry on failed connect")
        }

        var connection: OpaquePointer?
        let status = natsConnection_Connect(&connection, options)
        guard status == NATS_OK || (status == NATS_NOT_YET_CONNECTED && configuration.retryOnFailedConnect), let connection else {
            // nats.c made no connection, so no closed callback will come: the retained closure is
            // left to leak rather than risk a release racing a late callback.
            throw NATSError(status: status, operation: "connect to \(configuration.servers.joined(separator: ","))")
        }
        return CPointer(raw: connection)
    }

    /// True while connected (not while connecting, reconnecting, draining or closed).
    public var isConnected: Bool {
        natsConnection_Status(pointer.raw) == NATS_CONN_STATUS_CONNECTED
    }

    public var isClosed: Bool {
        natsConnection_IsClosed(pointer.raw)
    }

    // MARK: Core NATS

    /// Publishes without waiting: nats.c buffers and its flusher sends.
    public func publish(_ payload: [UInt8], to subject: String, replyTo replySubject: String? = nil, headers: NATSHeaders = [:]) throws {
        try validateSubject(subject)
        if headers.isEmpty {
            // nats.c's PublishRequest refuses a NULL reply: plain Publish when there is none.
            let status = payload.withUnsafeBytes { bytes in
                if let replySubject {
                    natsConnection_PublishRequest(pointer.raw, subject, replySubject, bytes.baseAddress, Int32(bytes.count))
                } else {
                    natsConnection_Publish(pointer.raw, subject, bytes.baseAddress, Int32(bytes.count))
                }
            }
            try check(status, "publish to \(subject)")
        } else {
            let message = try makeMessage(subject: subject, replySubject: replySubject, headers: headers, payload: payload)
            defer { natsMsg_Destroy(message) }
            try check(natsConnection_PublishMsg(pointer.raw, message), "publish to \(subject)")
        }
    }

    /// Subscribes; a `queue` group spreads messages over its members, one member each.
    public func subscribe(to subject: String, queue: String? = nil, bufferLimit: Int = 65_536) throws -> NATSSubscription {
        try validateSubject(subject, wildcards: true)
        return try NATSSubscription(connection: self, subject: subject, queue: queue, bufferLimit: bufferLimit)
    }

    /// Sends a request and waits for the first reply, at most `timeout`. Throws `.noResponders`
    /// at once when nobody subscribes to `subject`, `.timeout` after the timeout, and
    /// `CancellationError` when the task is cancelled.
    public func request(_ payload: [UInt8], to subject: String, headers: NATSHeaders = [:], timeout: Duration) async throws -> NATSMessage {
        try validateSubject(subject)
        let (token, replySubject) = responses.nextReplySubject()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                responses.register(token, continuation, timeout: timeout, subject: subject)
                if Task.isCancelled {
                    responses.fail(token, CancellationError())
                    return
                }
                do {
                    try publish(payload, to: subject, replyTo: replySubject, headers: headers)
                } catch {
                    responses.fail(token, error)
                }
            }
        } onCancel: {
            responses.fail(token, CancellationError())
        }
    }

    /// Waits until the server has processed everything published so far.
    public func flush(timeout: Duration = .seconds(5)) async throws {
        let pointer = self.pointer
        try await Blocking.run {
            try check(natsConnection_FlushTimeout(pointer.raw, timeout.milliseconds), "flush")
        }
    }

    /// Stops taking messages, lets handlers finish what they hold, publishes what is buffered,
    /// then closes. Returns when closed (or after `timeout`, when it closes anyway).
    public func drain(timeout: Duration = .seconds(10)) async {
        if isClosed { return }
        let status = natsConnection_DrainTimeout(pointer.raw, timeout.milliseconds)
        if status != NATS_OK {
            natsConnection_Close(pointer.raw)
        }
        await events.waitUntilClosed()
    }

    /// Closes at once, dropping whatever is buffered.
    public func close() async {
        natsConnection_Close(pointer.raw)
        await events.waitUntilClosed()
    }

    /// Service: runs until graceful shutdown, then drains.
    public func run() async throws {
        try? await gracefulShutdown()
        logger.info("draining NATS connection")
        await drain()
    }

    /// JetStream on this connection.
    public func jetStream(timeout: Duration = .seconds(5)) throws -> JetStream {
        try JetStream(connection: self, timeout: timeout)
    }
}

/// Subjects are tokens of visible ASCII separated by dots; a space or control character would
/// corrupt the protocol line, and a wildcard is only meaningful in a subscription.
func validateSubject(_ subject: String, wildcards: Bool = false) throws(NATSError) {
    // One pass over the bytes: this runs on every publish and request, and splitting the
    // subject into tokens showed in the rate limiter's profile.
    let problem =
        subject.utf8.withContiguousStorageIfAvailable { subjectProblem($0, wildcards: wildcards) }
        ?? Array(subject.utf8).withUnsafeBufferPointer { subjectProblem($0, wildcards: wildcards) }
    switch problem {
    case nil: return
    case .length: throw NATSError(.invalidArgument, "invalid subject: empty or too long")
    case .token: throw NATSError(.invalidArgument, "invalid subject \(subject.debugDescription)")
    case .wildcard: throw NATSError(.invalidArgument, "wildcard in a publish subject \(subject.debugDescription)")
    }
}

private enum SubjectProblem { case length, token, wildcard }

/// Tokens separated by single dots, none empty, no space or control byte; `*` and `>` only as
/// whole tokens, and only when `wildcards` (a subscription).
private func subjectProblem(_ bytes: UnsafeBufferPointer<UInt8>, wildcards: Bool) -> SubjectProblem? {
    guard !bytes.isEmpty, bytes.count <= 1024 else { return .length }
    var tokenStart = 0
    for index in 0...bytes.count {
        guard index == bytes.count || bytes[index] == UInt8(ascii: ".") else {
            if bytes[index] <= 32 || bytes[index] == 127 { return .token }
            continue
        }
        if index == tokenStart { return .token }
        if !wildcards, index - tokenStart == 1, bytes[tokenStart] == UInt8(ascii: "*") || bytes[tokenStart] == UInt8(ascii: ">") {
            return .wildcard
        }
        tokenStart = index + 1
    }
    return nil
}

/// What nats.c's connection callbacks reach: the logger, the reconnect policy and the closed
/// state that `drain` and `close` wait for.
final class ConnectionEvents: Sendable {
    let logger: Logger
    let reconnect: NATSConfiguration.Reconnect
    private let state = Mutex<(closed: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    init(logger: Logger, reconnect: NATSConfiguration.Reconnect) {
        self.logger = logger
        self.reconnect = reconnect
    }

    func markClosed() {
        let waiters = state.withLock { state in
            state.closed = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    func waitUntilClosed() async {
        await withCheckedContinuation { continuation in
            let closed = state.withLock { state in
                if !state.closed { state.waiters.append(continuation) }
                return state.closed
            }
            if closed { continuation.resume() }
        }
    }
}
