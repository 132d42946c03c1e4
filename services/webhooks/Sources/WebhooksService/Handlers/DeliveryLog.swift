import Logging
import PostgresNIO
import RampartModels
import ServiceKit
import SodiumKit

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// WH-4: an endpoint's deliveries, newest first; a delivery sent again; a test event.
struct DeliveryLog: Sendable {
    let endpoints: Endpoints
    let database: Database
    let clock: DeliveryClock
    let wake: WakeSignal
    let logger: Logger

    static let columns = """
        d.id, d.endpoint_id, d.event_id, d.event_type, d.status, d.attempts, d.response_status, d.last_error, d.latency_ms,
        (extract(epoch FROM d.created_at) * 1000000)::bigint, coalesce((extract(epoch FROM d.last_attempt_at) * 1000)::bigint, 0),
        coalesce((extract(epoch FROM d.next_attempt_at) * 1000)::bigint, 0)
        """
    typealias Row = (UUID, UUID, UUID, String, String, Int32, Int32, String, Int64, Int64, Int64, Int64)

    static func delivery(from row: Row) -> Rampart_V1_Delivery {
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
        return delivery
    }

    static func status(_ text: String) -> Rampart_V1_DeliveryStatus {
        switch text {
        case "pending": .pending
        case "succeeded": .succeeded
        default: .dead
        }
    }

    static func column(_ status: Rampart_V1_DeliveryStatus) -> String? {
        switch status {
        case .pending: "pending"
        case .succeeded: "succeeded"
        case .dead: "dead"
        default: nil
        }
    }

    func list(_ request: Rampart_V1_ListDeliveriesRequest, call: CallContext) async throws -> Rampart_V1_ListDeliveriesReply {
        let tenant = try await endpoints.provisionedTenant(call)
        let endpoint = try Endpoints.endpointID(request.endpointID)
        guard request.pageSize <= 100 else { throw RampartError.invalidArgument("page_size must be 1 to 100", field: "page_size") }
        let pageSize = request.pageSize == 0 ? 50 : Int(request.pageSize)
        var filter: String?
        if request.status != .unspecified {
            guard let column = Self.column(request.status) else { throw RampartError.invalidArgument("no such status", field: "status") }
            filter = column
        }
        let cursor = try Self.cursor(request.cursor)
        try await requireEndpoint(endpoint, tenant: tenant)
        let rows = try await database.query(
            """
            SELECT \(unescaped: Self.columns) FROM \(schema: tenant).deliveries d
            WHERE d.endpoint_id = \(endpoint) AND (\(filter)::text IS NULL OR d.status = \(filter))
                AND (\(cursor?.micros)::bigint IS NULL OR (d.created_at, d.id) < (to_timestamp(\(cursor?.micros)::bigint / 1000000.0), \(cursor?.id)::uuid))
            ORDER BY d.created_at DESC, d.id DESC LIMIT \(pageSize + 1)
            """
        )
        var found: [Row] = []
        for try await row in rows.decode(Row.self) { found.append(row) }
        var reply = Rampart_V1_ListDeliveriesReply()
        reply.deliveries = found.prefix(pageSize).map(Self.delivery(from:))
        if found.count > pageSize, let last = found.prefix(pageSize).last {
            reply.nextCursor = "\(last.9)_\(last.0.uuidString.lowercased())"
        }
        return reply
    }

    /// `<created_at in microseconds>_<delivery ID>` as list_deliveries wrote it.
    static func cursor(_ text: String) throws -> (micros: Int64, id: UUID)? {
        guard !text.isEmpty else { return nil }
        let parts = text.split(separator: "_")
        guard text.utf8.count <= 64, parts.count == 2, let micros = Int64(parts[0]), micros >= 0, let id = UUID(uuidString: String(parts[1])) else {
            throw RampartError.invalidArgument("the cursor is not one a previous page returned", field: "cursor")
        }
        return (micros, id)
    }

    /// Attempted again now, from the start of the schedule, with the same event ID.
    func redeliver(_ request: Rampart_V1_RedeliverRequest, call: CallContext) async throws -> Rampart_V1_DeliveryReply {
        let tenant = try await endpoints.provisionedTenant(call)
        let endpoint = try Endpoints.endpointID(request.endpointID)
        guard request.deliveryID.utf8.count == 36, let delivery = UUID(uuidString: request.deliveryID) else {
            throw RampartError.invalidArgument("delivery_id must be a delivery's ID", field: "delivery_id")
        }
        let now = clock.milliseconds()
        let row: Row? = try await database.transaction { connection in
            let rows = try await connection.query(
                """
                UPDATE \(schema: tenant).deliveries d SET status = 'pending', attempts = 0, next_attempt_at = to_timestamp(\(now)::bigint / 1000.0)
                WHERE d.id = \(delivery) AND d.endpoint_id = \(endpoint) RETURNING \(unescaped: Self.columns)
                """,
                logger: logger
            )
            var found: Row?
            for try await row in rows.decode(Row.self) { found = row }
            guard found != nil else { return nil }
            try await DeliveryQueue.schedule([delivery], tenant: tenant, at: now, on: connection, logger: logger)
            return found
        }
        guard let row else { throw RampartError(.notFound, "no such delivery for this endpoint", details: ["field": "delivery_id"]) }
        wake.signal()
        var reply = Rampart_V1_DeliveryReply()
        reply.delivery = Self.delivery(from: row)
        return reply
    }

    /// IR-1, for tenants: while the tenant of the call is isolated its deliveries stay queued,
    /// none attempted; resumed (at once: they are due) when lifted.
    func pause(_ request: Rampart_V1_PauseDeliveriesRequest, call: CallContext) async throws -> Rampart_V1_PauseDeliveriesReply {
        guard call.principal == Principal(service: .tenants) else {
            throw RampartError(.permissionDenied, "only tenants pauses a tenant's deliveries")
        }
        let tenant = try call.requireTenant()
        if request.paused {
            try await database.query("INSERT INTO paused_tenants (tenant_id) VALUES (\(tenant.hex)) ON CONFLICT DO NOTHING")
        } else {
            try await database.query("DELETE FROM paused_tenants WHERE tenant_id = \(tenant.hex)")
            wake.signal()
        }
        return Rampart_V1_PauseDeliveriesReply()
    }

    /// A `webhook.test` event for this endpoint alone, due now.
    func test(_ request: Rampart_V1_TestEndpointRequest, call: CallContext) async throws -> Rampart_V1_DeliveryReply {
        let tenant = try await endpoints.provisionedTenant(call)
        let endpoint = try Endpoints.endpointID(request.endpointID)
        try await requireEndpoint(endpoint, tenant: tenant)
        let now = clock.milliseconds()
        let eventID = UUID()
        let data = "{\"endpoint_id\":\"\(endpoint.uuidString.lowercased())\",\"tenant_id\":\"\(tenant.hex)\"}"
        let payload = try Fanout.payload(type: Self.testEventType, occurredAtMs: now, data: data)
        let stored = try await DeliveryQueue.insert(
            [PendingDelivery(endpoint: endpoint, eventID: eventID, eventType: Self.testEventType, payload: payload)],
            tenant: tenant,
            at: now,
            database: database,
            logger: logger
        )
        guard let id = stored.first else { throw Endpoints.noSuchEndpoint }
        wake.signal()
        let rows = try await database.query(
            "SELECT \(unescaped: Self.columns) FROM \(schema: tenant).deliveries d WHERE d.id = \(id)"
        )
        var reply = Rampart_V1_DeliveryReply()
        for try await row in rows.decode(Row.self) { reply.delivery = Self.delivery(from: row) }
        return reply
    }

    static let testEventType = "webhook.test"

    private func requireEndpoint(_ endpoint: UUID, tenant: TenantID) async throws {
        let rows = try await database.query(
            "SELECT 1 FROM \(schema: tenant).endpoints WHERE id = \(endpoint)"
        )
        for try await _ in rows { return }
        throw Endpoints.noSuchEndpoint
    }
}
