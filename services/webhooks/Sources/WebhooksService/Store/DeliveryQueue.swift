import Logging
import PostgresNIO
import RampartModels
import ServiceKit

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// One event for one endpoint, before it is stored.
struct PendingDelivery: Sendable {
    var endpoint: UUID
    var eventID: UUID
    var eventType: String
    var payload: String
}

/// The delivery rows of a tenant and their places in the shared queue.
enum DeliveryQueue {
    /// Stores `deliveries` due at `now` (one per endpoint and event: a repeat adds nothing) and
    /// queues them; the IDs of those stored.
    @discardableResult
    static func insert(_ deliveries: [PendingDelivery], tenant: TenantID, at now: Int64, database: Database, logger: Logger) async throws -> [UUID] {
        try await database.transaction { connection in
            let rows = try await connection.query(
                """
                INSERT INTO \(schema: tenant).deliveries (id, endpoint_id, event_id, event_type, payload, created_at, next_attempt_at)
                SELECT id, endpoint_id, event_id, event_type, payload, to_timestamp(\(now)::bigint / 1000.0), to_timestamp(\(now)::bigint / 1000.0)
                FROM unnest(\(deliveries.map { _ in UUID() })::uuid[], \(deliveries.map(\.endpoint))::uuid[], \(deliveries.map(\.eventID))::uuid[], \(deliveries.map(\.eventType))::text[], \(deliveries.map(\.payload))::text[]) AS d (id, endpoint_id, event_id, event_type, payload)
                WHERE EXISTS (SELECT 1 FROM \(schema: tenant).endpoints e WHERE e.id = d.endpoint_id)
                ON CONFLICT (endpoint_id, event_id) DO NOTHING
                RETURNING id
                """,
                logger: logger
            )
            var stored: [UUID] = []
            for try await id in rows.decode(UUID.self) { stored.append(id) }
            try await schedule(stored, tenant: tenant, at: now, on: connection, logger: logger)
            return stored
        }
    }

    /// `deliveries` of `tenant` due at `due`: queued, or their place in the queue moved.
    static func schedule(_ deliveries: [UUID], tenant: TenantID, at due: Int64, on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.query(
            """
            INSERT INTO delivery_queue (tenant_id, delivery_id, due_at)
            SELECT \(tenant.hex), unnest(\(deliveries)::uuid[]), to_timestamp(\(due)::bigint / 1000.0)
            ON CONFLICT (tenant_id, delivery_id) DO UPDATE SET due_at = excluded.due_at
            """,
            logger: logger
        )
    }

    /// Up to `limit` due deliveries, each leased until `leaseUntil`: another replica (or this one
    /// after a crash) takes it again only then. An isolated tenant's wait (IR-1).
    static func claim(limit: Int, now: Int64, leaseUntil: Int64, database: Database, logger: Logger) async throws -> [(TenantID, UUID)] {
        let rows = try await database.query(
            """
            UPDATE delivery_queue q SET due_at = to_timestamp(\(leaseUntil)::bigint / 1000.0)
            FROM (SELECT tenant_id, delivery_id FROM delivery_queue d WHERE due_at <= to_timestamp(\(now)::bigint / 1000.0)
                    AND NOT EXISTS (SELECT 1 FROM paused_tenants p WHERE p.tenant_id = d.tenant_id)
                  ORDER BY due_at LIMIT \(limit) FOR UPDATE SKIP LOCKED) due
            WHERE q.tenant_id = due.tenant_id AND q.delivery_id = due.delivery_id
            RETURNING q.tenant_id, q.delivery_id
            """
        )
        var claimed: [(TenantID, UUID)] = []
        for try await (tenant, id) in rows.decode((String, UUID).self) {
            if let tenant = TenantID(tenant) { claimed.append((tenant, id)) }
        }
        return claimed
    }

    /// Takes `delivery` of `tenant` out of the queue: it is done, dead, or gone.
    static func remove(_ delivery: UUID, tenant: TenantID, database: Database) async throws {
        try await database.query("DELETE FROM delivery_queue WHERE tenant_id = \(tenant.hex) AND delivery_id = \(delivery)")
    }
}
