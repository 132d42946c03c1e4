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

/// Exports (AUD-3): a tenant's events oldest first, one bounded chunk per call, as JSON lines
/// (verifiable offline when unfiltered) or as CSV.
extension AuditStore {
    static let exportRowsPerChunk = 500
    /// Well under NATS's 1 MB payload limit, with room for one more event (64 KB at most).
    static let exportBytesPerChunk = 512 * 1024

    func export(
        _ chain: Chain,
        _ request: Rampart_V1_AuditExportRequest,
        rowsPerChunk: Int = exportRowsPerChunk
    ) async throws -> Rampart_V1_AuditExportReply {
        let format = request.format
        guard format == .jsonl || format == .csv else {
            throw RampartError(.invalidArgument, "format must be jsonl or csv", details: ["field": "format"])
        }
        var filter = try AuditQueryFilter(request.filter)
        let isFirst = request.cursor.isEmpty
        let (after, upTo): (Int64, Int64)
        // Read before the head, so it cannot name a head this export does not reach.
        var publishedHead = PublishedHead.none
        if isFirst {
            if format == .jsonl && filter.isEmpty { publishedHead = try await self.publishedHead(chain, settings.signatures) }
            after = 0
            upTo = try await head(chain).position
        } else {
            let values = try AuditCursor.decode(request.cursor, "x", count: 2)
            (after, upTo) = (values[0], values[1])
        }
        filter.positions(after: after, upTo: upTo)
        let rows = try await database.query(
            filter.query(
                "SELECT position, event, previous_hash, hash FROM \(chain.schema).audit_events",
                "ORDER BY position LIMIT \(rowsPerChunk)"
            )
        )
        var records: [ExportedRecord] = []
        for try await (position, event, previousHash, hash) in rows.decode((Int64, ByteBuffer, ByteBuffer, ByteBuffer).self) {
            records.append(
                ExportedRecord(
                    position: position,
                    canonical: Array(buffer: event),
                    previousHash: Array(buffer: previousHash),
                    hash: Array(buffer: hash)
                )
            )
        }

        var output: [UInt8] = []
        output.reserveCapacity(Self.exportBytesPerChunk + 64 * 1024)
        // An unfiltered JSON export carries what an offline verifier needs besides the events.
        let verifiable = format == .jsonl && filter.isEmpty
        if isFirst {
            switch format {
            case .csv: output += AuditCSV.header
            default:
                output += AuditJSONL.header(chain: chain, upTo: upTo, filtered: !verifiable, exportedAt: WallClock.milliseconds())
                if verifiable, let cut = try await latestCut(chain) { output += AuditJSONL.line(cut) }
                // The newest published checkpoint, for the offline verifier to reach (finding 14).
                if verifiable, case .signed(let published) = publishedHead { output += AuditJSONL.line(published) }
            }
        }
        // The checkpoints this chunk can reach, each written after the event it signs.
        let full = records.count == rowsPerChunk
        var checkpoints = verifiable ? try await self.checkpoints(chain, after: after, upTo: full ? records.last!.position : upTo)[...] : []
        var covered: Int64?
        for record in records {
            let event = try Rampart_V1_AuditEvent(serializedBytes: record.canonical)
            // One whose event a retention cut removed goes before the next event.
            while let checkpoint = checkpoints.first, checkpoint.position < record.position {
                output += AuditJSONL.line(checkpoint)
                checkpoints.removeFirst()
            }
            output += format == .csv ? AuditCSV.row(record.position, event) : try AuditJSONL.line(record, event)
            while let checkpoint = checkpoints.first, checkpoint.position == record.position {
                output += AuditJSONL.line(checkpoint)
                checkpoints.removeFirst()
            }
            covered = record.position
            if output.count >= Self.exportBytesPerChunk { break }
        }
        let more = full || covered != records.last?.position
        let end = more ? covered! : upTo
        // The last chunk: checkpoints past the last exported event (its event was cut).
        if !more { for checkpoint in checkpoints { output += AuditJSONL.line(checkpoint) } }
        var reply = Rampart_V1_AuditExportReply()
        reply.chunk = Data(output)
        if more { reply.nextCursor = AuditCursor.encode("x", [end, upTo]) }
        return reply
    }

    func head(_ chain: Chain) async throws -> (position: Int64, hash: [UInt8]) {
        try await database.withConnection { try await head(chain, $0) }
    }

    func head(_ chain: Chain, _ connection: PostgresConnection) async throws -> (position: Int64, hash: [UInt8]) {
        let rows = try await connection.query("SELECT position, hash FROM \(schema: chain).audit_chain_head", logger: logger)
        for try await (position, hash) in rows.decode((Int64, ByteBuffer).self) { return (position, Array(buffer: hash)) }
        return (0, AuditChain.genesis)
    }

    func checkpoints(_ chain: Chain, after: Int64, upTo: Int64) async throws -> [StoredCheckpoint] {
        try await database.withConnection { try await checkpoints(chain, after: after, upTo: upTo, $0) }
    }

    /// The signed heads at positions in (after, upTo], in position order.
    func checkpoints(_ chain: Chain, after: Int64, upTo: Int64, _ connection: PostgresConnection) async throws -> [StoredCheckpoint] {
        let rows = try await connection.query(
            """
            SELECT \(unescaped: StoredCheckpoint.columns) FROM \(schema: chain).audit_checkpoints
            WHERE position > \(after) AND position <= \(upTo) ORDER BY position
            """,
            logger: logger
        )
        var checkpoints: [StoredCheckpoint] = []
        for try await row in rows.decode(StoredCheckpoint.Row.self) { checkpoints.append(StoredCheckpoint(row)) }
        return checkpoints
    }
}

/// One exported row of the chain.
struct ExportedRecord: Sendable {
    var position: Int64
    var canonical: [UInt8]
    var previousHash: [UInt8]
    var hash: [UInt8]
}

/// A signed head as stored.
struct StoredCheckpoint: Sendable, Equatable {
    var position: Int64
    var headHash: [UInt8]
    var signedAt: Int64
    var keyID: String
    var signature: [UInt8]

    /// The columns of `audit_checkpoints` a `Row` reads, in its order.
    static let columns = "position, head_hash, signed_at, key_id, signature"
    typealias Row = (Int64, ByteBuffer, Int64, String, ByteBuffer)

    init(position: Int64, headHash: [UInt8], signedAt: Int64, keyID: String, signature: [UInt8]) {
        self.position = position
        self.headHash = headHash
        self.signedAt = signedAt
        self.keyID = keyID
        self.signature = signature
    }

    init(_ row: Row) {
        self.init(position: row.0, headHash: Array(buffer: row.1), signedAt: row.2, keyID: row.3, signature: Array(buffer: row.4))
    }
}

/// The JSON lines export: a header line, then one line per event, each signed checkpoint on
/// its own line right after the event it signs. Field names are what `AuditExportReader` reads.
enum AuditJSONL {
    static let formatName = "rampart-audit-export/v1"

    static func header(chain: AuditStore.Chain, upTo: Int64, filtered: Bool, exportedAt: Int64) -> [UInt8] {
        Array(
            "{\"format\":\"\(formatName)\",\"chain\":\(JSONText.quote(chain.identity)),\"up_to_position\":\(upTo),\"filtered\":\(filtered),\"exported_at_ms\":\(exportedAt)}\n"
                .utf8
        )
    }

    static func line(_ record: ExportedRecord, _ event: Rampart_V1_AuditEvent) throws -> [UInt8] {
        var options = JSONEncodingOptions()
        options.preserveProtoFieldNames = true
        options.useDeterministicOrdering = true  // the offline verifier re-renders each line to compare
        let eventJSON = try event.jsonString(options: options)
        return Array(
            """
            {"position":\(record.position),"previous_hash":"\(hexString(record.previousHash))","hash":"\(hexString(record.hash))",\
            "canonical":"\(Base64.encode(record.canonical))","event":\(eventJSON)}\n
            """.utf8
        )
    }

    static func line(_ checkpoint: StoredCheckpoint) -> [UInt8] {
        Array(
            """
            {"checkpoint":{"position":\(checkpoint.position),"head_hash":"\(hexString(checkpoint.headHash))",\
            "signed_at_ms":\(checkpoint.signedAt),"key_id":\(JSONText.quote(checkpoint.keyID)),"signature":"\(Base64.encode(checkpoint.signature))"}}\n
            """.utf8
        )
    }

    static func line(_ cut: RetentionCut) -> [UInt8] {
        Array(
            """
            {"retention_cut":{"position":\(cut.position),"anchor_hash":"\(hexString(cut.anchorHash))","cut_at_ms":\(cut.cutAt),\
            "kept_events":\(cut.keptEvents),"kept_digest":"\(hexString(cut.keptDigest))","key_id":\(JSONText.quote(cut.keyID)),\
            "signature":"\(Base64.encode(cut.signature))"}}\n
            """.utf8
        )
    }

}

/// The CSV export, in `CSVText`'s cells.
enum AuditCSV {
    static let columns = [
        "position", "occurred_at", "time_zone", "event_id", "action", "outcome", "reason", "actor_kind", "actor_id", "actor_name",
        "actor_email", "actor_role", "target_type", "target_id", "ip", "user_agent", "location", "request_id", "super_admin", "details",
    ]
    static let header = Array((columns.joined(separator: ",") + "\r\n").utf8)

    static func row(_ position: Int64, _ event: Rampart_V1_AuditEvent) -> [UInt8] {
        let details = event.details.sorted { $0.key < $1.key }.map { "\(JSONText.quote($0.key)):\(JSONText.quote($0.value))" }
        let cells = [
            String(position), WallClock.rfc3339(milliseconds: event.occurredAtMs), event.timeZone, event.id, event.action,
            event.outcome.storedName, event.reason, event.actor.kind.storedName, event.actor.id, event.actor.name, event.actor.email,
            event.actor.role, event.target.type, event.target.id, event.origin.ip, event.origin.userAgent, event.origin.location,
            event.requestID, event.superAdmin ? "true" : "false", "{" + details.joined(separator: ",") + "}",
        ]
        return Array((cells.map(CSVText.cell).joined(separator: ",") + "\r\n").utf8)
    }
}
