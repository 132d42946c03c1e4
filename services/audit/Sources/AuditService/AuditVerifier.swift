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
struct ChainVerdict: Sendable, Equatable {
    var verifiedEvents: Int64
    var firstBadPosition: Int64?
    var problem: String?

    var isValid: Bool { firstBadPosition == nil }
}

/// Walks a chain in position order and checks every link (AUD-5): a changed event breaks its
/// hash, a removed one leaves a gap, an inserted or reordered one breaks the link to its
/// predecessor, and a changed query column no longer matches the hashed event.
struct ChainVerifier {
    private(set) var expectedPosition: Int64 = 1
    private(set) var previous = AuditChain.genesis
    private(set) var verdict: ChainVerdict?
    /// Signed heads whose signatures were checked, in position order: a forger who changed an
    /// event and recomputed every hash after it still cannot match them.
    private var checkpoints: [(position: Int64, hash: [UInt8])]
    private var lastMatchedCheckpoint: Int64 = 0

    init(checkpoints: [(position: Int64, hash: [UInt8])] = []) {
        self.checkpoints = checkpoints.sorted { $0.position < $1.position }
    }

    /// Feeds the next row; false once a fault is found (the rest need not be read).
    mutating func accept(_ row: ChainRow) -> Bool {
        guard verdict == nil else { return false }
        guard row.position == expectedPosition else {
            return fail(at: expectedPosition, row.position > expectedPosition ? "event missing" : "position out of order")
        }
        guard row.previousHash == previous else { return fail(at: row.position, "link to the previous event broken") }
        guard AuditChain.link(previous: previous, canonical: row.event) == row.hash else {
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
        if let checkpoint = checkpoints.first, checkpoint.position == row.position {
            guard checkpoint.hash == row.hash else {
                return fail(
                    at: lastMatchedCheckpoint + 1,
                    "events \(lastMatchedCheckpoint + 1)…\(row.position) were rewritten (signed checkpoint at \(row.position) differs)"
                )
            }
            lastMatchedCheckpoint = row.position
            checkpoints.removeFirst()
        }
        previous = row.hash
        expectedPosition += 1
        return true
    }

    /// The result, given the head the store recorded (catches rows removed from the end).
    func finish(head: (position: Int64, hash: [UInt8])) -> ChainVerdict {
        if let verdict { return verdict }
        let verified = expectedPosition - 1
        if let checkpoint = checkpoints.first {
            return ChainVerdict(
                verifiedEvents: verified,
                firstBadPosition: verified + 1,
                problem: "events missing: a checkpoint signed position \(checkpoint.position)"
            )
        }
        if head.position != verified || head.hash != previous {
            return ChainVerdict(verifiedEvents: verified, firstBadPosition: verified + 1, problem: "chain head does not match the last event")
        }
        return ChainVerdict(verifiedEvents: verified, firstBadPosition: nil, problem: nil)
    }

    private mutating func fail(at position: Int64, _ problem: String) -> Bool {
        verdict = ChainVerdict(verifiedEvents: expectedPosition - 1, firstBadPosition: position, problem: problem)
        return false
    }
}

extension AuditStore {
    /// Verifies a chain as stored, streaming its rows.
    func verify(_ chain: Chain) async throws -> ChainVerdict {
        let schema = chain.schema
        return try await database.client.withConnection { connection in
            var checkpoints: [(position: Int64, hash: [UInt8])] = []
            let signed = try await connection.query(
                PostgresQuery(
                    unsafeSQL: "SELECT position, head_hash, signed_at, key_id, signature FROM \(schema).audit_checkpoints ORDER BY position"
                ),
                logger: logger
            )
            for try await (position, hash, signedAt, keyID, signature) in signed.decode((Int64, ByteBuffer, Int64, String, ByteBuffer).self) {
                let hash = Array(buffer: hash)
                let message = AuditChain.checkpointMessage(chain: chain, position: position, hash: hash, signedAt: signedAt)
                guard let publicKey = settings.publicKey(keyID), SigningKey.verify(Array(buffer: signature), of: message, publicKey: publicKey) else {
                    return ChainVerdict(verifiedEvents: 0, firstBadPosition: position, problem: "checkpoint at \(position) has no valid signature")
                }
                checkpoints.append((position, hash))
            }
            var verifier = ChainVerifier(checkpoints: checkpoints)
            let rows = try await connection.query(
                PostgresQuery(
                    unsafeSQL: """
                        SELECT position, id, action, actor_id, target_id, ip, outcome, event, previous_hash, hash
                        FROM \(schema).audit_events ORDER BY position
                        """
                ),
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
            let heads = try await connection.query(PostgresQuery(unsafeSQL: "SELECT position, hash FROM \(schema).audit_chain_head"), logger: logger)
            var head: (position: Int64, hash: [UInt8]) = (0, AuditChain.genesis)
            for try await (position, hash) in heads.decode((Int64, ByteBuffer).self) { head = (position, Array(buffer: hash)) }
            return verifier.finish(head: head)
        }
    }
}
