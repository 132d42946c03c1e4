import Logging
import NIOCore
import PostgresNIO
import RampartModels
import ServiceKit
import SodiumKit
import SwiftProtobuf

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The hash chain (AUD-5): hash(n) = SHA-256(hash(n-1) ‖ canonical(event n)), hash(0) = 32 zero
/// bytes. The canonical form is the event's deterministic protobuf encoding: what is hashed is
/// exactly what is stored, so an offline verifier needs only the stored bytes.
enum AuditChain {
    static let genesis = [UInt8](repeating: 0, count: 32)

    static func canonical(_ event: Rampart_V1_AuditEvent) throws -> [UInt8] {
        var options = BinaryEncodingOptions()
        options.useDeterministicOrdering = true
        return try event.serializedBytes(options: options)
    }

    static func link(previous: [UInt8], canonical: [UInt8]) -> [UInt8] {
        sha256(previous + canonical)
    }

    /// What a checkpoint signs: the chain's identity (so a checkpoint cannot be moved to another
    /// tenant), the position, the head hash and the time.
    static func checkpointMessage(chain: AuditStore.Chain, position: Int64, hash: [UInt8], signedAt: Int64) -> [UInt8] {
        Array("rampart-audit-checkpoint/v1\n\(chain.identity)\n\(position)\n\(hexString(hash))\n\(signedAt)".utf8)
    }
}

/// Appends events to a chain (a tenant's schema, or `public` for platform events), each event
/// ID once, in one transaction.
struct AuditStore: Sendable {
    let database: Database
    let settings: AuditSettings
    let logger: Logger
    /// Where checkpoints are published beside the database (nil: a store without NATS, as
    /// some tests and the offline tools have).
    var published: PublishedCheckpoints? = nil

    /// Which chain `event` belongs to: its tenant's schema, or nil for `public`.
    enum Chain: Hashable, Sendable {
        case platform
        case tenant(TenantID)

        var schema: String {
            switch self {
            case .platform: "\"public\""
            case .tenant(let tenant): quotedSchema(tenant)
            }
        }

        /// Names the chain in signed checkpoints.
        var identity: String {
            switch self {
            case .platform: "platform"
            case .tenant(let tenant): tenant.hex
            }
        }
    }

    struct NotProvisioned: Error {}

    /// Stores the events not stored yet, in the order given; returns how many were new.
    /// Throws `NotProvisioned` when the tenant has no schema here yet.
    @discardableResult
    func append(_ events: [Rampart_V1_AuditEvent], to chain: Chain) async throws -> Int {
        if case .tenant(let tenant) = chain, try await !database.isProvisioned(tenant) {
            throw NotProvisioned()
        }
        return try await database.transaction { connection in
            // Locks the head: appends to one chain are serialised across audit replicas.
            let heads = try await connection.query(
                "SELECT position, hash FROM \(schema: chain).audit_chain_head FOR UPDATE",
                logger: logger
            )
            var head: (position: Int64, hash: [UInt8])?
            for try await (position, hash) in heads.decode((Int64, ByteBuffer).self) { head = (position, Array(buffer: hash)) }
            guard var (position, hash) = head else { throw NotProvisioned() }

            let ids = events.map { UUID(uuidString: $0.id)! }
            var stored: Set<UUID> = []
            let existing = try await connection.query(
                "SELECT id FROM \(schema: chain).audit_events WHERE id = ANY(\(ids))",
                logger: logger
            )
            for try await id in existing.decode(UUID.self) { stored.insert(id) }

            // One INSERT for the whole batch: each column goes as an array, unnested row-wise.
            var columns = Columns()
            for event in events {
                let id = UUID(uuidString: event.id)!
                guard stored.insert(id).inserted else { continue }  // stored before, or twice in this batch
                let canonical = try AuditChain.canonical(event)
                let next = AuditChain.link(previous: hash, canonical: canonical)
                position += 1
                columns.append(position: position, id: id, event: event, canonical: canonical, previousHash: hash, hash: next)
                hash = next
            }
            let added = columns.positions.count
            if added > 0 {
                let c = columns
                try await connection.query(
                    """
                    INSERT INTO \(schema: chain).audit_events (position, id, occurred_at, action, actor_kind, actor_id, actor_email,
                        target_type, target_id, ip, outcome, request_id, super_admin, event, previous_hash, hash)
                    SELECT * FROM unnest(\(c.positions)::bigint[], \(c.ids)::uuid[], \(c.occurredAt)::bigint[], \(c.actions)::text[],
                        \(c.actorKinds)::text[], \(c.actorIDs)::text[], \(c.actorEmails)::text[], \(c.targetTypes)::text[],
                        \(c.targetIDs)::text[], \(c.ips)::text[], \(c.outcomes)::text[], \(c.requestIDs)::text[],
                        \(c.superAdmins)::boolean[], \(c.events)::bytea[], \(c.previousHashes)::bytea[], \(c.hashes)::bytea[])
                    """,
                    logger: logger
                )
                try await connection.query(
                    "UPDATE \(schema: chain).audit_chain_head SET position = \(position), hash = \(ByteBuffer(bytes: hash))",
                    logger: logger
                )
                let (signedUpTo, _) = try await lastCheckpoint(chain, connection)
                if position - signedUpTo >= Int64(settings.checkpointEvents) {
                    try await writeCheckpoint(chain, position: position, hash: hash, connection)
                }
            }
            return added
        }
    }

    /// Signs the head of `chain` if events are unsigned and the last checkpoint is older than
    /// `checkpointSeconds` (or there is none): the time half of "every N events or T seconds".
    /// Returns the position the newest checkpoint signs (0: none yet).
    @discardableResult
    func checkpointIfDue(_ chain: Chain, now: Int64) async throws -> Int64 {
        try await database.transaction { connection in
            let heads = try await connection.query(
                "SELECT position, hash FROM \(schema: chain).audit_chain_head FOR UPDATE",
                logger: logger
            )
            var head: (position: Int64, hash: [UInt8])?
            for try await (position, hash) in heads.decode((Int64, ByteBuffer).self) { head = (position, Array(buffer: hash)) }
            let (signedUpTo, signedAt) = try await lastCheckpoint(chain, connection)
            guard let head, head.position > signedUpTo, now - signedAt >= Int64(settings.checkpointSeconds) * 1000 else { return signedUpTo }
            try await writeCheckpoint(chain, position: head.position, hash: head.hash, connection)
            return head.position
        }
    }

    private func lastCheckpoint(_ chain: Chain, _ connection: PostgresConnection) async throws -> (position: Int64, signedAt: Int64) {
        let rows = try await connection.query(
            "SELECT position, signed_at FROM \(schema: chain).audit_checkpoints ORDER BY position DESC LIMIT 1",
            logger: logger
        )
        for try await (position, signedAt) in rows.decode((Int64, Int64).self) { return (position, signedAt) }
        return (0, 0)
    }

    private func writeCheckpoint(_ chain: Chain, position: Int64, hash: [UInt8], _ connection: PostgresConnection) async throws {
        let signedAt = WallClock.milliseconds()
        let signature = settings.signingKey.sign(AuditChain.checkpointMessage(chain: chain, position: position, hash: hash, signedAt: signedAt))
        try await connection.query(
            "INSERT INTO \(schema: chain).audit_checkpoints (position, head_hash, signed_at, key_id, signature) VALUES (\(position), \(ByteBuffer(bytes: hash)), \(signedAt), \(settings.signingKeyID), \(ByteBuffer(bytes: signature)))",
            logger: logger
        )
    }

    /// The rows of one INSERT, column by column.
    private struct Columns {
        var positions: [Int64] = []
        var ids: [UUID] = []
        var occurredAt: [Int64] = []
        var actions: [String] = []
        var actorKinds: [String] = []
        var actorIDs: [String] = []
        var actorEmails: [String] = []
        var targetTypes: [String] = []
        var targetIDs: [String] = []
        var ips: [String] = []
        var outcomes: [String] = []
        var requestIDs: [String] = []
        var superAdmins: [Bool] = []
        var events: [ByteBuffer] = []
        var previousHashes: [ByteBuffer] = []
        var hashes: [ByteBuffer] = []

        mutating func append(position: Int64, id: UUID, event: Rampart_V1_AuditEvent, canonical: [UInt8], previousHash: [UInt8], hash: [UInt8]) {
            positions.append(position)
            ids.append(id)
            occurredAt.append(event.occurredAtMs)
            actions.append(event.action)
            actorKinds.append(event.actor.kind.storedName)
            actorIDs.append(event.actor.id)
            actorEmails.append(event.actor.email)
            targetTypes.append(event.target.type)
            targetIDs.append(event.target.id)
            ips.append(event.origin.ip)
            outcomes.append(event.outcome.storedName)
            requestIDs.append(event.requestID)
            superAdmins.append(event.superAdmin)
            events.append(ByteBuffer(bytes: canonical))
            previousHashes.append(ByteBuffer(bytes: previousHash))
            hashes.append(ByteBuffer(bytes: hash))
        }
    }
}

/// The names stored (and queried) for actor kinds and outcomes: stable, unlike Swift's.
extension Rampart_V1_AuditActor.Kind {
    var storedName: String {
        switch self {
        case .user: "user"
        case .apiKey: "api_key"
        case .system: "system"
        case .anonymous: "anonymous"
        default: "unspecified"
        }
    }
}

extension Rampart_V1_AuditOutcome {
    var storedName: String {
        switch self {
        case .success: "success"
        case .failure: "failure"
        default: "unspecified"
        }
    }
}

extension PostgresQuery.StringInterpolation {
    /// A chain's schema in the SQL text: `public`, or a tenant's, named only from a validated
    /// `TenantID`.
    mutating func appendInterpolation(schema chain: AuditStore.Chain) {
        appendInterpolation(unescaped: chain.schema)
    }
}
