import RampartModels
import SodiumKit

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Checks an unfiltered JSON lines export away from the service (`rampart-audit verify`), one
/// line at a time, against public keys the operator trusts (never keys from the export itself).
///
/// Each event line must be exactly what the service renders for its hashed event, so a change
/// to the readable `event` object is caught as surely as one to the hashed bytes.
public struct AuditExportVerifier {
    public let publicKeys: [String: [UInt8]]
    private var signatures: AuditSignatures { AuditSignatures(publicKeys: publicKeys) }
    private var line = 0
    private var chain: AuditStore.Chain?
    private var upTo: Int64 = 0
    private var cut: RetentionCut?
    private var verifier: ChainVerifier?
    private var fault: ChainVerdict?

    public init(publicKeys: [String: [UInt8]]) {
        self.publicKeys = publicKeys
    }

    /// The chain the export's header names ("platform" or a tenant ID), once read.
    public var chainIdentity: String? { chain?.identity }

    /// Feeds the next line (without its newline); false once a fault is found.
    public mutating func feed(_ bytes: some Collection<UInt8>) -> Bool {
        guard fault == nil, verifier?.verdict == nil else { return false }
        line += 1
        guard let record = try? JSONDecoder().decode(ExportLine.self, from: Data(bytes)) else {
            return fail("line \(line) is not JSON of this export format")
        }
        guard let chain else { return readHeader(record) }
        if let cutLine = record.retention_cut {
            guard verifier == nil, cut == nil, let cut = cutLine.cut else { return fail("line \(line): a retention cut must come before the events") }
            guard signatures.isSigned(cut, of: chain) else { return fail("the retention cut at \(cut.position) has no valid signature") }
            self.cut = cut
            return true
        }
        if verifier == nil { verifier = ChainVerifier(cut: cut ?? .none) }
        if let checkpointLine = record.checkpoint {
            guard let checkpoint = checkpointLine.checkpoint else { return fail("line \(line): checkpoint unreadable") }
            guard signatures.isSigned(checkpoint, of: chain) else {
                return fail("checkpoint at \(checkpoint.position) has no valid signature", at: checkpoint.position)
            }
            verifier!.addCheckpoint((checkpoint.position, checkpoint.headHash))
            return verifier!.verdict == nil
        }
        guard let position = record.position, let previousHash = record.previous_hash.flatMap(bytes(hex:)),
            let hash = record.hash.flatMap(bytes(hex:)), let canonical = record.canonical.flatMap({ Base64.decode($0) }),
            let event = try? Rampart_V1_AuditEvent(serializedBytes: canonical), let id = UUID(uuidString: event.id)
        else {
            return fail("line \(line): event unreadable", at: verifier!.expectedPosition)
        }
        let exported = ExportedRecord(position: position, canonical: canonical, previousHash: previousHash, hash: hash)
        guard let rendered = try? AuditJSONL.line(exported, event), rendered.dropLast().elementsEqual(bytes) else {
            return fail("line \(line): the readable event differs from the hashed one", at: position)
        }
        let row = ChainRow(
            position: position,
            id: id,
            action: event.action,
            actorID: event.actor.id,
            targetID: event.target.id,
            ip: event.origin.ip,
            outcome: event.outcome.storedName,
            event: canonical,
            previousHash: previousHash,
            hash: hash
        )
        return verifier!.accept(row)
    }

    /// The verdict once every line is fed: the export must reach the position its header names.
    public mutating func finish() -> ChainVerdict {
        if let fault { return fault }
        guard chain != nil else { return ChainVerdict(verifiedEvents: 0, firstBadPosition: 1, problem: "the export is empty") }
        if verifier == nil { verifier = ChainVerifier(cut: cut ?? .none) }
        return verifier!.finish(headPosition: upTo, headHash: nil)
    }

    private mutating func readHeader(_ record: ExportLine) -> Bool {
        guard record.format == AuditJSONL.formatName, let identity = record.chain, let upTo = record.up_to_position else {
            return fail("line 1 is not the header of a \(AuditJSONL.formatName) export")
        }
        guard record.filtered == false else { return fail("a filtered export leaves events out: export without filters to verify") }
        if identity == AuditStore.Chain.platform.identity {
            chain = .platform
        } else if let tenant = TenantID(identity) {
            chain = .tenant(tenant)
        } else {
            return fail("the header names no chain")
        }
        self.upTo = upTo
        return true
    }

    private mutating func fail(_ problem: String, at position: Int64 = 1) -> Bool {
        fault = ChainVerdict(verifiedEvents: verifier?.verified ?? 0, firstBadPosition: position, problem: problem)
        return false
    }
}

/// Every kind of line an export holds; which fields are present says which it is.
private struct ExportLine: Decodable {
    var format: String?
    var chain: String?
    var up_to_position: Int64?
    var filtered: Bool?
    var position: Int64?
    var previous_hash: String?
    var hash: String?
    var canonical: String?
    var checkpoint: CheckpointLine?
    var retention_cut: CutLine?

    struct CheckpointLine: Decodable {
        var position: Int64
        var head_hash: String
        var signed_at_ms: Int64
        var key_id: String
        var signature: String

        var checkpoint: StoredCheckpoint? {
            guard let hash = bytes(hex: head_hash), let signature = Base64.decode(signature) else { return nil }
            return StoredCheckpoint(position: position, headHash: hash, signedAt: signed_at_ms, keyID: key_id, signature: signature)
        }
    }

    struct CutLine: Decodable {
        var position: Int64
        var anchor_hash: String
        var cut_at_ms: Int64
        var kept_events: Int64
        var kept_digest: String
        var key_id: String
        var signature: String

        var cut: RetentionCut? {
            guard let anchor = bytes(hex: anchor_hash), let digest = bytes(hex: kept_digest), let signature = Base64.decode(signature) else {
                return nil
            }
            return RetentionCut(
                position: position,
                anchorHash: anchor,
                cutAt: cut_at_ms,
                keptEvents: kept_events,
                keptDigest: digest,
                keyID: key_id,
                signature: signature
            )
        }
    }
}
