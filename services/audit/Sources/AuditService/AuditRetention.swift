import Logging
import NIOCore
import PostgresNIO
import RampartModels
import ServiceKit
import ServiceLifecycle
import SodiumKit

/// Retention (AUD-4, TEN-8): a chain loses its old events only at a signed checkpoint, and each
/// cut is recorded and signed, so what is left still verifies.
///
/// A cut at position P removes the events up to P except those kept longer (super-admin and
/// deletion events, at least 2 years). The cut's record signs P, the checkpoint's head hash at P
/// (where the remaining chain resumes) and a digest of the events kept before P, so removing
/// or changing a kept event is detected as surely as one in the chain.
struct RetentionCut: Sendable, Equatable {
    var position: Int64
    var anchorHash: [UInt8]
    var cutAt: Int64
    var keptEvents: Int64
    var keptDigest: [UInt8]
    var keyID: String
    var signature: [UInt8]

    static let none = RetentionCut(
        position: 0,
        anchorHash: AuditChain.genesis,
        cutAt: 0,
        keptEvents: 0,
        keptDigest: keptDigest([]),
        keyID: "",
        signature: []
    )

    /// What the signature covers.
    static func message(
        chain: AuditStore.Chain,
        position: Int64,
        anchorHash: [UInt8],
        cutAt: Int64,
        keptEvents: Int64,
        keptDigest: [UInt8]
    ) -> [UInt8] {
        Array(
            "rampart-audit-cut/v1\n\(chain.identity)\n\(position)\n\(hexString(anchorHash))\n\(cutAt)\n\(keptEvents)\n\(hexString(keptDigest))".utf8
        )
    }

    func message(chain: AuditStore.Chain) -> [UInt8] {
        Self.message(chain: chain, position: position, anchorHash: anchorHash, cutAt: cutAt, keptEvents: keptEvents, keptDigest: keptDigest)
    }

    /// SHA-256 over each kept event's position (8 bytes, big-endian) and hash, in position order.
    static func keptDigest(_ kept: [(position: Int64, hash: [UInt8])]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(kept.count * 40)
        for (position, hash) in kept {
            withUnsafeBytes(of: position.bigEndian) { bytes += $0 }
            bytes += hash
        }
        return sha256(bytes)
    }
}

/// How long a plan keeps its events (TEN-8); nil keeps them forever.
enum RetentionPlan {
    static func days(_ plan: String) -> Int? {
        switch plan {
        case "starter": 30
        case "pro": 365
        default: nil  // enterprise; an unknown plan keeps everything rather than lose evidence
        }
    }

    /// Super-admin actions and deletion requests: kept at least this long whatever the plan (AUD-4).
    static let longRetentionDays = 730
    static let longRetentionActions = [AuditAction.accountDeletionRequested, .tenantDeletionRequested].map(\.rawValue)
}

extension AuditStore {
    /// Records the plan a tenant's retention follows (from `tenant.created`).
    func recordPlan(_ tenant: TenantID, plan: String) async throws {
        var binds = PostgresBindings()
        binds.append(tenant.hex)
        binds.append(plan)
        try await database.client.query(
            PostgresQuery(
                unsafeSQL: """
                    INSERT INTO public.audit_tenant_plans (tenant_id, plan) VALUES ($1, $2)
                    ON CONFLICT (tenant_id) DO UPDATE SET plan = excluded.plan, updated_at = now()
                    """,
                binds: binds
            ),
            logger: logger
        )
    }

    func plans() async throws -> [String: String] {
        let rows = try await database.client.query("SELECT tenant_id, plan FROM public.audit_tenant_plans", logger: logger)
        var plans: [String: String] = [:]
        for try await (tenant, plan) in rows.decode((String, String).self) { plans[tenant] = plan }
        return plans
    }

    /// Cuts `chain` at its newest checkpoint older than `retentionDays`, keeping long-retention
    /// events younger than 2 years; returns the cut made, or nil when nothing was due.
    @discardableResult
    func applyRetention(_ chain: Chain, retentionDays: Int, now: Int64) async throws -> RetentionCut? {
        let schema = chain.schema
        let cutoff = now - Int64(retentionDays) * 86_400_000
        let longCutoff = now - Int64(RetentionPlan.longRetentionDays) * 86_400_000
        return try await database.client.withTransaction(logger: logger) { connection in
            // Serialises with appends and checkpoints on this chain.
            _ = try await connection.query(PostgresQuery(unsafeSQL: "SELECT 1 FROM \(schema).audit_chain_head FOR UPDATE"), logger: logger)
            let previous = try await latestCut(schema, connection) ?? .none

            var binds = PostgresBindings()
            binds.append(previous.position)
            binds.append(cutoff)
            let candidates = try await connection.query(
                PostgresQuery(
                    unsafeSQL: """
                        SELECT c.position, c.head_hash FROM \(schema).audit_checkpoints c
                        JOIN \(schema).audit_events e ON e.position = c.position
                        WHERE c.position > $1 AND e.stored_at < to_timestamp($2 / 1000.0)
                        ORDER BY c.position DESC LIMIT 1
                        """,
                    binds: binds
                ),
                logger: logger
            )
            var cut = (position: previous.position, anchor: previous.anchorHash)
            for try await (position, hash) in candidates.decode((Int64, ByteBuffer).self) { cut = (position, Array(buffer: hash)) }

            // Up to the cut: everything but long-retention events younger than 2 years.
            binds = PostgresBindings()
            binds.append(cut.position)
            binds.append(longCutoff)
            binds.append(RetentionPlan.longRetentionActions)
            let removed = try await connection.query(
                PostgresQuery(
                    unsafeSQL: """
                        DELETE FROM \(schema).audit_events WHERE position <= $1
                        AND NOT ((super_admin OR action = ANY($3)) AND stored_at >= to_timestamp($2 / 1000.0))
                        RETURNING position
                        """,
                    binds: binds
                ),
                logger: logger
            )
            var removedCount = 0
            for try await _ in removed.decode(Int64.self) { removedCount += 1 }
            guard cut.position > previous.position || removedCount > 0 else { return nil }

            binds = PostgresBindings()
            binds.append(cut.position)
            let keptRows = try await connection.query(
                PostgresQuery(unsafeSQL: "SELECT position, hash FROM \(schema).audit_events WHERE position <= $1 ORDER BY position", binds: binds),
                logger: logger
            )
            var kept: [(position: Int64, hash: [UInt8])] = []
            for try await (position, hash) in keptRows.decode((Int64, ByteBuffer).self) { kept.append((position, Array(buffer: hash))) }

            var record = RetentionCut(
                position: cut.position,
                anchorHash: cut.anchor,
                cutAt: now,
                keptEvents: Int64(kept.count),
                keptDigest: RetentionCut.keptDigest(kept),
                keyID: settings.signingKeyID,
                signature: []
            )
            record.signature = settings.signingKey.sign(record.message(chain: chain))
            // Checkpoints before the cut sign removed events; the one at the cut stays as the anchor.
            try await connection.query(
                PostgresQuery(unsafeSQL: "DELETE FROM \(schema).audit_checkpoints WHERE position < $1", binds: binds),
                logger: logger
            )
            binds = PostgresBindings()
            binds.append(record.position)
            binds.append(ByteBuffer(bytes: record.anchorHash))
            binds.append(record.cutAt)
            binds.append(record.keptEvents)
            binds.append(ByteBuffer(bytes: record.keptDigest))
            binds.append(Int64(removedCount))
            binds.append(record.keyID)
            binds.append(ByteBuffer(bytes: record.signature))
            try await connection.query(
                PostgresQuery(
                    unsafeSQL: """
                        INSERT INTO \(schema).audit_retention_cuts
                            (position, anchor_hash, cut_at, kept_events, kept_digest, removed_events, key_id, signature)
                        VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                        """,
                    binds: binds
                ),
                logger: logger
            )
            logger.info(
                "audit retention cut",
                metadata: ["chain": "\(chain.identity)", "position": "\(record.position)", "removed": "\(removedCount)", "kept": "\(kept.count)"]
            )
            return record
        }
    }

    func latestCut(_ chain: Chain) async throws -> RetentionCut? {
        try await database.client.withConnection { try await latestCut(chain.schema, $0) }
    }

    func latestCut(_ schema: String, _ connection: PostgresConnection) async throws -> RetentionCut? {
        let rows = try await connection.query(
            PostgresQuery(
                unsafeSQL: """
                    SELECT position, anchor_hash, cut_at, kept_events, kept_digest, key_id, signature
                    FROM \(schema).audit_retention_cuts ORDER BY id DESC LIMIT 1
                    """
            ),
            logger: logger
        )
        for try await (position, anchor, cutAt, kept, digest, keyID, signature) in rows.decode(
            (Int64, ByteBuffer, Int64, Int64, ByteBuffer, String, ByteBuffer).self
        ) {
            return RetentionCut(
                position: position,
                anchorHash: Array(buffer: anchor),
                cutAt: cutAt,
                keptEvents: kept,
                keptDigest: Array(buffer: digest),
                keyID: keyID,
                signature: Array(buffer: signature)
            )
        }
        return nil
    }
}

/// Applies retention to every chain on a schedule: each tenant by its plan, platform events
/// (bans) by `platformRetentionDays`.
struct AuditRetention: Service {
    let store: AuditStore
    let health: HealthChecks
    let logger: Logger

    func run() async throws {
        await repeatEvery(.seconds(store.settings.retentionIntervalSeconds), "audit retention", health: health, logger: logger) {
            try await applyAll(now: WallClock.milliseconds())
        }
    }

    func applyAll(now: Int64) async throws {
        let plans = try await store.plans()
        try await store.applyRetention(.platform, retentionDays: store.settings.platformRetentionDays, now: now)
        for tenant in try await store.database.provisionedTenants() {
            guard let days = RetentionPlan.days(plans[tenant.hex] ?? "") else { continue }
            try await store.applyRetention(.tenant(tenant), retentionDays: days, now: now)
        }
    }
}
