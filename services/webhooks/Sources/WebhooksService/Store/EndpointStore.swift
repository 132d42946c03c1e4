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

/// Each tenant's `endpoints` (WH-1). The signing secret is stored sealed with the key ring,
/// bound to its tenant and endpoint; the one it replaced stays beside it for the grace period.
struct EndpointStore: Sendable {
    let database: Database
    let keyRing: KeyRing
    let clock: DeliveryClock
    let logger: Logger

    static let secretPurpose = "rampart webhook secret"

    /// The sealed secret opens only as this endpoint's: a row copied elsewhere does not.
    static func secretBinding(_ tenant: TenantID, _ endpoint: UUID) -> [UInt8] {
        Array("\(secretPurpose):\(tenant.hex):\(endpoint.uuidString.lowercased())".utf8)
    }

    /// The columns `endpoint(from:)` reads, in order.
    private static let columns = """
        id, url, description, event_types, enabled, disabled_reason, (extract(epoch FROM created_at) * 1000)::bigint,
        (extract(epoch FROM updated_at) * 1000)::bigint, coalesce((extract(epoch FROM previous_secret_expires_at) * 1000)::bigint, 0),
        coalesce((extract(epoch FROM failing_since) * 1000)::bigint, 0)
        """
    private typealias Row = (UUID, String, String, [String], Bool, String, Int64, Int64, Int64, Int64)

    private static func endpoint(from row: Row) -> Rampart_V1_WebhookEndpoint {
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

    /// A new endpoint, unless `tenant` has `maximum` already.
    func insert(
        _ id: UUID,
        url: String,
        description: String,
        eventTypes: [String],
        enabled: Bool,
        secret: [UInt8],
        maximum: Int,
        in tenant: TenantID
    ) async throws -> Rampart_V1_WebhookEndpoint {
        let sealed = keyRing.seal(secret, associatedData: Self.secretBinding(tenant, id))
        return try await database.transaction { connection in
            // One creation at a time per tenant, so the count below stays true until the insert.
            try await connection.query("LOCK TABLE \(schema: tenant).endpoints IN EXCLUSIVE MODE", logger: logger)
            let counted = try await connection.query("SELECT count(*) FROM \(schema: tenant).endpoints", logger: logger)
            if try await counted.first(decoding: Int.self) ?? 0 >= maximum {
                throw RampartError(.failedPrecondition, "a tenant has at most \(maximum) webhook endpoints: delete one first")
            }
            let now = clock.milliseconds()
            let rows = try await connection.query(
                """
                INSERT INTO \(schema: tenant).endpoints (id, url, description, event_types, enabled, secret_sealed, created_at, updated_at)
                VALUES (\(id), \(url), \(description), \(eventTypes), \(enabled), \(ByteBuffer(bytes: sealed.bytes)), to_timestamp(\(now)::bigint / 1000.0), to_timestamp(\(now)::bigint / 1000.0))
                RETURNING \(unescaped: Self.columns)
                """,
                logger: logger
            )
            guard let row = try await rows.first(decoding: Row.self) else { throw RampartError(.internal, "the endpoint was not stored") }
            return Self.endpoint(from: row)
        }
    }

    func list(in tenant: TenantID) async throws -> [Rampart_V1_WebhookEndpoint] {
        let rows = try await database.query("SELECT \(unescaped: Self.columns) FROM \(schema: tenant).endpoints ORDER BY created_at, id")
        var endpoints: [Rampart_V1_WebhookEndpoint] = []
        for try await row in rows.decode(Row.self) { endpoints.append(Self.endpoint(from: row)) }
        return endpoints
    }

    func find(_ id: UUID, in tenant: TenantID) async throws -> Rampart_V1_WebhookEndpoint? {
        let rows = try await database.query("SELECT \(unescaped: Self.columns) FROM \(schema: tenant).endpoints WHERE id = \(id)")
        return try await rows.first(decoding: Row.self).map(Self.endpoint(from:))
    }

    func exists(_ id: UUID, in tenant: TenantID) async throws -> Bool {
        let rows = try await database.query("SELECT 1 FROM \(schema: tenant).endpoints WHERE id = \(id)")
        return try await rows.first(decoding: Int.self) != nil
    }

    /// The enabled endpoints of `tenant`: what the fan-out matches an event against.
    func enabled(in tenant: TenantID) async throws -> [(id: UUID, types: [String], createdAtMs: Int64)] {
        let rows = try await database.query(
            "SELECT id, event_types, (extract(epoch FROM created_at) * 1000)::bigint FROM \(schema: tenant).endpoints WHERE enabled"
        )
        var endpoints: [(id: UUID, types: [String], createdAtMs: Int64)] = []
        for try await row in rows.decode((UUID, [String], Int64).self) { endpoints.append(row) }
        return endpoints
    }

    /// Sets what is given, keeps the rest. Enabling again clears what turned the endpoint off,
    /// so it starts with a clean record.
    func update(
        _ id: UUID,
        url: String?,
        description: String?,
        eventTypes: [String]?,
        enabled: Bool?,
        in tenant: TenantID
    ) async throws -> Rampart_V1_WebhookEndpoint? {
        let rows = try await database.query(
            """
            UPDATE \(schema: tenant).endpoints SET url = coalesce(\(url), url), description = coalesce(\(description), description),
                event_types = coalesce(\(eventTypes), event_types), enabled = coalesce(\(enabled), enabled),
                disabled_reason = CASE WHEN \(enabled) THEN '' ELSE disabled_reason END,
                failing_since = CASE WHEN \(enabled) THEN NULL ELSE failing_since END,
                updated_at = to_timestamp(\(clock.milliseconds())::bigint / 1000.0)
            WHERE id = \(id) RETURNING \(unescaped: Self.columns)
            """
        )
        return try await rows.first(decoding: Row.self).map(Self.endpoint(from:))
    }

    /// The endpoint goes with its deliveries' places in the queue (the deliveries follow by
    /// the foreign key).
    func delete(_ id: UUID, in tenant: TenantID) async throws -> Rampart_V1_WebhookEndpoint? {
        try await database.transaction { connection in
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
            return try await rows.first(decoding: Row.self).map(Self.endpoint(from:))
        }
    }

    /// `secret` signs from now on; the current one keeps signing beside it for `graceSeconds`
    /// (none with 0).
    func replaceSecret(_ id: UUID, with secret: [UInt8], graceSeconds: UInt32, in tenant: TenantID) async throws -> Rampart_V1_WebhookEndpoint? {
        let sealed = keyRing.seal(secret, associatedData: Self.secretBinding(tenant, id))
        let now = clock.milliseconds()
        let previousUntil: Int64? = graceSeconds == 0 ? nil : now + Int64(graceSeconds) * 1000
        let rows = try await database.query(
            """
            UPDATE \(schema: tenant).endpoints SET
                previous_secret_sealed = CASE WHEN \(previousUntil)::bigint IS NULL THEN NULL ELSE secret_sealed END,
                previous_secret_expires_at = to_timestamp(\(previousUntil)::bigint / 1000.0),
                secret_sealed = \(ByteBuffer(bytes: sealed.bytes)), updated_at = to_timestamp(\(now)::bigint / 1000.0)
            WHERE id = \(id) RETURNING \(unescaped: Self.columns)
            """
        )
        return try await rows.first(decoding: Row.self).map(Self.endpoint(from:))
    }
}
