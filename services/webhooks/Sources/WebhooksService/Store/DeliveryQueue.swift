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

/// The delivery rows of a tenant (WH-2, WH-4), their places in the shared `delivery_queue`, and
/// the tenants whose deliveries are held (`paused_tenants`, IR-1).
struct DeliveryQueue: Sendable {
    let database: Database
    let logger: Logger

    /// A delivery as the log shows it, with its creation time in microseconds (the cursor's).
    struct Logged: Sendable {
        var delivery: Rampart_V1_Delivery
        var createdAtMicros: Int64
    }

    private static let columns = """
        d.id, d.endpoint_id, d.event_id, d.event_type, d.status, d.attempts, d.response_status, d.last_error, d.latency_ms,
        (extract(epoch FROM d.created_at) * 1000000)::bigint, coalesce((extract(epoch FROM d.last_attempt_at) * 1000)::bigint, 0),
        coalesce((extract(epoch FROM d.next_attempt_at) * 1000)::bigint, 0)
        """
    private typealias Row = (UUID, UUID, UUID, String, String, Int32, Int32, String, Int64, Int64, Int64, Int64)

    private static func logged(_ row: Row) -> Logged {
        var delivery = Rampart_V1_Delivery()
        delivery.deliveryID = row.0.uuidString.lowercased()
        delivery.endpointID = row.1.uuidString.lowercased()
        delivery.eventID = row.2.uuidString.lowercased()
        delivery.eventType = row.3
        delivery.status = status(row.4)
        delivery.attempts = row.5
        delivery.responseStatus = row.6
        delivery.lastError = row.7
        delivery.latencyMs = row.8
        delivery.createdAtMs = row.9 / 1000
        delivery.lastAttemptAtMs = row.10
        delivery.nextAttemptAtMs = row.11
        return Logged(delivery: delivery, createdAtMicros: row.9)
    }

    private static func status(_ text: String) -> Rampart_V1_DeliveryStatus {
        switch text {
        case "pending": .pending
        case "succeeded": .succeeded
        default: .dead
        }
    }

    /// The stored name of `status`; nil for one that is never stored.
    static func column(_ status: Rampart_V1_DeliveryStatus) -> String? {
        switch status {
        case .pending: "pending"
        case .succeeded: "succeeded"
        case .dead: "dead"
        default: nil
        }
    }

    // MARK: The log (WH-4)

    /// `endpoint`'s deliveries, newest first, with `status` when given, after `cursor`.
    func page(of endpoint: UUID, status: String?, after cursor: (micros: Int64, id: UUID)?, limit: Int, in tenant: TenantID) async throws -> [Logged]
    {
        let rows = try await database.query(
            """
            SELECT \(unescaped: Self.columns) FROM \(schema: tenant).deliveries d
            WHERE d.endpoint_id = \(endpoint) AND (\(status)::text IS NULL OR d.status = \(status))
                AND (\(cursor?.micros)::bigint IS NULL OR (d.created_at, d.id) < (to_timestamp(\(cursor?.micros)::bigint / 1000000.0), \(cursor?.id)::uuid))
            ORDER BY d.created_at DESC, d.id DESC LIMIT \(limit)
            """
        )
        var found: [Logged] = []
        for try await row in rows.decode(Row.self) { found.append(Self.logged(row)) }
        return found
    }

    func find(_ delivery: UUID, in tenant: TenantID) async throws -> Rampart_V1_Delivery? {
        let rows = try await database.query("SELECT \(unescaped: Self.columns) FROM \(schema: tenant).deliveries d WHERE d.id = \(delivery)")
        return try await rows.first(decoding: Row.self).map { Self.logged($0).delivery }
    }

    /// `endpoint`'s `delivery` pending again from the start of the schedule, due at `now` and
    /// queued; nil when there is no such delivery of that endpoint.
    func restart(_ delivery: UUID, of endpoint: UUID, at now: Int64, in tenant: TenantID) async throws -> Rampart_V1_Delivery? {
        try await database.transaction { connection in
            let rows = try await connection.query(
                """
                UPDATE \(schema: tenant).deliveries d SET status = 'pending', attempts = 0, next_attempt_at = to_timestamp(\(now)::bigint / 1000.0)
                WHERE d.id = \(delivery) AND d.endpoint_id = \(endpoint) RETURNING \(unescaped: Self.columns)
                """,
                logger: logger
            )
            guard let row = try await rows.first(decoding: Row.self) else { return nil }
            try await schedule([delivery], tenant: tenant, at: now, on: connection)
            return Self.logged(row).delivery
        }
    }

    /// IR-1: `tenant`'s deliveries held (none claimed), or released.
    func setPaused(_ tenant: TenantID, _ paused: Bool) async throws {
        if paused {
            try await database.query("INSERT INTO paused_tenants (tenant_id) VALUES (\(tenant.hex)) ON CONFLICT DO NOTHING")
        } else {
            try await database.query("DELETE FROM paused_tenants WHERE tenant_id = \(tenant.hex)")
        }
    }

    // MARK: The queue (WH-2)

    /// Stores `deliveries` due at `now` (one per endpoint and event: a repeat adds nothing) and
    /// queues them; the IDs of those stored.
    @discardableResult
    func insert(_ deliveries: [PendingDelivery], in tenant: TenantID, at now: Int64) async throws -> [UUID] {
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
            try await schedule(stored, tenant: tenant, at: now, on: connection)
            return stored
        }
    }

    /// `deliveries` of `tenant` due at `due`: queued, or their place in the queue moved.
    private func schedule(_ deliveries: [UUID], tenant: TenantID, at due: Int64, on connection: PostgresConnection) async throws {
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
    func claim(limit: Int, now: Int64, leaseUntil: Int64) async throws -> [(TenantID, UUID)] {
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
    func remove(_ delivery: UUID, tenant: TenantID) async throws {
        try await database.query("DELETE FROM delivery_queue WHERE tenant_id = \(tenant.hex) AND delivery_id = \(delivery)")
    }
}
