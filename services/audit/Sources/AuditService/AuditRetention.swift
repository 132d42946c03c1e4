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

/// The plan a tenant's events were stored under from `sinceMs` until the next period, and how
/// many days it keeps them (nil: forever).
struct RetentionPeriod: Sendable, Equatable {
    var sinceMs: Int64
    var days: Int?
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

    /// An event stored before a plan change lives at least this long after it (issue 26,
    /// finding 11), whatever either plan says: a change never empties the log at once.
    static let planChangeGraceDays = 30

    /// Super-admin actions and deletion requests: kept at least this long whatever the plan (AUD-4).
    static let longRetentionDays = 730
    static let longRetentionActions = [AuditAction.accountDeletionRequested, .tenantDeletionRequested].map(\.rawValue)
}

extension AuditStore {
    /// Records the plan a tenant's retention follows from `since` (Unix ms; `tenant.created`,
    /// `tenant.plan_changed`). Its first plan covers everything before; the same plan again (a
    /// redelivered event) changes nothing.
    func recordPlan(_ tenant: TenantID, plan: String, since: Int64 = WallClock.milliseconds()) async throws {
        try await database.transaction { connection in
            let rows = try await connection.query(
                "SELECT plan FROM public.audit_tenant_plans WHERE tenant_id = \(tenant.hex) FOR UPDATE",
                logger: logger
            )
            var current: String?
            for try await plan in rows.decode(String.self) { current = plan }
            guard current != plan else { return }
            try await connection.query(
                """
                INSERT INTO public.audit_tenant_plans (tenant_id, plan) VALUES (\(tenant.hex), \(plan))
                ON CONFLICT (tenant_id) DO UPDATE SET plan = excluded.plan, updated_at = now()
                """,
                logger: logger
            )
            let sinceMs = current == nil ? 0 : since
            try await connection.query(
                """
                INSERT INTO public.audit_plan_periods (tenant_id, plan, since_ms) VALUES (\(tenant.hex), \(plan), \(sinceMs))
                ON CONFLICT (tenant_id, since_ms) DO UPDATE SET plan = excluded.plan
                """,
                logger: logger
            )
        }
    }

    /// Every tenant's plan periods, oldest first.
    func planPeriods() async throws -> [String: [RetentionPeriod]] {
        let rows = try await database.query(
            "SELECT tenant_id, plan, since_ms FROM public.audit_plan_periods ORDER BY tenant_id, since_ms"
        )
        var periods: [String: [RetentionPeriod]] = [:]
        for try await (tenant, plan, since) in rows.decode((String, String, Int64).self) {
            periods[tenant, default: []].append(RetentionPeriod(sinceMs: since, days: RetentionPlan.days(plan)))
        }
        return periods
    }

    /// One plan from the start, kept `retentionDays`.
    @discardableResult
    func applyRetention(_ chain: Chain, retentionDays: Int, now: Int64) async throws -> RetentionCut? {
        try await applyRetention(chain, periods: [RetentionPeriod(sinceMs: 0, days: retentionDays)], now: now)
    }

    /// Cuts `chain` at its newest checkpoint before the first event still to keep, keeping
    /// long-retention events younger than 2 years; returns the cut made, or nil when nothing was
    /// due. An event is kept for the days of the plan period it was stored in (`periods`, oldest
    /// first; the first covers everything before it), and, when a later period began, at least
    /// 30 days after that began.
    @discardableResult
    func applyRetention(_ chain: Chain, periods: [RetentionPeriod], now: Int64) async throws -> RetentionCut? {
        guard !periods.isEmpty else { return nil }
        // One row per period: where it starts and ends, how long it keeps (-1: forever), and
        // until when its events stay whatever (the next period's start plus the grace).
        var starts: [Int64] = []
        var ends: [Int64] = []
        var keeps: [Int64] = []
        var floors: [Int64] = []
        for (index, period) in periods.enumerated() {
            let next = index + 1 < periods.count ? periods[index + 1].sinceMs : nil
            starts.append(index == 0 ? Int64.min : period.sinceMs)
            ends.append(next ?? Int64.max)
            keeps.append(period.days.map { Int64($0) * 86_400_000 } ?? -1)
            floors.append(next.map { $0 + Int64(RetentionPlan.planChangeGraceDays) * 86_400_000 } ?? Int64.min)
        }
        let longCutoff = now - Int64(RetentionPlan.longRetentionDays) * 86_400_000
        return try await database.transaction { connection in
            // Serialises with appends and checkpoints on this chain.
            _ = try await connection.query("SELECT 1 FROM \(schema: chain).audit_chain_head FOR UPDATE", logger: logger)
            let previous = try await latestCut(chain, connection) ?? .none

            // The first event still to keep. Long-retention events do not hold the cut back
            // (the cut keeps them) unless their period keeps everything.
            let firstKept = try await connection.query(
                """
                SELECT min(e.position) FROM \(schema: chain).audit_events e
                JOIN unnest(\(starts)::bigint[], \(ends)::bigint[], \(keeps)::bigint[], \(floors)::bigint[]) AS p(since_ms, until_ms, keep_ms, floor_ms)
                  ON (extract(epoch FROM e.stored_at) * 1000)::bigint >= p.since_ms
                 AND (extract(epoch FROM e.stored_at) * 1000)::bigint < p.until_ms
                WHERE e.position > \(previous.position)
                  AND (p.keep_ms < 0 OR (extract(epoch FROM e.stored_at) * 1000)::bigint + p.keep_ms > \(now) OR p.floor_ms > \(now))
                  AND (p.keep_ms < 0 OR NOT (e.super_admin OR e.action = ANY(\(RetentionPlan.longRetentionActions))))
                """,
                logger: logger
            )
            var keptFrom = Int64.max
            for try await position in firstKept.decode(Int64?.self) { keptFrom = position ?? Int64.max }
            let candidates = try await connection.query(
                """
                SELECT position, head_hash FROM \(schema: chain).audit_checkpoints
                WHERE position > \(previous.position) AND position < \(keptFrom) ORDER BY position DESC LIMIT 1
                """,
                logger: logger
            )
            var cut = (position: previous.position, anchor: previous.anchorHash)
            for try await (position, hash) in candidates.decode((Int64, ByteBuffer).self) { cut = (position, Array(buffer: hash)) }

            // Up to the cut: everything but long-retention events younger than 2 years.
            let removed = try await connection.query(
                """
                DELETE FROM \(schema: chain).audit_events WHERE position <= \(cut.position)
                AND NOT ((super_admin OR action = ANY(\(RetentionPlan.longRetentionActions))) AND stored_at >= to_timestamp(\(longCutoff) / 1000.0))
                RETURNING position
                """,
                logger: logger
            )
            var removedCount = 0
            for try await _ in removed.decode(Int64.self) { removedCount += 1 }
            guard cut.position > previous.position || removedCount > 0 else { return nil }

            let keptRows = try await connection.query(
                "SELECT position, hash FROM \(schema: chain).audit_events WHERE position <= \(cut.position) ORDER BY position",
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
                "DELETE FROM \(schema: chain).audit_checkpoints WHERE position < \(cut.position)",
                logger: logger
            )
            try await connection.query(
                """
                INSERT INTO \(schema: chain).audit_retention_cuts
                    (position, anchor_hash, cut_at, kept_events, kept_digest, removed_events, key_id, signature)
                VALUES (\(record.position), \(ByteBuffer(bytes: record.anchorHash)), \(record.cutAt), \(record.keptEvents),
                        \(ByteBuffer(bytes: record.keptDigest)), \(Int64(removedCount)), \(record.keyID), \(ByteBuffer(bytes: record.signature)))
                """,
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
        try await database.withConnection { try await latestCut(chain, $0) }
    }

    func latestCut(_ chain: Chain, _ connection: PostgresConnection) async throws -> RetentionCut? {
        let rows = try await connection.query(
            """
            SELECT position, anchor_hash, cut_at, kept_events, kept_digest, key_id, signature
            FROM \(schema: chain).audit_retention_cuts ORDER BY id DESC LIMIT 1
            """,
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

/// Applies retention to every chain on a schedule: each tenant's events by the plan each was
/// stored under, platform events (bans) by `platformRetentionDays`.
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
        let periods = try await store.planPeriods()
        try await store.applyRetention(.platform, retentionDays: store.settings.platformRetentionDays, now: now)
        for tenant in try await store.database.provisionedTenants() {
            // A tenant whose every plan kept everything has nothing due.
            guard let periods = periods[tenant.hex], periods.contains(where: { $0.days != nil }) else { continue }
            try await store.applyRetention(.tenant(tenant), periods: periods, now: now)
        }
    }
}
