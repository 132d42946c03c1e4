import Logging
import NIOCore
import PostgresNIO
import RampartModels
import ServiceKit
import SodiumKit

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A tenant's endpoints (WH-1): registration with the SSRF check, changes, secret rotation with
/// a grace period. The secret is shown once, when made; stored sealed, bound to its endpoint.
struct Endpoints: Sendable {
    let settings: WebhooksSettings
    let database: Database
    let destinations: DestinationGuard
    let audit: AuditPublisher
    let clock: DeliveryClock
    let logger: Logger

    static let secretPurpose = "rampart webhook secret"
    static let defaultGraceSeconds: UInt32 = 86_400
    static let maximumGraceSeconds: UInt32 = 7 * 86_400
    static let maximumEventTypes = 50

    /// The columns `endpoint(from:)` reads, in order.
    static let columns = """
        id, url, description, event_types, enabled, disabled_reason, (extract(epoch FROM created_at) * 1000)::bigint,
        (extract(epoch FROM updated_at) * 1000)::bigint, coalesce((extract(epoch FROM previous_secret_expires_at) * 1000)::bigint, 0),
        coalesce((extract(epoch FROM failing_since) * 1000)::bigint, 0)
        """
    typealias Row = (UUID, String, String, [String], Bool, String, Int64, Int64, Int64, Int64)

    static func endpoint(from row: Row) -> Rampart_V1_WebhookEndpoint {
        var endpoint = Rampart_V1_WebhookEndpoint()
        endpoint.endpointID = row.0.uuidString.lowercased()
        endpoint.url = row.1
        endpoint.description_p = row.2
        endpoint.eventTypes = row.3
        endpoint.enabled = row.4
        endpoint.disabledReason = row.5
        endpoint.createdAtMs = row.6
        endpoint.updatedAtMs = row.7
        endpoint.previousSecretExpiresAtMs = row.8
        endpoint.failingSinceMs = row.9
        return endpoint
    }

    func create(_ request: Rampart_V1_CreateEndpointRequest, call: CallContext) async throws -> Rampart_V1_CreateEndpointReply {
        let tenant = try await provisionedTenant(call)
        let url = try await checkedURL(request.url)
        let description = try Self.checkedDescription(request.description_p)
        let eventTypes = try Self.checkedEventTypes(request.eventTypes)
        let id = UUID()
        let secret = WebhookSignature.newSecret()
        let sealed = settings.keyEncryption.seal(secret, associatedData: Self.secretBinding(tenant, id))
        let row: Row = try await database.transaction { connection in
            // One creation at a time per tenant, so the count below stays true until the insert.
            try await connection.query("LOCK TABLE \(schema: tenant).endpoints IN EXCLUSIVE MODE", logger: logger)
            let counted = try await connection.query("SELECT count(*) FROM \(schema: tenant).endpoints", logger: logger)
            for try await count in counted.decode(Int.self) where count >= settings.maximumEndpoints {
                throw RampartError(.failedPrecondition, "a tenant has at most \(settings.maximumEndpoints) webhook endpoints: delete one first")
            }
            let rows = try await connection.query(
                """
                INSERT INTO \(schema: tenant).endpoints (id, url, description, event_types, enabled, secret_sealed, created_at, updated_at)
                VALUES (\(id), \(url), \(description), \(eventTypes), \(request.hasEnabled ? request.enabled : true), \(ByteBuffer(bytes: sealed.bytes)), to_timestamp(\(clock.milliseconds())::bigint / 1000.0), to_timestamp(\(clock.milliseconds())::bigint / 1000.0))
                RETURNING \(unescaped: Self.columns)
                """,
                logger: logger
            )
            for try await row in rows.decode(Row.self) { return row }
            throw RampartError(.internal, "the endpoint was not stored")
        }
        var reply = Rampart_V1_CreateEndpointReply()
        reply.endpoint = Self.endpoint(from: row)
        reply.secret = WebhookSignature.encode(secret: secret)
        await changed(reply.endpoint, "created", tenant: tenant, call: call)
        return reply
    }

    func list(_ request: Rampart_V1_ListEndpointsRequest, call: CallContext) async throws -> Rampart_V1_ListEndpointsReply {
        let tenant = try await provisionedTenant(call)
        let rows = try await database.query(
            "SELECT \(unescaped: Self.columns) FROM \(schema: tenant).endpoints ORDER BY created_at, id"
        )
        var reply = Rampart_V1_ListEndpointsReply()
        for try await row in rows.decode(Row.self) { reply.endpoints.append(Self.endpoint(from: row)) }
        return reply
    }

    func get(_ request: Rampart_V1_EndpointRequest, call: CallContext) async throws -> Rampart_V1_EndpointReply {
        let tenant = try await provisionedTenant(call)
        let id = try Self.endpointID(request.endpointID)
        let rows = try await database.query(
            "SELECT \(unescaped: Self.columns) FROM \(schema: tenant).endpoints WHERE id = \(id)"
        )
        for try await row in rows.decode(Row.self) {
            var reply = Rampart_V1_EndpointReply()
            reply.endpoint = Self.endpoint(from: row)
            return reply
        }
        throw Self.noSuchEndpoint
    }

    func update(_ request: Rampart_V1_UpdateEndpointRequest, call: CallContext) async throws -> Rampart_V1_EndpointReply {
        let tenant = try await provisionedTenant(call)
        let id = try Self.endpointID(request.endpointID)
        let url = request.hasURL ? try await checkedURL(request.url) : nil
        let description = request.hasDescription_p ? try Self.checkedDescription(request.description_p) : nil
        let eventTypes = request.setEventTypes ? try Self.checkedEventTypes(request.eventTypes) : nil
        if !request.setEventTypes, !request.eventTypes.isEmpty {
            throw RampartError.invalidArgument("set set_event_types to replace the event types", field: "set_event_types")
        }
        // Enabling again clears what turned the endpoint off, so it starts with a clean record.
        let rows = try await database.query(
            """
            UPDATE \(schema: tenant).endpoints SET url = coalesce(\(url), url), description = coalesce(\(description), description),
                event_types = coalesce(\(eventTypes), event_types), enabled = coalesce(\(request.hasEnabled ? request.enabled : nil), enabled),
                disabled_reason = CASE WHEN \(request.hasEnabled ? request.enabled : nil) THEN '' ELSE disabled_reason END,
                failing_since = CASE WHEN \(request.hasEnabled ? request.enabled : nil) THEN NULL ELSE failing_since END,
                updated_at = to_timestamp(\(clock.milliseconds())::bigint / 1000.0)
            WHERE id = \(id) RETURNING \(unescaped: Self.columns)
            """
        )
        for try await row in rows.decode(Row.self) {
            var reply = Rampart_V1_EndpointReply()
            reply.endpoint = Self.endpoint(from: row)
            await changed(reply.endpoint, "updated", tenant: tenant, call: call)
            return reply
        }
        throw Self.noSuchEndpoint
    }

    /// The endpoint goes with its deliveries, and their places in the queue.
    func delete(_ request: Rampart_V1_EndpointRequest, call: CallContext) async throws -> Rampart_V1_EndpointReply {
        let tenant = try await provisionedTenant(call)
        let id = try Self.endpointID(request.endpointID)
        let row: Row? = try await database.transaction { connection in
            try await connection.query(
                """
                DELETE FROM delivery_queue WHERE tenant_id = \(tenant.hex)
                    AND delivery_id IN (SELECT d.id FROM \(schema: tenant).deliveries d WHERE d.endpoint_id = \(id))
                """,
                logger: logger
            )
            let rows = try await connection.query(
                "DELETE FROM \(schema: tenant).endpoints WHERE id = \(id) RETURNING \(unescaped: Self.columns)",
                logger: logger
            )
            return try await rows.first(decoding: Row.self)
        }
        guard let row else { throw Self.noSuchEndpoint }
        var reply = Rampart_V1_EndpointReply()
        reply.endpoint = Self.endpoint(from: row)
        await changed(reply.endpoint, "deleted", tenant: tenant, call: call)
        return reply
    }

    /// A new secret; the current one keeps signing beside it for the grace period (WH-1).
    func rotateSecret(_ request: Rampart_V1_RotateSecretRequest, call: CallContext) async throws -> Rampart_V1_CreateEndpointReply {
        let tenant = try await provisionedTenant(call)
        let id = try Self.endpointID(request.endpointID)
        let grace = request.hasGraceSeconds ? request.graceSeconds : Self.defaultGraceSeconds
        guard grace <= Self.maximumGraceSeconds else {
            throw RampartError.invalidArgument("grace_seconds must be 0 to \(Self.maximumGraceSeconds) (7 days)", field: "grace_seconds")
        }
        let secret = WebhookSignature.newSecret()
        let sealed = settings.keyEncryption.seal(secret, associatedData: Self.secretBinding(tenant, id))
        let now = clock.milliseconds()
        let rows = try await database.query(
            """
            UPDATE \(schema: tenant).endpoints SET
                previous_secret_sealed = CASE WHEN \(grace == 0 ? nil : now + Int64(grace) * 1000)::bigint IS NULL THEN NULL ELSE secret_sealed END,
                previous_secret_expires_at = to_timestamp(\(grace == 0 ? nil : now + Int64(grace) * 1000)::bigint / 1000.0),
                secret_sealed = \(ByteBuffer(bytes: sealed.bytes)), updated_at = to_timestamp(\(now)::bigint / 1000.0)
            WHERE id = \(id) RETURNING \(unescaped: Self.columns)
            """
        )
        for try await row in rows.decode(Row.self) {
            var reply = Rampart_V1_CreateEndpointReply()
            reply.endpoint = Self.endpoint(from: row)
            reply.secret = WebhookSignature.encode(secret: secret)
            await changed(reply.endpoint, "secret_rotated", tenant: tenant, call: call)
            return reply
        }
        throw Self.noSuchEndpoint
    }

    // MARK: Checks

    static let noSuchEndpoint = RampartError(.notFound, "no such webhook endpoint", details: ["field": "endpoint_id"])

    func provisionedTenant(_ call: CallContext) async throws -> TenantID {
        let tenant = try call.requireTenant()
        guard try await database.isProvisioned(tenant) else { throw RampartError(.failedPrecondition, "the tenant is not ready") }
        return tenant
    }

    static func endpointID(_ text: String) throws -> UUID {
        guard text.utf8.count == 36, let id = UUID(uuidString: text) else {
            throw RampartError.invalidArgument("endpoint_id must be an endpoint's ID", field: "endpoint_id")
        }
        return id
    }

    /// The URL normalised, once the SSRF guard let it through (WH-3, at registration).
    func checkedURL(_ text: String) async throws -> String {
        do {
            return try await destinations.check(text).destination.description
        } catch {
            throw RampartError.invalidArgument("url: \(error)", field: "url")
        }
    }

    static func checkedDescription(_ text: String) throws -> String {
        guard text.count <= 500, !text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control && $0 != "\n" }) else {
            throw RampartError.invalidArgument("the description must be at most 500 characters, without control characters", field: "description")
        }
        return text
    }

    /// 1 to 50 types, each an audit action (`member.invited`), a prefix of some (`member.*`), or
    /// `*`; duplicates dropped. Unknown types are refused, so a typo cannot silence an endpoint.
    static func checkedEventTypes(_ types: [String]) throws -> [String] {
        let known = AuditAction.allCases.map(\.rawValue)
        var kept: [String] = []
        for type in types where !kept.contains(type) {
            let valid: Bool =
                if type == "*" {
                    true
                } else if type.hasSuffix(".*") {
                    type.utf8.count <= 64 && known.contains { $0.hasPrefix(String(type.dropLast())) }
                } else {
                    known.contains(type)
                }
            guard valid else {
                throw RampartError.invalidArgument(
                    "\(String(type.prefix(64)).debugDescription) is not an event type: give an audit action (member.invited), a prefix of some (member.*) or *",
                    field: "event_types"
                )
            }
            kept.append(type)
        }
        guard (1...maximumEventTypes).contains(kept.count) else {
            throw RampartError.invalidArgument("give 1 to \(maximumEventTypes) event types", field: "event_types")
        }
        return kept
    }

    /// The sealed secret opens only as this endpoint's: a row copied elsewhere does not.
    static func secretBinding(_ tenant: TenantID, _ endpoint: UUID) -> [UInt8] {
        Array("\(secretPurpose):\(tenant.hex):\(endpoint.uuidString.lowercased())".utf8)
    }

    private func changed(_ endpoint: Rampart_V1_WebhookEndpoint, _ change: String, tenant: TenantID, call: CallContext) async {
        var event = Rampart_V1_AuditEvent(
            .webhookEndpointChanged,
            tenant: tenant,
            target: ("webhook_endpoint", endpoint.endpointID),
            call: call,
            service: .webhooks
        )
        event.details = ["change": change, "url": endpoint.url, "enabled": String(endpoint.enabled)]
        await audit.record(event)
    }
}

/// Event types as an endpoint lists them: exact, `prefix.*`, or `*`.
enum EventTypeFilter {
    static func matches(_ type: String, _ filters: [String]) -> Bool {
        filters.contains { filter in
            filter == "*" || filter == type || (filter.hasSuffix(".*") && type.hasPrefix(filter.dropLast()))
        }
    }
}
