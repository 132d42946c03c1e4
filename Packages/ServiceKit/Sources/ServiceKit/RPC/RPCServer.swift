public import Logging
import Metrics
public import NATSKit
import RampartModels
public import ServiceLifecycle
import SwiftProtobuf
import Synchronization

/// Serves an `RPCRouter` on NATS: every subject in the service's queue group so that replicas
/// share the load. Each request runs in its own child task, bounded by its deadline.
///
/// At most `maxRequestsInFlight` handlers run at once; a request beyond that is answered
/// `unavailable` at once rather than queued, so a flood costs a reply each, not unbounded memory,
/// and the caller (or another replica) can retry.
///
/// On graceful shutdown it drains its subscriptions (no new requests, those already received
/// are served) and returns once every in-flight handler has replied.
public final class RPCServer: Service, Sendable {
    let connection: NATSConnection
    let router: RPCRouter
    let queueGroup: String
    let logger: Logger
    let maxRequestsInFlight: Int
    private let inFlight = Mutex(0)
    /// Cancels each handler at its caller's deadline; swept while `run()` runs.
    private let deadlines = DeadlineWatch()
    /// Called once the subscriptions are in place, before the first request is served.
    let onListening: @Sendable () -> Void

    public init(
        connection: NATSConnection,
        router: RPCRouter,
        queueGroup: String,
        logger: Logger,
        maxRequestsInFlight: Int = 512,
        onListening: @escaping @Sendable () -> Void = {}
    ) {
        self.connection = connection
        self.router = router
        self.queueGroup = queueGroup
        self.logger = logger
        self.maxRequestsInFlight = maxRequestsInFlight
        self.onListening = onListening
    }

    public func run() async throws {
        let subscriptions = try router.routes.map { route in
            (route, try connection.subscribe(to: route.subject, queue: queueGroup))
        }
        try await connection.flush()
        onListening()
        logger.info("serving", metadata: ["subjects": .array(router.subjects.map { .string($0) })])
        await withTaskGroup(of: Void.self) { watch in
            watch.addTask { await self.deadlines.sweep() }
            await serve(subscriptions)
            // Every request has been answered: the sweep has nothing left to watch.
            watch.cancelAll()
        }
        logger.info("RPC server stopped")
    }

    private func serve(_ subscriptions: [(RPCRouter.Route, NATSSubscription)]) async {
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                for (route, subscription) in subscriptions {
                    group.addTask {
                        await withDiscardingTaskGroup { requests in
                            for await message in subscription {
                                guard self.admit() else {
                                    self.shed(message, route: route)
                                    continue
                                }
                                requests.addTask {
                                    await self.serve(message, route: route)
                                    self.inFlight.withLock { $0 -= 1 }
                                }
                            }
                        }
                    }
                }
            }
        } onGracefulShutdown: {
            for (_, subscription) in subscriptions { subscription.beginDrain() }
        }
    }

    private func admit() -> Bool {
        inFlight.withLock { count in
            guard count < maxRequestsInFlight else { return false }
            count += 1
            return true
        }
    }

    /// Refuses a request over the in-flight limit without running anything.
    private func shed(_ message: NATSMessage, route: RPCRouter.Route) {
        guard let replySubject = message.replySubject else { return }
        let requestID = message.headers[CallHeader.requestID].flatMap { CallContext.isValidToken($0, maximumLength: 128) ? $0 : nil }
        let (headers, body) = Self.errorReply(RampartError(.unavailable, "overloaded, retry later"), requestID: requestID)
        try? connection.publish(body, to: replySubject, headers: headers)
        countRequest(route, outcome: "overloaded")
    }

    func serve(_ message: NATSMessage, route: RPCRouter.Route) async {
        guard let replySubject = message.replySubject else {
            logger.warning("request without a reply subject dropped", metadata: ["subject": "\(message.subject)"])
            return
        }
        let started = ContinuousClock.now
        let outcome: String
        var replyHeaders: NATSHeaders = [:]
        let body: [UInt8]
        do {
            let context = try CallContext(headers: message.headers, requirements: route.requirements)
            // A successful reply carries no headers: nats.c then publishes it without building a
            // message (a reply's request ID is the caller's own; errors repeat it for the logs).
            do {
                body = try await Self.withDeadline(context, watch: deadlines) { try await route.handle(message.payload, context) }
                outcome = "ok"
            } catch let error as RampartError {
                (replyHeaders, body) = Self.errorReply(error, requestID: context.requestID)
                outcome = error.code.name
            } catch {
                logger.error(
                    "handler failed",
                    metadata: ["subject": "\(route.subject)", "request_id": "\(context.requestID)", "error": "\(loggable(error))"]
                )
                (replyHeaders, body) = Self.errorReply(.internalError(), requestID: context.requestID)
                outcome = "internal"
            }
        } catch {
            // The call context itself was invalid: say which header, serve nothing.
            (replyHeaders, body) = Self.errorReply(error, requestID: nil)
            outcome = error.code.name
        }
        do {
            try connection.publish(body, to: replySubject, headers: replyHeaders)
        } catch {
            logger.error("reply failed", metadata: ["subject": "\(route.subject)", "error": "\(loggable(error))"])
        }
        countRequest(route, outcome: outcome)
        durationTimer(route).recordInterval(since: started)
    }

    /// Metric handles, made once: the factory validates names and takes a lock on each lookup.
    private struct CounterKey: Hashable {
        var subject: String
        var outcome: String
    }
    private let counters = Mutex<[CounterKey: Counter]>([:])
    private let timers = Mutex<[String: Timer]>([:])

    /// `rampart_rpc_requests_total{subject, outcome}`: served, refused (by error code) or shed.
    private func countRequest(_ route: RPCRouter.Route, outcome: String) {
        let counter = counters.withLock { counters in
            let key = CounterKey(subject: route.subject, outcome: outcome)
            if let counter = counters[key] { return counter }
            let counter = Counter(label: "rampart_rpc_requests_total", dimensions: [("subject", route.subject), ("outcome", outcome)])
            counters[key] = counter
            return counter
        }
        counter.increment()
    }

    /// `rampart_rpc_request_duration_seconds{subject}`.
    private func durationTimer(_ route: RPCRouter.Route) -> Timer {
        timers.withLock { timers in
            if let timer = timers[route.subject] { return timer }
            let timer = Timer(label: "rampart_rpc_request_duration_seconds", dimensions: [("subject", route.subject)], preferredDisplayUnit: .seconds)
            timers[route.subject] = timer
            return timer
        }
    }

    static func errorReply(_ error: RampartError, requestID: String?) -> (NATSHeaders, [UInt8]) {
        var headers: NATSHeaders = [CallHeader.error: error.code.name]
        if let requestID { headers[CallHeader.requestID] = requestID }
        return (headers, (try? error.proto(requestID: requestID).serializedBytes()) ?? [])
    }

    /// The longest any handler may run, whatever deadline the caller asked for: a far-future
    /// `Rampart-Deadline` must not let a request hold an in-flight slot indefinitely.
    public static let maximumHandlerTime = Duration.seconds(60)

    /// Runs `body`, cancelling it once the caller's deadline (or `limit`) has passed, and then
    /// answering `deadline_exceeded`: nobody waits for the answer any more.
    static func withDeadline(
        _ context: CallContext,
        limit: Duration = maximumHandlerTime,
        watch: DeadlineWatch,
        _ body: @escaping @Sendable () async throws -> [UInt8]
    ) async throws -> [UInt8] {
        let remaining = min(context.remaining, limit)
        guard remaining > .zero else { throw RampartError(.deadlineExceeded, "deadline passed before the request was served") }
        return try await watch.run(until: .now + remaining, body)
    }
}

extension Timer {
    fileprivate func recordInterval(since start: ContinuousClock.Instant) {
        let elapsed = ContinuousClock.now - start
        recordNanoseconds(elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
    }
}
