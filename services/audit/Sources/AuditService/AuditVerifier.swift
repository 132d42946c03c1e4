import Logging
import NIOCore
import PostgresNIO
import RampartModels
import ServiceKit
import SodiumKit

#if canImport(FoundationEssentials)
import FoundationEssentials
import SwiftProtobuf
#else
import Foundation
#endif

/// One stored row as the verifier reads it: the hashed event, the chain fields, and the columns
/// that queries filter on (which must say what the hashed event says).
struct ChainRow: Sendable {
    var position: Int64
    var id: UUID
    var action: String
    var actorID: String
    var targetID: String
    var ip: String
    var outcome: String
    var event: [UInt8]
    var previousHash: [UInt8]
    var hash: [UInt8]
}

/// What `verify` found: how many events hold, and the first position where the log was
/// changed, with what is wrong there.
public struct ChainVerdict: Sendable, Equatable {
    public var verifiedEvents: Int64
    public var firstBadPosition: Int64?
    public var problem: String?
    /// The last position a checked signature covers (a checkpoint, or the retention cut): events
    /// after it are only as trustworthy as the store they came from.
    public var signedThrough: Int64 = 0

    public var isValid: Bool { firstBadPosition == nil }
}

/// Walks a chain in position order and checks every link (AUD-5): a changed event breaks its
/// hash, a removed one leaves a gap, an inserted or reordered one breaks the link to its
/// predecessor, and a changed query column no longer matches the hashed event.
///
/// After a retention cut at P, the rows up to P are the long-retention events kept there: each
/// must hash to itself, and together they must match the cut's signed digest. The chain then
/// resumes at P + 1 from the cut's anchor hash. Signatures are checked by the caller, which
/// hands over the cut and checkpoints it trusts.
struct ChainVerifier {
    let cut: RetentionCut
    private(set) var expectedPosition: Int64
    private(set) var previous: [UInt8]
    private(set) var verdict: ChainVerdict?
    private(set) var verified: Int64 = 0
    private var kept: [(position: Int64, hash: [UInt8])] = []
    private var keptChecked = false
    /// Signed heads not reached yet, in position order.
    private var checkpoints: [(position: Int64, hash: [UInt8])] = []
    private var lastMatchedCheckpoint: Int64

    init(cut: RetentionCut = .none, checkpoints: [(position: Int64, hash: [UInt8])] = []) {
        self.cut = cut
        expectedPosition = cut.position + 1
        previous = cut.anchorHash
        lastMatchedCheckpoint = cut.position
        for checkpoint in checkpoints.sorted(by: { $0.position < $1.position }) { addCheckpoint(checkpoint) }
    }

    /// A signed head, given before the row it signs or right after it (as an export has them).
    mutating func addCheckpoint(_ checkpoint: (position: Int64, hash: [UInt8])) {
        guard verdict == nil else { return }
        if checkpoint.position < cut.position { return }  // signs removed events only
        if checkpoint.position == cut.position {
            if checkpoint.hash != cut.anchorHash {
                _ = fail(at: cut.position + 1, "the checkpoint at the retention cut differs from the cut's anchor")
            }
            return
        }
        if checkpoint.position == expectedPosition - 1 {
            _ = matchCheckpoint(checkpoint, hash: previous)
        } else if checkpoint.position >= expectedPosition {
            let index = checkpoints.firstIndex { $0.position > checkpoint.position } ?? checkpoints.endIndex
            checkpoints.insert(checkpoint, at: index)
        } else {
            _ = fail(at: checkpoint.position, "checkpoint at \(checkpoint.position) out of order")
        }
    }

    /// Feeds the next row; false once a fault is found (the rest need not be read).
    mutating func accept(_ row: ChainRow) -> Bool {
        guard verdict == nil else { return false }
        if row.position <= cut.position { return acceptKept(row) }
        guard checkKept() else { return false }
        guard row.position == expectedPosition else {
            return fail(at: expectedPosition, row.position > expectedPosition ? "event missing" : "position out of order")
        }
        guard row.previousHash == previous else { return fail(at: row.position, "link to the previous event broken") }
        guard checkContent(row) else { return false }
        previous = row.hash
        expectedPosition += 1
        verified += 1
        if let checkpoint = checkpoints.first, checkpoint.position == row.position {
            checkpoints.removeFirst()
            return matchCheckpoint(checkpoint, hash: row.hash)
        }
        return true
    }

    /// The result, given the head the store recorded (catches rows removed from the end); an
    /// export knows the head's position only.
    mutating func finish(headPosition: Int64, headHash: [UInt8]?) -> ChainVerdict {
        if verdict == nil, checkKept() {
            let last = expectedPosition - 1
            if let checkpoint = checkpoints.first {
                _ = fail(at: last + 1, "events missing: a checkpoint signed position \(checkpoint.position)")
            } else if headPosition != last || (headHash != nil && headHash != previous) {
                _ = fail(at: last + 1, "chain head does not match the last event")
            }
        }
        var result = verdict ?? ChainVerdict(verifiedEvents: verified, firstBadPosition: nil, problem: nil)
        result.signedThrough = lastMatchedCheckpoint
        return result
    }

    private mutating func acceptKept(_ row: ChainRow) -> Bool {
        guard row.position > (kept.last?.position ?? 0) else { return fail(at: row.position, "position out of order") }
        guard checkContent(row) else { return false }
        kept.append((row.position, row.hash))
        verified += 1
        return true
    }

    /// Once past the cut: the kept rows are exactly those the cut signed.
    private mutating func checkKept() -> Bool {
        guard !keptChecked else { return true }
        keptChecked = true
        guard Int64(kept.count) == cut.keptEvents, RetentionCut.keptDigest(kept) == cut.keptDigest else {
            return fail(
                at: kept.first?.position ?? 1,
                "events kept before the retention cut at \(cut.position) differ from the cut's signed record"
            )
        }
        return true
    }

    /// The row's hash covers its event, and its query columns say what the event says.
    private mutating func checkContent(_ row: ChainRow) -> Bool {
        guard AuditChain.link(previous: row.previousHash, canonical: row.event) == row.hash else {
            return fail(at: row.position, "event changed (hash mismatch)")
        }
        guard let event = try? Rampart_V1_AuditEvent(serializedBytes: row.event), (try? AuditChain.canonical(event)) == row.event else {
            return fail(at: row.position, "event unreadable")
        }
        guard UUID(uuidString: event.id) == row.id, event.action == row.action, event.actor.id == row.actorID,
            event.target.id == row.targetID, event.origin.ip == row.ip, event.outcome.storedName == row.outcome
        else {
            return fail(at: row.position, "columns differ from the hashed event")
        }
        return true
    }

    private mutating func matchCheckpoint(_ checkpoint: (position: Int64, hash: [UInt8]), hash: [UInt8]) -> Bool {
        guard checkpoint.hash == hash else {
            return fail(
                at: lastMatchedCheckpoint + 1,
                "events \(lastMatchedCheckpoint + 1)…\(checkpoint.position) were rewritten (signed checkpoint at \(checkpoint.position) differs)"
            )
        }
        lastMatchedCheckpoint = checkpoint.position
        return true
    }

    private mutating func fail(at position: Int64, _ problem: String) -> Bool {
        verdict = ChainVerdict(verifiedEvents: verified, firstBadPosition: position, problem: problem)
        return false
    }
}

/// The public keys that signed a chain's checkpoints and cuts, by key ID.
struct AuditSignatures: Sendable {
    let publicKeys: [String: [UInt8]]

    func isSigned(_ checkpoint: StoredCheckpoint, of chain: AuditStore.Chain) -> Bool {
        let message = AuditChain.checkpointMessage(
            chain: chain,
            position: checkpoint.position,
            hash: checkpoint.headHash,
            signedAt: checkpoint.signedAt
        )
        return check(checkpoint.signature, message, checkpoint.keyID)
    }

    func isSigned(_ cut: RetentionCut, of chain: AuditStore.Chain) -> Bool {
        check(cut.signature, cut.message(chain: chain), cut.keyID)
    }

    private func check(_ signature: [UInt8], _ message: [UInt8], _ keyID: String) -> Bool {
        guard let publicKey = publicKeys[keyID] else { return false }
        return SigningKey.verify(signature, of: message, publicKey: publicKey)
    }
}

extension AuditStore {
    /// Verifies a chain as stored, streaming its rows from one snapshot.
    func verify(_ chain: Chain) async throws -> ChainVerdict {
        let signatures = settings.signatures
        let publishedHead = try await self.publishedHead(chain, signatures)
        if case .fault(let verdict) = publishedHead { return verdict }
        return try await database.withConnection { connection in
            // One snapshot: appends while the chain is read must not look like tampering.
            try await connection.query("START TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY", logger: logger)
            do {
                let verdict = try await verify(chain, signatures, publishedHead, connection)
                try await connection.query("COMMIT", logger: logger)
                return verdict
            } catch {
                _ = try? await connection.query("ROLLBACK", logger: logger)
                throw error
            }
        }
    }

    private func verify(
        _ chain: Chain,
        _ signatures: AuditSignatures,
        _ publishedHead: PublishedHead,
        _ connection: PostgresConnection
    ) async throws -> ChainVerdict {
        let cut = try await latestCut(chain, connection)
        if let cut, !signatures.isSigned(cut, of: chain) {
            return ChainVerdict(verifiedEvents: 0, firstBadPosition: 1, problem: "the retention cut at \(cut.position) has no valid signature")
        }
        var checkpoints: [(position: Int64, hash: [UInt8])] = []
        for checkpoint in try await self.checkpoints(chain, after: 0, upTo: .max, connection) {
            guard signatures.isSigned(checkpoint, of: chain) else {
                return ChainVerdict(
                    verifiedEvents: 0,
                    firstBadPosition: checkpoint.position,
                    problem: "checkpoint at \(checkpoint.position) has no valid signature"
                )
            }
            checkpoints.append((checkpoint.position, checkpoint.headHash))
        }
        // The published head must be reached too (finding 14): a stored copy of it says nothing
        // more, a different one is overruled by it.
        if case .signed(let published) = publishedHead {
            checkpoints.removeAll { $0.position == published.position }
            checkpoints.append((published.position, published.headHash))
        }
        var verifier = ChainVerifier(cut: cut ?? .none, checkpoints: checkpoints)
        let rows = try await connection.query(
            """
            SELECT position, id, action, actor_id, target_id, ip, outcome, event, previous_hash, hash
            FROM \(schema: chain).audit_events ORDER BY position
            """,
            logger: logger
        )
        for try await (position, id, action, actorID, targetID, ip, outcome, event, previousHash, hash) in rows.decode(
            (Int64, UUID, String, String, String, String, String, ByteBuffer, ByteBuffer, ByteBuffer).self
        ) {
            let row = ChainRow(
                position: position,
                id: id,
                action: action,
                actorID: actorID,
                targetID: targetID,
                ip: ip,
                outcome: outcome,
                event: Array(buffer: event),
                previousHash: Array(buffer: previousHash),
                hash: Array(buffer: hash)
            )
            if !verifier.accept(row) { break }
        }
        let head = try await self.head(chain, connection)
        return verifier.finish(headPosition: head.position, headHash: head.hash)
    }
}
