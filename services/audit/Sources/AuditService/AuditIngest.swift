import Logging
import NATSKit
import RampartModels
import ServiceKit
import ServiceLifecycle
import SwiftProtobuf

/// Consumes `RAMPART_AUDIT` (AUD-2) with a durable consumer, stores each batch per chain in one
/// transaction, and acknowledges a message only after its transaction committed: a crash
/// anywhere redelivers, and the event ID makes the redelivery a no-op.
struct AuditIngest: Service {
    let store: AuditStore
    let connection: NATSConnection
    let health: HealthChecks
    let logger: Logger

    static let consumerName = "audit-store"

    func run() async throws {
        await repeatUntilShutdown("audit ingest", logger: logger) {
            // The tables exist once the service has migrated.
            await health.waitUntilStarted()
            try await AuditPublisher.follow(connection, consumer: Self.consumerName) { await store($0) }
        }
    }

    /// Events grouped by chain, in stream order within each.
    private func store(_ messages: [JetStreamMessage]) async {
        var chains: [AuditStore.Chain: [(JetStreamMessage, Rampart_V1_AuditEvent)]] = [:]
        var order: [AuditStore.Chain] = []
        for message in messages {
            guard let (chain, event) = decode(message) else {
                try? message.terminate()
                continue
            }
            if chains[chain] == nil { order.append(chain) }
            chains[chain, default: []].append((message, event))
        }
        for chain in order {
            let batch = chains[chain]!
            do {
                try await store.append(batch.map(\.1), to: chain)
                // All at once: an ack that is lost only redelivers an event the store skips.
                await withDiscardingTaskGroup { group in
                    for (message, _) in batch { group.addTask { try? await message.ack() } }
                }
            } catch is AuditStore.NotProvisioned {
                if case .tenant(let tenant) = chain, (try? await store.database.isDeleted(tenant)) == true {
                    // The tenant's log went with its schema; what must outlive it is in the platform log.
                    logger.warning("audit events of a deleted tenant dropped", metadata: ["tenant": "\(tenant.hex)", "events": "\(batch.count)"])
                    for (message, _) in batch { try? message.terminate() }
                } else {
                    // The provisioning saga has not reached this service yet: later.
                    for (message, _) in batch { try? message.nak(delay: .seconds(5)) }
                }
            } catch {
                logger.warning("audit events not stored, will retry", metadata: ["error": "\(loggable(error))"])
                for (message, _) in batch { try? message.nak(delay: .seconds(1)) }
            }
        }
    }

    /// The event and its chain, or nil (logged) when it can never be stored: unreadable,
    /// invalid, or published on another tenant's subject than the one it names or by a service
    /// that does not record its action.
    private func decode(_ message: JetStreamMessage) -> (AuditStore.Chain, Rampart_V1_AuditEvent)? {
        guard let event = try? Rampart_V1_AuditEvent(serializedBytes: message.payload) else {
            logger.error("unreadable audit event dropped", metadata: ["subject": "\(message.subject)"])
            return nil
        }
        do {
            try AuditPublisher.validate(event)
        } catch {
            logger.error("invalid audit event dropped", metadata: ["subject": "\(message.subject)", "error": "\(loggable(error))"])
            return nil
        }
        let chain: AuditStore.Chain = event.tenantID.isEmpty ? .platform : .tenant(TenantID(event.tenantID)!)
        guard AuditPublisher.isAuthentic(event, on: message.subject) else {
            logger.error(
                "audit event on a subject not its own dropped (another tenant's, or a service that does not record \(event.action))",
                metadata: ["subject": "\(message.subject)", "event": "\(event.id)"]
            )
            return nil
        }
        return (chain, event)
    }
}
