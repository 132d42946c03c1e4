import Logging
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
    let queue: DeliveryQueue
    let clock: DeliveryClock
    let wake: WakeSignal
    let logger: Logger

    func list(_ request: Rampart_V1_ListDeliveriesRequest, call: CallContext) async throws -> Rampart_V1_ListDeliveriesReply {
        let tenant = try await endpoints.store.database.provisionedTenant(of: call)
        let endpoint = try Endpoints.endpointID(request.endpointID)
        guard request.pageSize <= 100 else { throw RampartError.invalidArgument("page_size must be 1 to 100", field: "page_size") }
        let pageSize = request.pageSize == 0 ? 50 : Int(request.pageSize)
        var filter: String?
        if request.status != .unspecified {
            guard let column = DeliveryQueue.column(request.status) else { throw RampartError.invalidArgument("no such status", field: "status") }
            filter = column
        }
        let cursor = try Self.cursor(request.cursor)
        try await requireEndpoint(endpoint, tenant: tenant)
        let found = try await queue.page(of: endpoint, status: filter, after: cursor, limit: pageSize + 1, in: tenant)
        var reply = Rampart_V1_ListDeliveriesReply()
        reply.deliveries = found.prefix(pageSize).map(\.delivery)
        if found.count > pageSize, let last = found.prefix(pageSize).last {
            reply.nextCursor = "\(last.createdAtMicros)_\(last.delivery.deliveryID)"
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
        let tenant = try await endpoints.store.database.provisionedTenant(of: call)
        let endpoint = try Endpoints.endpointID(request.endpointID)
        guard request.deliveryID.utf8.count == 36, let delivery = UUID(uuidString: request.deliveryID) else {
            throw RampartError.invalidArgument("delivery_id must be a delivery's ID", field: "delivery_id")
        }
        let now = clock.milliseconds()
        let restarted = try await queue.restart(delivery, of: endpoint, at: now, in: tenant)
        guard let restarted else { throw RampartError(.notFound, "no such delivery for this endpoint", details: ["field": "delivery_id"]) }
        wake.signal()
        var reply = Rampart_V1_DeliveryReply()
        reply.delivery = restarted
        return reply
    }

    /// IR-1, for tenants: while the tenant of the call is isolated its deliveries stay queued,
    /// none attempted; resumed (at once: they are due) when lifted.
    func pause(_ request: Rampart_V1_PauseDeliveriesRequest, call: CallContext) async throws -> Rampart_V1_PauseDeliveriesReply {
        guard call.principal == Principal(service: .tenants) else {
            throw RampartError(.permissionDenied, "only tenants pauses a tenant's deliveries")
        }
        let tenant = try call.requireTenant()
        try await queue.setPaused(tenant, request.paused)
        if !request.paused { wake.signal() }
        return Rampart_V1_PauseDeliveriesReply()
    }

    /// A `webhook.test` event for this endpoint alone, due now.
    func test(_ request: Rampart_V1_TestEndpointRequest, call: CallContext) async throws -> Rampart_V1_DeliveryReply {
        let tenant = try await endpoints.store.database.provisionedTenant(of: call)
        let endpoint = try Endpoints.endpointID(request.endpointID)
        try await requireEndpoint(endpoint, tenant: tenant)
        let now = clock.milliseconds()
        let eventID = UUID()
        let data = "{\"endpoint_id\":\"\(endpoint.uuidString.lowercased())\",\"tenant_id\":\"\(tenant.hex)\"}"
        let payload = try Fanout.payload(type: Self.testEventType, occurredAtMs: now, data: data)
        let stored = try await queue.insert(
            [PendingDelivery(endpoint: endpoint, eventID: eventID, eventType: Self.testEventType, payload: payload)],
            in: tenant,
            at: now
        )
        guard let id = stored.first else { throw Endpoints.noSuchEndpoint }
        wake.signal()
        var reply = Rampart_V1_DeliveryReply()
        if let stored = try await queue.find(id, in: tenant) { reply.delivery = stored }
        return reply
    }

    static let testEventType = "webhook.test"

    private func requireEndpoint(_ endpoint: UUID, tenant: TenantID) async throws {
        guard try await endpoints.store.exists(endpoint, in: tenant) else { throw Endpoints.noSuchEndpoint }
    }
}
