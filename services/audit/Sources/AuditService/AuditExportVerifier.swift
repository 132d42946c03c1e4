import RampartModels
import SodiumKit

#if canImport(FoundationEssentials)
import FoundationEssentials
import SwiftProtobuf
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
        let bytes = Array(bytes)
        if chain != nil, let prefix = EventLinePrefix(bytes) { return feedEvent(prefix, line: bytes) }
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
        guard let checkpointLine = record.checkpoint else { return fail("line \(line): event unreadable", at: nextPosition) }
        guard let checkpoint = checkpointLine.checkpoint else { return fail("line \(line): checkpoint unreadable") }
        guard signatures.isSigned(checkpoint, of: chain) else {
            return fail("checkpoint at \(checkpoint.position) has no valid signature", at: checkpoint.position)
        }
        startChain()
        verifier!.addCheckpoint((checkpoint.position, checkpoint.headHash))
        return verifier!.verdict == nil
    }

    /// An event line: the hashed bytes decide, and the whole line must be what the service
    /// renders for them, so only the leading fields are read here.
    private mutating func feedEvent(_ prefix: EventLinePrefix, line bytes: [UInt8]) -> Bool {
        startChain()
        guard let event = try? Rampart_V1_AuditEvent(serializedBytes: prefix.canonical), let id = UUID(uuidString: event.id) else {
            return fail("line \(line): event unreadable", at: nextPosition)
        }
        let exported = ExportedRecord(position: prefix.position, canonical: prefix.canonical, previousHash: prefix.previousHash, hash: prefix.hash)
        guard let rendered = try? AuditJSONL.line(exported, event), rendered.dropLast().elementsEqual(bytes) else {
            return fail("line \(line): the readable event differs from the hashed one", at: prefix.position)
        }
        let row = ChainRow(
            position: prefix.position,
            id: id,
            action: event.action,
            actorID: event.actor.id,
            targetID: event.target.id,
            ip: event.origin.ip,
            outcome: event.outcome.storedName,
            event: prefix.canonical,
            previousHash: prefix.previousHash,
            hash: prefix.hash
        )
        return verifier!.accept(row)
    }

    private var nextPosition: Int64 { verifier?.expectedPosition ?? (cut?.position ?? 0) + 1 }

    private mutating func startChain() {
        if verifier == nil { verifier = ChainVerifier(cut: cut ?? .none) }
    }

    /// The verdict once every line is fed: the export must reach the position its header names.
    public mutating func finish() -> ChainVerdict {
        if let fault { return fault }
        guard chain != nil else { return ChainVerdict(verifiedEvents: 0, firstBadPosition: 1, problem: "the export is empty") }
        startChain()
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

/// The leading fields of an event line, `{"position":N,"previous_hash":"…","hash":"…",
/// "canonical":"…","event":`, read by hand: a million JSONDecoder runs would dominate a
/// verification. Anything else about the line is checked by comparing it with its re-rendering.
private struct EventLinePrefix {
    let position: Int64
    let previousHash: [UInt8]
    let hash: [UInt8]
    let canonical: [UInt8]

    init?(_ line: [UInt8]) {
        var index = 0
        func expect(_ text: StaticString) -> Bool {
            let count = text.utf8CodeUnitCount
            guard line.count - index >= count else { return false }
            let matches = text.withUTF8Buffer { line[index..<index + count].elementsEqual($0) }
            if matches { index += count }
            return matches
        }
        func string() -> String? {
            guard let end = line[index...].firstIndex(of: UInt8(ascii: "\"")) else { return nil }
            defer { index = end + 1 }
            return String(decoding: line[index..<end], as: UTF8.self)
        }
        guard expect("{\"position\":") else { return nil }
        let digits = line[index...].prefix { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }
        guard (1...18).contains(digits.count), let position = Int64(String(decoding: digits, as: UTF8.self)) else { return nil }
        index += digits.count
        guard expect(",\"previous_hash\":\""), let previousHash = string().flatMap(bytes(hex:)),
            expect(",\"hash\":\""), let hash = string().flatMap(bytes(hex:)),
            expect(",\"canonical\":\""), let canonical = string().flatMap({ Base64.decode($0) }),
            expect(",\"event\":")
        else { return nil }
        self.position = position
        self.previousHash = previousHash
        self.hash = hash
        self.canonical = canonical
    }
}

/// The header, checkpoint and retention cut lines; which fields are present says which it is.
private struct ExportLine: Decodable {
    var format: String?
    var chain: String?
    var up_to_position: Int64?
    var filtered: Bool?
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

extension AuditJSONL {
    /// A checkpoint line (as published to JetStream, or exported) read back; nil when it is not one.
    static func checkpoint(_ line: [UInt8]) -> StoredCheckpoint? {
        let trimmed = line.last == UInt8(ascii: "\n") ? Array(line.dropLast()) : line
        return (try? JSONDecoder().decode(ExportLine.self, from: Data(trimmed)))?.checkpoint?.checkpoint
    }
}
