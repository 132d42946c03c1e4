public import Logging
public import NATSKit
public import RampartModels

#if canImport(FoundationEssentials)
import FoundationEssentials
import SwiftProtobuf
#else
import Foundation
#endif

/// Publishes audit events (SPEC AUD-1, AUD-2) to the `RAMPART_AUDIT` stream and waits until
/// JetStream has stored them. The event ID is the message ID: a publish retried after a lost
/// acknowledgement is stored once.
public struct AuditPublisher: Sendable {
    /// The stream, which `audit` alone creates and configures (NATS lets no other service
    /// change it); publishers wait for it at start (`requireStream`).
    public static let stream = JetStream.StreamConfiguration(
        name: Subjects.auditStream,
        subjects: [Subjects.auditAll],
        // `audit` consumes and acknowledges within seconds; a week covers a long outage of it.
        maxAge: .seconds(7 * 24 * 3600),
        duplicateWindow: .seconds(120),
        maxMessageSize: 64 * 1024
    )

    private let jetStream: JetStream
    /// Whose events these are: the subject names it, and `audit` checks the action against it.
    private let service: ServiceName
    private let logger: Logger
    /// Publish attempts before giving up; each retry keeps the event ID.
    static let attempts = 3

    public init(jetStream: JetStream, service: ServiceName, logger: Logger) {
        self.jetStream = jetStream
        self.service = service
        self.logger = logger
    }

    /// Throws until `audit` has created the stream: called by each publisher at start-up.
    public func requireStream() async throws {
        try await jetStream.requireStream(Subjects.auditStream)
    }

    /// Stores `event`, filling in its ID and time when empty. Throws `RampartError` when the
    /// event is malformed or JetStream did not acknowledge it after retries.
    @discardableResult
    public func publish(_ event: Rampart_V1_AuditEvent) async throws -> Rampart_V1_AuditEvent {
        var event = event
        if event.id.isEmpty { event.id = UUID().uuidString.lowercased() }
        if event.occurredAtMs == 0 { event.occurredAtMs = WallClock.milliseconds() }
        try Self.validate(event)
        guard let action = AuditAction(rawValue: event.action), action.publishers.contains(service) else {
            throw RampartError(.invalidArgument, "\(service.rawValue) does not record \(event.action)", details: ["field": "action"])
        }
        let tenant = event.tenantID.isEmpty ? nil : TenantID(event.tenantID)
        let payload: [UInt8] = try event.serializedBytes()
        var lastError: (any Error)?
        for attempt in 1...Self.attempts {
            do {
                _ = try await jetStream.publish(payload, to: Subjects.audit(tenant: tenant, by: service), messageID: event.id)
                return event
            } catch {
                lastError = error
                logger.warning("audit publish failed", metadata: ["event": "\(event.id)", "attempt": "\(attempt)", "error": "\(loggable(error))"])
                try? await Task.sleep(for: .milliseconds(50 * attempt))
            }
        }
        logger.error(
            "audit event not stored",
            metadata: ["event": "\(event.id)", "action": "\(event.action)", "error": "\(lastError.map(loggable) ?? "")"]
        )
        throw RampartError(.unavailable, "the audit log is unavailable")
    }

    /// Stores `event` as `publish` does, for an action already done: a failure is logged and
    /// neither undoes the action nor fails its caller.
    public func record(_ event: Rampart_V1_AuditEvent) async {
        do {
            try await publish(event)
        } catch let error as RampartError where error.code == .unavailable {
            // `publish` logged the event it could not store.
        } catch {
            logger.error("audit event refused", metadata: ["action": "\(event.action)", "error": "\(loggable(error))"])
        }
    }

    /// Whether `subject` is where `event` may arrive: its own tenant's subject (or the
    /// platform's), under the name of a service that records its action. NATS lets each service
    /// publish under its own name alone, so this binds what a credential can write.
    public static func isAuthentic(_ event: Rampart_V1_AuditEvent, on subject: String) -> Bool {
        guard let action = AuditAction(rawValue: event.action) else { return false }
        let tenant = event.tenantID.isEmpty ? nil : TenantID(event.tenantID)
        if !event.tenantID.isEmpty && tenant == nil { return false }
        return action.publishers.contains { subject == Subjects.audit(tenant: tenant, by: $0) }
    }

    /// What every stored event must satisfy; `audit` checks it again on arrival.
    public static func validate(_ event: Rampart_V1_AuditEvent) throws(RampartError) {
        guard UUID(uuidString: event.id) != nil else {
            throw RampartError(.invalidArgument, "audit event id must be a UUID", details: ["field": "id"])
        }
        guard event.tenantID.isEmpty || TenantID(event.tenantID) != nil else {
            throw RampartError(.invalidArgument, "audit event tenant_id must be a tenant ID", details: ["field": "tenant_id"])
        }
        guard AuditAction(rawValue: event.action) != nil else {
            throw RampartError(.invalidArgument, "unknown audit action \(event.action.prefix(64).debugDescription)", details: ["field": "action"])
        }
        guard event.actor.kind != .unspecified, event.outcome != .unspecified else {
            throw RampartError(.invalidArgument, "audit event needs an actor and an outcome", details: ["field": "actor"])
        }
    }
}

extension Rampart_V1_AuditActor {
    /// The actor a call context names.
    public init(principal: Principal) {
        self.init()
        switch principal {
        case .user(let id): (kind, self.id) = (.user, id)
        case .apiKey(let id): (kind, self.id) = (.apiKey, id)
        case .service(let name): (kind, self.id) = (.system, name)
        }
    }

    /// A service acting on its own.
    public init(service: ServiceName) {
        self.init()
        kind = .system
        id = service.rawValue
    }
}

extension AuditPublisher {
    /// Follows every audit event, tenants' and the platform's, with the durable consumer `name`:
    /// `handle` gets each batch as it arrives and acknowledges (or not) each message itself.
    /// Returns when cancelled; throws when NATS fails (the caller retries).
    public static func follow(
        _ connection: NATSConnection,
        consumer name: String,
        _ handle: ([JetStreamMessage]) async -> Void
    ) async throws {
        let jetStream = try connection.jetStream()
        let consumer = try await jetStream.durableConsumer(
            stream: Subjects.auditStream,
            .init(durableName: name, filterSubject: Subjects.auditAll, ackWait: .seconds(30), maxAckPending: 20_000)
        )
        defer { consumer.unsubscribe() }
        while !Task.isCancelled {
            let messages = try await consumer.fetch(batch: 512, timeout: .seconds(1))
            if !messages.isEmpty { await handle(messages) }
        }
    }
}

extension Rampart_V1_AuditEvent {
    /// An event of `action` on `target`, in `tenant`'s log (nil: the platform's), succeeded,
    /// carrying the call's request ID, client IP and user agent; the actor is `actor`, else the
    /// principal the call names, else the service itself.
    public init(
        _ action: AuditAction,
        tenant: TenantID?,
        target: (type: String, id: String),
        call: CallContext?,
        actor: Rampart_V1_AuditActor? = nil,
        service: ServiceName
    ) {
        self.init()
        tenantID = tenant?.hex ?? ""
        self.action = action.rawValue
        self.actor = actor ?? call?.principal.map { Rampart_V1_AuditActor(principal: $0) } ?? Rampart_V1_AuditActor(service: service)
        self.target.type = target.type
        self.target.id = target.id
        outcome = .success
        if let call {
            requestID = call.requestID
            origin.ip = call.clientIP ?? ""
            origin.userAgent = call.userAgent ?? ""
        }
    }
}
