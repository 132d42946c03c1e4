import NATSKit
import PostgresNIO
import RampartModels
import ServiceKit

/// Every chain's signed checkpoints, published to JetStream as well as stored (issue 26,
/// finding 14). Whoever can write audit's database can cut the newest events together with
/// their checkpoints and set the head back, and the chain left behind verifies; the published
/// copy still names the head that was signed, so both verifiers see the cut.
///
/// The stream is append-only (no message deleted, no purge, through any user: NATS refuses it
/// by the stream's configuration) and audit's NATS user may create it, publish to it and read
/// its last message per chain, never update or delete it. It keeps the newest checkpoints of
/// each chain, whatever the plan: a head is never older than the retention it outlives.
struct PublishedCheckpoints: Sendable {
    static let stream = JetStream.StreamConfiguration(
        name: Subjects.auditCheckpointsStream,
        subjects: [Subjects.auditCheckpointsPrefix + ".*"],
        duplicateWindow: .seconds(120),
        maxMessageSize: 4096,
        maxMessagesPerSubject: 16,
        appendOnly: true
    )

    /// A published checkpoint that cannot be read: the stream was written by someone else.
    struct Unreadable: Error {}

    let jetStream: JetStream

    func publish(_ checkpoint: StoredCheckpoint, of chain: AuditStore.Chain) async throws {
        _ = try await jetStream.publish(
            AuditJSONL.line(checkpoint),
            to: chain.checkpointsSubject,
            messageID: "checkpoint-\(chain.identity)-\(checkpoint.position)"
        )
    }

    /// The newest checkpoint published for `chain`; nil when none was.
    func latest(of chain: AuditStore.Chain) async throws -> StoredCheckpoint? {
        guard let message = try await jetStream.lastMessage(stream: Subjects.auditCheckpointsStream, subject: chain.checkpointsSubject) else {
            return nil
        }
        guard let checkpoint = AuditJSONL.checkpoint(message.payload) else { throw Unreadable() }
        return checkpoint
    }
}

extension AuditStore.Chain {
    var checkpointsSubject: String {
        switch self {
        case .platform: Subjects.auditCheckpoints(tenant: nil)
        case .tenant(let tenant): Subjects.auditCheckpoints(tenant: tenant)
        }
    }
}

extension AuditStore {
    /// Publishes the chain's newest stored checkpoint, which signs `signedUpTo` (as
    /// `checkpointIfDue` answers), unless `published` is at it already; returns the position now
    /// published. A checkpoint is published once its transaction has committed, so the stream
    /// never names a head the database does not have.
    func publishLatestCheckpoint(_ chain: Chain, signedUpTo: Int64, published: Int64?) async throws -> Int64? {
        guard let publisher = self.published, signedUpTo != published else { return published }
        guard let newest = try await latestCheckpoint(chain), newest.position != published else { return published }
        try await publisher.publish(newest, of: chain)
        return newest.position
    }

    func latestCheckpoint(_ chain: Chain) async throws -> StoredCheckpoint? {
        let rows = try await database.query(
            "SELECT \(unescaped: StoredCheckpoint.columns) FROM \(schema: chain).audit_checkpoints ORDER BY position DESC LIMIT 1"
        )
        return try await rows.first(decoding: StoredCheckpoint.Row.self).map { row in StoredCheckpoint(row) }
    }

    /// What a verifier compares the stored chain with: the newest published checkpoint, signed by
    /// a key it trusts, or the fault that it is not.
    enum PublishedHead {
        case none
        case signed(StoredCheckpoint)
        case fault(ChainVerdict)
    }

    /// Read before the chain's snapshot, so a checkpoint published meanwhile cannot look ahead of it.
    func publishedHead(_ chain: Chain, _ signatures: AuditSignatures) async throws -> PublishedHead {
        guard let publisher = self.published else { return .none }
        let checkpoint: StoredCheckpoint?
        do {
            checkpoint = try await publisher.latest(of: chain)
        } catch is PublishedCheckpoints.Unreadable {
            return .fault(ChainVerdict(verifiedEvents: 0, firstBadPosition: 1, problem: "the published checkpoint is unreadable"))
        }
        guard let checkpoint else { return .none }
        guard signatures.isSigned(checkpoint, of: chain) else {
            return .fault(
                ChainVerdict(
                    verifiedEvents: 0,
                    firstBadPosition: checkpoint.position,
                    problem: "the published checkpoint at \(checkpoint.position) has no valid signature"
                )
            )
        }
        return .signed(checkpoint)
    }
}
