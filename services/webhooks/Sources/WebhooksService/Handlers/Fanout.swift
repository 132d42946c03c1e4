import Logging
import NATSKit
import PostgresNIO
import RampartModels
import ServiceKit
import ServiceLifecycle
import SwiftProtobuf

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// When the service reads time: the wall clock, or a test's hand-moved one (retries follow a
/// schedule of hours).
public struct DeliveryClock: Sendable {
    public let milliseconds: @Sendable () -> Int64

    public init(milliseconds: @escaping @Sendable () -> Int64) {
        self.milliseconds = milliseconds
    }

    public static let wall = DeliveryClock { WallClock.milliseconds() }
}

/// Turns each tenant event of `RAMPART_AUDIT` into a delivery for every enabled endpoint of the
/// tenant that existed when it happened and whose event types match, due at once. One transaction per tenant and batch; a message
/// is acknowledged after it commits, and a redelivered event adds nothing (one delivery per
/// endpoint and event ID).
struct Fanout: Service {
    let queue: DeliveryQueue
    let endpointStore: EndpointStore
    let connection: NATSConnection
    let clock: DeliveryClock
    let wake: WakeSignal
    let health: HealthChecks
    let logger: Logger

    static let consumerName = "webhooks-fanout"

    func run() async throws {
        await repeatUntilShutdown("webhook fan-out", logger: logger) {
            await health.waitUntilStarted()
            try await AuditPublisher.follow(connection, consumer: Self.consumerName) { await fanOut($0) }
        }
    }

    private func fanOut(_ messages: [JetStreamMessage]) async {
        var byTenant: [TenantID: [(JetStreamMessage, Rampart_V1_AuditEvent)]] = [:]
        var order: [TenantID] = []
        for message in messages {
            // Platform events (bans) belong to no tenant: no endpoint receives them.
            guard let event = try? Rampart_V1_AuditEvent(serializedBytes: message.payload), let tenant = TenantID(event.tenantID),
                AuditPublisher.isAuthentic(event, on: message.subject)
            else {
                try? await message.ack()
                continue
            }
            if byTenant[tenant] == nil { order.append(tenant) }
            byTenant[tenant, default: []].append((message, event))
        }
        var queued = false
        for tenant in order {
            let batch = byTenant[tenant]!
            do {
                guard try await queue.database.isProvisioned(tenant) else {
                    if try await queue.database.isDeleted(tenant) {
                        for (message, _) in batch { try? await message.ack() }
                    } else {
                        // The provisioning saga has not reached this service yet.
                        for (message, _) in batch { try? message.nak(delay: .seconds(5)) }
                    }
                    continue
                }
                queued = try await enqueue(batch.map(\.1), tenant: tenant) || queued
                await withDiscardingTaskGroup { group in
                    for (message, _) in batch { group.addTask { try? await message.ack() } }
                }
            } catch {
                logger.warning("webhook deliveries not queued, will retry", metadata: ["tenant": "\(tenant.hex)", "error": "\(loggable(error))"])
                for (message, _) in batch { try? message.nak(delay: .seconds(1)) }
            }
        }
        if queued { wake.signal() }
    }

    /// Whether any delivery was queued.
    private func enqueue(_ events: [Rampart_V1_AuditEvent], tenant: TenantID) async throws -> Bool {
        let endpoints = try await endpointStore.enabled(in: tenant)
        var deliveries: [PendingDelivery] = []
        for event in events {
            guard let eventID = UUID(uuidString: event.id) else { continue }
            // An endpoint receives what happens from its creation on, even when this consumer
            // reads an older event late (after a restart, or a retry).
            let matching = endpoints.filter { $0.createdAtMs <= event.occurredAtMs && EventTypeFilter.matches(event.action, $0.types) }
            guard !matching.isEmpty else { continue }
            let payload = try Self.payload(type: event.action, occurredAtMs: event.occurredAtMs, data: try Self.json(event))
            for endpoint in matching {
                deliveries.append(PendingDelivery(endpoint: endpoint.id, eventID: eventID, eventType: event.action, payload: payload))
            }
        }
        guard !deliveries.isEmpty else { return false }
        try await queue.insert(deliveries, in: tenant, at: clock.milliseconds())
        return true
    }

    /// The body every endpoint receives, Standard Webhooks' shape: `type`, `timestamp` and the
    /// event as `data` (the audit event in proto3 JSON with snake_case names).
    static func payload(type: String, occurredAtMs: Int64, data: String) throws -> String {
        "{\"type\":\(JSONText.quote(type)),\"timestamp\":\"\(WallClock.rfc3339(milliseconds: occurredAtMs))\",\"data\":\(data)}"
    }

    static func json(_ message: some SwiftProtobuf.Message) throws -> String {
        var options = JSONEncodingOptions()
        options.preserveProtoFieldNames = true
        options.useDeterministicOrdering = true
        return try message.jsonString(options: options)
    }
}
